"""Quality tasks (queue `cpu`). `recompute` runs after judgments (debounced, see
services.quality_schedule_recompute); `recompute_due` is the periodic safety net (beat)."""

from __future__ import annotations

from celery import shared_task
from django.db.models import Max, OuterRef, Subquery

from auralign.annotation.models import Judgment
from auralign.campaigns.models import Campaign
from auralign.quality.services import quality_recompute, quality_schedule_recompute


@shared_task(name="auralign.quality.recompute", acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def recompute(campaign_id: int) -> int:
    """Recompute one campaign's figures; returns the judgment watermark covered."""
    if not Campaign.objects.filter(pk=campaign_id).exists():
        return 0
    return quality_recompute(campaign_id=campaign_id).watermark


@shared_task(name="auralign.quality.recompute_due")
def recompute_due() -> list[int]:
    """Schedule a recompute for every campaign whose figures lag behind its judgments."""
    newest = Judgment.objects.filter(campaign=OuterRef("pk")).order_by().values("campaign").annotate(m=Max("id")).values("m")
    lagging = (
        Campaign.objects.annotate(newest=Subquery(newest))
        .filter(newest__isnull=False)
        .values_list("pk", "newest", "quality__watermark")
    )
    due = [pk for pk, newest_id, watermark in lagging if watermark is None or newest_id > watermark]
    for pk in due:
        quality_schedule_recompute(pk, countdown=0)
    return due
