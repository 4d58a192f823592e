"""Sampling, platform side: launch a campaign into generation tasks (the database is the truth),
dispatch them as JSON jobs to the GPU queue chained to ingest, ingest results idempotently,
form items once a dialogue's candidates are complete, and reconcile what was lost.

The flow of one task: pending → dispatched (a job is on the queue; `attempts` counts dispatches)
→ succeeded | failed. A worker that dies or a lost message leaves a task dispatched; reconcile
puts it back to pending after GENERATION_DISPATCH_TIMEOUT_S, and fails it after
GENERATION_MAX_ATTEMPTS dispatches. A result that comes back twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from auralign.annotation.models import Item, ItemCandidate
from auralign.campaigns.models import Campaign
from auralign.campaigns.services import campaign_transition
from auralign.core import storage
from auralign.core.errors import Conflict
from auralign.dialogues.models import Dialogue, Turn
from auralign.generation.balance import balanced_subsets
from auralign.generation.models import Candidate, GenerationTask
from auralign.media.services import audio_asset_from_info
from auralign.policies.models import Policy
from worker import schemas

log = logging.getLogger(__name__)
Status = GenerationTask.Status
IN_FLIGHT = (Status.PENDING, Status.DISPATCHED)


def _seed(*parts: object) -> int:
    """A stable base seed per (campaign, dialogue, policy): re-dispatching samples the same seeds."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x3FFFFFFF


# --- launch -------------------------------------------------------------------------------------
@transaction.atomic
def campaign_launch(*, campaign: Campaign) -> Campaign:
    """draft → sampling, with one generation task per (dialogue, policy); dispatch follows commit."""
    campaign = campaign_transition(campaign=campaign, to=Campaign.Status.SAMPLING)
    dialogues = list(Dialogue.objects.filter(dialogue_set=campaign.dialogue_set).values_list("pk", "uuid"))
    entries = list(campaign.campaign_policies.select_related("policy"))
    GenerationTask.objects.bulk_create(
        [
            GenerationTask(
                campaign=campaign, dialogue_id=pk, policy=cp.policy, samples=cp.samples_per_dialogue,
                base_seed=_seed(campaign.uuid, d_uuid, cp.policy.uuid),
            )
            for pk, d_uuid in dialogues
            for cp in entries
        ],
        batch_size=1000,
    )
    _dispatch_after_commit(campaign)
    return campaign


# --- dispatch -----------------------------------------------------------------------------------
def _dispatch_after_commit(campaign: Campaign) -> None:
    """Queue the dispatch task (building many jobs does not belong in a web request)."""
    from auralign.generation.tasks import dispatch  # noqa: PLC0415 (tasks import services)

    transaction.on_commit(lambda: dispatch.apply_async(args=[campaign.pk], queue=settings.GENERATION_INGEST_QUEUE))


def _turns(dialogue_ids: list[int]) -> dict[int, list[dict]]:
    turns: dict[int, list[dict]] = defaultdict(list)
    for t in Turn.objects.filter(dialogue_id__in=dialogue_ids).select_related("audio").order_by("dialogue_id", "index"):
        turns[t.dialogue_id].append({"role": t.role, "text": t.text, "audio_key": t.audio.key if t.audio_id else None})
    return turns


def build_job(*, job_id: uuid.UUID, campaign: Campaign, policy: Policy, tasks: list[GenerationTask]) -> dict:
    """The sampling job for a batch of one policy's tasks (docs/formats.md)."""
    turns = _turns([t.dialogue_id for t in tasks])
    return {
        "schema": schemas.JOB_SCHEMA_ID,
        "job_id": str(job_id),
        "policy": policy.job_spec(),
        "audio": {"sample_rate": campaign.sample_rate, "target_lufs": campaign.target_lufs},
        "tasks": [
            {
                "task_id": t.pk,
                "dialogue_id": str(t.dialogue.uuid),
                "turns": turns[t.dialogue_id],
                "samples": [{"index": i, "seed": t.base_seed + i} for i in range(t.samples)],
            }
            for t in tasks
        ],
    }


