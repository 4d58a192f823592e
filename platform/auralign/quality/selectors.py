"""Quality reads. Everything here reads the tables the recompute task maintains (or, for the
qualification gate, the few gold judgments), so it is cheap even for exports over millions of
judgments. Figures are as fresh as the last recompute (CampaignQuality.computed_at)."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Max

from auralign.annotation.models import Item, Judgment
from auralign.campaigns.models import Campaign
from auralign.quality import gold
from auralign.quality.models import AnnotatorStats, CampaignQuality, ItemConsensus


def annotator_weights(*, campaign_ids: list[int]) -> dict[int, float]:
    """User id -> reliability weight in [0, 1] (judgment-weighted mean over the campaigns).
    Users without stats are absent: callers treat them as 1.0."""
    total: dict[int, float] = defaultdict(float)
    count: dict[int, int] = defaultdict(int)
    rows = AnnotatorStats.objects.filter(campaign_id__in=campaign_ids).values_list("annotator_id", "weight", "judgments")
    for user, weight, n in rows:
        total[user] += weight * max(n, 1)
        count[user] += max(n, 1)
    return {user: total[user] / count[user] for user in total}


def gold_accuracies(*, campaign_id: int) -> dict[int, list[float]]:
    """User id -> gold accuracy of each of their gold judgments, in submission order."""
    constraints = {
        item_id: gold.gold_constraints(ranking, pairs)
        for item_id, ranking, pairs in Item.objects.filter(campaign_id=campaign_id, is_gold=True).values_list(
            "id", "gold_ranking", "gold_pairs"
        )
    }
    out: dict[int, list[float]] = defaultdict(list)
    rows = Judgment.objects.filter(campaign_id=campaign_id, item_id__in=list(constraints)).order_by("id")
    for user, item_id, ranking in rows.values_list("annotator_id", "item_id", "ranking"):
        accuracy = gold.gold_accuracy(ranking, constraints[item_id])
        if accuracy is not None:
            out[user].append(accuracy)
    return out


def qualified_annotator_ids(*, campaign_id: int) -> set[int]:
    """Annotators whose judgments count: those who passed the campaign's gate (their first
    `qualification_gold_items` gold judgments average >= `qualification_min_accuracy`), or
    everyone with a judgment when the gate is 0. Computed live from the gold judgments."""
    campaign = Campaign.objects.only("qualification_gold_items", "qualification_min_accuracy").get(pk=campaign_id)
    if campaign.qualification_gold_items <= 0:
        return set(Judgment.objects.filter(campaign_id=campaign_id).order_by().values_list("annotator_id", flat=True).distinct())
    return {
        user
        for user, accuracies in gold_accuracies(campaign_id=campaign_id).items()
        if gold.qualification_passed(
            accuracies, gold_items=campaign.qualification_gold_items, min_accuracy=campaign.qualification_min_accuracy
        )
    }


def annotator_qualification(*, campaign: Campaign, user_id: int) -> dict:
    """One annotator's standing at the gate: gold items answered, needed, accuracy, passed
    (e.g. to serve gold items first until the gate is passed)."""
    accuracies = gold_accuracies(campaign_id=campaign.pk).get(user_id, [])
    needed = campaign.qualification_gold_items
    window = accuracies[:needed] if needed else accuracies
    return {
        "gold_answered": len(accuracies),
        "gold_needed": needed,
        "accuracy": sum(window) / len(window) if window else None,
        "passed": gold.qualification_passed(accuracies, gold_items=needed, min_accuracy=campaign.qualification_min_accuracy),
    }


def item_agreement(*, campaign_ids: list[int]) -> dict[int, float]:
    """Item id -> pairwise agreement in [0, 1] of its counted judgments' rankings (the fraction of
    judgment pairs that order each candidate pair the same way, averaged over candidate pairs).
    Items with fewer than 2 counted judgments are absent."""
    rows = ItemConsensus.objects.filter(campaign_id__in=campaign_ids, agreement__isnull=False).values_list("item_id", "agreement")
    return dict(rows.iterator(chunk_size=10000))


# --- dashboards and the quality API ----------------------------------------------------------------


def campaign_quality(*, campaign: Campaign) -> CampaignQuality | None:
    return CampaignQuality.objects.filter(campaign=campaign).first()


def quality_freshness(*, campaign: Campaign, quality: CampaignQuality | None) -> dict:
    newest = Judgment.objects.filter(campaign=campaign).aggregate(m=Max("id"))["m"] or 0
    return {
        "computed_at": quality.computed_at if quality else None,
        "judgments_covered": quality.judgment_count if quality else 0,
        "stale": newest > (quality.watermark if quality else 0),
        "recompute_queued": bool(quality and quality.scheduled_at),
        "duration_ms": quality.duration_ms if quality else None,
    }


def leaderboard_board(*, quality: CampaignQuality | None, view: str, min_weight: float) -> dict | None:
    """One precomputed board (a view: 'ranking', 'score' or 'criterion.<key>'; a reliability
    threshold from CampaignQuality.leaderboard['thresholds']), or None if there is none."""
    if quality is None or not quality.leaderboard:
        return None
    return quality.leaderboard["boards"].get(f"{view}@{min_weight:g}")


WARNINGS = {
    "not_qualified": "has not passed the qualification gate",
    "low_reliability": "reliability weight below 0.5",
    "position_bias": "picks the first-shown reply far more (or less) often than chance (|z| ≥ 3)",
    "skips_listening": "listens to less than the campaign's minimum",
    "very_fast": "median time per item under a quarter of the campaign's typical median",
    "misses_honeypots": "ranked half or more of the degraded honeypot replies above a genuine one",
    "low_gold_accuracy": "gold accuracy under 50 % (or the gate's threshold)",
}


def annotator_warnings(*, stats: AnnotatorStats, campaign: Campaign, typical_median_ms: float | None) -> list[str]:
    out = []
    if not stats.qualified:
        out.append("not_qualified")
    if stats.weight < 0.5:
        out.append("low_reliability")
    if stats.position_bias_z is not None and abs(stats.position_bias_z) >= 3:
        out.append("position_bias")
    if stats.listened_mean is not None and stats.listened_mean < campaign.min_listened_fraction:
        out.append("skips_listening")
    if typical_median_ms and stats.median_time_ms is not None and stats.median_time_ms < 0.25 * typical_median_ms:
        out.append("very_fast")
    if stats.honeypots_seen >= 2 and stats.honeypot_catch_rate < 0.5:
        out.append("misses_honeypots")
    if stats.gold_answered >= 2 and stats.gold_accuracy < max(0.5, campaign.qualification_min_accuracy):
        out.append("low_gold_accuracy")
    return out


def annotator_table(*, campaign: Campaign) -> list[dict]:
    """Per-annotator figures with their warnings (leads only: this identifies annotators)."""
    rows = list(AnnotatorStats.objects.filter(campaign=campaign).select_related("annotator").order_by("annotator__username"))
    medians = sorted(s.median_time_ms for s in rows if s.median_time_ms is not None)
    typical = medians[len(medians) // 2] if len(medians) >= 3 else None
    return [
        {
            "username": s.annotator.username,
            "judgments": s.judgments,
            "judgments_last_24h": s.judgments_last_24h,
            "judgments_per_hour": s.judgments_per_hour,
            "median_time_ms": s.median_time_ms,
            "qualified": s.qualified,
            "gold_answered": s.gold_answered,
            "gold_accuracy": s.gold_accuracy,
            "honeypots_seen": s.honeypots_seen,
            "honeypot_catch_rate": s.honeypot_catch_rate,
            "loo_agreement": s.loo_agreement,
            "first_shown_win_rate": s.first_shown_win_rate,
            "first_shown_chance": s.first_shown_chance,
            "position_bias_z": s.position_bias_z,
            "listened_mean": s.listened_mean,
            "weight": s.weight,
            "first_at": s.first_at,
            "last_at": s.last_at,
            "warnings": annotator_warnings(stats=s, campaign=campaign, typical_median_ms=typical),
        }
        for s in rows
    ]


def item_consensus_list(*, campaign: Campaign):
    return ItemConsensus.objects.filter(campaign=campaign).select_related("item").order_by("item_id")


def campaign_items(*, campaign: Campaign):
    """Items with their candidates (policy, degradation) for the lead's gold and honeypot tools."""
    return (
        Item.objects.filter(campaign=campaign)
        .select_related("dialogue")
        .prefetch_related("item_candidates__candidate__policy")
        .order_by("id")
    )
