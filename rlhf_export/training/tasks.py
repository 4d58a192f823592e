"""The Django-free training task on the ``train`` queue.

One JSON job in (``auralign.train_job/1``), one JSON result out (``auralign.train_result/1``),
both described in docs/formats.md. A platform task chained after this one registers the result.
While training, ``metrics.jsonl`` (one record per logged step) is written to the output location
every ``LIVE_SYNC_SECONDS`` and each record is reported with ``update_state(state="PROGRESS")``.
A failed run returns ``status: "failed"`` with the error, so the chained task still runs.
"""

import logging
import tempfile
import time
from pathlib import Path

from celery import shared_task

from . import storage
from .common import sha256_file
from .dpo import DPOConfig, train_dpo
from .rm import RMConfig, train_reward_model

JOB_SCHEMA = "auralign.train_job/1"
RESULT_SCHEMA = "auralign.train_result/1"
LIVE_SYNC_SECONDS = 10.0

logger = logging.getLogger(__name__)


@shared_task(name="auralign.train.run", bind=True, acks_late=True, reject_on_worker_lost=True)
def run_training(self, job: dict) -> dict:
    def report(record: dict):
        if not self.request.called_directly:
            self.update_state(
                state="PROGRESS", meta={"run_id": job.get("run_id"), "kind": job.get("kind"), **record}
            )

    return run_job(job, report)


def run_job(job: dict, on_progress=None) -> dict:
    """Validate the job, train, put the artefacts at ``job["output"]``; returns the result JSON."""
    result = {
        "schema": RESULT_SCHEMA,
        "run_id": job.get("run_id"),
        "kind": job.get("kind"),
        "status": "failed",
        "error": None,
        "metrics": {},
        "artifacts": [],
        "checkpoint": None,
    }
    try:
        check_job(job)
        output = job["output"]
        with tempfile.TemporaryDirectory(prefix="auralign-train-") as scratch:
            local_out = Path(scratch) / "out" if storage.is_s3(output) else Path(output)
            live = LiveMetrics(local_out / "metrics.jsonl", output, on_progress)
            cfg = make_config(job, local_out, Path(scratch))
            train = train_reward_model if job["kind"] == "reward_model" else train_dpo
            trained = train(cfg, on_metrics=live)
            live.flush()
            result["artifacts"] = publish(local_out, output)
        result.update(status="ok", metrics=trained["metrics"], checkpoint=storage.join(output, "checkpoint"))
    except Exception as error:  # the result carries the failure to the chained platform task
        logger.exception("training run %s failed", job.get("run_id"))
        result["error"] = f"{type(error).__name__}: {error}"
    return result


def check_job(job: dict) -> None:
    if not isinstance(job, dict) or job.get("schema") != JOB_SCHEMA:
        raise ValueError(f"job schema must be {JOB_SCHEMA!r}")
    if job.get("kind") not in ("reward_model", "dpo"):
        raise ValueError(f"job kind must be reward_model or dpo, got {job.get('kind')!r}")
    for name in ("run_id", "snapshot", "output"):
        if not isinstance(job.get(name), str) or not job[name]:
            raise ValueError(f"job field {name!r} must be a non-empty string")
    if not isinstance(job.get("base_model"), dict) or not job["base_model"].get("path"):
        raise ValueError("job field 'base_model' must be an object with a 'path'")
    if not isinstance(job.get("config", {}), dict):
        raise ValueError("job field 'config' must be an object")


def local_model(location: str, scratch: Path, name: str) -> str:
    """A model folder on this machine: local paths as they are, s3:// prefixes downloaded."""
    if storage.is_s3(location):
        return str(storage.download_prefix(location, scratch / name))
    return location


def make_config(job: dict, out: Path, scratch: Path):
    base = job["base_model"]
    values = {**job.get("config", {}), "snapshot": job["snapshot"], "out": str(out)}
    values.setdefault("cache_dir", str(scratch))
    if job["kind"] == "reward_model":
        encoder = job.get("audio_encoder")
        encoder = encoder.get("path") if isinstance(encoder, dict) else encoder
        values.update(
            base_model=local_model(base["path"], scratch, "base_model"),
            gguf_file=base.get("gguf_file") or "",
            audio_encoder=local_model(encoder, scratch, "audio_encoder") if encoder else "",
        )
        return RMConfig.from_dict(values)
    values.update(policy=local_model(base["path"], scratch, "policy"), gguf_file=base.get("gguf_file") or "")
    if values.get("reference"):
        values["reference"] = local_model(values["reference"], scratch, "reference")
    return DPOConfig.from_dict(values)


class LiveMetrics:
    """Forwards each metrics record and copies metrics.jsonl to object storage every few seconds."""

    def __init__(self, local: Path, output: str, on_progress):
        self.local, self.output, self.on_progress = local, output, on_progress
        self.last_sync = time.monotonic()

    def __call__(self, record: dict):
        if self.on_progress:
            self.on_progress(record)
        if time.monotonic() - self.last_sync >= LIVE_SYNC_SECONDS:
            self.flush()

    def flush(self):
        if storage.is_s3(self.output) and self.local.is_file():
            storage.upload_file(self.local, storage.join(self.output, "metrics.jsonl"))
        self.last_sync = time.monotonic()


def publish(local_out: Path, output: str) -> list[dict]:
    """Every file of the run (relative path, sha256, bytes), uploaded when the output is s3://."""
    artifacts = []
    for path in sorted(p for p in local_out.rglob("*") if p.is_file()):
        relative = path.relative_to(local_out).as_posix()
        if storage.is_s3(output):
            storage.upload_file(path, storage.join(output, relative))
        artifacts.append({"path": relative, "sha256": sha256_file(path), "bytes": path.stat().st_size})
    return artifacts
