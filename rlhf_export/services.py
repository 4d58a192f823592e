"""Export snapshots: create (validate + enqueue), run (stream judgments → files), verify; and
training runs on them (below: create, dispatch, live metrics, register, reconcile, RM scoring).

A run writes every data file under `exports/<uuid>/`, then `manifest.json`, then marks the
snapshot succeeded: the manifest is the commit point in storage, the status in the database.
A failure removes what was written and records the reason; the snapshot never shows files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import hashlib
import itertools
import json
import logging
import tempfile
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from auralign.accounts.models import User
from auralign.annotation.models import Item, ItemCandidate, Judgment
from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.selectors import campaign_roles
from auralign.core import storage
from auralign.core.errors import Conflict, Forbidden, NotFound, ServiceError
from auralign.dialogues.models import Turn
from auralign.policies.models import Policy
from auralign.policies.services import policy_create
from auralign.quality import selectors as quality
from rlhf_export.models import (
    SCHEMA_VERSION,
    TRAINABLE_KINDS,
    CampaignScoring,
    CandidateScore,
    ExportSnapshot,
    TrainingRun,
)
from rlhf_export.rows import BUILDERS, Context, Judgments, batch_build
from rlhf_export.schema import AUDIO_KEY_FIELDS
from rlhf_export.selectors import (
    annotator_pseudonym,
    export_batches,
    export_campaigns,
    judgments_decode,
    judgments_query,
    rubric_info,
    snapshots_for,
)
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


# ================================================================================================
# Training runs (docs/training.md, "The platform"): create (validate, store, dispatch on commit) →
# the Django-free `auralign.train.run` task on the `train` queue → `auralign.training.register`
# on the platform queue, chained. Live metrics come from the run's metrics.jsonl in object storage
# (and the result backend's PROGRESS state when one is configured).
# ================================================================================================

TRAIN_JOB_SCHEMA = "auralign.train_job/1"  # docs/formats.md; rlhf_export.training.tasks checks it
TRAIN_RESULT_SCHEMA = "auralign.train_result/1"
# Set by the run itself (snapshot, output, base model, encoder), never by its config.
RESERVED_CONFIG = {"snapshot", "out", "base_model", "policy", "gguf_file", "audio_encoder", "cache_dir"}
RunStatus = TrainingRun.Status


def storage_location(prefix: str) -> str:
    """Where an object-storage prefix is for a Django-free worker: the local folder (embedded
    default, the worker shares the disk) or s3://bucket/prefix (docs/formats.md)."""
    if storage.is_s3():
        return f"s3://{storage.store().bucket_name}/{prefix}"
    return str(Path(storage.store().location) / prefix)


def training_config_validate(*, kind: str, config) -> dict:
    """The run's training options, checked against RMConfig / DPOConfig: every key must be a field
    (not one the run sets itself), of the field's type, in range. Returns the config unchanged."""
    if not isinstance(config, dict):
        raise ServiceError("must be an object of training options", field="config")
    # torch comes with the training package: imported only when a run is created
    from rlhf_export.training.common import ConfigError  # noqa: PLC0415
    from rlhf_export.training.dpo import DPOConfig  # noqa: PLC0415
    from rlhf_export.training.rm import RMConfig  # noqa: PLC0415

    cls = RMConfig if kind == TrainingRun.Kind.REWARD_MODEL else DPOConfig
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in config.items():
        field = f"config.{key}"
        if key in RESERVED_CONFIG:
            raise ServiceError(f"'{key}' is set by the run itself, not in config", field=field)
        if key not in fields:
            raise ServiceError(f"unknown {cls.__name__} option '{key}' (see docs/training.md)", field=field)
        expected = fields[key].type if isinstance(fields[key].type, str) else fields[key].type.__name__
        ok = {
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "str": isinstance(value, str),
        }.get(expected, True)
        if not ok:
            raise ServiceError(f"must be a {expected}, not {json.dumps(value)[:40]}", field=field)
    check = {**config, "device": "cpu" if config.get("device") == "cuda" else config.get("device", "auto")}
    placeholders = {name: "-" for name, f in fields.items() if f.default is dataclasses.MISSING}
    try:  # ranges and choices: the trainer's own checks (the same on a bare GPU box)
        cls(**{**placeholders, **check}).validate()  # a GPU is the worker's business, not the web server's
    except ConfigError as exc:
        raise ServiceError(str(exc), field=f"config.{exc.option}") from None
    return config


