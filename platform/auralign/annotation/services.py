"""Annotation writes: the assignment engine (leases), heartbeats, drafts, skips and judgments.

Invariants (DESIGN.md), kept by row locks here and by database constraints underneath:
- an annotator never gets the same item twice (unique (item, annotator));
- an item never has more live leases + counted judgments than its overlap (`Item.slots_used`,
  check constraint `item_never_over_assigned`); gold items are shown to everyone;
- a judgment is idempotent by (annotator, client submission id) and immutable; a late or
  surplus judgment is stored and marked, never dropped.

Lock order, everywhere: the annotator's membership row (so one annotator's "next" requests run
one at a time), then assignment rows, then item rows in id order. "Next item" takes its item
with SKIP LOCKED, so concurrent annotators never queue behind each other for the same item, and
it never waits on an item lock at all: when every open item is locked (the campaign's last
items) it retries briefly instead. Lazy lease expiry runs in its own short transaction.
The rules are written out in docs/annotation.md.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from auralign.accounts.models import User
from auralign.annotation.models import Assignment, Item, Judgment, Skip
from auralign.annotation.selectors import LABELS, LeaseContent, lease_content, rubric_criteria
from auralign.campaigns.models import Campaign, Membership
from auralign.core import sql
from auralign.core.errors import Conflict, NotFound, ServiceError
from auralign.rubrics.models import Criterion, RubricVersion

# The columns the hot paths read (each column read costs CPU in the driver and in the model);
# the instances they build defer the other fields (reading one queries it).
_CAMPAIGN = sql.Columns(Campaign, [
    "id", "uuid", "status", "rubric_version_id", "lease_seconds", "gold_rate", "min_listened_fraction",
    "reasoning_display", "qualification_gold_items",
])
_ASSIGNMENT = sql.Columns(Assignment)
_OWN = sql.Columns(Assignment, [
    "id", "item_id", "campaign_id", "annotator_id", "display_order", "status", "expires_at", "finished_at",
])
_ITEM = sql.Columns(Item, ["id", "uuid", "dialogue_id", "is_gold"])
_TAKEN = sql.Columns(Item, ["id", "uuid", "dialogue_id", "slots_used", "is_gold"])
_VERSION = sql.Columns(RubricVersion, ["id", "frozen_at"])

LIVE, SUBMITTED, EXPIRED, SKIPPED = (
    Assignment.Status.LIVE, Assignment.Status.SUBMITTED, Assignment.Status.EXPIRED, Assignment.Status.SKIPPED,
)
CANDIDATE_FLAGS = ("broken_audio", "unsafe")
ITEM_FLAGS = ("none_acceptable",)
ITEM_FLAG_KEY = "_item"
JUDGMENT_FIELDS = {"client_submission_id", "ranking", "scores", "flags", "rationale", "listened", "time_spent_ms"}
MAX_RATIONALE = 5000
MAX_SKIP_REASON = 500
MAX_TIME_SPENT_MS = 24 * 3600 * 1000
MAX_DRAFT_BYTES = 64 * 1024
EXPIRE_BATCH = 100  # overdue leases freed per "next item" call (the periodic task does the rest)
LOCKED_RETRIES, LOCKED_RETRY_SECONDS = 40, 0.025
HEAD_SCAN, HEAD_CANDIDATES = 64, 8  # queue entries "next" looks at before fresh items; unseen ones kept


class NotAnnotator(ServiceError):
    """A member of the campaign who may not annotate in it (now)."""

    status_code = 403


class AnnotationConflict(Conflict):
    """A 409 whose body also carries a machine-readable `code` (lease_expired, finished, ...)
    so the task page can say the right friendly thing."""

    def as_detail(self) -> dict:
        return {**super().as_detail(), "code": self.code}


class JudgmentInvalid(ServiceError):
    """Every problem found in a submitted judgment, by field."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        field, messages = next(iter(errors.items()))
        super().__init__(messages[0], field=field, code="invalid_judgment")

    def as_detail(self) -> dict:
        return self.errors