def _send(job: dict, queue: str) -> None:
    from config.celery_app import app  # noqa: PLC0415

    # a chain: the sample task's result is the ingest task's argument. A message still unconsumed
    # when reconcile would re-dispatch it expires instead of running twice.
    sample = app.signature("auralign.worker.sample", args=[job], queue=queue, expires=settings.GENERATION_DISPATCH_TIMEOUT_S)
    ingest = app.signature("auralign.generation.ingest", queue=settings.GENERATION_INGEST_QUEUE)
    (sample | ingest).apply_async()


def _send_all(jobs: list[tuple[dict, str]]) -> None:
    for job, queue in jobs:
        try:
            _send(job, queue)
        except Exception:  # broker down: back to pending, the next reconcile dispatches again
            log.exception("could not send sampling job %s", job["job_id"])
            GenerationTask.objects.filter(job_id=job["job_id"], status=Status.DISPATCHED).update(
                status=Status.PENDING, job_id=None, attempts=F("attempts") - 1
            )


def generation_dispatch(*, campaign: Campaign) -> int:
    """Send the campaign's pending tasks as jobs (GENERATION_JOB_DIALOGUES dialogues of one policy
    per job), keeping at most GENERATION_MAX_JOBS_IN_FLIGHT jobs on the queues. Returns jobs sent."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)  # one dispatcher per campaign
        if campaign.status != Campaign.Status.SAMPLING:
            return 0
        in_flight = (
            GenerationTask.objects.filter(campaign=campaign, status=Status.DISPATCHED).values("job_id").distinct().count()
        )
        budget = settings.GENERATION_MAX_JOBS_IN_FLIGHT - in_flight
        if budget <= 0:
            return 0
        size = settings.GENERATION_JOB_DIALOGUES
        pending = list(
            GenerationTask.objects.filter(campaign=campaign, status=Status.PENDING)
            .select_related("policy", "dialogue")
            .order_by("policy_id", "id")[: budget * size]
        )
        by_policy: dict[int, list[GenerationTask]] = defaultdict(list)
        for task in pending:
            by_policy[task.policy_id].append(task)
        jobs: list[tuple[dict, str]] = []
        now = timezone.now()
        for tasks in by_policy.values():
            for start in range(0, len(tasks), size):
                if len(jobs) >= budget:
                    break
                chunk = tasks[start : start + size]
                policy = chunk[0].policy
                job_id = uuid.uuid4()
                job = build_job(job_id=job_id, campaign=campaign, policy=policy, tasks=chunk)
                ids = [t.pk for t in chunk]
                try:
                    schemas.check_job(job)
                except schemas.SchemaError as exc:  # e.g. a policy edited into an invalid state
                    GenerationTask.objects.filter(pk__in=ids).update(
                        status=Status.FAILED, error=str(exc), finished_at=now, attempts=F("attempts") + 1
                    )
                    continue
                GenerationTask.objects.filter(pk__in=ids).update(
                    status=Status.DISPATCHED, job_id=job_id, dispatched_at=now, attempts=F("attempts") + 1, error=""
                )
                jobs.append((job, policy.config.get("queue") or settings.GENERATION_GPU_QUEUE))
        transaction.on_commit(lambda: _send_all(jobs))
    return len(jobs)


# --- ingest -------------------------------------------------------------------------------------
@dataclass
class IngestReport:
    created: int = 0
    duplicates: int = 0
    succeeded: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    ignored: list[int] = field(default_factory=list)


def _missing_audio(candidates: list[dict]) -> str | None:
    for c in candidates:
        for info in (c["audio"], c["raw_audio"]):
            if info is not None and not storage.exists(info["key"]):
                return (
                    f"sample {c['sample_index']}: reply audio {info['key']} is not in the platform's object storage "
                    "(do the worker and the platform use the same AURALIGN_STORAGE / S3_* settings?)"
                )
    return None


def _ingest_task(task_result: dict, job_id: str, policy_uuid: str, report: IngestReport) -> GenerationTask | None:
    with transaction.atomic():
        task = (
            GenerationTask.objects.select_for_update()
            .select_related("policy", "dialogue", "campaign")
            .filter(pk=task_result["task_id"])
            .first()
        )
        if task is None or str(task.policy.uuid) != policy_uuid or str(task.dialogue.uuid) != task_result["dialogue_id"]:
            log.warning("ingest: result for unknown task %s (job %s) ignored", task_result["task_id"], job_id)
            report.ignored.append(task_result["task_id"])
            return None
        if task.status == Status.SUCCEEDED:
            report.duplicates += len(task_result["candidates"])
            return None
        now = timezone.now()
        if task_result["status"] == "failed":
            if str(task.job_id) != job_id:  # a late failure of an older dispatch; the newer one decides
                report.ignored.append(task.pk)
                return None
            GenerationTask.objects.filter(pk=task.pk).update(status=Status.FAILED, error=task_result["error"], finished_at=now)
            report.failed.append(task.pk)
            return task
        candidates = [c for c in task_result["candidates"] if c["sample_index"] < task.samples]
        problem = _missing_audio(candidates)
        got = {c["sample_index"] for c in candidates}
        if problem is None and got != set(range(task.samples)):
            problem = f"the result holds samples {sorted(got)} of {task.samples}"
        if problem:
            GenerationTask.objects.filter(pk=task.pk).update(status=Status.FAILED, error=problem, finished_at=now)
            report.failed.append(task.pk)
            return task
        for c in candidates:
            _, created = Candidate.objects.get_or_create(
                campaign=task.campaign, dialogue=task.dialogue, policy=task.policy, sample_index=c["sample_index"],
                defaults={
                    "seed": c["seed"],
                    "params": c["params"],
                    # untrusted model text: PostgreSQL cannot store NUL characters
                    "reasoning": c["reasoning"].replace("\x00", ""),
                    "reply_text": c["reply_text"].replace("\x00", ""),
                    "stats": c["stats"],
                    "audio": audio_asset_from_info(info=c["audio"]) if c["audio"] else None,
                    "raw_audio": audio_asset_from_info(info=c["raw_audio"]) if c["raw_audio"] else None,
                },
            )
            report.created += created
            report.duplicates += not created
        GenerationTask.objects.filter(pk=task.pk).update(status=Status.SUCCEEDED, error="", finished_at=now)
        report.succeeded.append(task.pk)
        return task


def ingest_result(*, result: dict) -> IngestReport:
    """Store a sampling result. Idempotent: candidates are unique per (campaign, dialogue, policy,
    sample index), and a task that already succeeded ignores later results."""
    schemas.check_result(result)
    report = IngestReport()
    touched: dict[int, tuple[Campaign, set[int]]] = {}
    for task_result in result["tasks"]:
        task = _ingest_task(task_result, result["job_id"], result["policy_id"], report)
        if task is not None:
            touched.setdefault(task.campaign_id, (task.campaign, set()))[1].add(task.dialogue_id)
    for campaign, dialogue_ids in touched.values():
        for dialogue_id in sorted(dialogue_ids):
            items_form_for_dialogue(campaign=campaign, dialogue_id=dialogue_id)
        campaign_sampling_finish(campaign=campaign)
        generation_dispatch(campaign=campaign)
    return report


# --- items --------------------------------------------------------------------------------------
def items_form_for_dialogue(*, campaign: Campaign, dialogue_id: int) -> list[Item]:
    """Once none of the dialogue's tasks is in flight, group its candidates into items of K
    (balanced subsets when there are more than K). Runs once per dialogue; with fewer than K
    candidates (failed tasks) the dialogue gets no item."""
    with transaction.atomic():
        tasks = list(GenerationTask.objects.select_for_update().filter(campaign=campaign, dialogue_id=dialogue_id))
        if not tasks or any(t.status in IN_FLIGHT for t in tasks):
            return []
        if Item.objects.filter(campaign=campaign, dialogue_id=dialogue_id, is_gold=False, is_honeypot=False).exists():
            return []
        candidates = list(
            Candidate.objects.filter(campaign=campaign, dialogue_id=dialogue_id, honeypot_of__isnull=True)
            .order_by("policy_id", "sample_index")
            .values_list("pk", "policy_id")
        )
        groups = balanced_subsets(candidates, campaign.candidates_per_item, seed=_seed(campaign.uuid, dialogue_id))
        items = []
        for group in groups:
            item = Item.objects.create(campaign=campaign, dialogue_id=dialogue_id, overlap=campaign.judgments_per_item)
            ItemCandidate.objects.bulk_create(
                [ItemCandidate(item=item, candidate_id=c, position=i) for i, c in enumerate(group)]
            )
            items.append(item)
        return items


def campaign_sampling_finish(*, campaign: Campaign) -> bool:
    """sampling → annotating once no task is in flight and there is something to annotate. A
    campaign whose tasks all failed stays in sampling, its failures visible in the progress."""
    campaign.refresh_from_db(fields=["status"])
    if campaign.status != Campaign.Status.SAMPLING:
        return False
    if GenerationTask.objects.filter(campaign=campaign, status__in=IN_FLIGHT).exists():
        return False
    if not Item.objects.filter(campaign=campaign, is_gold=False, is_honeypot=False).exists():
        return False
    try:
        campaign_transition(campaign=campaign, to=Campaign.Status.ANNOTATING)
    except Conflict:  # another ingest finished it first
        return False
    return True


# --- failures and reconcile ---------------------------------------------------------------------
@transaction.atomic
def generation_retry_failed(*, campaign: Campaign) -> int:
    """Put the campaign's failed tasks back to pending (after fixing a policy, say); returns how many."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.SAMPLING:
        raise Conflict(f"campaign is {campaign.status}; failed sampling can only be retried while sampling")
    count = GenerationTask.objects.filter(campaign=campaign, status=Status.FAILED).update(
        status=Status.PENDING, attempts=0, error="", job_id=None, finished_at=None
    )
    _dispatch_after_commit(campaign)
    return count