def _policy_model(policy: Policy, field: str) -> dict:
    """The {path, gguf_file} of an `hf` policy's checkpoint (a .gguf file becomes folder + name)."""
    if policy.backend != Policy.Backend.HF:
        raise ServiceError(
            f"policy '{policy.name}' is served by an {policy.backend} endpoint; training needs an hf checkpoint", field=field
        )
    checkpoint, gguf = policy.config.get("checkpoint") or "", policy.config.get("gguf_file") or None
    if checkpoint.endswith(".gguf") and not gguf:
        checkpoint, _, gguf = checkpoint.rpartition("/")
    return {"path": checkpoint, "gguf_file": gguf}


@transaction.atomic
def training_run_create(
    *,
    user: User | None,
    snapshot: ExportSnapshot,
    kind: str,
    base_policy: Policy | None = None,
    base_model: dict | None = None,
    audio_encoder: str = "",
    config: dict | None = None,
    policy_name: str = "",
    dispatch: bool = True,
) -> TrainingRun:
    """Validate and store a queued run; its training chain is sent when this transaction commits.
    `user` must be lead or trainer of every campaign of the snapshot (None: a trusted caller such
    as the demo). Nothing is stored when anything is wrong."""
    config = {} if config is None else config
    if kind not in TrainingRun.Kind.values:
        raise ServiceError(f"unknown kind '{kind}'; choose one of: {', '.join(TrainingRun.Kind.values)}", field="kind")
    if user is not None and not snapshots_for(user=user).filter(pk=snapshot.pk).exists():
        raise NotFound("no such snapshot, or you are not lead or trainer of every one of its campaigns", field="snapshot")
    if snapshot.status != ExportSnapshot.Status.SUCCEEDED:
        raise ServiceError(f"the snapshot is {snapshot.status}; train on a succeeded snapshot", field="snapshot")
    if snapshot.kind not in TRAINABLE_KINDS:
        raise ServiceError(
            f"a {snapshot.kind} snapshot cannot be trained on; use one of: {', '.join(TRAINABLE_KINDS)}", field="snapshot"
        )
    if kind == TrainingRun.Kind.DPO:
        if base_policy is None:
            raise ServiceError("DPO trains a policy: name the base policy", field="base_policy")
        if base_model:
            raise ServiceError("DPO trains the base policy's checkpoint; give no base_model", field="base_model")
        if audio_encoder:
            raise ServiceError("only a reward model has an audio encoder", field="audio_encoder")
        model = _policy_model(base_policy, "base_policy")
        policy_name = (policy_name or "").strip()
        if len(policy_name) > 120:
            raise ServiceError("at most 120 characters", field="policy_name")
        if policy_name and Policy.objects.filter(name=policy_name).exists():
            raise ServiceError(f"a policy named '{policy_name}' already exists", field="policy_name")
    else:
        if policy_name:
            raise ServiceError("only a DPO run produces a policy", field="policy_name")
        if base_policy is not None and base_model:
            raise ServiceError("give either a base policy or a base model, not both", field="base_model")
        if base_policy is not None:
            model = _policy_model(base_policy, "base_policy")
        elif isinstance(base_model, dict) and isinstance(base_model.get("path"), str) and base_model["path"].strip():
            unknown = set(base_model) - {"path", "gguf_file"}
            if unknown:
                raise ServiceError(f"unknown key(s) {', '.join(sorted(unknown))}; give path and gguf_file", field="base_model")
            gguf = base_model.get("gguf_file") or None
            if gguf is not None and not isinstance(gguf, str):
                raise ServiceError("must be a file name", field="base_model.gguf_file")
            model = {"path": base_model["path"].strip(), "gguf_file": gguf}
        else:
            raise ServiceError(
                "a reward model needs a backbone: a base policy (hf) or a base_model path", field="base_model"
            )
        if not isinstance(audio_encoder, str) or len(audio_encoder) > 1000:
            raise ServiceError("must be a checkpoint path (or empty)", field="audio_encoder")
    training_config_validate(kind=kind, config=config)
    run_uuid = uuidlib.uuid4()
    run = TrainingRun.objects.create(
        uuid=run_uuid, kind=kind, snapshot=snapshot, base_policy=base_policy, base_model=model,
        audio_encoder=(audio_encoder or "").strip(), config=config, policy_name=policy_name,
        output=storage_location(f"runs/{run_uuid}/"), created_by=user,
    )
    if dispatch:
        transaction.on_commit(functools.partial(training_run_dispatch, run_id=run.pk))
    return run


