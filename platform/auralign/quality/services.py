"""Quality writes: the recompute (only ever run in a task), its debounced scheduling, gold items
and audio honeypots."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import numpy as np
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from auralign.annotation.models import Item, ItemCandidate
from auralign.campaigns.models import Campaign
from auralign.core import storage
from auralign.core.errors import Conflict, ServiceError
from auralign.core.ids import is_uuid
from auralign.generation.models import Candidate
from auralign.media.services import audio_asset_store
from auralign.quality.compute import Params, compute_quality, load_campaign
from auralign.quality.honeypots import DEGRADATIONS, degrade
from auralign.quality.models import AnnotatorStats, CampaignQuality, ItemConsensus
from worker import audio as dsp

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


# --- gold items ---------------------------------------------------------------------------------


def _item_uuids(item: Item) -> list[str]:
    return [str(u) for u in item.candidates.order_by("item_links__position").values_list("uuid", flat=True)]


def _check_gold(item: Item, ranking, pairs, where: str = "") -> tuple[list[list[str]] | None, list[list[str]] | None]:
    """Validate a gold expectation against the item's candidates; returns it normalised."""
    known = set(_item_uuids(item))
    if item.is_honeypot:
        raise Conflict(f"{where}a honeypot item cannot also be gold", field="item")
    if ranking is None and not pairs:
        raise ServiceError(f"{where}give a ranking (tiers of candidate ids) or pairs ([better, worse], ...)", field="ranking")
    if ranking is not None:
        if not isinstance(ranking, list) or not all(isinstance(t, list) and t for t in ranking):
            raise ServiceError(f"{where}the ranking must be a list of non-empty tiers", field="ranking")
        flat = [str(c) for tier in ranking for c in tier]
        if sorted(flat) != sorted(known):
            raise ServiceError(f"{where}the ranking must hold each of the item's {len(known)} candidates exactly once", field="ranking")
        if len(ranking) < 2:
            raise ServiceError(f"{where}a gold ranking with a single tier expects nothing", field="ranking")
        ranking = [[str(c) for c in tier] for tier in ranking]
    if pairs:
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise ServiceError(f"{where}pairs must be a list of [better, worse] candidate ids", field="pairs")
        pairs = [[str(a), str(b)] for a, b in pairs]
        for a, b in pairs:
            if a not in known or b not in known or a == b:
                raise ServiceError(f"{where}pair [{a}, {b}] must name two different candidates of the item", field="pairs")
    return ranking, pairs or None


@transaction.atomic
def item_gold_set(*, item: Item, ranking: list[list[str]] | None = None, pairs: list[list[str]] | None = None) -> Item:
    """Make an item gold with its expected ranking (tiers) and/or [better, worse] pairs."""
    item = Item.objects.select_for_update().get(pk=item.pk)
    ranking, pairs = _check_gold(item, ranking, pairs)
    item.is_gold, item.gold_ranking, item.gold_pairs = True, ranking, pairs
    item.save(update_fields=["is_gold", "gold_ranking", "gold_pairs"])
    return item


@transaction.atomic
def item_gold_clear(*, item: Item) -> Item:
    item = Item.objects.select_for_update().get(pk=item.pk)
    if item.slots_used > item.overlap:
        raise Conflict(f"the item was shown to {item.slots_used} annotators, more than its overlap of {item.overlap}; it stays gold")
    item.is_gold, item.gold_ranking, item.gold_pairs = False, None, None
    item.save(update_fields=["is_gold", "gold_ranking", "gold_pairs"])
    return item


def _resolve_gold_line(campaign: Campaign, row: dict, where: str) -> tuple[Item, list | None, list | None]:
    """A line names its item by uuid (candidates by uuid), or by dialogue external id with
    candidates named by policy name (the one item of that dialogue whose candidates come from
    exactly those policies, one each)."""
    if not isinstance(row, dict):
        raise ServiceError(f"{where}must be a JSON object", field="file")
    unknown = set(row) - {"item", "dialogue", "ranking", "pairs"}
    if unknown:
        raise ServiceError(f"{where}unknown field(s) {', '.join(sorted(unknown))}", field="file")
    ranking, pairs = row.get("ranking"), row.get("pairs")
    if "item" in row:
        item = Item.objects.filter(campaign=campaign, uuid=str(row["item"])).first() if is_uuid(row["item"]) else None
        if item is None:
            raise ServiceError(f"{where}no item {row['item']!r} in this campaign", field="file")
        return item, ranking, pairs
    if "dialogue" not in row:
        raise ServiceError(f"{where}name the item ('item': uuid) or the dialogue ('dialogue': external id)", field="file")
    names = {str(n) for tier in (ranking or []) if isinstance(tier, list) for n in tier}
    names |= {str(n) for pair in (pairs or []) if isinstance(pair, list) for n in pair}
    matches = []
    for item in Item.objects.filter(campaign=campaign, dialogue__external_id=str(row["dialogue"]), is_honeypot=False):
        by_name: dict[str, list[str]] = {}
        for c in item.candidates.select_related("policy"):
            by_name.setdefault(c.policy.name, []).append(str(c.uuid))
        if set(by_name) == names and all(len(v) == 1 for v in by_name.values()):
            matches.append((item, {k: v[0] for k, v in by_name.items()}))
    if len(matches) != 1:
        found = "no item" if not matches else f"{len(matches)} items"
        raise ServiceError(f"{where}{found} of dialogue {row['dialogue']!r} has exactly the policies {sorted(names)}; name the item by uuid", field="file")
    item, uuid_of = matches[0]
    ranking = [[uuid_of[str(n)] for n in tier] for tier in ranking] if isinstance(ranking, list) else ranking
    pairs = [[uuid_of[str(a)], uuid_of[str(b)]] for a, b in pairs] if isinstance(pairs, list) else pairs
    return item, ranking, pairs



