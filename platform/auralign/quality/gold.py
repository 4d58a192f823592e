"""Gold items, honeypots and the qualification gate as plain functions over judgment JSON.

A gold item's expectation is a list of (better, worse) candidate uuid pairs: every pair of
candidates in different tiers of `Item.gold_ranking`, plus the explicit `Item.gold_pairs`.
A judgment's gold accuracy is the fraction of those pairs it orders the same way (a tie where
the gold expects an order counts as wrong).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def tier_of(ranking: Sequence[Sequence[str]]) -> dict[str, int]:
    """Candidate uuid -> tier index (0 = best) of a ranking given as tiers."""
    return {c: t for t, tier in enumerate(ranking) for c in tier}


def gold_constraints(gold_ranking: Sequence[Sequence[str]] | None, gold_pairs: Iterable[Sequence[str]] | None) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for t, tier in enumerate(gold_ranking or []):
        for worse_tier in (gold_ranking or [])[t + 1 :]:
            pairs.extend((better, worse) for better in tier for worse in worse_tier)
    for better, worse in gold_pairs or []:
        if (better, worse) not in pairs:
            pairs.append((better, worse))
    return pairs


def gold_accuracy(ranking: Sequence[Sequence[str]], constraints: Sequence[tuple[str, str]]) -> float | None:
    """Fraction of the gold constraints a judgment's ranking satisfies (None without constraints)."""
    if not constraints:
        return None
    tier = tier_of(ranking)
    missing = len(tier) + 1
    right = sum(tier.get(better, missing) < tier.get(worse, missing) for better, worse in constraints)
    return right / len(constraints)


def honeypot_caught(ranking: Sequence[Sequence[str]], degraded: set[str]) -> bool:
    """The degraded copies are ranked strictly below every genuine candidate."""
    tier = tier_of(ranking)
    genuine = [t for c, t in tier.items() if c not in degraded]
    planted = [t for c, t in tier.items() if c in degraded]
    return bool(planted) and (not genuine or min(planted) > max(genuine))


def qualification_passed(accuracies: Sequence[float], *, gold_items: int, min_accuracy: float) -> bool:
    """The gate: the annotator's first `gold_items` gold judgments (in submission order) reach
    `min_accuracy` on average. A gate of 0 items lets everyone through."""
    if gold_items <= 0:
        return True
    if len(accuracies) < gold_items:
        return False
    first = accuracies[:gold_items]
    return bool(sum(first) / len(first) >= min_accuracy - 1e-12)