def generation_reconcile() -> dict:
    """Periodic repair (beat): tasks dispatched longer ago than GENERATION_DISPATCH_TIMEOUT_S go
    back to pending (their message was lost or their worker died), or fail after
    GENERATION_MAX_ATTEMPTS dispatches; complete dialogues get their items; campaigns are topped
    up with new jobs and moved on when done."""
    now = timezone.now()
    stale = GenerationTask.objects.filter(
        status=Status.DISPATCHED, dispatched_at__lt=now - timedelta(seconds=settings.GENERATION_DISPATCH_TIMEOUT_S)
    )
    exhausted = stale.filter(attempts__gte=settings.GENERATION_MAX_ATTEMPTS).update(
        status=Status.FAILED,
        finished_at=now,
        error=f"no result after {settings.GENERATION_MAX_ATTEMPTS} dispatches of "
        f"{settings.GENERATION_DISPATCH_TIMEOUT_S} s each (worker died or message lost every time)",
    )
    requeued = stale.filter(attempts__lt=settings.GENERATION_MAX_ATTEMPTS).update(status=Status.PENDING, job_id=None)
    sent = 0
    for campaign in Campaign.objects.filter(status=Campaign.Status.SAMPLING):
        settled = (
            GenerationTask.objects.filter(campaign=campaign)
            .values("dialogue_id")
            .annotate(busy=Count("id", filter=Q(status__in=IN_FLIGHT)))
            .filter(busy=0)
            .values("dialogue_id")
        )
        itemless = (
            Candidate.objects.filter(campaign=campaign, honeypot_of__isnull=True, dialogue_id__in=settled)
            .exclude(dialogue_id__in=Item.objects.filter(campaign=campaign, is_gold=False, is_honeypot=False).values("dialogue_id"))
            .values("dialogue_id")
            .annotate(n=Count("id"))
            .filter(n__gte=campaign.candidates_per_item)
            .values_list("dialogue_id", flat=True)
        )
        for dialogue_id in list(itemless):
            items_form_for_dialogue(campaign=campaign, dialogue_id=dialogue_id)
        campaign_sampling_finish(campaign=campaign)
        sent += generation_dispatch(campaign=campaign)
    return {"requeued": requeued, "failed": exhausted, "jobs_sent": sent}
