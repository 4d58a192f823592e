"""Reads for exports: who sees which snapshot, and the judgments (with their items, candidates
and dialogues) an export streams."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db import connection
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.utils.crypto import salted_hmac

from auralign.accounts.models import ApiToken, User
from auralign.annotation.models import Item, ItemCandidate, Judgment
from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.selectors import campaigns_for_user
from auralign.dialogues.models import Turn
from auralign.generation.models import Candidate
from auralign.rubrics.models import RubricVersion
from rlhf_export.models import TRAINABLE_KINDS, CampaignScoring, ExportSnapshot, TrainingRun
from rlhf_export.rows import Batch, CandidateInfo, Criterion, ItemInfo, JudgmentRecord, Rubric, split_of

EXPORT_ROLES = {Membership.Role.LEAD, Membership.Role.TRAINER}
FETCH_ROWS = 5_000  # judgments per server-side cursor round trip and per batch


def export_campaigns(*, user: User, token: ApiToken | None = None) -> QuerySet[Campaign]:
    """Campaigns whose judgments this user (through this token) may export: lead or trainer."""
    return campaigns_for_user(user=user, roles=EXPORT_ROLES, token=token)


def snapshots_for(*, user: User, token: ApiToken | None = None) -> QuerySet[ExportSnapshot]:
    """Snapshots every one of whose campaigns the requester may export (a campaign-scoped token
    never sees a snapshot that also covers another campaign)."""
    allowed = export_campaigns(user=user, token=token).values("pk")
    return ExportSnapshot.objects.exclude(campaigns__in=Campaign.objects.exclude(pk__in=allowed)).select_related("created_by")


def annotator_pseudonym(user_id: int) -> str:
    """Stable per (deployment, user), not reversible without SECRET_KEY."""
    return "ann-" + salted_hmac("auralign.export.annotator", str(user_id), algorithm="sha256").hexdigest()[:10]


def rubric_info(rubric_version_id: int) -> Rubric:
    version = RubricVersion.objects.select_related("rubric").get(pk=rubric_version_id)
    return Rubric(
        label=version.label,
        criteria=tuple(
            Criterion(key=c.key, label=c.label, scale_min=c.scale_min, scale_max=c.scale_max, weight=c.weight)
            for c in version.criteria.all()
        ),
    )


def judgments_query(*, campaign_ids: list[int], filters: dict, max_judgment_id: int) -> QuerySet[Judgment]:
    """The judgments a spec selects by what the database knows (quality filters come later),
    in export order: by item, then by judgment id."""
    qs = Judgment.objects.filter(campaign_id__in=campaign_ids, id__lte=max_judgment_id)
    if filters["rubric_versions"]:
        wanted = Q()
        for label in filters["rubric_versions"]:
            slug, _, version = label.partition("@")
            wanted |= Q(rubric__slug=slug, version=int(version))
        qs = qs.filter(rubric_version__in=RubricVersion.objects.filter(wanted))
    if filters["exclude_gold"]:
        qs = qs.filter(item__is_gold=False)
    if filters["exclude_honeypots"]:
        qs = qs.filter(item__is_honeypot=False)
    if filters["judged_after"]:
        qs = qs.filter(created_at__gte=filters["judged_after"])
    if filters["judged_before"]:
        qs = qs.filter(created_at__lt=filters["judged_before"])
    return qs.order_by("item_id", "id")


def _text(field: str) -> Cast:
    """A uuid column as text, so rows need no per-value conversion (dashed on PostgreSQL, 32 hex
    digits on SQLite: see _dashed)."""
    return Cast(field, output_field=CharField())


def _dashed(uuid: str) -> str:
    return uuid if len(uuid) == 36 else f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"


def _raw_chunks(qs: QuerySet, *, server_side: bool) -> Iterator[list[tuple]]:
    """The rows of a values_list query, FETCH_ROWS at a time, without the ORM's per-value
    converters (JSON stays text): exports read millions of rows and this is most of their cost.
    `server_side` streams through a PostgreSQL server-side cursor, so memory stays flat however
    many rows there are."""
    sql, params = qs.query.sql_with_params()
    with connection.chunked_cursor() if server_side else connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield rows


def _raw_rows(qs: QuerySet) -> Iterator[tuple]:
    for rows in _raw_chunks(qs, server_side=False):
        yield from rows


def _loads_all(texts: list[str]) -> list:
    """Many small JSON documents in one decoder call (much cheaper than one call each)."""
    return json.loads("[" + ",".join(texts) + "]")


def judgment_records(qs: QuerySet[Judgment], *, with_listened: bool) -> Iterator[JudgmentRecord]:
    """The judgments of a judgments_query, with their item's uuid, campaign and dialogue."""
    columns = qs.values_list(
        "id", _text("uuid"), "campaign_id", "item_id", "annotator_id", "rubric_version_id", "ranking", "scores", "flags",
        _text("item__uuid"), _text("campaign__uuid"), "item__dialogue_id", _text("item__dialogue__uuid"),
        *(["listened"] if with_listened else []),
    )
    for rows in _raw_chunks(columns, server_side=True):
        rankings, scores, flags = (_loads_all([row[n] for row in rows]) for n in (6, 7, 8))
        listened = _loads_all([row[13] for row in rows]) if with_listened else [{}] * len(rows)
        for n, row in enumerate(rows):
            yield JudgmentRecord(
                id=row[0], uuid=_dashed(row[1]), campaign_id=row[2], item_id=row[3], annotator_id=row[4],
                rubric_version_id=row[5], ranking=rankings[n], scores=scores[n], flags=flags[n], listened=listened[n],
                item_uuid=row[9], campaign_uuid=row[10], dialogue_pk=row[11], dialogue_uuid=row[12],  # dashed per item, in load_batch
            )


