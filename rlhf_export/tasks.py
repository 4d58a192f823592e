"""Export tasks, on the `cpu` queue (the platform's default queue, config.celery_app). `run` builds
one snapshot; `reconcile` is the periodic safety net for lost messages and dead workers (add it
to the beat schedule next to the others)."""

from __future__ import annotations

from celery import shared_task

from rlhf_export.services import snapshot_run, snapshots_reconcile


@shared_task(name="auralign.export.run", acks_late=True, reject_on_worker_lost=True)
def run_export(snapshot_id: int) -> str:
    """Idempotent: a done snapshot is a no-op, a crashed one starts over cleanly."""
    return snapshot_run(snapshot_id=snapshot_id).status


@shared_task(name="auralign.export.reconcile")
def reconcile() -> int:
    return snapshots_reconcile()