@dataclass
class Lease:
    assignment: Assignment
    resumed: bool  # the annotator's own live lease, handed back
    content: LeaseContent | None = None  # the item's replies and dialogue, when already read


# --- the assignment engine ----------------------------------------------------------------------


def assignment_next(*, campaign: Campaign | uuid.UUID, annotator: User, now: datetime | None = None) -> Lease | None:
    """The annotator's next item in `campaign` (a Campaign or its uuid), leased to them; None
    when nothing is left for them.

    In order: 1. their own live lease, renewed; 2. a gold item they have not seen, when gold is
    due (see `_gold_due`); 3. a regular item with a free slot they have not seen, the highest
    priority first (a lead's "prioritise"; 0 by default), then closest to completion, then in
    random order. One transaction; SKIP LOCKED.
    When no item is free, slots held by leases nobody renewed are freed and it looks again."""
    now = now or timezone.now()
    campaign_uuid = campaign.uuid if isinstance(campaign, Campaign) else campaign
    lease, campaign_id = _lease_next(campaign_uuid, annotator, now)
    if lease is None and _expire_overdue_in_campaign(campaign_id=campaign_id, now=now, keep_annotator=annotator):
        lease, _ = _lease_next(campaign_uuid, annotator, now)
    return lease


def _lease_next(campaign_uuid, annotator: User, now: datetime) -> tuple[Lease | None, int]:
    # Hand-written SQL (auralign.core.sql): this runs for every item served, and the ORM's
    # query building cost more CPU than the database's work (docs/annotation.md, "Load").
    with transaction.atomic():
        row = sql.fetchone(
            f"SELECT m.id, m.active, m.items_leased, m.gold_leased, {_CAMPAIGN.sql('c')} FROM campaigns_membership m"
            " JOIN campaigns_campaign c ON c.id = m.campaign_id"
            f" WHERE c.uuid = %s AND m.user_id = %s AND m.role = %s{sql.lock_clause(of='m')}",
            [sql.param(Campaign, "uuid", campaign_uuid), annotator.pk, Membership.Role.ANNOTATOR.value],
        )
        if row is None:
            raise NotFound("no such campaign")
        membership_id, active, leased, gold_leased = row[:4]
        if not active:
            raise NotAnnotator("your annotator role in this campaign is inactive")
        campaign = _CAMPAIGN.load(row, 4)
        expires_at = now + timedelta(seconds=campaign.lease_seconds)
        # Their own live lease, renewed (a fresh statement after the membership lock, so it sees
        # a lease another request of theirs has just committed). The outer status test is
        # re-checked if the row changed meanwhile (an expiry or a submission).
        row = sql.fetchone(
            "UPDATE annotation_assignment SET expires_at = %s, heartbeat_at = %s WHERE id = ("
            " SELECT id FROM annotation_assignment WHERE campaign_id = %s AND annotator_id = %s AND status = %s"
            f" ORDER BY id LIMIT 1) AND status = %s RETURNING {_ASSIGNMENT.sql()}",
            [sql.timestamp(expires_at), sql.timestamp(now), campaign.pk, annotator.pk, LIVE.value, LIVE.value],
        )
        if row is not None:
            own = _ASSIGNMENT.load(row)
            own.campaign, own.annotator = campaign, annotator
            return Lease(assignment=own, resumed=True), campaign.pk
        if campaign.status != Campaign.Status.ANNOTATING:
            raise AnnotationConflict(f"the campaign is {campaign.status}: no new items now", code="campaign_not_annotating")
        item = _take(campaign, annotator, gold=True) if _gold_due(campaign, leased=leased, gold=gold_leased) else None
        item = item or _take(campaign, annotator, gold=False)
        for _ in range(LOCKED_RETRIES):
            # Open items exist but others hold them right now (the campaign's last items): a slot
            # they leave free must not be reported as "nothing left". Retry without ever waiting
            # on a lock, so no lock cycle can form.
            if item is not None or not _open_unseen_exists(campaign, annotator):
                break
            time.sleep(LOCKED_RETRY_SECONDS)
            item = _take(campaign, annotator, gold=False)
        if item is None:
            return None, campaign.pk
        content = lease_content(item_id=item.pk, dialogue_id=item.dialogue_id)
        order = [str(c.uuid) for c in content.replies]
        random.shuffle(order)
        leased_at = timezone.now()
        assignment_id = _lease_insert(
            [item.pk, campaign.pk, annotator.pk, sql.param(Assignment, "display_order", order), LIVE.value,
             sql.timestamp(leased_at), sql.timestamp(expires_at), sql.timestamp(now)],
            membership_id=membership_id, gold=item.is_gold,
        )
        assignment = sql.instance(Assignment, {
            "id": assignment_id, "item_id": item.pk, "campaign_id": campaign.pk, "annotator_id": annotator.pk,
            "display_order": order, "status": LIVE.value, "leased_at": leased_at, "expires_at": expires_at,
            "heartbeat_at": now, "finished_at": None, "draft": None,
        })
        assignment.item, assignment.campaign, assignment.annotator = item, campaign, annotator
        return Lease(assignment=assignment, resumed=False, content=content), campaign.pk


