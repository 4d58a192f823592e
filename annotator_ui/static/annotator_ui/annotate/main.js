// The task page: one item at a time, fetched from the annotate API, judged, submitted, and the
// next one loaded without reloading the page. Work in progress is saved to this browser at
// every change and to the server a moment later, and restored after a reload.
// All dialogue and model text is untrusted: it only ever enters the page as textContent.

import { ApiError, api, isTransient } from "auralign/api";
import { bindKeys } from "auralign/keys";
import { Player, SPEEDS, clock } from "auralign/player";
import { Ranking } from "auralign/ranking";

const config = JSON.parse(document.getElementById("task-config").textContent);
const $ = (id) => document.getElementById(id);
const criteria = config.criteria;
const minListened = config.min_listened;
const HEARTBEAT_MS = Math.min(60_000, (config.lease_seconds * 1000) / 3);
const AUTOSAVE_MS = 1500;
const FLAGS = { broken_audio: "Broken audio", unsafe: "Unsafe" };

let task = null; // the item on screen and everything the annotator did with it
let busy = false;
let judgedThisVisit = 0;

// --- small helpers ---------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const pct = (x) => `${Math.round(x * 100)}%`;

function banner(text, kind = "info", actions = []) {
  $("banner-text").textContent = text;
  $("banner-actions").replaceChildren(
    ...actions.map(([label, fn]) => el("button", { type: "button", text: label, onclick: fn })),
  );
  $("banner").className = `banner ${kind}`;
  $("banner").hidden = false;
}

function clearBanner() {
  $("banner").hidden = true;
}

function showErrors(messages) {
  $("errors").replaceChildren(...messages.map((m) => el("li", { text: m })));
}

function setState(state) {
  $("task").dataset.state = state;
  $("task").setAttribute("aria-busy", String(state === "loading"));
  $("loading").hidden = state !== "loading";
  $("workspace").hidden = state !== "ready";
  $("done").hidden = state !== "done";
}

function updateProgress() {
  const n = config.judged + judgedThisVisit;
  $("progress").textContent = `${n} judged${judgedThisVisit ? ` (${judgedThisVisit} this visit)` : ""}`;
}

// --- loading an item -------------------------------------------------------------------------

