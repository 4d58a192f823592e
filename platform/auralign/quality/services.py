"""Quality writes: the recompute (only ever run in a task), its debounced scheduling, gold items
and audio honeypots."""

from __future__ import annotations

import time
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from auralign.campaigns.models import Campaign
from auralign.quality.compute import Params, compute_quality, load_campaign
from auralign.quality.models import AnnotatorStats, CampaignQuality, ItemConsensus

DEBOUNCE_SECONDS = 15  # judgments arriving within this window share one recompute
SCHEDULE_STALE = timedelta(minutes=10)  # a queued recompute older than this is presumed lost
BOOTSTRAP_ROUNDS = 200


def quality_schedule_recompute(campaign_id: int, *, countdown: float = DEBOUNCE_SECONDS) -> bool:
    """Queue `auralign.quality.recompute` for a campaign unless one is already queued; call it
    after judgments are stored (it dispatches on commit). Cheap: one conditional UPDATE.
    Returns whether this call queued the task."""
    from auralign.quality.tasks import recompute  # noqa: PLC0415 (tasks import this module)

    CampaignQuality.objects.get_or_create(campaign_id=campaign_id)
    now = timezone.now()
    claimed = (
        CampaignQuality.objects.filter(campaign_id=campaign_id)
        .filter(Q(scheduled_at__isnull=True) | Q(scheduled_at__lt=now - SCHEDULE_STALE))
        .update(scheduled_at=now)
    )
    if claimed:
        transaction.on_commit(lambda: recompute.apply_async((campaign_id,), countdown=countdown))
    return bool(claimed)


def quality_recompute(*, campaign_id: int, rounds: int = BOOTSTRAP_ROUNDS) -> CampaignQuality:
    """Recompute every figure of one campaign from its judgments and store them. Runs in the
    `cpu` worker, never in a request. Idempotent; concurrent runs serialise on the row lock and
    an older snapshot never overwrites a newer one."""
    campaign = Campaign.objects.select_related("rubric_version").get(pk=campaign_id)
    CampaignQuality.objects.get_or_create(campaign=campaign)
    # Clear the flag first: a judgment stored while we compute schedules the next run.
    CampaignQuality.objects.filter(campaign=campaign).update(scheduled_at=None)
    started = time.monotonic()
    data = load_campaign(campaign)
    params = Params(
        rounds=rounds,
        gate_items=campaign.qualification_gold_items,
        gate_accuracy=campaign.qualification_min_accuracy,
        min_listened=campaign.min_listened_fraction,
        seed=campaign.pk,
    )
    result = compute_quality(data, params)
    watermark = int(data.judgment_ids.max()) if len(data.judgment_ids) else 0
    with transaction.atomic():
        row = CampaignQuality.objects.select_for_update().get(campaign=campaign)
        if row.watermark > watermark:
            return row
        _write_annotators(campaign, result.annotators)
        _write_items(campaign, result.items)
        row.computed_at = timezone.now()
        row.watermark = watermark
        row.judgment_count = len(data.judgment_ids)
        row.duration_ms = int((time.monotonic() - started) * 1000)
        row.progress, row.agreement, row.leaderboard, row.flags = result.progress, result.agreement, result.leaderboard, result.flags
        row.save()
    return row


def _write_annotators(campaign: Campaign, annotators: list[dict]) -> None:
    fields = [f for f in annotators[0] if f != "annotator_id"] if annotators else []
    AnnotatorStats.objects.bulk_create(
        [AnnotatorStats(campaign=campaign, **a) for a in annotators],
        update_conflicts=True, unique_fields=["campaign", "annotator"], update_fields=[*fields, "updated_at"],
        batch_size=1000,
    )
    AnnotatorStats.objects.filter(campaign=campaign).exclude(annotator_id__in=[a["annotator_id"] for a in annotators]).delete()


def _write_items(campaign: Campaign, items: list[dict]) -> None:
    """Upsert only the items whose consensus changed (a campaign may hold millions)."""
    stored = {
        item_id: (n, agreement, ranking)
        for item_id, n, agreement, ranking in ItemConsensus.objects.filter(campaign=campaign).values_list(
            "item_id", "judgments", "agreement", "ranking"
        ).iterator(chunk_size=5000)
    }
    changed = [
        ItemConsensus(campaign=campaign, **i)
        for i in items
        if stored.get(i["item_id"]) != (i["judgments"], i["agreement"], i["ranking"])
    ]
    ItemConsensus.objects.bulk_create(
        changed, update_conflicts=True, unique_fields=["item"], update_fields=["judgments", "agreement", "ranking"], batch_size=2000
    )
