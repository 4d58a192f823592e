"""Annotation reads: what an annotator's page receives, and their progress.

Blindness: nothing built here names a policy. Candidates are named by their uuid and a letter in
this annotator's order; audio by its opaque content-addressed key behind a short-lived URL, and
only for the annotator's own live lease (the callers check that)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q

from auralign.accounts.models import User
from auralign.annotation.models import Assignment, Item, ItemCandidate
from auralign.campaigns.models import Campaign, Membership
from auralign.core import sql, storage
from auralign.dialogues.models import Turn
from auralign.generation.models import Candidate
from auralign.media.models import AudioAsset
from auralign.rubrics.models import Criterion, RubricVersion

LABELS = "ABCDEF"  # candidates as this annotator sees them, in their display order

_criteria_cache: dict[tuple[int, datetime], tuple[Criterion, ...]] = {}


def rubric_criteria(version: RubricVersion) -> tuple[Criterion, ...]:
    """A rubric version's criteria; a frozen version never changes, so it is read once."""
    if not version.is_frozen:
        return tuple(version.criteria.all())
    key = (version.pk, version.frozen_at)
    if key not in _criteria_cache:
        _criteria_cache[key] = tuple(version.criteria.all())
    return _criteria_cache[key]


@dataclass(frozen=True, slots=True)
class Audio:
    """What a task page gets of an audio asset (its key becomes a short-lived URL)."""

    key: str
    duration_s: float
    peaks: list


@dataclass(frozen=True, slots=True)
class Reply:
    """What a task page gets of a candidate: no policy, no sampling details."""

    uuid: uuid.UUID
    reply_text: str
    reasoning: str
    audio: Audio | None


@dataclass(frozen=True, slots=True)
class SpokenTurn:
    role: str
    text: str
    audio: Audio | None


@dataclass(frozen=True, slots=True)
class LeaseContent:
    """An item's replies (in position order) and its dialogue's turns (in order)."""

    replies: list[Reply]
    turns: list[SpokenTurn]


_UUID = sql.Columns(Candidate, ["uuid"])  # the uuid column's converters (SQLite stores hex text)
_AUDIO = sql.Columns(AudioAsset, ["key", "duration_s", "peaks"])


def lease_content(*, item_id: int, dialogue_id: int) -> LeaseContent:
    """What the task page shows of an item: its candidates and the dialogue, in one query
    (plain records, not model instances: this runs for every item served)."""
    audio = _AUDIO.sql("a")
    rows = sql.fetchall(
        f"SELECT 0, ic.position, c.uuid, c.reply_text, c.reasoning, {audio} FROM annotation_itemcandidate ic"
        " JOIN generation_candidate c ON c.id = ic.candidate_id LEFT JOIN media_audioasset a ON a.id = c.audio_id"
        " WHERE ic.item_id = %s"
        f' UNION ALL SELECT 1, t."index", NULL, t.role, t.text, {audio} FROM dialogues_turn t'
        " LEFT JOIN media_audioasset a ON a.id = t.audio_id WHERE t.dialogue_id = %s"
        " ORDER BY 1, 2",
        [item_id, dialogue_id],
    )
    replies, turns = [], []
    for row in rows:
        sound = Audio(**_AUDIO.record(row, 5)) if row[5] is not None else None
        if row[0] == 0:
            replies.append(Reply(uuid=_UUID.values(row, 2)[0], reply_text=row[3], reasoning=row[4], audio=sound))
        else:
            turns.append(SpokenTurn(role=row[3], text=row[4], audio=sound))
    return LeaseContent(replies=replies, turns=turns)


def _audio(asset: Audio | None, *, with_url: bool) -> dict | None:
    if asset is None:
        return None
    out = {"duration_s": asset.duration_s, "peaks": asset.peaks}
    if with_url:
        out["url"] = storage.url(asset.key)
    return out


def lease_payload(assignment: Assignment, *, resumed: bool = False, content: LeaseContent | None = None) -> dict:
    """Everything the task page needs for one lease: the dialogue, the K candidates in this
    annotator's order, the lease times and the saved draft. Audio URLs only while it is live.
    `content` saves a query when the caller has just read it."""
    campaign = assignment.campaign
    live = assignment.status == Assignment.Status.LIVE
    if content is None:
        content = lease_content(item_id=assignment.item_id, dialogue_id=assignment.item.dialogue_id)
    by_uuid = {str(c.uuid): c for c in content.replies}
    candidates = []
    for n, cid in enumerate(assignment.display_order):
        c = by_uuid[cid]
        card = {"id": cid, "label": LABELS[n], "reply_text": c.reply_text, "audio": _audio(c.audio, with_url=live)}
        if campaign.reasoning_display != Campaign.Reasoning.HIDDEN:
            card["reasoning"] = c.reasoning
        candidates.append(card)
    return {
        "item": str(assignment.item.uuid),
        "status": assignment.status,
        "resumed": resumed,
        "leased_at": assignment.leased_at,
        "expires_at": assignment.expires_at,
        "turns": [{"role": t.role, "text": t.text, "audio": _audio(t.audio, with_url=live)} for t in content.turns],
        "candidates": candidates,
        "draft": assignment.draft,
    }