def _lease_insert(values: list, *, membership_id: int, gold: bool) -> int:
    """Insert the new assignment (`values`: item, campaign, annotator, display order, status,
    leased, expires and heartbeat times) and count it on the membership, whose row "next" has
    locked since its first statement; returns the assignment's id. On PostgreSQL the count rides
    on the insert (a data-modifying WITH: one round trip, not two); SQLite runs both in turn."""
    insert = (
        "INSERT INTO annotation_assignment (item_id, campaign_id, annotator_id, display_order, status, leased_at,"
        " expires_at, heartbeat_at, finished_at, draft) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL) RETURNING id"
    )
    count = "UPDATE campaigns_membership SET items_leased = items_leased + 1, gold_leased = gold_leased + %s WHERE id = %s"
    counted = [1 if gold else 0, membership_id]
    if sql.db().vendor == "postgresql":
        return sql.fetchone(f"WITH counted AS ({count}) {insert}", [*counted, *values])[0]
    (assignment_id,) = sql.fetchone(insert, values)
    sql.execute(count, counted)
    return assignment_id


def _expire_overdue_in_campaign(*, campaign_id: int, now: datetime, keep_annotator: User) -> int:
    """The lazy half of lease expiry, in its own short transaction (so "next item" never waits
    for an item lock while holding others). The caller's own lease is left for it to resume."""
    overdue = Assignment.objects.filter(campaign_id=campaign_id, status=LIVE, expires_at__lt=now).exclude(
        annotator=keep_annotator
    )
    with transaction.atomic():
        return _expire_overdue(overdue, now=now, limit=EXPIRE_BATCH)


def _gold_due(campaign: Campaign, *, leased: int, gold: int) -> bool:
    """Gold is due while the annotator has been leased fewer gold items than the qualification
    asks for, or than `gold_rate` × (items leased so far + 1). So the first item is gold whenever
    the campaign uses gold, and the gold share then tracks the rate. The counts are the
    membership's (`items_leased`, `gold_leased`), kept as items are leased."""
    if campaign.gold_rate <= 0 and campaign.qualification_gold_items == 0:
        return False
    return gold < campaign.qualification_gold_items or gold < campaign.gold_rate * (leased + 1)


def _open_unseen_exists(campaign: Campaign, annotator: User) -> bool:
    """Whether a regular item with a free slot that this annotator has not seen exists, locked by
    others or not (`_take` skips locked rows, so None from it alone does not mean "nothing left")."""
    return sql.fetchone(
        f"SELECT 1 FROM annotation_item i WHERE i.campaign_id = %s AND {_open('i')} AND {_unseen('i')} LIMIT 1",
        [campaign.pk, annotator.pk],
    ) is not None


