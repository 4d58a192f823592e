"""Platform sampling tasks (queue `cpu`): dispatch, ingest (chained after `auralign.worker.sample`)
and the periodic reconcile (in the beat schedule, config/celery_app.py)."""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError
from celery import shared_task
from django.db import InterfaceError, OperationalError

from auralign.campaigns.models import Campaign
from auralign.generation import services
from worker.schemas import SchemaError

log = logging.getLogger(__name__)


@shared_task(name="auralign.generation.dispatch", acks_late=True)
def dispatch(campaign_id: int) -> int:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    return services.generation_dispatch(campaign=campaign) if campaign else 0


@shared_task(
    name="auralign.generation.ingest",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError, OSError, BotoCoreError),  # transient: connections, storage
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=8,
)
def ingest(result: dict) -> dict:
    """Store a sampling result. A malformed result is logged, not retried (it would never parse);
    its tasks stay dispatched until reconcile re-dispatches them."""
    try:
        report = services.ingest_result(result=result)
    except SchemaError as exc:
        log.error("ingest: rejected result of job %s: %s", result.get("job_id") if isinstance(result, dict) else "?", exc)
        return {"rejected": str(exc)}
    return {"created": report.created, "duplicates": report.duplicates, "failed": report.failed}


@shared_task(name="auralign.generation.reconcile")
def reconcile() -> dict:
    return services.generation_reconcile()
