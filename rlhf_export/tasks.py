"""Export and training tasks on the platform side (queue `cpu`, the platform's default queue,
config.celery_app). `run` builds one snapshot; `reconcile` is the periodic safety net for lost
messages and dead workers. Training: `register` is chained after the Django-free
`auralign.train.run` (rlhf_export/training/tasks.py, queue `train`); `sync` and
`training reconcile` run on beat; `score` scores a campaign's candidates with a reward model.

Platform task names start with `auralign.training.`, never `auralign.train.` (that prefix is
routed to the Django-free `train` queue).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from rlhf_export.services import (
    campaign_scoring_run,
    snapshot_run,
    snapshots_reconcile,
    training_run_register,
    training_runs_reconcile,
    training_runs_sync,
)

log = logging.getLogger(__name__)


@shared_task(name="auralign.export.run", acks_late=True, reject_on_worker_lost=True)
def run_export(snapshot_id: int) -> str:
    """Idempotent: a done snapshot is a no-op, a crashed one starts over cleanly."""
    return snapshot_run(snapshot_id=snapshot_id).status


@shared_task(name="auralign.export.reconcile")
def reconcile() -> int:
    return snapshots_reconcile()


@shared_task(
    name="auralign.training.register",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError, OSError),  # transient: connections, storage
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=8,
)
def register_training_result(result: dict) -> str | None:
    """Store a training result (idempotent: a done run ignores it). A malformed one is logged."""
    try:
        run = training_run_register(result=result)
    except ValueError as exc:
        log.error("training result rejected: %s", exc)
        return None
    return run.status if run else None


@shared_task(name="auralign.training.sync")
def sync_training_runs() -> int:
    return training_runs_sync()


@shared_task(name="auralign.training.reconcile")
def reconcile_training_runs() -> dict:
    return training_runs_reconcile()


@shared_task(name="auralign.training.score", acks_late=True, reject_on_worker_lost=True)
def score_campaign(scoring_id: int) -> str:
    """Idempotent: a done scoring is a no-op; a crashed one runs again and upserts its scores."""
    return campaign_scoring_run(scoring_id=scoring_id).status