def training_job(*, run: TrainingRun) -> dict:
    """The `auralign.train_job/1` of a run (docs/formats.md)."""
    return {
        "schema": TRAIN_JOB_SCHEMA,
        "run_id": str(run.uuid),
        "kind": run.kind,
        "snapshot": storage_location(run.snapshot.prefix),
        "base_model": run.base_model,
        "audio_encoder": run.audio_encoder or None,
        "config": run.config,
        "output": run.output,
    }


def training_run_dispatch(*, run_id: int) -> bool:
    """Send the run's chain: `auralign.train.run` (train queue; its message expires after
    TRAINING_DISPATCH_TIMEOUT_S) → `auralign.training.register` (platform queue). Returns False
    when the run is no longer queued or the broker refused (reconcile sends it again later)."""
    from config.celery_app import app  # noqa: PLC0415

    task_id = str(uuidlib.uuid4())
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update(of=("self",)).select_related("snapshot").get(pk=run_id)
        if run.status != RunStatus.QUEUED:
            return False
        run.attempts += 1
        run.celery_task_id, run.dispatched_at = task_id, timezone.now()
        run.save(update_fields=["attempts", "celery_task_id", "dispatched_at"])
        job = training_job(run=run)
    train = app.signature(
        "auralign.train.run", args=[job], queue=settings.TRAINING_QUEUE, expires=settings.TRAINING_DISPATCH_TIMEOUT_S
    ).set(task_id=task_id)
    register = app.signature("auralign.training.register", queue=settings.TRAINING_PLATFORM_QUEUE)
    try:
        (train | register).apply_async()
    except Exception:  # broker down: reconcile dispatches it again
        logger.exception("training run %s: could not send its job", run.uuid)
        TrainingRun.objects.filter(pk=run.pk, celery_task_id=task_id).update(dispatched_at=None)
        return False
    return True


def _transition(run: TrainingRun, to: str) -> None:
    if not run.can_become(to):
        raise Conflict(f"a {run.status} training run cannot become {to}")
    run.status = to


def _read_metrics(run: TrainingRun) -> list[dict] | None:
    """The run's metrics.jsonl records (None: no file yet). A line being written is skipped."""
    key = run.prefix + "metrics.jsonl"
    try:
        if not storage.exists(key):
            return None
        text = storage.read(key).decode("utf-8", errors="replace")
    except OSError:
        return None
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _progress_record(run: TrainingRun) -> dict | None:
    """The train task's latest PROGRESS report, when a result backend is configured."""
    if not settings.CELERY_RESULT_BACKEND or not run.celery_task_id:
        return None
    from config.celery_app import app  # noqa: PLC0415

    try:
        result = app.AsyncResult(run.celery_task_id)
        state, info = result.state, result.info
    except Exception:  # noqa: BLE001 (the backend is a convenience; metrics.jsonl is the record)
        return None
    if state != "PROGRESS" or not isinstance(info, dict):
        return None
    return {k: v for k, v in info.items() if k not in ("run_id", "kind")}