@transaction.atomic
def gold_import(*, campaign: Campaign, data: bytes) -> int:
    """Mark gold items from JSONL, all or nothing (docs/quality.md). One object per line:
    {"item": uuid, "ranking": [[candidate uuid, ...], ...], "pairs": [[better, worse], ...]} or
    {"dialogue": external id, "ranking": [[policy name, ...], ...]}. Returns the items marked."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError("the gold file is not UTF-8 text", field="file") from None
    planned = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {n}: "
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ServiceError(f"{where}not JSON ({exc.msg})", field="file") from None
        item, ranking, pairs = _resolve_gold_line(campaign, row, where)
        planned.append((item, *_check_gold(item, ranking, pairs, where)))
    if not planned:
        raise ServiceError("the gold file holds no lines", field="file")
    for item, ranking, pairs in planned:
        item_gold_set(item=item, ranking=ranking, pairs=pairs)
    return len(planned)


# --- honeypots ----------------------------------------------------------------------------------

HONEYPOT_SAMPLE_INDEX = 1000  # degraded copies take sample indices from here on


@transaction.atomic
def honeypot_create(*, item: Item, kind: str, candidate: Candidate | None = None, seed: int = 0) -> Item:
    """A honeypot item: `item`'s candidates with one of them (`candidate`, else a random one)
    replaced by a degraded copy of its audio (noise, clipping or truncation), which anyone who
    listens should rank last."""
    if kind not in DEGRADATIONS:
        raise ServiceError(f"unknown degradation '{kind}'; choose one of: {', '.join(DEGRADATIONS)}", field="kind")
    if item.is_gold or item.is_honeypot:
        raise ServiceError("pick a regular item (not gold, not already a honeypot)", field="item")
    links = list(ItemCandidate.objects.filter(item=item).select_related("candidate__audio").order_by("position"))
    rng = np.random.default_rng(seed)
    if candidate is None:
        candidate = links[int(rng.integers(len(links)))].candidate
    if candidate.pk not in {link.candidate_id for link in links}:
        raise ServiceError("the candidate is not part of the item", field="candidate")
    if candidate.audio is None:
        raise ServiceError("the candidate has no audio to degrade", field="candidate")
    decoded = dsp.decode(storage.read(candidate.audio.key))
    samples, description = degrade(decoded.samples, decoded.sample_rate, kind, rng)
    data = dsp.encode_wav(samples, decoded.sample_rate)
    asset = audio_asset_store(data=data, info=dsp.describe(data))
    taken = Candidate.objects.filter(campaign=item.campaign, dialogue=item.dialogue, policy=candidate.policy).aggregate(m=Max("sample_index"))["m"]
    copy = Candidate.objects.create(
        campaign=item.campaign, dialogue=item.dialogue, policy=candidate.policy,
        sample_index=max(HONEYPOT_SAMPLE_INDEX, (taken or 0) + 1), seed=candidate.seed, params=candidate.params,
        reasoning=candidate.reasoning, reply_text=candidate.reply_text, audio=asset, honeypot_of=candidate,
        degradation=description,
    )
    honeypot = Item.objects.create(
        campaign=item.campaign, dialogue=item.dialogue, overlap=item.campaign.judgments_per_item,
        is_honeypot=True, priority=item.priority,
    )
    ItemCandidate.objects.bulk_create(
        [ItemCandidate(item=honeypot, candidate=copy if link.candidate_id == candidate.pk else link.candidate, position=link.position) for link in links]
    )
    return honeypot


@transaction.atomic
def honeypots_create(*, campaign: Campaign, count: int, kinds: list[str], seed: int = 0) -> list[Item]:
    """`count` honeypots from distinct random regular items, cycling through `kinds`."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
        raise ServiceError("must be between 1 and 1000", field="count")
    if not kinds:
        raise ServiceError("choose at least one degradation", field="kinds")
    eligible = list(
        Item.objects.filter(campaign=campaign, is_gold=False, is_honeypot=False).order_by("id").values_list("pk", flat=True)
    )
    if len(eligible) < count:
        raise ServiceError(f"only {len(eligible)} regular items can become honeypots", field="count")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(eligible, size=count, replace=False)
    return [
        honeypot_create(item=Item.objects.get(pk=int(pk)), kind=kinds[n % len(kinds)], seed=seed + n)
        for n, pk in enumerate(chosen)
    ]