def _unseen(alias: str, *, fence: bool = False) -> str:
    """Not seen by the annotator (the parameter). `fence` adds OFFSET 0 on PostgreSQL, which keeps
    the planner from turning the check into a join with all of the annotator's assignments: each
    row is then checked by index, lazily, so a LIMIT above it stops early."""
    offset = " OFFSET 0" if fence and sql.db().vendor == "postgresql" else ""
    return f"NOT EXISTS (SELECT 1 FROM annotation_assignment a WHERE a.item_id = {alias}.id AND a.annotator_id = %s{offset})"


def _open(alias: str) -> str:
    """A regular item with a free slot (the `item_open_queue` partial index's condition)."""
    return f"NOT {alias}.is_gold AND {alias}.completed_at IS NULL AND {alias}.slots_used < {alias}.overlap"


def _order(alias: str) -> str:
    """The queue's order (`item_open_queue`): priority, then closest to completion, then random."""
    return f"{alias}.priority DESC, {alias}.slots_used DESC, {alias}.tiebreak"


def _take(campaign: Campaign, annotator: User, *, gold: bool) -> Item | None:
    """The best item nobody else is taking right now, locked (SKIP LOCKED) and its slot taken.

    Regular items come from the head of `item_open_queue`, where the annotator's own judged items
    that still wait for co-annotators sort first (closest to completion). Stepping over all of
    them cost an annotator N items ahead of the others ~4.5 µs × N per call, so the head probe
    looks at most `HEAD_SCAN` entries deep; past them a fresh item (no slot taken yet) comes
    next, and the whole queue is read only when no fresh item is left (the campaign's end)."""
    if gold:  # no slot limit; the least-judged first spreads them out (`item_gold_queue`)
        return _take_first(f"i.campaign_id = %s AND i.is_gold AND {_unseen('i')}", [campaign.pk, annotator.pk], "i.slots_used, i.tiebreak")
    head = (
        "i.id IN (SELECT h.id FROM ("
        f" SELECT q.id FROM annotation_item q WHERE q.campaign_id = %s AND {_open('q')} ORDER BY {_order('q')} LIMIT {HEAD_SCAN}"
        f") h WHERE {_unseen('h', fence=True)} LIMIT {HEAD_CANDIDATES})"
    )
    regular = f"i.campaign_id = %s AND {_open('i')} AND "
    params = [campaign.pk, annotator.pk]
    return (
        _take_first(regular + head, [campaign.pk, *params], _order("i"))
        or _take_first(f"{regular} i.slots_used = 0 AND {_unseen('i')}", params, "i.priority DESC, i.tiebreak")
        or _take_first(regular + _unseen("i"), params, _order("i"))
    )


def _take_first(where: str, params: list, order: str) -> Item | None:
    """Lock the first item by `order` matching `where` (alias i) that nobody holds, and take a slot."""
    row = sql.fetchone(
        "UPDATE annotation_item SET slots_used = slots_used + 1 WHERE id = ("
        f" SELECT i.id FROM annotation_item i WHERE {where} ORDER BY {order} LIMIT 1{sql.lock_clause(skip_locked=True)}"
        f") RETURNING {_TAKEN.sql()}",
        params,
    )
    return _TAKEN.load(row) if row is not None else None


# An item a lease or a late judgment may take a slot of: a gold item (shown to everyone, no slot
# limit), or an unfinished one below its overlap.
_FREE_SLOT = "(is_gold OR (completed_at IS NULL AND slots_used < overlap))"


def _slot_take(item_id: int) -> bool:
    """Take a slot of the item when it has a free one (`_FREE_SLOT`); whether it had."""
    return sql.execute(f"UPDATE annotation_item SET slots_used = slots_used + 1 WHERE id = %s AND {_FREE_SLOT}", [item_id]) > 0