def training_run_refresh(*, run: TrainingRun) -> TrainingRun:
    """Bring a queued or running run's live metrics up to date from storage (and the result
    backend): any metrics file means training started (queued → running). A done run, or one
    finished meanwhile, is left alone."""
    if run.is_done:
        return run
    records = _read_metrics(run)
    latest = _progress_record(run)
    if latest is not None:
        records = records or []
        if not records or latest.get("time", 0) > records[-1].get("time", 0):
            records = [*records, latest]
    if records is None:
        return run
    if run.status == RunStatus.RUNNING and records == run.metrics:
        return run
    now = timezone.now()
    TrainingRun.objects.filter(pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.RUNNING, metrics=records, heartbeat_at=now, started_at=Coalesce("started_at", Value(now))
    )
    run.refresh_from_db()
    return run


def training_runs_sync() -> int:
    """Refresh every queued or running run (beat). Returns how many are running."""
    for run in TrainingRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]):
        training_run_refresh(run=run)
    return TrainingRun.objects.filter(status=RunStatus.RUNNING).count()


def _produced_name(run: TrainingRun) -> str:
    if run.policy_name and not Policy.objects.filter(name=run.policy_name).exists():
        return run.policy_name
    base = f"{run.base_policy.name[:90]}-dpo-{str(run.uuid)[:8]}"
    return base if not Policy.objects.filter(name=base).exists() else f"{base}-{uuidlib.uuid4().hex[:6]}"


def _register_policy(run: TrainingRun) -> Policy:
    """The DPO checkpoint as a new `hf` policy: the parent's generation and voice, its persona
    (system prompt) and routing; lineage = parent policy + this run (and so its snapshot)."""
    parent = run.base_policy
    config = {k: v for k, v in parent.config.items() if k not in ("checkpoint", "gguf_file")}
    return policy_create(
        name=_produced_name(run),
        backend=Policy.Backend.HF,
        config={**config, "checkpoint": run.checkpoint},
        generation=dict(parent.generation),
        tts=dict(parent.tts),
        description=f"DPO of {parent.name} on export {run.snapshot.uuid} (training run {run.uuid})",
        parent=parent,
        user=run.created_by,
        produced_by_run=run,
    )


def training_run_register(*, result: dict) -> TrainingRun | None:
    """Store a `auralign.train_result/1`. Idempotent: a run that is already done ignores it (a
    redelivered or duplicated result changes nothing). Returns the run, or None for an unknown one."""
    if not isinstance(result, dict) or result.get("schema") != TRAIN_RESULT_SCHEMA:
        raise ValueError(f"not a {TRAIN_RESULT_SCHEMA} result")
    try:
        run_uuid = uuidlib.UUID(str(result.get("run_id")))
    except ValueError:
        raise ValueError(f"result names no run: {result.get('run_id')!r}") from None
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update(of=("self",)).select_related("base_policy", "snapshot").filter(uuid=run_uuid).first()
        if run is None:
            logger.warning("training result for unknown run %s ignored", run_uuid)
            return None
        if run.is_done:
            return run
        now = timezone.now()
        records = _read_metrics(run)
        if records is not None:
            run.metrics = records
        if result.get("status") == "ok" and result.get("checkpoint"):
            _transition(run, RunStatus.SUCCEEDED)
            run.results = result.get("metrics") or {}
            run.checkpoint = result["checkpoint"]
            run.artifacts = [
                {"path": a["path"], "sha256": a["sha256"], "bytes": a["bytes"], "key": run.prefix + a["path"]}
                for a in result.get("artifacts") or []
            ]
        else:
            _transition(run, RunStatus.FAILED)
            run.error = (result.get("error") or "training failed without an error message")[:4000]
        run.started_at = run.started_at or now
        run.finished_at = run.heartbeat_at = now
        run.save()
        if run.status == RunStatus.SUCCEEDED and run.kind == TrainingRun.Kind.DPO:
            _register_policy(run)
    return run


def training_run_fail(*, run: TrainingRun, error: str) -> TrainingRun:
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        _transition(run, RunStatus.FAILED)
        run.error, run.finished_at = error[:4000], timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
    return run


