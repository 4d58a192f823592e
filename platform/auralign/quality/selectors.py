"""Quality reads. Everything here reads the tables the recompute task maintains (or, for the
qualification gate, the few gold judgments), so it is cheap even for exports over millions of
judgments. Figures are as fresh as the last recompute (CampaignQuality.computed_at)."""

from __future__ import annotations

from collections import defaultdict

from auralign.annotation.models import Item, Judgment
from auralign.campaigns.models import Campaign
from auralign.quality import gold
from auralign.quality.models import AnnotatorStats, ItemConsensus


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