def _expire_overdue(overdue, *, now: datetime, limit: int) -> int:
    """Mark up to `limit` of the `overdue` leases expired and free their slots (in the caller's
    transaction). Leases another transaction holds are skipped, never waited for."""
    rows = list(overdue.select_for_update(skip_locked=True, no_key=True).order_by("expires_at").values_list("id", "item_id")[:limit])
    if not rows:
        return 0
    Assignment.objects.filter(pk__in=[pk for pk, _ in rows]).update(status=EXPIRED, finished_at=now)
    freed = Counter(item_id for _, item_id in rows)
    for item_id in sorted(freed):
        Item.objects.filter(pk=item_id).update(slots_used=F("slots_used") - freed[item_id])
    return len(rows)


def leases_expire(*, now: datetime | None = None, batch: int = 500) -> int:
    """Free every overdue lease, `batch` per transaction (the periodic task). Returns how many."""
    total = 0
    while True:
        with transaction.atomic():
            moment = now or timezone.now()
            freed = _expire_overdue(Assignment.objects.filter(status=LIVE, expires_at__lt=moment), now=moment, limit=batch)
        total += freed
        if freed < batch:
            return total


# --- one lease ------------------------------------------------------------------------------


def _own_assignment(item_uuid, annotator: User) -> Assignment:
    """The annotator's assignment for an item, locked (only that row, not the joined ones), with
    its item, campaign and the campaign's rubric version."""
    row = sql.fetchone(
        f"SELECT {_OWN.sql('a')}, {_ITEM.sql('i')}, {_CAMPAIGN.sql('c')}, {_VERSION.sql('v')}"
        " FROM annotation_assignment a JOIN annotation_item i ON i.id = a.item_id"
        " JOIN campaigns_campaign c ON c.id = a.campaign_id JOIN rubrics_rubricversion v ON v.id = c.rubric_version_id"
        f" WHERE i.uuid = %s AND a.annotator_id = %s{sql.lock_clause(of='a')}",
        [sql.param(Item, "uuid", item_uuid), annotator.pk],
    )
    if row is None:
        raise NotFound("you hold no lease on this item")
    assignment = _OWN.load(row)
    at = len(_OWN)
    assignment.item = _ITEM.load(row, at)
    at += len(_ITEM)
    campaign = _CAMPAIGN.load(row, at)
    campaign.rubric_version = _VERSION.load(row, at + len(_CAMPAIGN))
    assignment.campaign, assignment.annotator = campaign, annotator
    return assignment


def lease_heartbeat(*, item_uuid, annotator: User, now: datetime | None = None) -> Assignment:
    """Renew a lease while its page is open and in use. A lease that has expired is taken again
    when its item still has a free slot (nobody lost anything); otherwise 409 lease_expired."""
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _own_assignment(item_uuid, annotator)
        if assignment.status in (SUBMITTED, SKIPPED):
            raise AnnotationConflict(f"this item is already {assignment.status}", code="finished")
        campaign = assignment.campaign
        if assignment.status == EXPIRED:
            taken = (
                campaign.status == Campaign.Status.ANNOTATING
                and _slot_take(assignment.item_id)
            )
            if not taken:
                raise AnnotationConflict(
                    "your lease on this item expired and another annotator has taken it", code="lease_expired"
                )
            assignment.status = LIVE
            assignment.finished_at = None
        assignment.expires_at = now + timedelta(seconds=campaign.lease_seconds)
        assignment.heartbeat_at = now
        assignment.save(update_fields=["status", "expires_at", "heartbeat_at", "finished_at"])
        return assignment


def draft_save(*, item_uuid, annotator: User, draft) -> None:
    """Keep the annotator's unfinished work with their lease (also after it expired)."""
    if not isinstance(draft, dict):
        raise ServiceError("must be a JSON object", field="draft")
    if len(json.dumps(draft)) > MAX_DRAFT_BYTES:
        raise ServiceError(f"a draft holds at most {MAX_DRAFT_BYTES} bytes", field="draft")
    with transaction.atomic():
        assignment = _own_assignment(item_uuid, annotator)
        if assignment.status in (SUBMITTED, SKIPPED):
            raise AnnotationConflict(f"this item is already {assignment.status}", code="finished")
        assignment.draft = draft
        assignment.save(update_fields=["draft"])


