from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from auralign.annotation.models import Item
from auralign.campaigns.models import Campaign
from auralign.generation.models import GenerationTask
from auralign.generation.services import (
    campaign_launch,
    generation_dispatch,
    generation_reconcile,
    generation_retry_failed,
)
from tests.platform.generation.conftest import make_policy, sample_and_ingest


@pytest.fixture
def campaign(make_campaign, causal_lm, people):
    a = make_policy("alpha", causal_lm, user=people["lead"])
    b = make_policy("beta", causal_lm, user=people["lead"])
    c = make_campaign([(a, 1), (b, 1)])
    campaign_launch(campaign=c)
    generation_dispatch(campaign=c)
    return c


def _age_dispatches(seconds: int) -> None:
    GenerationTask.objects.filter(status="dispatched").update(dispatched_at=timezone.now() - timedelta(seconds=seconds))


@override_settings(GENERATION_DISPATCH_TIMEOUT_S=600)
def test_a_lost_job_is_dispatched_again_under_a_new_job_id(campaign):
    old_jobs = set(GenerationTask.objects.values_list("job_id", flat=True))
    _age_dispatches(601)
    report = generation_reconcile()
    assert report["requeued"] == 6 and report["jobs_sent"] == 2
    tasks = GenerationTask.objects.all()
    assert set(tasks.values_list("status", "attempts")) == {("dispatched", 2)}
    assert not old_jobs & set(tasks.values_list("job_id", flat=True))


@override_settings(GENERATION_DISPATCH_TIMEOUT_S=600)
def test_a_recent_dispatch_is_left_alone(campaign):
    _age_dispatches(10)
    assert generation_reconcile()["requeued"] == 0


@override_settings(GENERATION_DISPATCH_TIMEOUT_S=600, GENERATION_MAX_ATTEMPTS=2)
def test_a_task_that_never_comes_back_fails_after_the_last_attempt(campaign):
    _age_dispatches(601)
    generation_reconcile()
    _age_dispatches(601)
    report = generation_reconcile()
    assert report["failed"] == 6
    task = GenerationTask.objects.first()
    assert task.status == "failed" and task.error.startswith("no result after 2 dispatches")


def test_reconcile_forms_items_an_interrupted_ingest_left_out(campaign):
    sample_and_ingest(campaign)
    Item.objects.all().delete()
    Campaign.objects.filter(pk=campaign.pk).update(status="sampling")
    generation_reconcile()
    campaign.refresh_from_db()
    assert Item.objects.filter(campaign=campaign).count() == 3
    assert campaign.status == Campaign.Status.ANNOTATING


def test_retry_failed_puts_failed_tasks_back_to_pending(campaign):
    GenerationTask.objects.update(status="failed", error="boom", attempts=3)
    assert generation_retry_failed(campaign=campaign) == 6
    assert set(GenerationTask.objects.values_list("status", "attempts", "error")) == {("pending", 0, "")}