async function loadNext() {
  teardown();
  setState("loading");
  let delay = 1000;
  for (;;) {
    try {
      show(await api.next(config.campaign));
      return;
    } catch (error) {
      if (error instanceof ApiError && error.code === "campaign_not_annotating") {
        $("done-text").textContent = `${error.message}. Please come back later.`;
        setState("done");
        return;
      }
      if (!isTransient(error)) {
        banner(`Could not load the next item: ${error.message}`, "error", [["Try again", loadNext]]);
        return;
      }
      banner("Cannot reach the server. Trying again…", "warn");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }
}

// What "next" answered (the next endpoint, or a submission's `next`): an item, or the end.
function show(data) {
  clearBanner();
  if (!data.item) {
    $("done-text").textContent = data.message;
    setState("done");
    return;
  }
  start(data);
}

function teardown() {
  if (!task) return;
  clearInterval(task.heartbeat);
  clearTimeout(task.autosave);
  for (const card of task.cards.values()) card.player?.destroy();
  task = null;
  delete document.body.dataset.item;
}

function start(data) {
  const labels = Object.fromEntries(data.candidates.map((c) => [c.id, c.label]));
  task = {
    item: data.item,
    candidates: data.candidates,
    labels,
    cards: new Map(),
    scores: {},
    flags: Object.fromEntries(data.candidates.map((c) => [c.id, new Set()])),
    csid: newId(),
    focus: { card: 0, criterion: 0 },
    expiresAt: new Date(data.expires_at),
    expired: false,
    spentMs: 0,
    activeSince: document.visibilityState === "visible" ? performance.now() : null,
    lastActivity: Date.now(),
  };
  task.ranking = new Ranking({
    tiersEl: $("tiers"),
    unrankedEl: $("unranked"),
    labels,
    onChange: changed,
    onPick: (id) => focusCard(task.candidates.findIndex((c) => c.id === id)),
  });
  renderTurns(data.turns);
  $("cards").replaceChildren(...data.candidates.map((c, i) => renderCard(c, i)));
  $("none-acceptable").checked = false;
  $("rationale").value = "";
  showErrors([]);
  $("saved").textContent = "";
  task.ranking.set([]);
  const restored = restoreDraft(data.draft);
  for (const c of task.candidates) {
    if (!c.audio) task.flags[c.id].add("broken_audio"); // nothing to hear: it is broken audio
    updateCard(c.id);
  }
  focusCard(task.focus.card, false);
  task.heartbeat = setInterval(heartbeat, HEARTBEAT_MS);
  document.body.dataset.item = task.item;
  setState("ready");
  updateLease();
  if (restored) banner("Your unfinished work on this item was restored.", "info");
  else if (data.resumed) banner("Welcome back: this is the item you were working on.", "info");
}

function renderTurns(turns) {
  const lastUser = turns.map((t) => t.role).lastIndexOf("user");
  $("turns").replaceChildren(
    ...turns.map((t, i) =>
      el(
        "li",
        { class: `turn role-${t.role}${i === lastUser ? " answered" : ""}` },
        el("span", { class: "role", text: i === lastUser ? `${t.role} · the replies answer this` : t.role }),
        el("p", { class: "turn-text", text: t.text }),
        t.audio ? el("audio", { controls: true, preload: "metadata", src: t.audio.url, class: "turn-audio", onerror: refreshAudio }) : "",
      ),
    ),
  );
}

function renderCard(c, index) {
  const card = { el: null, player: null, rows: new Map() };
  task.cards.set(c.id, card);
  const wave = el("div", { class: "wave", "aria-hidden": "true" });
  const speed = el(
    "select",
    { "aria-label": `Speed of reply ${c.label}`, class: "speed", onchange: (e) => card.player?.setSpeed(Number(e.target.value)) },
    ...SPEEDS.map((s) => el("option", { value: String(s), text: `${s}×`, selected: s === 1 })),
  );
  const controls = el(
    "div",
    { class: "controls" },
    el("button", { type: "button", class: "play", "aria-label": `Play reply ${c.label}`, text: "▶", onclick: () => togglePlay(c.id) }),
    el("button", { type: "button", "aria-label": "Back 2 seconds", text: "−2s", onclick: () => card.player?.seek(-2) }),
    el("button", { type: "button", "aria-label": "Forward 2 seconds", text: "+2s", onclick: () => card.player?.seek(2) }),
    speed,
    el("button", { type: "button", class: "loop", "aria-pressed": "false", text: "Loop", onclick: () => card.player?.toggleLoop() }),
    el("span", { class: "time muted" }),
  );
  const header = el(
    "header",
    {},
    el("span", { class: "letter", text: c.label }),
    el("div", { class: "meter", role: "progressbar", "aria-label": `Heard of reply ${c.label}`, "aria-valuemin": "0", "aria-valuemax": "100" },
      el("div", { class: "fill" }),
      el("div", { class: "mark", style: `left:${minListened * 100}%` })),
    el("span", { class: "heard muted" }),
  );
  const body = [header, wave, controls, el("p", { class: "reply-text", text: c.reply_text })];
  if ("reasoning" in c && c.reasoning) {
    body.push(
      el("details", { class: "reasoning", open: config.reasoning === "shown" },
        el("summary", { text: "Reasoning trace" }),
        el("pre", { text: c.reasoning })),
    );
  }
  const rows = criteria.map((cr, ci) => {
    const buttons = [];
    for (let v = cr.min; v <= cr.max; v++) {
      buttons.push(
        el("button", {
          type: "button", role: "radio", "aria-checked": "false", class: "score", "data-value": String(v),
          title: cr.anchors[String(v)] || String(v), text: String(v),
          onclick: () => { focusCard(index, false); task.focus.criterion = ci; setScore(c.id, cr.key, v); },
        }),
      );
    }
    const row = el("div", { class: "criterion", "data-key": cr.key },
      el("span", { class: "crit-label", text: cr.label + (cr.required ? "" : " (optional)") }),
      el("div", { class: "scale", role: "radiogroup", "aria-label": `${cr.label} of reply ${c.label}` }, ...buttons),
      el("span", { class: "anchor-text muted" }));
    card.rows.set(cr.key, row);
    return row;
  });
  body.push(
    el("div", { class: "criteria" }, ...rows),
    el("p", { class: "lock", text: `Listen to at least ${pct(minListened)} of this reply to score it.` }),
    el("div", { class: "flags" }, ...Object.entries(FLAGS).map(([flag, label]) =>
      el("label", { class: "check" },
        el("input", { type: "checkbox", "data-flag": flag, onchange: (e) => setFlag(c.id, flag, e.target.checked) }),
        ` ${label}`))),
  );
  card.el = el("article", { class: "card reply", tabindex: "-1", "data-cid": c.id, "aria-label": `Reply ${c.label}`,
    onpointerdown: () => focusCard(index, false) }, ...body);
  if (c.audio) {
    card.player = new Player(wave, c.audio, {
      onChange: () => updateCard(c.id),
      onError: () => refreshAudio(),
    });
  } else {
    wave.append(el("p", { class: "muted", text: "No audio for this reply." }));
  }
  return card.el;
}

// --- state changes -----------------------------------------------------------------------------

function unlocked(id) {
  const player = task.cards.get(id).player;
  return task.flags[id].has("broken_audio") || (player && player.listened >= minListened);
}

function setScore(id, key, value) {
  const cr = criteria.find((c) => c.key === key);
  const label = task.labels[id];
  if (!unlocked(id)) {
    banner(`Listen to at least ${pct(minListened)} of reply ${label} before scoring it.`, "warn");
    task.cards.get(id).el.querySelector(".lock").classList.add("nudge");
    return false;
  }
  if (value < cr.min || value > cr.max) {
    banner(`${value} is not on the ${cr.label} scale (${cr.min}–${cr.max}).`, "warn");
    return false;
  }
  (task.scores[id] ??= {})[key] = value;
  clearBanner();
  changed();
  updateCard(id);
  return true;
}

function setFlag(id, flag, on) {
  if (on) task.flags[id].add(flag);
  else task.flags[id].delete(flag);
  changed();
  updateCard(id);
}

function updateCard(id) {
  const card = task?.cards.get(id);
  if (!card) return; // an event from the previous item's player
  const { el: root, player } = card;
  const heard = player ? player.listened : 0;
  const open = unlocked(id);
  root.classList.toggle("locked", !open);
  root.querySelector(".fill").style.width = pct(heard);
  root.querySelector(".meter").setAttribute("aria-valuenow", String(Math.round(heard * 100)));
  root.querySelector(".heard").textContent = `${pct(heard)} heard`;
  if (player) {
    const play = root.querySelector(".play");
    play.textContent = player.playing ? "❚❚" : "▶";
    play.setAttribute("aria-label", `${player.playing ? "Pause" : "Play"} reply ${task.labels[id]}`);
    root.querySelector(".loop").setAttribute("aria-pressed", String(player.loop));
    root.querySelector(".speed").value = String(SPEEDS[player.speed]);
    root.querySelector(".time").textContent = `${clock(player.time)} / ${clock(player.duration)}`;
  }
  for (const cr of criteria) {
    const row = card.rows.get(cr.key);
    const chosen = task.scores[id]?.[cr.key];
    for (const button of row.querySelectorAll(".score")) {
      button.disabled = !open;
      button.setAttribute("aria-checked", String(Number(button.dataset.value) === chosen));
    }
    row.querySelector(".anchor-text").textContent = chosen === undefined ? "" : cr.anchors[String(chosen)] || "";
  }
  for (const box of root.querySelectorAll("input[data-flag]")) box.checked = task.flags[id].has(box.dataset.flag);
  updateFocus();
}

function updateFocus() {
  task.candidates.forEach((c, i) => {
    const card = task.cards.get(c.id);
    card.el.classList.toggle("focused", i === task.focus.card);
    criteria.forEach((cr, ci) => card.rows.get(cr.key).classList.toggle("focused", i === task.focus.card && ci === task.focus.criterion));
  });
}

function focusCard(index, scroll = true) {
  if (!task || index < 0 || index >= task.candidates.length) return;
  task.focus.card = index;
  const card = task.cards.get(task.candidates[index].id).el;
  updateFocus();
  if (scroll) {
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }
}

const focusedId = () => task.candidates[task.focus.card].id;

function togglePlay(id) {
  const player = task.cards.get(id).player;
  if (!player) return;
  if (!player.playing) {
    for (const other of task.cards.values()) if (other.player !== player) other.player?.pause();
    for (const audio of document.querySelectorAll(".turn-audio")) audio.pause();
  }
  task.lastActivity = Date.now();
  player.toggle();
}

function changed() {
  if (!task) return;
  task.lastActivity = Date.now();
  saveLocal();
  clearTimeout(task.autosave);
  task.autosave = setTimeout(saveServer, AUTOSAVE_MS);
}

// --- drafts -----------------------------------------------------------------------------------

const draftKey = (item) => `auralign:draft:${item}`;

function spentMs() {
  return Math.round(task.spentMs + (task.activeSince === null ? 0 : performance.now() - task.activeSince));
}

function draft() {
  return {
    v: 1,
    saved_at: Date.now(),
    csid: task.csid,
    tiers: task.ranking.tiers,
    scores: task.scores,
    flags: Object.fromEntries(Object.entries(task.flags).map(([id, set]) => [id, [...set]])),
    none_acceptable: $("none-acceptable").checked,
    rationale: $("rationale").value,
    heard: Object.fromEntries([...task.cards].filter(([, c]) => c.player).map(([id, c]) => [id, c.player.bits])),
    spent_ms: spentMs(),
  };
}

function saveLocal() {
  try {
    localStorage.setItem(draftKey(task.item), JSON.stringify(draft()));
  } catch {
    // storage full or disabled: the server copy still works
  }
}

async function saveServer({ keepalive = false } = {}) {
  if (!task) return;
  const item = task.item;
  try {
    await api.saveDraft(item, draft(), { keepalive });
    if (task?.item === item) $("saved").textContent = "Draft saved";
  } catch (error) {
    if (task?.item === item && isTransient(error)) $("saved").textContent = "Draft kept in this browser (offline)";
  }
}

function restoreDraft(serverDraft) {
  let local = null;
  try {
    local = JSON.parse(localStorage.getItem(draftKey(task.item)) || "null");
  } catch {
    local = null;
  }
  const candidates = [local, serverDraft].filter((d) => d && d.v === 1);
  if (!candidates.length) return false;
  const d = candidates.sort((a, b) => (b.saved_at || 0) - (a.saved_at || 0))[0];
  if (typeof d.csid === "string") task.csid = d.csid; // a reload resubmits the same judgment
  task.ranking.set(d.tiers);
  for (const c of task.candidates) {
    const card = task.cards.get(c.id);
    if (d.heard?.[c.id]) card.player?.restore(d.heard[c.id]);
    for (const flag of d.flags?.[c.id] || []) if (flag in FLAGS) task.flags[c.id].add(flag);
    for (const cr of criteria) {
      const v = d.scores?.[c.id]?.[cr.key];
      if (Number.isInteger(v) && v >= cr.min && v <= cr.max) (task.scores[c.id] ??= {})[cr.key] = v;
    }
  }
  $("none-acceptable").checked = Boolean(d.none_acceptable);
  $("rationale").value = typeof d.rationale === "string" ? d.rationale : "";
  task.spentMs = Number(d.spent_ms) || 0;
  return true;
}

// --- lease --------------------------------------------------------------------------------------

function anyPlaying() {
  return [...task.cards.values()].some((c) => c.player?.playing) || [...document.querySelectorAll(".turn-audio")].some((a) => !a.paused);
}

async function heartbeat() {
  if (!task || task.expired) return;
  // Keep the item only while the page is in use: an abandoned tab lets its lease run out.
  if (Date.now() - task.lastActivity > HEARTBEAT_MS * 1.5 && !anyPlaying()) return updateLease();
  const item = task.item;
  try {
    const answer = await api.heartbeat(item);
    if (task?.item !== item) return;
    task.expiresAt = new Date(answer.expires_at);
    updateLease();
  } catch (error) {
    if (task?.item !== item) return;
    if (error.code === "lease_expired") leaseLost();
    else if (error.code === "finished") loadNext();
    // a network error: the next beat tries again
  }
}

function updateLease() {
  if (!task) return;
  const left = (task.expiresAt - Date.now()) / 1000;
  $("lease").textContent = task.expired
    ? "hold expired"
    : left < 120
      ? `your hold ends in ${clock(left)} · any key or click keeps it`
      : "";
}

function leaseLost() {
  task.expired = true;
  updateLease();
  banner(
    "Your hold on this item ran out and another annotator has it now. You can still submit: your judgment is kept (as an extra one if the item already has enough).",
    "warn",
    [["Next item", () => loadNext()]],
  );
}

async function refreshAudio() {
  // Audio URLs are short-lived: on a playback error fetch fresh ones, at most twice a minute.
  if (!task || task.refreshing) return;
  if (Date.now() - (task.refreshedAt || 0) < 30_000) {
    banner("The audio could not be loaded. Check your connection.", "warn", [["Retry", () => { task.refreshedAt = 0; refreshAudio(); }]]);
    return;
  }
  task.refreshing = true;
  task.refreshedAt = Date.now();
  try {
    const urls = await api.audio(task.item);
    for (const [id, url] of Object.entries(urls.candidates)) if (url) task.cards.get(id)?.player?.reload(url);
    const turnAudio = document.querySelectorAll(".turn-audio");
    urls.turns.filter(Boolean).forEach((url, i) => {
      if (turnAudio[i]) turnAudio[i].src = url;
    });
  } catch (error) {
    if (error.code === "lease_expired") leaseLost();
    else banner("The audio could not be loaded. Check your connection.", "warn", [["Retry", refreshAudio]]);
  } finally {
    if (task) task.refreshing = false;
  }
}

// --- submit and skip --------------------------------------------------------------------------

function problems() {
  const out = [];
  const unranked = task.ranking.unranked.map((id) => task.labels[id]);
  if (unranked.length) out.push(`Rank every reply: ${unranked.join(", ")} ${unranked.length > 1 ? "are" : "is"} not ranked yet.`);
  for (const c of task.candidates) {
    if (task.flags[c.id].has("broken_audio")) continue;
    const heard = task.cards.get(c.id).player?.listened ?? 0;
    if (heard < minListened) out.push(`Listen to at least ${pct(minListened)} of reply ${c.label} (heard ${pct(heard)}).`);
    const missing = criteria.filter((cr) => cr.required && task.scores[c.id]?.[cr.key] === undefined).map((cr) => cr.label);
    if (missing.length) out.push(`Reply ${c.label}: score ${missing.join(", ")}.`);
  }
  return out;
}

function judgment() {
  const flags = {};
  for (const [id, set] of Object.entries(task.flags)) if (set.size) flags[id] = [...set];
  if ($("none-acceptable").checked) flags._item = ["none_acceptable"];
  const listened = {};
  for (const [id, card] of task.cards) listened[id] = card.player ? Number(card.player.listened.toFixed(4)) : 0;
  return {
    client_submission_id: task.csid,
    ranking: task.ranking.tiers,
    scores: task.scores,
    flags,
    rationale: $("rationale").value,
    listened,
    time_spent_ms: spentMs(),
  };
}

function setBusy(on) {
  busy = on;
  $("submit-button").disabled = on;
  $("skip-button").disabled = on;
  $("submit-button").classList.toggle("working", on);
}

async function submit() {
  if (!task || busy) return;
  const found = problems();
  showErrors(found);
  if (found.length) return;
  const item = task.item;
  const body = judgment();
  saveLocal(); // holds the submission id: a reload resubmits this same judgment
  setBusy(true);
  try {
    const stored = await api.submit(item, body, (error, attempt, delay) =>
      banner(
        `Connection lost: your judgment is safe on this page and will be sent again in ${Math.round(delay / 1000)} s (attempt ${attempt}).`,
        "warn",
      ),
    );
    localStorage.removeItem(draftKey(item));
    judgedThisVisit += 1;
    updateProgress();
    setBusy(false);
    if (stored.next) {
      // The submission leased the next item too: no second round trip between items.
      teardown();
      show(stored.next);
    } else {
      await loadNext(); // it could not (the campaign was paused, say): the next endpoint says why
    }
    if (stored.is_surplus) banner("Saved. The item already had enough judgments, so yours is kept as an extra one.", "info");
    else $("saved").textContent = "Saved ✓";
  } catch (error) {
    setBusy(false);
    if (error.status === 400) {
      showErrors(Object.entries(error.body).filter(([k]) => k !== "code").flatMap(([, v]) => v));
    } else if (error.code === "finished") {
      localStorage.removeItem(draftKey(item));
      loadNext();
    } else if (error.status === 401 || error.status === 403) {
      banner("You were logged out. Log in again in another tab, then submit: your work is kept here.", "error");
    } else {
      banner(`Your judgment was not accepted: ${error.message}`, "error");
    }
  }
}

function openSkip() {
  if (!task || busy) return;
  $("skip-dialog").showModal();
}

async function skip(reason) {
  const item = task.item;
  setBusy(true);
  try {
    await api.skip(item, reason);
    localStorage.removeItem(draftKey(item));
    setBusy(false);
    loadNext();
  } catch (error) {
    setBusy(false);
    if (error.code === "finished") loadNext();
    else banner(`Could not skip: ${error.message}`, "error");
  }
}

// --- keyboard ---------------------------------------------------------------------------------

function withTask(fn) {
  return (arg) => task && $("task").dataset.state === "ready" && fn(arg);
}

const handlers = {
  help: () => ($("help").open ? $("help").close() : $("help").showModal()),
  card: withTask((i) => {
    if (i >= task.candidates.length) return;
    const scored = task.scores[task.candidates[i].id] || {};
    task.focus.criterion = Math.max(0, criteria.findIndex((cr) => scored[cr.key] === undefined));
    focusCard(i);
  }),
  play: withTask(() => togglePlay(focusedId())),
  seek: withTask((s) => task.cards.get(focusedId()).player?.seek(s)),
  speed: withTask((s) => task.cards.get(focusedId()).player?.changeSpeed(s)),
  loop: withTask(() => task.cards.get(focusedId()).player?.toggleLoop()),
  criterion: withTask((step) => {
    task.focus.criterion = Math.min(criteria.length - 1, Math.max(0, task.focus.criterion + step));
    updateFocus();
  }),
  score: withTask((value) => {
    if (setScore(focusedId(), criteria[task.focus.criterion].key, value)) handlers.criterion(1);
  }),
  nudge: withTask((step) => {
    const cr = criteria[task.focus.criterion];
    const now = task.scores[focusedId()]?.[cr.key];
    const next = now === undefined ? (step > 0 ? cr.min : cr.max) : Math.min(cr.max, Math.max(cr.min, now + step));
    setScore(focusedId(), cr.key, next);
  }),
  rankUp: withTask(() => task.ranking.moveUp(focusedId())),
  rankDown: withTask(() => task.ranking.moveDown(focusedId())),
  tie: withTask(() => task.ranking.tieUp(focusedId())),
  flag: withTask((flag) => setFlag(focusedId(), flag, !task.flags[focusedId()].has(flag))),
  none: withTask(() => {
    $("none-acceptable").checked = !$("none-acceptable").checked;
    changed();
  }),
  rationale: withTask(() => $("rationale").focus()),
  context: withTask(() => {
    const turns = [...document.querySelectorAll(".turn-audio")];
    const audio = turns[turns.length - 1];
    if (!audio) return;
    for (const card of task.cards.values()) card.player?.pause();
    task.lastActivity = Date.now();
    if (audio.paused) audio.play();
    else audio.pause();
  }),
  submit: withTask(submit),
  skip: withTask(openSkip),
};

// --- wiring -----------------------------------------------------------------------------------

bindKeys(handlers, { enabled: (event) => !$("skip-dialog").open && (!$("help").open || event.key === "?") });

$("help-button").addEventListener("click", () => $("help").showModal());
$("submit-button").addEventListener("click", submit);
$("skip-button").addEventListener("click", openSkip);
$("none-acceptable").addEventListener("change", changed);
$("rationale").addEventListener("input", changed);
$("instructions").addEventListener("toggle", () => localStorage.setItem("auralign:instructions", $("instructions").open ? "open" : "closed"));
if (localStorage.getItem("auralign:instructions") === "closed") $("instructions").open = false;
$("skip-dialog").addEventListener("close", () => {
  const form = $("skip-form");
  if ($("skip-dialog").returnValue !== "skip" || !task) return;
  const choice = form.elements.reason.value;
  const reason = choice === "other" ? form.elements.other.value.trim() || "other" : choice;
  skip(reason);
});
for (const kind of ["keydown", "pointerdown"]) document.addEventListener(kind, () => task && (task.lastActivity = Date.now()), { passive: true });
document.addEventListener("visibilitychange", () => {
  if (!task) return;
  if (document.visibilityState === "hidden") {
    if (task.activeSince !== null) task.spentMs += performance.now() - task.activeSince;
    task.activeSince = null;
    saveLocal();
    saveServer({ keepalive: true });
  } else {
    task.activeSince = performance.now();
    task.lastActivity = Date.now();
    heartbeat(); // back on the tab: renew at once, or learn at once that the hold ran out
  }
});
setInterval(updateLease, 15_000);

updateProgress();
loadNext();
