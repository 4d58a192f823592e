import pytest
from django.test import override_settings

from auralign.campaigns.models import Campaign
from auralign.core.errors import Conflict
from auralign.generation.models import GenerationTask
from auralign.generation.services import campaign_launch, generation_dispatch
from tests.platform.generation.conftest import dispatched_jobs, make_policy
from worker.schemas import check_job


@pytest.fixture
def two_policy_campaign(make_campaign, causal_lm, people):
    a = make_policy("alpha", causal_lm, user=people["lead"])
    b = make_policy("beta", causal_lm, user=people["lead"])
    return make_campaign([(a, 2), (b, 1)])


def test_launch_creates_one_task_per_dialogue_and_policy(two_policy_campaign):
    campaign = campaign_launch(campaign=two_policy_campaign)
    assert campaign.status == Campaign.Status.SAMPLING and campaign.launched_at
    tasks = GenerationTask.objects.filter(campaign=campaign)
    assert tasks.count() == 3 * 2
    assert sorted(tasks.values_list("policy__name", "samples").distinct()) == [("alpha", 2), ("beta", 1)]
    assert set(tasks.values_list("status", flat=True)) == {"pending"}


def test_launching_twice_is_a_conflict(two_policy_campaign):
    campaign_launch(campaign=two_policy_campaign)
    with pytest.raises(Conflict, match="cannot go from sampling to sampling"):
        campaign_launch(campaign=two_policy_campaign)


def test_seeds_are_stable_and_differ_per_task(two_policy_campaign):
    campaign_launch(campaign=two_policy_campaign)
    seeds = list(GenerationTask.objects.values_list("base_seed", flat=True))
    assert len(set(seeds)) == len(seeds)


@override_settings(GENERATION_JOB_DIALOGUES=2)
def test_dispatch_batches_dialogues_of_one_policy_per_job(two_policy_campaign):
    campaign_launch(campaign=two_policy_campaign)
    assert generation_dispatch(campaign=two_policy_campaign) == 4  # per policy: 2 + 1 dialogues
    jobs = dispatched_jobs(two_policy_campaign)
    assert sorted(len(j["tasks"]) for j in jobs) == [1, 1, 2, 2]
    assert all(len({t["dialogue_id"] for t in j["tasks"]}) == len(j["tasks"]) for j in jobs)
    assert set(GenerationTask.objects.values_list("attempts", flat=True)) == {1}


def test_a_job_carries_turn_audio_keys_seeds_and_the_campaign_audio_settings(two_policy_campaign):
    campaign_launch(campaign=two_policy_campaign)
    generation_dispatch(campaign=two_policy_campaign)
    job = next(j for j in dispatched_jobs(two_policy_campaign) if j["tasks"][0]["samples"][1:])
    check_job(job)
    task = job["tasks"][0]
    row = GenerationTask.objects.get(pk=task["task_id"])
    assert task["samples"] == [{"index": 0, "seed": row.base_seed}, {"index": 1, "seed": row.base_seed + 1}]
    assert task["turns"][-1]["audio_key"].startswith("audio/")
    assert job["audio"] == {"sample_rate": 16000, "target_lufs": -20.0}
    assert job["policy"]["config"]["checkpoint"]


@override_settings(GENERATION_MAX_JOBS_IN_FLIGHT=1, GENERATION_JOB_DIALOGUES=1)
def test_dispatch_keeps_at_most_the_in_flight_limit_on_the_queues(two_policy_campaign):
    campaign_launch(campaign=two_policy_campaign)
    assert generation_dispatch(campaign=two_policy_campaign) == 1
    assert generation_dispatch(campaign=two_policy_campaign) == 0
    assert GenerationTask.objects.filter(status="pending").count() == 5


def test_draft_campaigns_are_not_dispatched(two_policy_campaign):
    assert generation_dispatch(campaign=two_policy_campaign) == 0
