"""Export snapshots: create (validate + enqueue), run (stream judgments → files), verify.

A run writes every data file under `exports/<uuid>/`, then `manifest.json`, then marks the
snapshot succeeded: the manifest is the commit point in storage, the status in the database.
A failure removes what was written and records the reason; the snapshot never shows files.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from auralign.accounts.models import User
from auralign.annotation.models import Judgment
from auralign.campaigns.models import Campaign
from auralign.core.errors import Conflict
from auralign.quality import selectors as quality
from rlhf_export.models import SCHEMA_VERSION, ExportSnapshot
from rlhf_export.rows import BUILDERS, Context, Judgments, batch_build
from rlhf_export.schema import AUDIO_KEY_FIELDS
from rlhf_export.selectors import annotator_pseudonym, export_batches, judgments_decode, judgments_query, rubric_info
from rlhf_export.spec import spec_build
from rlhf_export.writers import HashOnlySink, SnapshotWriter, delete_prefix, open_sink

logger = logging.getLogger(__name__)
Status = ExportSnapshot.Status
PROGRESS_EVERY_S = 1.0
SPLIT_CACHE_DIALOGUES = 100_000  # dialogue uuid → split, kept across batches (cleared when larger: memory stays flat)
EXPORT_QUEUE = "cpu"
AUDIO_RESOLVE = (
    "keys are object-storage keys; after `python -m rlhf_export pull --with-audio` the file is <snapshot dir>/<key>; "
    "else GET /api/v1/exports/<snapshot_id>/audio?key=<key> returns a short-lived URL"
)
ProgressCallback = Callable[[int, int, int], None]  # (judgments processed, judgments to process, rows written)


class Superseded(Exception):
    """A newer attempt took the snapshot over (a redelivered or re-enqueued message)."""


@transaction.atomic
def snapshot_create(*, user: User | None, campaigns: list[Campaign], kind: str, enqueue: bool = True, **options) -> ExportSnapshot:
    """Validate and store a pending snapshot; the `cpu` queue runs it after this transaction
    commits. Callers check that `user` may export every campaign (selectors.export_campaigns)."""
    spec = spec_build(campaigns=campaigns, kind=kind, **options)
    snapshot = ExportSnapshot.objects.create(kind=kind, spec=spec, created_by=user)
    snapshot.campaigns.set(campaigns)
    if enqueue:
        transaction.on_commit(functools.partial(snapshot_enqueue, snapshot=snapshot))
    return snapshot


def snapshot_enqueue(*, snapshot: ExportSnapshot) -> None:
    from rlhf_export.tasks import run_export  # noqa: PLC0415 (tasks import this module)

    run_export.apply_async(args=[snapshot.pk], queue=EXPORT_QUEUE)


def snapshot_run(*, snapshot_id: int, on_progress: ProgressCallback | None = None) -> ExportSnapshot:
    """Build the snapshot's files. A done snapshot is left alone; a pending or crashed one
    (status running, its worker gone) starts over from a clean prefix."""
    snapshot = _claim(snapshot_id)
    if snapshot is None:
        return ExportSnapshot.objects.get(pk=snapshot_id)
    last_report = 0.0

    def report(processed: int, total: int, rows: int) -> None:
        nonlocal last_report
        if on_progress is not None:
            on_progress(processed, total, rows)
        if time.monotonic() - last_report >= PROGRESS_EVERY_S:
            last_report = time.monotonic()
            _update_running(snapshot, progress=processed / total if total else 0.0, rows=rows)

    try:
        delete_prefix(snapshot.prefix)  # whatever a crashed attempt left
        result = build_files(snapshot=snapshot, max_judgment_id=_max_judgment_id(snapshot), make_sink=open_sink, on_progress=report)
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "snapshot_id": str(snapshot.uuid),
            "kind": snapshot.kind,
            "created_at": snapshot.created_at.isoformat(),
            "spec": snapshot.spec,
            "watermark": result.watermark,
            "rubrics": result.rubrics,
            "files": result.files,
            "audio": {"key_fields": AUDIO_KEY_FIELDS[snapshot.kind], "resolve": AUDIO_RESOLVE},
        }
        sink = open_sink(snapshot.prefix + "manifest.json")
        sink.write(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n")
        sink.commit()
        _update_running(
            snapshot, status=Status.SUCCEEDED, progress=1.0, rows=result.rows, watermark=result.watermark,
            files=result.files, manifest=manifest, finished_at=timezone.now(),
        )
    except Superseded:
        logger.info("export %s: attempt %s superseded by a newer one", snapshot.uuid, snapshot.attempt)
    except Exception as exc:
        logger.exception("export %s failed", snapshot.uuid)
        try:
            delete_prefix(snapshot.prefix)
        except Exception:  # noqa: BLE001 (storage may be the thing that is down; nothing refers to the leftovers)
            logger.warning("export %s: could not remove partial files under %s", snapshot.uuid, snapshot.prefix)
        try:
            _update_running(snapshot, status=Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000], finished_at=timezone.now())
        except Superseded:
            pass
    return ExportSnapshot.objects.get(pk=snapshot_id)


def _claim(snapshot_id: int) -> ExportSnapshot | None:
    with transaction.atomic():
        snapshot = ExportSnapshot.objects.select_for_update().get(pk=snapshot_id)
        if snapshot.is_done:
            return None
        now = timezone.now()
        snapshot.attempt += 1
        snapshot.status, snapshot.progress, snapshot.rows, snapshot.error = Status.RUNNING, 0.0, 0, ""
        snapshot.started_at = snapshot.heartbeat_at = now
        snapshot.save(update_fields=["attempt", "status", "progress", "rows", "error", "started_at", "heartbeat_at"])
    return snapshot


def _update_running(snapshot: ExportSnapshot, **fields) -> None:
    """Write to the snapshot only while this attempt still owns it."""
    updated = ExportSnapshot.objects.filter(pk=snapshot.pk, attempt=snapshot.attempt, status=Status.RUNNING).update(
        heartbeat_at=timezone.now(), **fields
    )
    if not updated:
        raise Superseded


def _max_judgment_id(snapshot: ExportSnapshot) -> int:
    return Judgment.objects.filter(campaign__in=snapshot.campaigns.all()).aggregate(m=Max("id"))["m"] or 0


@dataclass
class BuildResult:
    files: list[dict]
    watermark: dict
    rubrics: dict[str, dict]
    rows: int


def build_files(
    *, snapshot: ExportSnapshot, max_judgment_id: int, make_sink, on_progress: ProgressCallback | None = None
) -> BuildResult:
    """Stream the judgments a snapshot's spec selects (id <= max_judgment_id) into its files."""
    spec, kind = snapshot.spec, snapshot.kind
    filters = spec["filters"]
    campaign_ids = sorted(snapshot.campaigns.values_list("pk", flat=True))
    qs = judgments_query(campaign_ids=campaign_ids, filters=filters, max_judgment_id=max_judgment_id)
    total = qs.count()
    ctx, keep = _context_and_filter(kind=kind, filters=filters, campaign_ids=campaign_ids)
    writer = SnapshotWriter(prefix=snapshot.prefix, kind=kind, spec=spec, make_sink=make_sink)
    covered, count, processed = hashlib.sha256(), 0, 0
    split_cache: dict[str, str] = {}
    with_listened = kind == "listwise"
    try:
        with _cyclic_gc_paused(), contextlib.closing(export_batches(qs, campaign_ids=campaign_ids, with_listened=with_listened)) as raws:
            for raw in raws:
                judgments = judgments_decode(raw.judgments, with_listened=with_listened)
                processed += len(judgments)
                mask = keep(judgments)
                if mask is not None:
                    judgments = judgments.select(mask)
                if judgments:
                    covered.update("".join(uuid + "\n" for uuid in judgments.uuids).encode())
                    for rubric_version_id in set(judgments.rubric_version_ids) - ctx.rubrics.keys():
                        ctx.rubrics[rubric_version_id] = rubric_info(rubric_version_id)
                    count += len(judgments)
                    if len(split_cache) > SPLIT_CACHE_DIALOGUES:
                        split_cache.clear()
                    batch = batch_build(
                        judgments, items=raw.items, candidates=raw.candidates, turns=raw.turns,
                        splits=spec["splits"], split_seed=spec["split_seed"], split_cache=split_cache,
                    )
                    writer.write(BUILDERS[kind](batch, ctx))
                if on_progress is not None:
                    on_progress(processed, total, writer.rows)
            files = writer.close()
    except BaseException:
        writer.abort()
        raise
    return BuildResult(
        files=files,
        watermark={"max_judgment_id": max_judgment_id, "judgment_count": count, "judgments_sha256": covered.hexdigest()},
        rubrics={r.label: r.manifest_entry() for r in sorted(ctx.rubrics.values(), key=lambda r: r.label)},
        rows=writer.rows,
    )


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """An export allocates millions of short-lived, acyclic objects (rows, dicts, tuples) that
    reference counting frees; the cyclic collector would repeatedly walk them for nothing (a large
    share of the time in bench/export.py). It runs once at the end instead."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


def _context_and_filter(*, kind: str, filters: dict, campaign_ids: list[int]) -> tuple[Context, Callable[[Judgments], list[bool] | None]]:
    """Quality inputs (auralign.quality) for the weight column and the quality filters; `keep`
    tells which judgments of a batch the filters keep (None: all of them)."""
    needs_reliability = kind != "pointwise" or filters["min_reliability"] is not None
    needs_agreement = kind in {"pairwise", "listwise"} or filters["min_agreement"] is not None
    reliability = quality.annotator_weights(campaign_ids=campaign_ids) if needs_reliability else {}
    agreement = quality.item_agreement(campaign_ids=campaign_ids) if needs_agreement else {}
    qualified = (
        {cid: quality.qualified_annotator_ids(campaign_id=cid) for cid in campaign_ids} if filters["qualified_only"] else None
    )
    min_reliability, min_agreement = filters["min_reliability"], filters["min_agreement"]

    def keep(j: Judgments) -> list[bool] | None:
        if not filters["exclude_flagged"] and qualified is None and min_reliability is None and min_agreement is None:
            return None
        mask = [True] * len(j)
        if filters["exclude_flagged"]:
            mask = [k and not f for k, f in zip(mask, j.flagged(), strict=True)]
        if qualified is not None:
            mask = [k and a in qualified[c] for k, a, c in zip(mask, j.annotator_ids, j.campaign_ids, strict=True)]
        if min_reliability is not None:
            mask = [k and reliability.get(a, 1.0) >= min_reliability for k, a in zip(mask, j.annotator_ids, strict=True)]
        if min_agreement is not None:
            mask = [k and agreement.get(i, -1.0) >= min_agreement for k, i in zip(mask, j.item_ids, strict=True)]
        return mask

    ctx = Context(
        rubrics={}, pseudonym=functools.lru_cache(maxsize=None)(annotator_pseudonym),
        reliability=reliability, agreement=agreement,
    )
    return ctx, keep


def snapshot_verify(*, snapshot: ExportSnapshot, on_progress: ProgressCallback | None = None) -> dict:
    """Rebuild a succeeded snapshot at its watermark (checksums only, nothing stored) and compare."""
    if snapshot.status != Status.SUCCEEDED:
        raise Conflict(f"only a succeeded snapshot can be verified; this one is {snapshot.status}")
    result = build_files(
        snapshot=snapshot, max_judgment_id=snapshot.watermark["max_judgment_id"], make_sink=HashOnlySink, on_progress=on_progress
    )
    rebuilt = {f["path"]: f["sha256"] for f in result.files}
    mismatched = sorted(f["path"] for f in snapshot.files if rebuilt.get(f["path"]) != f["sha256"])
    mismatched += sorted(set(rebuilt) - {f["path"] for f in snapshot.files})
    judgments_match = result.watermark == snapshot.watermark
    return {"reproducible": judgments_match and not mismatched, "judgments_match": judgments_match, "mismatched_files": mismatched}


def snapshots_reconcile(*, stale_after: timedelta = timedelta(minutes=10)) -> int:
    """Re-enqueue snapshots whose message was lost (still pending) or whose worker died (running,
    no progress report for `stale_after`). Returns how many were re-enqueued."""
    cutoff = timezone.now() - stale_after
    stale = ExportSnapshot.objects.filter(
        Q(status=Status.PENDING, created_at__lt=cutoff) | Q(status=Status.RUNNING, heartbeat_at__lt=cutoff)
    )
    count = 0
    for snapshot in stale:
        snapshot_enqueue(snapshot=snapshot)
        count += 1
    return count
