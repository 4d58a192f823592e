// Live curves of a training run: loss and pairwise accuracy against the step, train and held-out,
// drawn with Chart.js (UMD script from npm). While the run is queued or running the cheap metrics
// endpoint is polled; once it is done the page reloads (evaluation, artifacts, produced policy).
// Values are numbers; the only text written is through textContent.
const { Chart } = window;
const root = document.getElementById("run");
const runId = root.dataset.run;
const charts = {};

function chart(id, key, title) {
  charts[key] = new Chart(document.getElementById(id), {
    type: "line",
    data: {
      datasets: [
        { label: `train ${title}`, data: [], tension: 0.2, pointRadius: 1 },
        { label: `held-out ${title}`, data: [], tension: 0, pointRadius: 4 },
      ],
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      scales: { x: { type: "linear", title: { display: true, text: "step" } }, y: { title: { display: true, text: title } } },
    },
  });
}

function draw(series) {
  for (const key of ["loss", "accuracy"]) {
    charts[key].data.datasets[0].data = series[`train_${key}`];
    charts[key].data.datasets[1].data = series[`eval_${key}`];
    charts[key].update();
  }
  const points = series.train_loss.length + series.eval_loss.length;
  document.getElementById("points").textContent = String(points);
  root.dataset.points = String(points);
}

chart("loss-chart", "loss", "loss");
chart("accuracy-chart", "accuracy", "accuracy");
draw(JSON.parse(document.getElementById("series").textContent));

async function poll() {
  const response = await fetch(`/api/v1/training-runs/${runId}/metrics`, { credentials: "same-origin" });
  if (!response.ok) return false;
  const body = await response.json();
  root.querySelector(".state").textContent = body.status;
  root.dataset.status = body.status;
  const last = body.metrics.filter((r) => r.total_steps).at(-1);
  if (last) document.getElementById("progress").textContent = `step ${last.step} of ${last.total_steps}`;
  draw(body.series);
  return body.status === "succeeded" || body.status === "failed";
}

const scoringPending = [...document.querySelectorAll("[data-scoring-status]")].some(
  (el) => el.dataset.scoringStatus === "queued" || el.dataset.scoringStatus === "running",
);
if (root.dataset.status === "queued" || root.dataset.status === "running") {
  const timer = setInterval(async () => {
    if (await poll()) {
      clearInterval(timer);
      window.location.reload();
    }
  }, 2000);
} else if (scoringPending) {
  setTimeout(() => window.location.reload(), 3000); // a scoring in the background: show its figures when done
}
