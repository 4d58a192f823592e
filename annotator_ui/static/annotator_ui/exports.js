// Live progress for export snapshots still pending or running: poll the cheap progress
// endpoint and reload the page once one is done (it then shows files or the failure reason).
const live = [...document.querySelectorAll("[data-export]")].filter(
  (el) => el.dataset.status === "pending" || el.dataset.status === "running",
);

async function poll(el) {
  const response = await fetch(`/api/v1/exports/${el.dataset.export}/progress`, { credentials: "same-origin" });
  if (!response.ok) return false;
  const p = await response.json();
  el.querySelector(".state").textContent = p.status;
  el.querySelector(".rows").textContent = p.rows;
  const bar = el.querySelector("progress");
  if (bar) bar.value = p.progress;
  return p.status === "succeeded" || p.status === "failed";
}

if (live.length) {
  const timer = setInterval(async () => {
    const done = await Promise.all(live.map(poll));
    if (done.some(Boolean)) {
      clearInterval(timer);
      window.location.reload();
    }
  }, 1000);
}
