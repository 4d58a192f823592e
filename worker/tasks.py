"""The GPU worker's Celery task. Registered on worker.app (`celery -A worker.app worker -Q gpu`)
and, in the embedded default, on the platform app, which imports this module."""

from __future__ import annotations

import logging

from celery import shared_task

from worker.runner import failed_result, run_job
from worker.storage import StorageUnavailable, store_from_env

log = logging.getLogger(__name__)
STORAGE_RETRIES = 5


@shared_task(
    name="auralign.worker.sample",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=STORAGE_RETRIES,
)
def sample(self, job: dict) -> dict:
    """Run one sampling job (docs/formats.md); the return value goes to the chained ingest task.
    An unreachable object store is retried with backoff; after the last retry the job's tasks
    are reported failed, so the platform learns it either way."""
    try:
        return run_job(job, store=store_from_env())
    except StorageUnavailable as exc:
        if self.request.retries >= STORAGE_RETRIES:
            return failed_result(job, str(exc))
        log.warning("job %s: %s; retrying", job.get("job_id"), exc)
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc
