"""Which candidates of one dialogue are shown together: K per item, every candidate at least once,
every pair of policies side by side at least once, and use spread evenly. A pure function, so it
can be reasoned about (and tested) without a database."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Hashable, Sequence


def balanced_subsets(candidates: Sequence[tuple[Hashable, Hashable]], k: int, seed: int) -> list[list[Hashable]]:
    """Group (candidate, policy) pairs into items of exactly k distinct candidates.

    Greedy covering: each item is filled one candidate at a time, preferring the candidate that
    (1) puts the most not-yet-compared policy pairs side by side, (2) comes from a policy not yet
    in the item, (3) has not been shown yet, (4) has been shown least; ties are broken by a
    seeded shuffle. Items are added until every candidate is shown and every policy pair is
    compared. With fewer than k candidates there is nothing to show."""
    if k < 2:
        raise ValueError("an item holds at least 2 candidates")
    if len(candidates) < k:
        return []
    rng = random.Random(seed)
    order = list(candidates)
    rng.shuffle(order)
    tiebreak = {c: i for i, (c, _) in enumerate(order)}
    policy_of = dict(order)
    uncovered = {frozenset(p) for p in itertools.combinations(sorted({p for _, p in order}, key=str), 2)}
    used: Counter = Counter()
    items: list[list[Hashable]] = []
    while uncovered or len(used) < len(order):
        item: list[Hashable] = []
        while len(item) < k:
            in_item = {policy_of[c] for c in item}
            best = max(
                (c for c, _ in order if c not in item),
                key=lambda c, in_item=in_item: _score(c, in_item, policy_of, uncovered, used, tiebreak),
            )
            item.append(best)
        for a, b in itertools.combinations(item, 2):
            uncovered.discard(frozenset((policy_of[a], policy_of[b])))
        used.update(item)
        items.append(item)
    return items


def _score(c, in_item: set, policy_of: dict, uncovered: set, used: Counter, tiebreak: dict) -> tuple:
    p = policy_of[c]
    if in_item:
        gain = sum(1 for q in in_item if q != p and frozenset((p, q)) in uncovered)
    else:  # the first pick: the policy with the most comparisons still missing
        gain = sum(1 for pair in uncovered if p in pair)
    return (gain, p not in in_item, used[c] == 0, -used[c], -tiebreak[c])