def assignment_skip(*, item_uuid, annotator: User, reason, now: datetime | None = None) -> Skip:
    """Give an item back, with the reason. The annotator never gets it again; its slot is freed.
    Skipping twice returns the first skip."""
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason or len(reason) > MAX_SKIP_REASON:
        raise ServiceError(f"say why you skip (at most {MAX_SKIP_REASON} characters)", field="reason")
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _own_assignment(item_uuid, annotator)
        if assignment.status == SKIPPED:
            return assignment.skip
        if assignment.status == SUBMITTED:
            raise AnnotationConflict("you already submitted a judgment for this item", code="finished")
        if assignment.status == LIVE:
            Item.objects.filter(pk=assignment.item_id).update(slots_used=F("slots_used") - 1)
        assignment.status, assignment.finished_at, assignment.draft = SKIPPED, now, None
        assignment.save(update_fields=["status", "finished_at", "draft"])
        return Skip.objects.create(assignment=assignment, reason=reason)


# --- judgments ------------------------------------------------------------------------------

def _as_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if isinstance(value, str | uuid.UUID) else None
    except ValueError:
        return None


def judgment_validate(
    data, *, display_order: list[str], criteria: tuple[Criterion, ...], min_listened: float
) -> dict:
    """Check a submitted judgment completely; returns the clean fields or raises JudgmentInvalid
    listing every problem by field. Candidates are named by their letter (A, B, ...)."""
    if not isinstance(data, dict):
        raise JudgmentInvalid({"non_field_errors": ["a judgment is a JSON object"]})
    errors: dict[str, list[str]] = {}

    def fail(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    label = {c: f"candidate {LABELS[i]}" for i, c in enumerate(display_order)}
    for key in sorted(set(data) - JUDGMENT_FIELDS):
        fail(key, "unknown field")

    csid = _as_uuid(data.get("client_submission_id"))
    if csid is None:
        fail("client_submission_id", "required: a UUID the client made for this submission")

    flags_in = data.get("flags", {})
    flags: dict[str, list[str]] = {}
    if not isinstance(flags_in, dict):
        fail("flags", "must be an object: {candidate id: [flag, ...], '_item': [flag, ...]}")
    else:
        for key, values in flags_in.items():
            allowed = ITEM_FLAGS if key == ITEM_FLAG_KEY else CANDIDATE_FLAGS
            who = "the item" if key == ITEM_FLAG_KEY else label.get(key)
            if who is None:
                fail("flags", f"'{key}' is not a candidate of this item")
            elif not isinstance(values, list) or any(v not in allowed for v in values) or len(set(values)) != len(values):
                fail("flags", f"{who}: flags must be a list of distinct values from {', '.join(allowed)}")
            elif values:
                flags[key] = list(values)
    broken = {c for c, values in flags.items() if "broken_audio" in values}

    ranking = data.get("ranking")
    if not isinstance(ranking, list) or not ranking:
        fail("ranking", "required: a list of tiers, best first, each a list of candidate ids")
    else:
        placed: list[str] = []
        for n, tier in enumerate(ranking, start=1):
            if not isinstance(tier, list) or not tier or not all(isinstance(c, str) for c in tier):
                fail("ranking", f"tier {n} must be a non-empty list of candidate ids")
                continue
            for c in tier:
                if c not in label:
                    fail("ranking", f"tier {n}: '{c}' is not a candidate of this item")
                elif c in placed:
                    fail("ranking", f"{label[c]} is ranked more than once")
                placed.append(c)
        for c in display_order:
            if c not in placed:
                fail("ranking", f"{label[c]} is not ranked: rank every candidate exactly once")

    scores_in = data.get("scores")
    scores: dict[str, dict[str, int]] = {}
    by_key = {cr.key: cr for cr in criteria}
    if not isinstance(scores_in, dict):
        fail("scores", "required: an object {candidate id: {criterion: score}}")
    else:
        for c, given in scores_in.items():
            if c not in label:
                fail("scores", f"'{c}' is not a candidate of this item")
            elif not isinstance(given, dict):
                fail("scores", f"{label[c]}: scores must be an object {{criterion: score}}")
            else:
                for key, value in given.items():
                    cr = by_key.get(key)
                    if cr is None:
                        fail("scores", f"{label[c]}: '{key}' is not a criterion of this rubric")
                    elif isinstance(value, bool) or not isinstance(value, int) or not cr.scale_min <= value <= cr.scale_max:
                        fail("scores", f"{label[c]}: {cr.label} must be a whole number from {cr.scale_min} to {cr.scale_max}")
                    else:
                        scores.setdefault(c, {})[key] = value
        for c in display_order:
            if c in broken:  # broken audio cannot be judged; its scores are optional
                continue
            given = scores_in.get(c) if isinstance(scores_in.get(c), dict) else {}
            missing = [cr.label for cr in criteria if cr.required and cr.key not in given]
            if missing:
                fail("scores", f"{label[c]}: no score for {', '.join(missing)}")

    listened_in = data.get("listened")
    listened: dict[str, float] = {}
    if not isinstance(listened_in, dict):
        fail("listened", "required: an object {candidate id: fraction listened, 0-1}")
    else:
        for c in listened_in:
            if c not in label:
                fail("listened", f"'{c}' is not a candidate of this item")
        for c in display_order:
            value = listened_in.get(c)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                fail("listened", f"{label[c]}: give the fraction listened, a number from 0 to 1")
            elif value < min_listened and c not in broken:
                fail("listened", f"{label[c]}: listened to {value:.0%}; listen to at least {min_listened:.0%} (or flag its audio broken)")
            else:
                listened[c] = round(float(value), 4)

    rationale = data.get("rationale", "")
    if not isinstance(rationale, str) or len(rationale) > MAX_RATIONALE:
        fail("rationale", f"must be text of at most {MAX_RATIONALE} characters")

    time_spent = data.get("time_spent_ms", 0)
    if isinstance(time_spent, bool) or not isinstance(time_spent, int) or not 0 <= time_spent <= MAX_TIME_SPENT_MS:
        fail("time_spent_ms", f"must be a whole number of milliseconds from 0 to {MAX_TIME_SPENT_MS}")

    if errors:
        raise JudgmentInvalid(errors)
    return {
        "client_submission_id": csid,
        "ranking": [list(tier) for tier in ranking],
        "scores": scores,
        "flags": flags,
        "listened": listened,
        "rationale": rationale.strip(),
        "time_spent_ms": time_spent,
    }


def judgment_submit(*, item_uuid, annotator: User, data, now: datetime | None = None) -> tuple[Judgment, bool]:
    """Store a judgment for the annotator's lease; returns (judgment, created).

    Resubmitting the same client submission id returns the stored judgment (created False).
    On a lease that is still held (even past its expiry time) the judgment counts. On a lease
    whose slot was freed it is late: it counts if the item still has a free slot (and takes
    it), else it is stored as surplus. Nothing valid is ever dropped."""
    now = now or timezone.now()
    try:
        return _judgment_store(item_uuid, annotator, data, now)
    except IntegrityError:
        # The whole transaction rolled back. The one unique key a valid judgment can hit is
        # (annotator, client submission id): that id was used for another item.
        csid = _as_uuid(data.get("client_submission_id"))
        if Judgment.objects.filter(annotator=annotator, client_submission_id=csid).exists():
            raise AnnotationConflict(
                "this client_submission_id was already used for another item", field="client_submission_id", code="reused_id"
            ) from None
        raise


def _judgment_store(item_uuid, annotator: User, data, now: datetime) -> tuple[Judgment, bool]:
    with transaction.atomic():
        assignment = _own_assignment(item_uuid, annotator)
        if assignment.status == SUBMITTED:
            stored = assignment.judgment
            if isinstance(data, dict) and _as_uuid(data.get("client_submission_id")) == stored.client_submission_id:
                return stored, False
            raise AnnotationConflict("you already submitted a judgment for this item", code="finished")
        if assignment.status == SKIPPED:
            raise AnnotationConflict("you skipped this item", code="finished")
        campaign = assignment.campaign
        clean = judgment_validate(
            data,
            display_order=assignment.display_order,
            criteria=rubric_criteria(campaign.rubric_version),
            min_listened=campaign.min_listened_fraction,
        )
        values = {
            "uuid": uuid.uuid4(),
            "campaign_id": campaign.pk,
            "item_id": assignment.item_id,
            "assignment_id": assignment.pk,
            "annotator_id": annotator.pk,
            "rubric_version_id": campaign.rubric_version_id,
            **clean,
            "is_late": assignment.status == EXPIRED or now > assignment.expires_at,
            "is_surplus": None,  # set by _judgment_insert: whether the item had a slot for it
            "created_at": timezone.now(),
        }
        values["id"], values["is_surplus"] = _judgment_insert(values, held=assignment.status == LIVE, now=now)
        judgment = sql.instance(Judgment, values)
        judgment.assignment, judgment.annotator = assignment, annotator
        assignment.status, assignment.finished_at, assignment.draft = SUBMITTED, now, None
        return judgment, True


def _judgment_insert(values: dict, *, held: bool, now: datetime) -> tuple[int, bool]:
    """Count the judgment on its item, store it and close its assignment (the caller holds the
    assignment's row lock); returns (judgment id, is_surplus). `values`: every Judgment column
    but id, keyed by attname (`is_surplus` is decided here).

    A held lease's slot turns from a lease into a judgment; an expired one's slot was freed, so
    the judgment takes a free slot if the item has one (`_FREE_SLOT`), else it is surplus.
    Counting it completes the item when it reaches the overlap (never a gold item). On
    PostgreSQL the three writes are one statement (data-modifying WITH: one round trip, not
    three); SQLite runs them in turn."""
    take, where = ("", "id = %s") if held else (
        "slots_used = slots_used + 1, ", f"id = %s AND {_FREE_SLOT}"
    )
    count = (
        f"UPDATE annotation_item SET {take}judgment_count = judgment_count + 1, completed_at = CASE WHEN NOT is_gold"
        f" AND completed_at IS NULL AND judgment_count >= overlap - 1 THEN %s ELSE completed_at END WHERE {where}"
    )
    count_params = [sql.timestamp(now), values["item_id"]]
    close = "UPDATE annotation_assignment SET status = %s, finished_at = %s, draft = NULL WHERE id = %s"
    close_params = [SUBMITTED.value, sql.timestamp(now), values["assignment_id"]]
    names = [f.attname for f in Judgment._meta.concrete_fields if f.attname != "id"]
    params = [sql.param(Judgment, n, values[n]) for n in names if n != "is_surplus"]

    def insert(surplus: str) -> str:  # `surplus`: the is_surplus column's SQL
        slots = ", ".join(surplus if n == "is_surplus" else "%s" for n in names)
        return f"INSERT INTO annotation_judgment ({', '.join(names)}) VALUES ({slots}) RETURNING id, is_surplus"

    if sql.db().vendor == "postgresql":
        return sql.fetchone(
            f"WITH counted AS ({count} RETURNING 1), closed AS ({close}) {insert('NOT EXISTS (SELECT 1 FROM counted)')}",
            [*count_params, *close_params, *params],
        )
    surplus = not sql.execute(count, count_params)
    params.insert(names.index("is_surplus"), sql.param(Judgment, "is_surplus", surplus))
    judgment_id, _ = sql.fetchone(insert("%s"), params)
    sql.execute(close, close_params)
    return judgment_id, surplus
