"""The production shape, for real: PostgreSQL, Redis, SeaweedFS, a Django-free GPU worker process
(`celery -A worker.app`) and a platform worker process (`celery -A config.celery_app`)."""

from __future__ import annotations

import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from auralign.annotation.models import Item
from auralign.campaigns.models import Campaign
from auralign.core import storage
from auralign.generation.models import Candidate, GenerationTask
from auralign.generation.services import campaign_launch, generation_reconcile
from tests import services
from tests.platform.generation.conftest import import_dialogues, make_policy

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

DIALOGUES, SAMPLES = 5, 2


@pytest.fixture
def platform_broker(redis_url):
    """Point this test process's Celery app (which sends launches and re-dispatches) at Redis."""
    with services.platform_broker(redis_url, {"visibility_timeout": 3600}):
        yield


@dataclass
class Stack:
    gpu_env: dict
    cpu_env: dict
    gpu_queue: str
    logs: object

    def start_gpu(self, name: str = "gpu"):
        return services.start_celery_worker(app="worker.app", queues=self.gpu_queue, env=self.gpu_env, logfile=self.logs / f"{name}.log")

    def start_both(self):
        with ThreadPoolExecutor(2) as pool:
            cpu = pool.submit(
                services.start_celery_worker, app="config.celery_app", queues=self.cpu_env["GENERATION_INGEST_QUEUE"],
                env=self.cpu_env, logfile=self.logs / "cpu.log",
            )
            gpu = pool.submit(self.start_gpu)
            return cpu.result(), gpu.result()


@pytest.fixture
def stack(postgres, redis_url, s3_settings, platform_broker, settings, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    settings.GENERATION_GPU_QUEUE = f"gpu-{suffix}"
    settings.GENERATION_INGEST_QUEUE = f"cpu-{suffix}"
    common = {**s3_settings.env(), "CELERY_BROKER_URL": redis_url, "HF_HUB_OFFLINE": "1"}
    return Stack(
        # the GPU worker's unacknowledged job comes back 5 s after its worker died
        gpu_env=services.django_free_env({**common, "CELERY_VISIBILITY_TIMEOUT": "5"}),
        cpu_env=services.platform_env(
            {**common, "GENERATION_GPU_QUEUE": settings.GENERATION_GPU_QUEUE,
             "GENERATION_INGEST_QUEUE": settings.GENERATION_INGEST_QUEUE}
        ),
        gpu_queue=settings.GENERATION_GPU_QUEUE,
        logs=tmp_path,
    )


@pytest.fixture
def campaign(make_campaign, causal_lm, people):
    dialogues = import_dialogues("e2e", DIALOGUES, people["lead"])
    policies = [make_policy(name, causal_lm, user=people["lead"]) for name in ("alpha", "beta")]
    return make_campaign([(p, SAMPLES) for p in policies], dialogues=dialogues)


def _wait(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _audio_objects(s3) -> int:
    client = s3.client()
    return sum(page.get("KeyCount", 0) for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix="audio/"))


def _assert_every_candidate_once(campaign):
    candidates = Candidate.objects.filter(campaign=campaign)
    keys = list(candidates.values_list("dialogue_id", "policy_id", "sample_index"))
    assert len(keys) == len(set(keys)) == DIALOGUES * 2 * SAMPLES
    for c in candidates.select_related("audio", "raw_audio"):
        assert storage.exists(c.audio.key) and storage.exists(c.raw_audio.key)
    assert set(GenerationTask.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"succeeded"}
    assert Item.objects.filter(campaign=campaign).count() == DIALOGUES * SAMPLES  # 2 policies x n, K = 2: n pairs


def test_sigkill_mid_job_and_restart_every_candidate_exists_exactly_once(stack, campaign, s3_settings):
    cpu, gpu = stack.start_both()
    try:
        baseline = _audio_objects(s3_settings)
        campaign_launch(campaign=campaign)
        _wait(lambda: _audio_objects(s3_settings) > baseline, 180, "the first reply audio upload", interval=0.02)
        os.killpg(gpu.pid, signal.SIGKILL)  # mid-job: replies are being uploaded, nothing is ingested yet
        gpu.wait(timeout=10)
        assert GenerationTask.objects.filter(campaign=campaign, status="dispatched").exists()
        time.sleep(6)  # past the visibility timeout: the restarted worker gets the job back
        gpu = stack.start_gpu("gpu-restarted")
        _wait(lambda: Campaign.objects.get(pk=campaign.pk).status == "annotating", 300, "the campaign to be annotating")
    finally:
        services.stop_process(gpu)
        services.stop_process(cpu)
    _assert_every_candidate_once(campaign)
    assert set(GenerationTask.objects.values_list("attempts", flat=True)) == {1}  # the broker redelivered it


def test_a_lost_job_is_re_dispatched_by_reconcile(stack, campaign, redis_url, settings):
    cpu = services.start_celery_worker(
        app="config.celery_app", queues=settings.GENERATION_INGEST_QUEUE, env=stack.cpu_env, logfile=stack.logs / "cpu.log"
    )
    gpu = None
    try:
        campaign_launch(campaign=campaign)
        _wait(lambda: not GenerationTask.objects.filter(campaign=campaign, status="pending").exists(), 120, "dispatch")
        redis.Redis.from_url(redis_url).delete(stack.gpu_queue)  # the broker lost the jobs
        GenerationTask.objects.filter(campaign=campaign).update(dispatched_at=timezone.now() - timedelta(hours=3))
        assert generation_reconcile()["requeued"] == DIALOGUES * 2
        gpu = stack.start_gpu()
        _wait(lambda: Campaign.objects.get(pk=campaign.pk).status == "annotating", 300, "the campaign to be annotating")
    finally:
        if gpu is not None:
            services.stop_process(gpu)
        services.stop_process(cpu)
    _assert_every_candidate_once(campaign)
    assert set(GenerationTask.objects.values_list("attempts", flat=True)) == {2}
