"""Reads for exports: who sees which snapshot, and the judgments (with their items, candidates
and dialogues) an export streams."""

from __future__ import annotations

from collections.abc import Iterator

from auralign.accounts.models import ApiToken, User
from auralign.annotation.models import Item, ItemCandidate, Judgment
from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.selectors import campaigns_for_user
from auralign.dialogues.models import Turn
from auralign.generation.models import Candidate
from auralign.rubrics.models import RubricVersion
from django.db.models import Q, QuerySet
from django.utils.crypto import salted_hmac

from rlhf_export.models import ExportSnapshot
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


def judgment_records(qs: QuerySet[Judgment], *, with_listened: bool) -> Iterator[JudgmentRecord]:
    """Streams through a server-side cursor on PostgreSQL: memory stays flat however many there are."""
    fields = ["id", "uuid", "campaign_id", "item_id", "annotator_id", "rubric_version_id", "ranking", "scores", "flags"]
    for row in qs.values_list(*fields, *(["listened"] if with_listened else [])).iterator(chunk_size=FETCH_ROWS):
        yield JudgmentRecord(
            id=row[0], uuid=str(row[1]), campaign_id=row[2], item_id=row[3], annotator_id=row[4], rubric_version_id=row[5],
            ranking=row[6], scores=row[7], flags=row[8], listened=row[9] if with_listened else {},
        )


def load_batch(judgments: list[JudgmentRecord], *, splits: dict[str, float], split_seed: str) -> Batch:
    """The items, candidates and dialogue turns these judgments reference (three queries)."""
    item_ids = sorted({j.item_id for j in judgments})
    items = list(
        Item.objects.filter(pk__in=item_ids).order_by("pk").values_list("pk", "uuid", "campaign__uuid", "dialogue_id", "dialogue__uuid")
    )
    turns: dict[int, list[tuple[str, str, str | None]]] = {}
    for dialogue_id, role, text, audio_key in (
        Turn.objects.filter(dialogue_id__in={row[3] for row in items})
        .order_by("dialogue_id", "index")
        .values_list("dialogue_id", "role", "text", "audio__key")
    ):
        turns.setdefault(dialogue_id, []).append((role, text, audio_key))
    item_candidates: dict[int, list[str]] = {}
    candidates: dict[str, CandidateInfo] = {}
    for item_id, uuid, policy, reply_text, reasoning, audio_key in (
        ItemCandidate.objects.filter(item_id__in=item_ids)
        .order_by("item_id", "position")
        .values_list("item_id", "candidate__uuid", "candidate__policy__uuid", "candidate__reply_text",
                     "candidate__reasoning", "candidate__audio__key")
    ):
        item_candidates.setdefault(item_id, []).append(str(uuid))
        candidates[str(uuid)] = CandidateInfo(
            uuid=str(uuid), policy_id=str(policy), reply_text=reply_text, reasoning=reasoning, audio_key=audio_key
        )
    return Batch(
        judgments=judgments,
        items={
            pk: ItemInfo(
                uuid=str(uuid), campaign_id=str(campaign), dialogue_id=str(dialogue),
                split=split_of(str(dialogue), splits, split_seed),
                prompt=[{"role": role, "content": text} for role, text, _ in turns.get(dialogue_pk, [])],
                prompt_audio=[audio for _, _, audio in turns.get(dialogue_pk, [])],
                candidates=item_candidates.get(pk, []),
            )
            for pk, uuid, campaign, dialogue_pk, dialogue in items
        },
        candidates=candidates,
    )


def snapshot_audio_keys(*, snapshot: ExportSnapshot, keys: list[str]) -> set[str]:
    """Which of these audio keys belong to the snapshot's campaigns (a reply or a prompt turn)."""
    campaigns = snapshot.campaigns.all()
    replies = Candidate.objects.filter(campaign__in=campaigns, audio__key__in=keys).values_list("audio__key", flat=True)
    prompts = Turn.objects.filter(
        dialogue__dialogue_set__campaigns__in=campaigns, audio__key__in=keys
    ).values_list("audio__key", flat=True)
    return set(replies) | set(prompts)
