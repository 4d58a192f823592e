// Lead dashboard: every figure comes from the quality API (the same endpoints scripts use) and is
// drawn with Chart.js (loaded as a UMD script from npm). Data is untrusted text: only textContent.
const endpoints = JSON.parse(document.getElementById("endpoints").textContent);
const { Chart } = window;
const charts = {};
const state = { view: "ranking", weight: 0, sort: { key: "username", dir: 1 }, annotators: [], warnings: {} };

const pct = (x) => (x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)} %`);
const num = (x, digits = 3) => (x === null || x === undefined ? "—" : Number(x).toFixed(digits));

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

function draw(id, config) {
  charts[id]?.destroy();
  charts[id] = new Chart(document.getElementById(id), config);
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function fillTable(id, rows, columns) {
  const tbody = document.querySelector(`#${id} tbody`);
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const c of columns) cell(tr, c(r));
    tbody.append(tr);
  }
  if (!rows.length) {
    const tr = document.createElement("tr");
    cell(tr, "none").colSpan = columns.length;
    tbody.append(tr);
  }
}

function renderFreshness(body) {
  const el = document.getElementById("freshness");
  if (!body.computed_at) {
    el.textContent = "No figures yet: they are computed in the background after the first judgments.";
    return;
  }
  const when = new Date(body.computed_at).toLocaleString();
  el.textContent = `Figures computed ${when} from ${body.judgments_covered} judgments (${body.duration_ms} ms).`;
  if (body.stale) el.textContent += body.recompute_queued ? " Newer judgments exist; a recompute is queued." : " Newer judgments exist.";
}

function renderProgress(p) {
  if (!p || !p.series) return;
  document.getElementById("progress-numbers").textContent =
    `${p.items_complete} of ${p.items} items complete · ${p.judgments} judgments (${p.counted_judgments} counted) · ` +
    `${p.qualified_annotators} of ${p.annotators} annotators qualified · ${p.gold_items} gold, ${p.honeypot_items} honeypot items`;
  const labels = p.series.map((s) => new Date(s.t).toLocaleString([], p.bucket === "day" ? { dateStyle: "short" } : { dateStyle: "short", timeStyle: "short" }));
  draw("progress-chart", {
    data: {
      labels,
      datasets: [
        { type: "line", label: "judgments (cumulative)", data: p.series.map((s) => s.cumulative), yAxisID: "y", tension: 0.2 },
        { type: "line", label: "items complete (cumulative)", data: p.series.map((s) => s.items_complete), yAxisID: "y", tension: 0.2 },
        { type: "bar", label: `judgments per ${p.bucket}`, data: p.series.map((s) => s.judgments), yAxisID: "y1" },
      ],
    },
    options: {
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, title: { display: true, text: "cumulative" } },
                y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: `per ${p.bucket}` } } },
    },
  });
}

function renderAgreement(a) {
  if (!a || !a.criteria) return;
  const rows = [{ key: "ranking", label: "Ranking", ...a.ranking }, ...a.criteria];
  draw("agreement-chart", {
    type: "bar",
    data: {
      labels: rows.map((r) => r.label),
      datasets: [
        { label: "Krippendorff α (ordinal)", data: rows.map((r) => r.alpha) },
        { label: "pairwise agreement", data: rows.map((r) => r.pairwise) },
      ],
    },
    options: { maintainAspectRatio: false, scales: { y: { suggestedMin: 0, suggestedMax: 1 } } },
  });
  fillTable("agreement-table", rows, [(r) => r.label, (r) => num(r.alpha), (r) => pct(r.pairwise), (r) => r.items ?? 0]);
  const b = a.position_bias || {};
  document.getElementById("position-bias").textContent = b.judgments
    ? `Position bias: the reply shown first wins ${pct(b.first_shown_win_rate)} of the time against ${pct(b.chance)} by chance (z = ${num(b.z, 2)}, ${b.judgments} judgments).`
    : "";
}

function renderBoard(body) {
  const viewSelect = document.getElementById("board-view");
  const weightSelect = document.getElementById("board-weight");
  if (!viewSelect.options.length) {
    for (const v of body.views) viewSelect.append(new Option(v.label, v.key, false, v.key === state.view));
    for (const t of body.thresholds) weightSelect.append(new Option(String(t), String(t), false, t === state.weight));
  }
  const board = body.board;
  const numbers = document.getElementById("board-numbers");
  const rows = board ? board.policies.filter((p) => p.strength !== null) : [];
  numbers.textContent = board ? `${board.comparisons} comparisons from ${board.judgments} judgments, ${board.rounds} bootstrap rounds` : "no comparisons yet";
  draw("leaderboard-chart", {
    data: {
      labels: rows.map((p) => p.name),
      datasets: [
        { type: "bar", label: "95% CI", data: rows.map((p) => p.ci), barPercentage: 0.25, backgroundColor: "rgba(47, 91, 211, 0.35)" },
        { type: "line", label: "strength (log-odds)", data: rows.map((p) => p.strength), showLine: false, pointRadius: 6, pointStyle: "rectRot", backgroundColor: "#111827", borderColor: "#111827" },
      ],
    },
    options: {
      maintainAspectRatio: false,
      plugins: { tooltip: { callbacks: { afterBody: (items) => {
        const p = rows[items[0].dataIndex];
        return `CI ${num(p.ci[0])} … ${num(p.ci[1])}; win rate ${pct(p.win_rate)}; ${p.comparisons} comparisons`;
      } } } },
      scales: { y: { title: { display: true, text: "Bradley–Terry strength (log-odds)" } } },
    },
  });
  renderMatrix(board);
}

