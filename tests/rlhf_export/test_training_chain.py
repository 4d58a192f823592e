"""Training runs end to end on real worker processes: the API creates a run, the Django-free
training worker (`worker.app`, queue `train`) trains a tiny model, the platform worker (queue
`cpu`) registers the result; a DPO run becomes a policy the `hf` sampler loads; a reward model
scores a campaign. PostgreSQL shared with the workers, Redis as the broker."""

import time

import pytest
from rest_framework.test import APIClient

from auralign.generation.models import Candidate
from auralign.policies.models import Policy
from rlhf_export.models import CampaignScoring, CandidateScore, TrainingRun
from tests import services
from tests.factories import make_policy
from tests.rlhf_export.conftest import FAST_DPO, FAST_RM, judged_campaign, trainable_snapshot

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PRIVATE_REDIS_DB = "12"  # its own database: no other suite's workers see these jobs
ONE_THREAD = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture
def broker(redis_url):
    with services.private_broker(redis_url, PRIVATE_REDIS_DB) as url:
        yield url


@pytest.fixture
def workers(postgres, broker, settings, tmp_path):
    """The production shape: a Django-free training worker and a platform worker."""
    media = settings.STORAGES["default"]["OPTIONS"]["location"]
    storage_env = {"CELERY_BROKER_URL": broker, "AURALIGN_STORAGE": "local", "AURALIGN_MEDIA_ROOT": media, **ONE_THREAD}
    train = services.start_celery_worker(
        app="worker.app", queues="train", env=services.django_free_env(storage_env), logfile=tmp_path / "train.log"
    )
    try:
        cpu = services.start_celery_worker(
            app="config.celery_app", queues="cpu", env=services.platform_env(storage_env), logfile=tmp_path / "cpu.log"
        )
    except Exception:
        services.stop_process(train)
        raise
    yield tmp_path
    services.stop_process(cpu)
    services.stop_process(train)


def logs(folder) -> str:
    return "\n".join(f"--- {name}\n" + (folder / name).read_text()[-3000:] for name in ("train.log", "cpu.log"))


def wait_done(api: APIClient, run_id: str, folder, timeout: float = 300) -> dict:
    """Poll the metrics endpoint (what the UI does) until the run is done."""
    deadline = time.monotonic() + timeout
    seen_running = False
    while time.monotonic() < deadline:
        body = api.get(f"/api/v1/training-runs/{run_id}/metrics").json()
        seen_running |= body["status"] == "running"
        if body["status"] in ("succeeded", "failed"):
            return {**body, "seen_running": seen_running}
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} not done after {timeout} s\n{logs(folder)}")


def test_a_reward_model_trains_on_the_train_worker_and_scores_a_campaign(workers, tiny_lm):
    judged = judged_campaign(dialogues=6, k=3, annotators=2)
    snapshot = trainable_snapshot(judged)
    api = APIClient()
    api.force_authenticate(judged.trainer)
    response = api.post(
        "/api/v1/training-runs",
        {"snapshot": str(snapshot.uuid), "kind": "reward_model", "base_model": {"path": str(tiny_lm)}, "config": FAST_RM},
        format="json",
    )
    assert response.status_code == 201, response.json()
    run_id = response.json()["id"]
    done = wait_done(api, run_id, workers)
    assert done["status"] == "succeeded", (done["error"], logs(workers))
    run = TrainingRun.objects.get(uuid=run_id)
    assert [r["step"] for r in run.metrics if r["split"] == "train"] == list(range(1, run.results["steps"] + 1))
    assert done["series"]["train_loss"] and done["series"]["eval_accuracy"]
    assert {"metrics.jsonl", "metrics.json", "checkpoint/reward_model.json"} <= {a["path"] for a in run.artifacts}
    assert all(a["key"] == f"runs/{run.uuid}/{a['path']}" for a in run.artifacts)
    assert "auralign.training.register" in (workers / "cpu.log").read_text()

    response = api.post(f"/api/v1/training-runs/{run_id}/score", {"campaign": str(judged.campaign.uuid)}, format="json")
    assert response.status_code == 202, response.json()
    scoring = CampaignScoring.objects.get(run=run)
    deadline = time.monotonic() + 120
    while not scoring.is_done and time.monotonic() < deadline:
        time.sleep(0.5)
        scoring.refresh_from_db()
    assert scoring.status == "succeeded", (scoring.error, logs(workers))
    candidates = Candidate.objects.filter(campaign=judged.campaign).count()
    assert CandidateScore.objects.filter(run=run).count() == candidates == scoring.candidates_scored
    criteria = set(judged.campaign.rubric_version.criteria.values_list("key", flat=True))
    assert set(CandidateScore.objects.filter(run=run).first().criteria) == criteria
    # every judgment ranks 3 candidates: 3 strict pairs from annotator 0, 2 from annotator 1 (a tie)
    assert scoring.agreement["overall"]["pairs"] == 6 * (3 + 2)
    assert 0 <= scoring.agreement["overall"]["agreement"] <= 1
    assert sorted(r["item"] for r in scoring.uncertain) == sorted(str(i.uuid) for i in judged.items)
    detail = api.get(f"/api/v1/training-runs/{run_id}").json()
    assert detail["scorings"][0]["agreement"] == scoring.agreement


def test_a_dpo_run_registers_a_policy_the_hf_sampler_samples_from(workers, tiny_lm):
    from worker.samplers.base import GenerationParams, Prompt, SampleSpec, Turn
    from worker.samplers.hf import HFSampler

    judged = judged_campaign(dialogues=4, k=2, annotators=2)
    snapshot = trainable_snapshot(judged)
    parent = make_policy(checkpoint=str(tiny_lm), system_prompt="Be kind.")
    api = APIClient()
    api.force_authenticate(judged.trainer)
    response = api.post(
        "/api/v1/training-runs",
        {"snapshot": str(snapshot.uuid), "kind": "dpo", "base_policy": str(parent.uuid), "config": {**FAST_DPO, "lora": True, "lora_r": 4}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    done = wait_done(api, response.json()["id"], workers)
    assert done["status"] == "succeeded", (done["error"], logs(workers))
    run = TrainingRun.objects.get(uuid=response.json()["id"])
    policy = Policy.objects.get(produced_by_run=run)
    assert (policy.parent, policy.backend, policy.produced_by_run.snapshot) == (parent, "hf", snapshot)
    assert policy.config == {"checkpoint": run.checkpoint, "system_prompt": "Be kind."}
    assert (policy.generation, policy.tts) == (parent.generation, parent.tts)
    assert api.get(f"/api/v1/training-runs/{run.uuid}").json()["produced_policy"] == {"id": str(policy.uuid), "name": policy.name}

    sampler = HFSampler(policy.config)  # what a gpu worker does with the policy's job spec
    prompt = Prompt(turns=(Turn("system", "Be kind."), Turn("user", "tell me about the cat")))
    out = sampler.generate([prompt], [SampleSpec(prompt=0, index=0, seed=1)], GenerationParams(temperature=1.0, max_new_tokens=8, min_new_tokens=2))
    assert len(out) == 1 and out[0].new_tokens > 0
