"""Reads for exports: who sees which snapshot, and the judgments (with their items, candidates
and dialogues) an export streams."""

from __future__ import annotations

import bisect
import functools
import itertools
import json
import operator
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.db import connection, transaction
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
from rlhf_export.rows import Criterion, Judgments, Rubric, dashed

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
    digits on SQLite: see rows.dashed)."""
    return Cast(field, output_field=CharField())


def _raw_chunks(qs: QuerySet, *, server_side: bool, size: int = FETCH_ROWS) -> Iterator[list[tuple]]:
    """The rows of a values_list query, `size` at a time, without the ORM's per-value converters
    (JSON stays text): exports read millions of rows and this is most of their cost.
    `server_side` streams through a PostgreSQL server-side cursor, so memory stays flat however
    many rows there are."""
    sql, params = qs.query.sql_with_params()
    with connection.chunked_cursor() if server_side else connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(size):
            yield rows


def _raw_rows(qs: QuerySet) -> list[tuple]:
    return [row for rows in _raw_chunks(qs, server_side=False) for row in rows]


def _loads_all(texts: Iterable[str]) -> list:
    """Many small JSON documents in one decoder call (much cheaper than one call each)."""
    return json.loads("[" + ",".join(texts) + "]")


def judgments_decode(rows: list[tuple], *, with_listened: bool) -> Judgments:
    """RawBatch.judgments as columns, JSON decoded."""
    if not rows:
        return Judgments(*([] for _ in range(9)), listened=[] if with_listened else None)
    ids, uuids, campaigns, items, annotators, rubrics, rankings, scores, flags, *listened = zip(*rows, strict=True)
    if len(uuids[0]) != 36:
        uuids = [dashed(u) for u in uuids]
    return Judgments(
        ids=list(ids), uuids=list(uuids), campaign_ids=list(campaigns), item_ids=list(items), annotator_ids=list(annotators),
        rubric_version_ids=list(rubrics), rankings=_loads_all(rankings), scores=_loads_all(scores), flags=_loads_all(flags),
        listened=_loads_all(listened[0]) if with_listened else None,
    )


@dataclass
class RawBatch:
    """One batch of an export as the database gives it: judgments of whole items, in export order,
    and what their rows need (items, candidates, dialogue turns), JSON and uuids still text."""

    judgments: list[tuple]  # JUDGMENT_COLUMNS (+ listened)
    items: list[tuple]  # (item pk, item uuid, campaign uuid, dialogue pk, dialogue uuid), by item
    candidates: list[tuple]  # (item pk, candidate uuid, policy uuid, reply text, reasoning, audio key), by item and position
    turns: dict[int, list[tuple]]  # dialogue pk → its turns (role, text, audio key) in order (may hold other dialogues too)


JUDGMENT_COLUMNS = ("id", _text("uuid"), "campaign_id", "item_id", "annotator_id", "rubric_version_id", "ranking", "scores", "flags")
_ITEM = 3  # item_id's place in JUDGMENT_COLUMNS


def _item_aligned(chunks: Iterator[list[tuple]], size: int) -> Iterator[list[tuple]]:
    """Batches of about `size` rows (ordered by item) that never split one item's rows: a batch
    ends at the first item change at or after `size` rows."""
    pending: list[tuple] = []
    for rows in chunks:
        pending += rows
        while len(pending) > size:
            cut, item = size, pending[size - 1][_ITEM]
            while cut < len(pending) and pending[cut][_ITEM] == item:
                cut += 1
            if cut == len(pending):
                break  # the item may go on in the next chunk
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending


CONTEXT_BATCHES = 4  # batches whose items, candidates and turns are read together


def _raw_batches(qs: QuerySet[Judgment], *, campaign_ids: list[int], with_listened: bool, server_side: bool) -> Iterator[RawBatch]:
    columns = qs.values_list(*JUDGMENT_COLUMNS, *(["listened"] if with_listened else []))
    batches = _item_aligned(_raw_chunks(columns, server_side=server_side, size=2 * FETCH_ROWS), FETCH_ROWS)
    while group := list(itertools.islice(batches, CONTEXT_BATCHES)):
        # Everything else comes by the item id range of a few batches (judgments come ordered by
        # item: a range beats thousands of ids), each query on an index.
        first, last = group[0][0][_ITEM], group[-1][-1][_ITEM]
        items_in_range = Item.objects.filter(pk__range=(first, last), campaign_id__in=campaign_ids)
        items = _raw_rows(
            items_in_range.order_by("pk").values_list("pk", _text("uuid"), _text("campaign__uuid"), "dialogue_id", _text("dialogue__uuid"))
        )
        candidates = _raw_rows(
            ItemCandidate.objects.filter(item__id__range=(first, last), item__campaign_id__in=campaign_ids)
            .order_by("item_id", "position")
            .values_list("item_id", _text("candidate__uuid"), _text("candidate__policy__uuid"), "candidate__reply_text",
                         "candidate__reasoning", "candidate__audio__key")
        )
        turns: dict[int, list[tuple]] = {}
        for dialogue_pk, *turn in _raw_rows(
            Turn.objects.filter(dialogue_id__in=items_in_range.values("dialogue_id"))  # a subquery: no list of thousands of ids to send
            .order_by("dialogue_id", "index")
            .values_list("dialogue_id", "role", "text", "audio__key")
        ):
            turns.setdefault(dialogue_pk, []).append(tuple(turn))
        for judgments in group:  # rows of the items in each batch's own range (rows are ordered by item pk)
            low, high = judgments[0][_ITEM], judgments[-1][_ITEM]
            yield RawBatch(judgments=judgments, items=_in_range(items, low, high), candidates=_in_range(candidates, low, high), turns=turns)


def _in_range(rows: list[tuple], low: int, high: int) -> list[tuple]:
    """The rows (ordered by their first value) whose first value is in [low, high]."""
    start = bisect.bisect_left(rows, low, key=operator.itemgetter(0))
    return rows[start:bisect.bisect_right(rows, high, lo=start, key=operator.itemgetter(0))]


def export_batches(qs: QuerySet[Judgment], *, campaign_ids: list[int], with_listened: bool) -> Iterator[RawBatch]:
    """The judgments of a judgments_query in item-aligned batches of about FETCH_ROWS, with their
    items, candidates and dialogue turns.

    On PostgreSQL outside a transaction, a reader thread runs the queries on a connection of its
    own, inside one read-only transaction (so its server-side cursor streams instead of being
    materialised), and stays up to PREFETCH batches ahead: the database (another process, another
    core) works on the next batches while this thread builds rows. Inside a transaction (whose
    uncommitted rows another connection could not see) and on SQLite, the same batches are read
    here, one after the other."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        return _read_ahead(functools.partial(_raw_batches, qs, campaign_ids=campaign_ids, with_listened=with_listened, server_side=True))
    return _raw_batches(qs, campaign_ids=campaign_ids, with_listened=with_listened, server_side=connection.vendor == "postgresql")


PREFETCH = 2
_DONE = object()


def _read_ahead(produce: Callable[[], Iterator[RawBatch]]) -> Iterator[RawBatch]:
    """Run `produce` in a reader thread with its own database connection; yield what it yields.
    An exception in the reader is raised here; leaving the loop early stops the reader."""
    handoff: queue.Queue = queue.Queue(maxsize=PREFETCH)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION READ ONLY")
                for batch in produce():
                    if not put((batch, None)):
                        return
            put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 (handed to the consuming thread, which raises it)
            put((None, exc))
        finally:
            connection.close()  # this thread's connection

    reader = threading.Thread(target=read, name="export-reader", daemon=True)
    reader.start()
    try:
        while True:
            batch, error = handoff.get()
            if error is not None:
                raise error
            if batch is _DONE:
                return
            yield batch
    finally:
        stop.set()
        reader.join()


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