def load_batch(judgments: list[JudgmentRecord], *, splits: dict[str, float], split_seed: str) -> Batch:
    """The candidates and dialogue turns these judgments reference, in two queries over the
    batch's item id range (judgments come ordered by item: a range beats thousands of ids)."""
    first, last = judgments[0].item_id, judgments[-1].item_id
    items_in_range = Item.objects.filter(pk__range=(first, last), campaign_id__in={j.campaign_id for j in judgments})
    turns: dict[int, list[tuple[str, str, str | None]]] = {}
    for dialogue_pk, role, text, audio_key in _raw_rows(
        Turn.objects.filter(dialogue_id__in=items_in_range.values("dialogue_id"))
        .order_by("dialogue_id", "index")
        .values_list("dialogue_id", "role", "text", "audio__key")
    ):
        turns.setdefault(dialogue_pk, []).append((role, text, audio_key))
    item_candidates: dict[int, list[str]] = {}
    candidates: dict[str, CandidateInfo] = {}
    for item_id, uuid, policy, reply_text, reasoning, audio_key in _raw_rows(
        ItemCandidate.objects.filter(item__in=items_in_range)
        .order_by("item_id", "position")
        .values_list("item_id", _text("candidate__uuid"), _text("candidate__policy__uuid"), "candidate__reply_text",
                     "candidate__reasoning", "candidate__audio__key")
    ):
        uuid = _dashed(uuid)
        item_candidates.setdefault(item_id, []).append(uuid)
        candidates[uuid] = CandidateInfo(uuid=uuid, policy_id=_dashed(policy), reply_text=reply_text, reasoning=reasoning, audio_key=audio_key)
    items: dict[int, ItemInfo] = {}
    split_by_dialogue: dict[str, str] = {}
    for j in judgments:
        if j.item_id in items:
            continue
        dialogue = _dashed(j.dialogue_uuid)
        if dialogue not in split_by_dialogue:
            split_by_dialogue[dialogue] = split_of(dialogue, splits, split_seed)
        dialogue_turns = turns.get(j.dialogue_pk, [])
        items[j.item_id] = ItemInfo(
            uuid=_dashed(j.item_uuid), campaign_id=_dashed(j.campaign_uuid), dialogue_id=dialogue, split=split_by_dialogue[dialogue],
            prompt=[(role, text) for role, text, _ in dialogue_turns], prompt_audio=[audio for _, _, audio in dialogue_turns],
            candidates=item_candidates[j.item_id],
        )
    return Batch(judgments=judgments, items=items, candidates=candidates)


def snapshot_audio_keys(*, snapshot: ExportSnapshot, keys: list[str]) -> set[str]:
    """Which of these audio keys belong to the snapshot's campaigns (a reply or a prompt turn)."""
    campaigns = snapshot.campaigns.all()
    replies = Candidate.objects.filter(campaign__in=campaigns, audio__key__in=keys).values_list("audio__key", flat=True)
    prompts = Turn.objects.filter(
        dialogue__dialogue_set__campaigns__in=campaigns, audio__key__in=keys
    ).values_list("audio__key", flat=True)
    return set(replies) | set(prompts)


# --- training runs --------------------------------------------------------------------------------


def training_runs_for(*, user: User, token: ApiToken | None = None) -> QuerySet[TrainingRun]:
    """Runs on snapshots the requester may see: lead or trainer of every campaign of the snapshot."""
    return (
        TrainingRun.objects.filter(snapshot__in=snapshots_for(user=user, token=token).values("pk"))
        .select_related("snapshot", "base_policy", "created_by", "produced_policy")
    )


def trainable_snapshots(*, user: User, token: ApiToken | None = None) -> QuerySet[ExportSnapshot]:
    """Succeeded snapshots of a kind the trainers take, that this requester may train on."""
    return snapshots_for(user=user, token=token).filter(status=ExportSnapshot.Status.SUCCEEDED, kind__in=TRAINABLE_KINDS)


def run_scorings(*, run: TrainingRun, user: User, token: ApiToken | None = None) -> QuerySet[CampaignScoring]:
    """The run's campaign scorings, on campaigns the requester may export."""
    allowed = export_campaigns(user=user, token=token).values("pk")
    return run.scorings.filter(campaign__in=allowed).select_related("campaign").order_by("-created_at")


def scoring_uncertain_items(*, scoring: CampaignScoring, limit: int = 20) -> list[dict]:
    """The least-certain items of a scoring with their state now: open (can still be served),
    priority, judgments so far."""
    top = scoring.uncertain[:limit]
    items = {str(i.uuid): i for i in Item.objects.filter(campaign=scoring.campaign, uuid__in=[r["item"] for r in top])}
    out = []
    for row in top:
        item = items.get(row["item"])
        if item is None:
            continue
        out.append({
            "item": row["item"], "uncertainty": row["uncertainty"], "priority": item.priority,
            "judgments": item.judgment_count, "overlap": item.overlap,
            "open": item.completed_at is None and not item.is_gold and not item.is_honeypot and item.slots_used < item.overlap,
        })
    return out


def chart_series(records: list[dict]) -> dict:
    """Loss and accuracy against the step, train and held-out (for the live chart)."""
    series = {f"{split}_{key}": [] for split in ("train", "eval") for key in ("loss", "accuracy")}
    for r in records:
        split = r.get("split")
        if split not in ("train", "eval") or "step" not in r:
            continue
        for key in ("loss", "accuracy"):
            if isinstance(r.get(key), int | float):
                series[f"{split}_{key}"].append({"x": r["step"], "y": r[key]})
    return series
