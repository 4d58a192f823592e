"""Dispatched jobs run through the real worker (tiny model, espeak) and are ingested."""

import itertools

import pytest

from auralign.annotation.models import Item
from auralign.campaigns.models import Campaign
from auralign.core import storage
from auralign.generation.models import Candidate, GenerationTask
from auralign.generation.selectors import campaign_progress
from auralign.generation.services import campaign_launch, generation_dispatch, ingest_result
from tests.platform.generation.conftest import dispatched_jobs, make_policy, sample_and_ingest, worker_store
from worker.runner import run_job
from worker.storage import LocalStore


def _launch(campaign):
    campaign_launch(campaign=campaign)
    generation_dispatch(campaign=campaign)
    return campaign


@pytest.fixture
def two_policies(causal_lm, people):
    return make_policy("alpha", causal_lm, user=people["lead"]), make_policy("beta", causal_lm, user=people["lead"], system_prompt="Be terse.")


def test_candidates_audio_and_items_land_and_the_campaign_moves_to_annotating(make_campaign, two_policies):
    campaign = _launch(make_campaign([(two_policies[0], 1), (two_policies[1], 1)], overlap=3))
    sample_and_ingest(campaign)
    candidates = Candidate.objects.filter(campaign=campaign)
    assert candidates.count() == 6
    for c in candidates:
        assert c.reply_text and c.audio.sample_rate == 16000
        assert abs(c.audio.lufs + 20) < 0.5 or max(c.audio.peaks) > 0.88  # target loudness, or peak-limited
        assert storage.exists(c.audio.key) and storage.exists(c.raw_audio.key)
    items = Item.objects.filter(campaign=campaign)
    assert items.count() == 3 and set(items.values_list("overlap", flat=True)) == {3}
    for item in items:
        assert sorted(item.candidates.values_list("policy__name", flat=True)) == ["alpha", "beta"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.ANNOTATING
    assert set(GenerationTask.objects.values_list("status", flat=True)) == {"succeeded"}


def test_ingesting_the_same_result_twice_stores_nothing_twice(make_campaign, two_policies):
    campaign = _launch(make_campaign([(two_policies[0], 2), (two_policies[1], 1)]))
    results = sample_and_ingest(campaign)
    before = (Candidate.objects.count(), Item.objects.count())
    report = ingest_result(result=results[0])
    assert report.created == 0 and report.duplicates > 0
    assert (Candidate.objects.count(), Item.objects.count()) == before


def test_more_than_k_candidates_are_split_so_every_policy_pair_meets(make_campaign, causal_lm, people):
    policies = [make_policy(n, causal_lm, user=people["lead"]) for n in ("p1", "p2", "p3")]
    campaign = _launch(make_campaign([(p, 1) for p in policies], k=2))
    sample_and_ingest(campaign)
    for dialogue_id in Candidate.objects.values_list("dialogue_id", flat=True).distinct():
        items = Item.objects.filter(campaign=campaign, dialogue_id=dialogue_id)
        pairs = {frozenset(i.candidates.values_list("policy__name", flat=True)) for i in items}
        assert pairs == {frozenset(p) for p in itertools.combinations(["p1", "p2", "p3"], 2)}


def test_a_failing_policy_is_recorded_per_task_and_the_campaign_stays_in_sampling(make_campaign, causal_lm, mute_lm, people):
    good = make_policy("good", causal_lm, user=people["lead"])
    mute = make_policy("mute", mute_lm, user=people["lead"], min_new_tokens=0)
    campaign = _launch(make_campaign([(good, 1), (mute, 1)]))
    sample_and_ingest(campaign)
    failed = GenerationTask.objects.filter(campaign=campaign, status="failed")
    assert failed.count() == 3 and set(failed.values_list("policy__name", flat=True)) == {"mute"}
    assert "the model returned an empty reply" in failed.first().error
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SAMPLING  # 1 candidate per dialogue, K = 2: nothing to annotate
    progress = campaign_progress(campaign=campaign)
    assert progress["tasks"]["failed"] == 3 and progress["items"] == 0
    assert {f["policy"] for f in progress["failures"]} == {"mute"}


def test_a_missing_checkpoint_fails_every_task_with_the_reason(make_campaign, people, tmp_path):
    gone = make_policy("gone", tmp_path / "gone", user=people["lead"])
    campaign = _launch(make_campaign([(gone, 2)]))
    sample_and_ingest(campaign)
    errors = set(GenerationTask.objects.values_list("error", flat=True))
    assert errors == {f"checkpoint '{tmp_path / 'gone'}' does not exist on this worker"}


def test_a_late_failure_of_an_older_dispatch_does_not_override_the_current_one(make_campaign, two_policies):
    campaign = _launch(make_campaign([(two_policies[0], 1), (two_policies[1], 1)]))
    job = dispatched_jobs(campaign)[0]
    result = run_job(job, store=worker_store())
    stale = {**result, "job_id": "00000000-0000-0000-0000-000000000000",
             "tasks": [{**t, "status": "failed", "error": "old worker died", "candidates": []} for t in result["tasks"]]}
    ingest_result(result=stale)
    assert not GenerationTask.objects.filter(status="failed").exists()
    ingest_result(result=result)
    assert GenerationTask.objects.filter(pk=job["tasks"][0]["task_id"], status="succeeded").exists()


def test_audio_the_platform_cannot_see_fails_the_task_with_a_hint(make_campaign, two_policies, tmp_path):
    campaign = _launch(make_campaign([(two_policies[0], 1), (two_policies[1], 1)]))
    job = dispatched_jobs(campaign)[0]
    elsewhere = LocalStore(tmp_path / "other-store")
    for turn_key in {t["turns"][-1]["audio_key"] for t in job["tasks"]}:
        elsewhere.put(turn_key, worker_store().get(turn_key))
    ingest_result(result=run_job(job, store=elsewhere))
    task = GenerationTask.objects.get(pk=job["tasks"][0]["task_id"])
    assert task.status == "failed" and "same AURALIGN_STORAGE" in task.error
    assert not Candidate.objects.exists()


def test_nul_characters_in_a_result_are_not_stored(make_campaign, two_policies):
    campaign = _launch(make_campaign([(two_policies[0], 1), (two_policies[1], 1)]))
    result = run_job(dispatched_jobs(campaign)[0], store=worker_store())
    candidate = result["tasks"][0]["candidates"][0]
    candidate["reply_text"], candidate["reasoning"] = "hel\x00lo", "th\x00ink"
    ingest_result(result=result)
    stored = Candidate.objects.get(dialogue__uuid=result["tasks"][0]["dialogue_id"], sample_index=0)
    assert (stored.reply_text, stored.reasoning) == ("hello", "think")