def training_runs_reconcile(*, now=None) -> dict:
    """Periodic repair (beat): a queued run that was never sent (broker down at commit) or whose
    message found no worker within TRAINING_DISPATCH_TIMEOUT_S (lost; it has expired by now) is
    sent again; after TRAINING_MAX_ATTEMPTS dispatches it fails. Live metrics are synced too; a
    running run with no new metrics for TRAINING_STALE_S (its worker or its result is lost) fails."""
    now = now or timezone.now()
    lost = TrainingRun.objects.filter(status=RunStatus.QUEUED).filter(
        Q(dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=60))
        | Q(dispatched_at__lt=now - timedelta(seconds=settings.TRAINING_DISPATCH_TIMEOUT_S))
    )
    redispatched = failed = 0
    for run in lost:
        training_run_refresh(run=run)  # it may have started after all
        run.refresh_from_db()
        if run.status != RunStatus.QUEUED:
            continue
        if run.attempts >= settings.TRAINING_MAX_ATTEMPTS:
            training_run_fail(
                run=run,
                error=f"no training worker took the job in {settings.TRAINING_MAX_ATTEMPTS} dispatches of "
                f"{settings.TRAINING_DISPATCH_TIMEOUT_S} s (is a worker consuming the '{settings.TRAINING_QUEUE}' queue?)",
            )
            failed += 1
        elif training_run_dispatch(run_id=run.pk):
            redispatched += 1
    training_runs_sync()
    cut = now - timedelta(seconds=settings.TRAINING_STALE_S)
    quiet = TrainingRun.objects.filter(status=RunStatus.RUNNING).filter(
        Q(heartbeat_at__lt=cut) | Q(heartbeat_at__isnull=True, started_at__lt=cut)
    )
    for run in quiet:
        training_run_fail(
            run=run,
            error=f"no progress reported for {settings.TRAINING_STALE_S / 3600:g} h: the training worker stopped or its "
            "result was lost; start a new run",
        )
        failed += 1
    running = TrainingRun.objects.filter(status=RunStatus.RUNNING).count()
    return {"redispatched": redispatched, "failed": failed, "running": running}


# --- reward-model scoring of a campaign -----------------------------------------------------------
MAX_PRIORITISE = 10_000


@transaction.atomic
def campaign_scoring_create(*, run: TrainingRun, campaign: Campaign, user: User | None, enqueue: bool = True) -> CampaignScoring:
    """Score every candidate of `campaign` with a succeeded reward model (queued on
    TRAINING_SCORE_QUEUE). Scoring again replaces the earlier scores and figures."""
    if user is not None and not export_campaigns(user=user).filter(pk=campaign.pk).exists():
        raise NotFound("no such campaign, or you are not its lead or trainer", field="campaign")
    if run.kind != TrainingRun.Kind.REWARD_MODEL:
        raise ServiceError("only a reward model scores candidates", field="run")
    if run.status != RunStatus.SUCCEEDED:
        raise Conflict(f"the reward model is {run.status}; only a succeeded one scores candidates")
    scoring, created = CampaignScoring.objects.select_for_update().get_or_create(
        run=run, campaign=campaign, defaults={"created_by": user}
    )
    if not created:
        if not scoring.is_done:
            raise Conflict("this campaign is being scored by this reward model already")
        scoring.status, scoring.error, scoring.started_at, scoring.finished_at = CampaignScoring.Status.QUEUED, "", None, None
        scoring.created_by = user or scoring.created_by
        scoring.save(update_fields=["status", "error", "started_at", "finished_at", "created_by"])
    if enqueue:
        transaction.on_commit(functools.partial(campaign_scoring_enqueue, scoring=scoring))
    return scoring


def campaign_scoring_enqueue(*, scoring: CampaignScoring) -> None:
    from rlhf_export.tasks import score_campaign  # noqa: PLC0415 (tasks import this module)

    score_campaign.apply_async(args=[scoring.pk], queue=settings.TRAINING_SCORE_QUEUE)


def _claim_scoring(scoring_id: int) -> CampaignScoring | None:
    with transaction.atomic():
        scoring = CampaignScoring.objects.select_for_update(of=("self",)).select_related("run", "campaign").get(pk=scoring_id)
        if scoring.is_done:
            return None
        scoring.status, scoring.attempt, scoring.started_at = CampaignScoring.Status.RUNNING, scoring.attempt + 1, timezone.now()
        scoring.save(update_fields=["status", "attempt", "started_at"])
    return scoring


