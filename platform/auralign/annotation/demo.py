"""Demo data: judgments from a simulated annotator, so the lead's dashboards have something to
show next to the judgments a person makes in the browser. Everything goes through the real
assignment engine and submission service, so the demo data obeys every rule real data does."""

from __future__ import annotations

import random
import uuid

from auralign.accounts.models import User
from auralign.annotation.models import Item
from auralign.annotation.selectors import rubric_criteria
from auralign.annotation.services import assignment_next, judgment_submit
from auralign.campaigns.models import Campaign
from auralign.generation.models import Candidate

TIE_WITHIN = 0.04  # replies this close in simulated quality share a tier


def demo_simulated_judgments(*, campaign: Campaign, annotator: User, n: int, seed: int = 0) -> int:
    """Take and judge up to `n` items as `annotator` (who must be an annotator of the campaign).

    Plausible, not random noise: each policy has a hidden skill, so a leaderboard separates them;
    degraded (honeypot) replies sound worse; gold items are mostly answered as expected; scores
    follow the ranking with some disagreement between criteria. Returns how many were stored."""
    rng = random.Random(seed)
    criteria = rubric_criteria(campaign.rubric_version)
    stored = 0
    for _ in range(n):
        lease = assignment_next(campaign=campaign, annotator=annotator)
        if lease is None:
            break
        assignment = lease.assignment
        ids = list(assignment.display_order)
        quality = _quality(assignment.item, ids, rng)
        ranked = sorted(ids, key=lambda c: -quality[c])
        tiers: list[list[str]] = []
        for c in ranked:
            if tiers and quality[tiers[-1][-1]] - quality[c] < TIE_WITHIN:
                tiers[-1].append(c)
            else:
                tiers.append([c])
        scores = {
            c: {
                cr.key: min(cr.scale_max, max(cr.scale_min, round(
                    cr.scale_min + quality[c] * (cr.scale_max - cr.scale_min) + rng.gauss(0, 0.5)
                )))
                for cr in criteria
            }
            for c in ids
        }
        judgment_submit(
            item_uuid=assignment.item.uuid,
            annotator=annotator,
            data={
                "client_submission_id": str(uuid.uuid4()),
                "ranking": tiers,
                "scores": scores,
                "flags": {},
                "rationale": "",
                "listened": {c: round(rng.uniform(max(campaign.min_listened_fraction, 0.85), 1.0), 3) for c in ids},
                "time_spent_ms": rng.randint(20_000, 90_000),
            },
        )
        stored += 1
    return stored


def _quality(item: Item, ids: list[str], rng: random.Random) -> dict[str, float]:
    """Simulated quality in [0, 1] per candidate."""
    item = Item.objects.get(pk=item.pk)
    if item.is_gold and item.gold_ranking and rng.random() < 0.85:
        depth = {c: i for i, tier in enumerate(item.gold_ranking) for c in tier}
        return {c: 1.0 - depth.get(c, len(item.gold_ranking)) / (len(item.gold_ranking) + 1) for c in ids}
    candidates = {str(c.uuid): c for c in Candidate.objects.filter(uuid__in=ids)}
    out = {}
    for cid in ids:
        c = candidates[cid]
        skill = random.Random(c.policy_id).uniform(0.3, 0.8)
        out[cid] = min(1.0, max(0.0, 0.6 * skill + 0.4 * rng.random() - (0.4 if c.honeypot_of_id else 0.0)))
    return out