function renderMatrix(board) {
  const table = document.getElementById("winrate");
  table.replaceChildren();
  if (!board) return;
  const names = Object.fromEntries(board.policies.map((p) => [p.id, p.name]));
  const head = document.createElement("tr");
  cell(head, "");
  for (const id of board.matrix.policies) cell(head, names[id]);
  table.append(head);
  board.matrix.policies.forEach((id, i) => {
    const tr = document.createElement("tr");
    cell(tr, names[id], "rowhead");
    board.matrix.policies.forEach((_, j) => {
      const rate = board.matrix.win_rate[i][j];
      const n = board.matrix.comparisons[i][j];
      const td = cell(tr, i === j ? "" : rate === null ? "—" : `${pct(rate)} (${n})`);
      if (rate !== null && i !== j) td.style.background = `hsl(${Math.round(rate * 120)}, 60%, 85%)`;
    });
    table.append(tr);
  });
}

const ANNOTATOR_COLUMNS = [
  ["username", "Annotator", (v) => v],
  ["judgments", "Judgments", (v) => v],
  ["judgments_last_24h", "Last 24 h", (v) => v],
  ["judgments_per_hour", "Per hour", (v) => num(v, 1)],
  ["median_time_ms", "Median time", (v) => (v === null ? "—" : `${(v / 1000).toFixed(1)} s`)],
  ["gold_accuracy", "Gold accuracy", pct],
  ["honeypot_catch_rate", "Honeypots caught", pct],
  ["loo_agreement", "Agreement (LOO)", pct],
  ["first_shown_win_rate", "First-shown wins", pct],
  ["position_bias_z", "Bias z", (v) => num(v, 2)],
  ["listened_mean", "Listened", pct],
  ["qualified", "Qualified", (v) => (v ? "yes" : "no")],
  ["weight", "Weight", (v) => num(v, 2)],
  ["warnings", "Flags", (v) => v.join(", ")],
];

function renderAnnotators() {
  const table = document.getElementById("annotators");
  const head = document.createElement("tr");
  for (const [key, label] of ANNOTATOR_COLUMNS) {
    const th = document.createElement("th");
    th.textContent = label + (state.sort.key === key ? (state.sort.dir > 0 ? " ▲" : " ▼") : "");
    th.dataset.key = key;
    th.setAttribute("aria-sort", state.sort.key === key ? (state.sort.dir > 0 ? "ascending" : "descending") : "none");
    head.append(th);
  }
  table.tHead.replaceChildren(head);
  const { key, dir } = state.sort;
  const value = (r) => (key === "warnings" ? r.warnings.length : r[key]);
  const rows = [...state.annotators].sort((a, b) => {
    const x = value(a), y = value(b);
    if (x === y) return 0;
    if (x === null) return 1;
    if (y === null) return -1;
    return (x < y ? -1 : 1) * dir;
  });
  const tbody = table.tBodies[0];
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const [k, , fmt] of ANNOTATOR_COLUMNS) {
      const td = cell(tr, fmt(r[k]));
      if (k === "warnings") td.title = r.warnings.map((w) => state.warnings[w]).join("\n");
    }
    if (r.warnings.length) tr.className = "warn";
    tbody.append(tr);
  }
}

function renderFlags(f) {
  if (!f || !f.by_policy) return;
  fillTable("flags-policy", f.by_policy, [(r) => r.name, (r) => r.shown, (r) => r.broken_audio, (r) => r.unsafe]);
  fillTable("flags-candidates", f.candidates.slice(0, 20), [(r) => r.dialogue, (r) => `${r.policy}${r.degraded ? " (honeypot)" : ""}`, (r) => r.broken_audio, (r) => r.unsafe]);
  fillTable("flags-items", f.none_acceptable.slice(0, 20), [(r) => r.dialogue, (r) => r.none_acceptable, (r) => r.judgments]);
}

async function loadBoard() {
  const url = `${endpoints.leaderboard}?view=${encodeURIComponent(state.view)}&min_weight=${state.weight}`;
  renderBoard(await getJSON(url));
}

async function refresh() {
  const summary = await getJSON(endpoints.summary);
  renderFreshness(summary);
  renderProgress(summary.progress);
  renderAgreement(summary.agreement);
  renderFlags(summary.flags);
  await loadBoard();
  const people = await getJSON(endpoints.annotators);
  state.annotators = people.annotators;
  state.warnings = people.warnings;
  renderAnnotators();
  document.body.dataset.dashboard = "ready";
}

document.getElementById("board-view").addEventListener("change", (e) => { state.view = e.target.value; loadBoard(); });
document.getElementById("board-weight").addEventListener("change", (e) => { state.weight = Number(e.target.value); loadBoard(); });
document.getElementById("annotators").addEventListener("click", (e) => {
  const key = e.target.closest("th")?.dataset.key;
  if (!key) return;
  state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
  renderAnnotators();
});
document.getElementById("recompute-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = e.target.querySelector("[name=csrfmiddlewaretoken]").value;
  const response = await fetch(endpoints.recompute, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": token } });
  document.getElementById("freshness").textContent = response.ok ? "Recompute queued; figures refresh in a moment." : `Recompute failed (${response.status}).`;
  setTimeout(refresh, 5000);
});

refresh().catch((err) => { document.getElementById("freshness").textContent = `Could not load figures: ${err.message}`; });
setInterval(() => refresh().catch(() => {}), 60000);
