"""Following a training run from a terminal: `manage.py train --wait` and `make demo-train`."""

from __future__ import annotations

import time

from tqdm import tqdm

from rlhf_export.models import TrainingRun
from rlhf_export.services import training_run_refresh


def follow(run: TrainingRun, *, quiet: bool = False, poll_s: float = 1.0, stdout=None, timeout_s: float | None = None) -> TrainingRun:
    """Wait for a run (at most `timeout_s`), with a bar over its optimizer steps fed by the live metrics."""
    bar = tqdm(total=1, desc=f"{run.kind} {str(run.uuid)[:8]}", unit="step", disable=quiet, file=stdout)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not run.is_done and (deadline is None or time.monotonic() < deadline):
        time.sleep(poll_s)
        run.refresh_from_db()
        run = training_run_refresh(run=run)
        last = next((r for r in reversed(run.metrics) if r.get("total_steps")), None)
        if last:
            bar.total, bar.n = last["total_steps"], last["step"]
            figures = ", ".join(f"{k} {last[k]:.3f}" for k in ("loss", "accuracy") if isinstance(last.get(k), int | float))
            bar.set_postfix_str(figures)
        else:
            bar.set_postfix_str(run.status)
        bar.refresh()
    bar.close()
    return run


def summary(run: TrainingRun) -> str:
    evaluation = (run.results or {}).get("eval") or {}
    accuracy = evaluation.get("accuracy")
    text = f"training run {run.uuid} succeeded: held-out accuracy {accuracy:.3f} on {evaluation.get('pairs', 0)} pairs" if isinstance(
        accuracy, int | float) else f"training run {run.uuid} succeeded (no held-out pairs)"
    policy = getattr(run, "produced_policy", None)
    if policy is not None:
        text += f"; registered policy '{policy.name}' ({policy.uuid})"
    return text
