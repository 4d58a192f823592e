"""The quality part of `make demo` (the command itself belongs to the lead):

    demo_quality_setup(campaign=c, gold_order=["better-policy", "worse-policy"], gold=2, honeypots=2)
        after sampling, before the simulated annotators: marks gold items and plants honeypots;
    demo_quality(campaign=c, stdout=sys.stdout)
        after the judgments: recomputes the figures and prints agreement and the leaderboards.
"""

from __future__ import annotations

import sys
from typing import TextIO

from auralign.annotation.models import Item
from auralign.campaigns.models import Campaign
from auralign.quality.services import honeypots_create, item_gold_set, quality_recompute


def demo_quality_setup(*, campaign: Campaign, gold_order: list[str] | None = None, gold: int = 0, honeypots: int = 0) -> dict:
    """Mark the first `gold` regular items gold, ranking their candidates by `gold_order` (policy
    names, best first), and plant `honeypots` degraded-audio items (one of each kind in turn)."""
    marked = 0
    if gold and gold_order:
        rank = {name: i for i, name in enumerate(gold_order)}
        for item in Item.objects.filter(campaign=campaign, is_gold=False, is_honeypot=False).order_by("id")[:gold]:
            by_policy = sorted(item.candidates.select_related("policy"), key=lambda c: rank.get(c.policy.name, len(rank)))
            item_gold_set(item=item, ranking=[[str(c.uuid)] for c in by_policy])
            marked += 1
    planted = honeypots_create(campaign=campaign, count=honeypots, kinds=["noise", "clipping", "truncation"]) if honeypots else []
    return {"gold": marked, "honeypots": len(planted)}


def demo_quality(*, campaign: Campaign, stdout: TextIO = sys.stdout) -> None:
    """Recompute the campaign's figures now (the demo cannot wait for the debounced task) and
    print what the dashboard shows."""
    q = quality_recompute(campaign_id=campaign.pk)
    p, a = q.progress, q.agreement
    stdout.write(f"Quality of {campaign.name}: {p['judgments']} judgments, {p['items_complete']}/{p['items']} items complete, "
                 f"{p['qualified_annotators']}/{p['annotators']} annotators qualified ({q.duration_ms} ms)\n")
    stdout.write(f"  ranking: α = {_fmt(a['ranking'].get('alpha'))}, pairwise agreement = {_fmt(a['ranking'].get('pairwise'))}\n")
    for c in a["criteria"]:
        stdout.write(f"  {c['label']}: α = {_fmt(c['alpha'])}, pairwise agreement = {_fmt(c['pairwise'])}\n")
    for view in q.leaderboard["views"]:
        board = q.leaderboard["boards"][f"{view['key']}@0"]
        ranked = [f"{r['name']} {r['strength']:+.2f} [{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}]" for r in board["policies"] if r["strength"] is not None]
        stdout.write(f"  leaderboard, {view['label']}: {'; '.join(ranked) or 'no comparisons yet'}\n")


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"