def storage_download_prefix(prefix: str, dest: Path) -> Path:
    """Every object under a storage prefix, as files under `dest` (local storage: the folder itself)."""
    s = storage.store()
    if not storage.is_s3():
        folder = Path(s.location) / prefix
        if not folder.is_dir():
            raise FileNotFoundError(f"nothing stored under {prefix}")
        return folder
    found = False
    for obj in s.bucket.objects.filter(Prefix=prefix):
        target = dest / obj.key[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        s.bucket.download_file(obj.key, str(target))
        found = True
    if not found:
        raise FileNotFoundError(f"nothing stored under {prefix}")
    return dest


def _local_audio(key: str, scratch: Path) -> str:
    if not storage.is_s3():
        return str(Path(storage.store().location) / key)
    path = scratch / key
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(storage.read(key))
    return str(path)


def campaign_scoring_run(*, scoring_id: int) -> CampaignScoring:
    """Load the reward model, score every candidate of the campaign's items (text and, for an
    audio-aware model, reply audio), store the scores, the RM-versus-human agreement and each
    item's uncertainty. Idempotent: a done scoring is left alone; scores are upserted."""
    scoring = _claim_scoring(scoring_id)
    if scoring is None:
        return CampaignScoring.objects.get(pk=scoring_id)
    run, campaign = scoring.run, scoring.campaign
    try:
        from rlhf_export.training.reward_model import (  # noqa: PLC0415 (torch only where scoring runs)
            item_uncertainty,
            load_reward_model,
            score_candidates,
        )

        with tempfile.TemporaryDirectory(prefix="auralign-score-") as scratch:
            folder = storage_download_prefix(run.prefix + "checkpoint/", Path(scratch) / "checkpoint")
            model = load_reward_model(str(folder))
            links = list(
                ItemCandidate.objects.filter(item__campaign=campaign)
                .select_related("item", "candidate__audio")
                .order_by("item_id", "position")
            )
            candidates = {link.candidate_id: link.candidate for link in links}
            prompts = {
                d: [{"role": role, "content": text} for role, text in turns]
                for d, turns in _dialogue_turns({c.dialogue_id for c in candidates.values()}).items()
            }
            ordered = list(candidates.values())
            rows = [
                {
                    "prompt": prompts.get(c.dialogue_id, []),
                    "reply_text": c.reply_text,
                    "reply_audio": _local_audio(c.audio.key, Path(scratch)) if model.audio_encoder is not None and c.audio_id else None,
                }
                for c in ordered
            ]
            scores = score_candidates(model, rows) if rows else []
            by_candidate = dict(zip((c.pk for c in ordered), scores, strict=True))
            uncertain = item_uncertainty(
                [str(link.item.uuid) for link in links], [by_candidate[link.candidate_id]["overall"] for link in links], model
            ) if links else []
        with transaction.atomic():
            CandidateScore.objects.filter(run=run, candidate__campaign=campaign).delete()
            CandidateScore.objects.bulk_create(
                [CandidateScore(run=run, candidate_id=pk, overall=s["overall"], criteria=s["criteria"]) for pk, s in by_candidate.items()],
                batch_size=1000,
            )
            agreement = rm_agreement(
                judgments=Judgment.objects.filter(campaign=campaign, item__is_gold=False, item__is_honeypot=False)
                .values_list("ranking", "scores"),
                rm={str(candidates[pk].uuid): s for pk, s in by_candidate.items()},
            )
            CampaignScoring.objects.filter(pk=scoring.pk).update(
                status=CampaignScoring.Status.SUCCEEDED, candidates_scored=len(by_candidate), agreement=agreement,
                uncertain=[{"item": item, "uncertainty": round(u, 6)} for item, u in uncertain], error="",
                finished_at=timezone.now(),
            )
    except Exception as exc:
        logger.exception("scoring campaign %s with run %s failed", campaign.uuid, run.uuid)
        CampaignScoring.objects.filter(pk=scoring.pk).update(
            status=CampaignScoring.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000], finished_at=timezone.now()
        )
    return CampaignScoring.objects.get(pk=scoring.pk)