def lease_audio_urls(assignment: Assignment) -> dict:
    """Fresh short-lived URLs for a live lease's audio: {"turns": [url|None...], "candidates": {id: url}}."""
    links = ItemCandidate.objects.filter(item_id=assignment.item_id).select_related("candidate__audio")
    urls = {str(link.candidate.uuid): link.candidate.audio for link in links}
    turns = Turn.objects.filter(dialogue_id=assignment.item.dialogue_id).select_related("audio").order_by("index")
    return {
        "turns": [storage.url(t.audio.key) if t.audio_id else None for t in turns],
        "candidates": {cid: storage.url(urls[cid].key) if urls[cid] else None for cid in assignment.display_order},
    }


def task_page_config(campaign: Campaign) -> dict:
    """The campaign settings and rubric the task page is built from (no item data)."""
    version = campaign.rubric_version
    return {
        "campaign": str(campaign.uuid),
        "min_listened": campaign.min_listened_fraction,
        "lease_seconds": campaign.lease_seconds,
        "reasoning": campaign.reasoning_display,
        "criteria": [
            {
                "key": cr.key,
                "label": cr.label,
                "guidance": cr.guidance,
                "min": cr.scale_min,
                "max": cr.scale_max,
                "required": cr.required,
                "anchors": {str(p): cr.anchors.get(str(p), "") for p in range(cr.scale_min, cr.scale_max + 1)},
            }
            for cr in rubric_criteria(version)
        ],
    }


def annotator_campaigns(*, user: User) -> list[dict]:
    """The campaigns the user annotates, with their own and the campaign's progress."""
    memberships = (
        Membership.objects.filter(user=user, role=Membership.Role.ANNOTATOR, active=True)
        .select_related("campaign")
        .order_by("-campaign__created_at")
    )
    campaigns = [m.campaign for m in memberships]
    mine = dict(
        Assignment.objects.filter(annotator=user, campaign__in=campaigns, status=Assignment.Status.SUBMITTED)
        .values_list("campaign_id")
        .annotate(n=Count("id"))
    )
    live = set(
        Assignment.objects.filter(annotator=user, campaign__in=campaigns, status=Assignment.Status.LIVE).values_list(
            "campaign_id", flat=True
        )
    )
    totals = campaign_item_counts(campaigns)
    out = []
    for c in campaigns:
        t = totals[c.pk]
        out.append(
            {
                "campaign": c,
                "judged": mine.get(c.pk, 0),
                "in_progress": c.pk in live,
                "items_total": t["total"],
                "items_completed": t["completed"],
                "percent": round(100 * t["completed"] / t["total"]) if t["total"] else 0,
                "open": c.status == Campaign.Status.ANNOTATING,
            }
        )
    return out


def campaign_item_counts(campaigns: list[Campaign]) -> dict[int, dict[str, int]]:
    """Each campaign's regular items and how many are complete: {campaign id: {"total", "completed"}}.

    Counting reads every item of the campaign (~100 ms at a million items), so the counts are
    kept in the cache for `CAMPAIGN_PROGRESS_CACHE_SECONDS` (by campaign uuid); 0 counts on every
    call. An annotator's own count is never cached."""
    ttl = settings.CAMPAIGN_PROGRESS_CACHE_SECONDS
    keys = {c.pk: f"campaign-item-counts:{c.uuid}" for c in campaigns}
    found = cache.get_many(list(keys.values())) if ttl > 0 else {}
    counts = {pk: found[key] for pk, key in keys.items() if key in found}
    missing = [pk for pk in keys if pk not in counts]
    if missing:
        fresh = {pk: {"total": 0, "completed": 0} for pk in missing}
        for row in (
            Item.objects.filter(campaign__in=missing, is_gold=False)
            .values("campaign_id")
            .annotate(total=Count("id"), completed=Count("id", filter=Q(completed_at__isnull=False)))
        ):
            fresh[row["campaign_id"]] = {"total": row["total"], "completed": row["completed"]}
        if ttl > 0:
            cache.set_many({keys[pk]: value for pk, value in fresh.items()}, timeout=ttl)
        counts.update(fresh)
    return counts