def _dialogue_turns(dialogue_ids: set[int]) -> dict[int, list[tuple[str, str]]]:
    turns: dict[int, list[tuple[str, str]]] = {}
    for dialogue_id, role, text in Turn.objects.filter(dialogue_id__in=dialogue_ids).order_by("dialogue_id", "index").values_list(
        "dialogue_id", "role", "text"
    ):
        turns.setdefault(dialogue_id, []).append((role, text))
    return turns


def rm_agreement(*, judgments: Iterable[tuple[list, dict]], rm: dict[str, dict]) -> dict:
    """How often the reward model orders a pair of candidates as the humans did.

    Overall: every pair of candidates an annotator put in different tiers of one judgment; the
    model agrees when it scores the preferred one higher (a tie in its scores counts one half).
    Per criterion: every pair the annotator scored differently on it, against the model's head for
    that criterion. `rm`: candidate uuid → {"overall", "criteria": {key: score}}."""
    overall = [0.0, 0]
    criteria: dict[str, list] = {}
    count = 0

    def tally(bucket: list, better: float, worse: float) -> None:
        bucket[0] += 1.0 if better > worse else 0.5 if better == worse else 0.0
        bucket[1] += 1

    for ranking, human in judgments:
        count += 1
        tier = {c: t for t, members in enumerate(ranking or []) for c in members if c in rm}
        for a, b in itertools.combinations(sorted(tier), 2):
            if tier[a] != tier[b]:
                better, worse = (a, b) if tier[a] < tier[b] else (b, a)
                tally(overall, rm[better]["overall"], rm[worse]["overall"])
            for key in rm[a]["criteria"].keys() & rm[b]["criteria"].keys():
                ha, hb = (human or {}).get(a, {}).get(key), (human or {}).get(b, {}).get(key)
                if ha is None or hb is None or ha == hb:
                    continue
                better, worse = (a, b) if ha > hb else (b, a)
                tally(criteria.setdefault(key, [0.0, 0]), rm[better]["criteria"][key], rm[worse]["criteria"][key])

    def figure(bucket: list) -> dict:
        return {"agreement": bucket[0] / bucket[1] if bucket[1] else None, "pairs": bucket[1]}

    return {"overall": figure(overall), "criteria": {k: figure(v) for k, v in sorted(criteria.items())}, "judgments": count}


def items_prioritise(*, scoring: CampaignScoring, n: int, user: User | None) -> list[Item]:
    """Serve the `n` open items the reward model is least sure of before the others: their
    `priority` becomes 1 + uncertainty (the assignment engine serves higher priority first among
    items equally close to completion). Only the campaign's lead may. Returns them, least certain first."""
    campaign = scoring.campaign
    if user is not None and Membership.Role.LEAD not in campaign_roles(user=user, campaign=campaign):
        raise Forbidden("only a lead of the campaign may reorder its annotation queue")
    if scoring.status != CampaignScoring.Status.SUCCEEDED:
        raise Conflict(f"the scoring is {scoring.status}; prioritise once it succeeded")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PRIORITISE:
        raise ServiceError(f"must be a whole number from 1 to {MAX_PRIORITISE}", field="n")
    uncertainty = {row["item"]: row["uncertainty"] for row in scoring.uncertain}
    with transaction.atomic():
        open_items = list(
            Item.objects.select_for_update(no_key=True)
            .filter(campaign=campaign, uuid__in=list(uncertainty), is_gold=False, is_honeypot=False, completed_at__isnull=True)
            .filter(slots_used__lt=F("overlap"))
            .order_by("id")
        )
        chosen = sorted(open_items, key=lambda item: (-uncertainty[str(item.uuid)], item.pk))[:n]
        for item in chosen:
            item.priority = 1.0 + uncertainty[str(item.uuid)]
            Item.objects.filter(pk=item.pk).update(priority=item.priority)
    return chosen
