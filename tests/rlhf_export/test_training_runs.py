"""Training runs on the platform: the status machine, what creating one checks (nothing stored
on error), who may see and start runs, registering results (idempotent), live metrics and the
reconcile of lost runs."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from auralign.accounts.services import api_token_create
from auralign.core.errors import Conflict, NotFound, ServiceError
from auralign.policies.models import Policy
from rlhf_export.models import ExportSnapshot, TrainingRun
from rlhf_export.services import (
    snapshot_create,
    storage_location,
    training_job,
    training_run_create,
    training_run_refresh,
    training_run_register,
    training_runs_reconcile,
)
from rlhf_export.training.common import RunLog
from tests.factories import make_campaign, make_policy, make_user
from tests.rlhf_export.conftest import FAST_RM, export, judged_campaign

pytestmark = pytest.mark.django_db
Status = TrainingRun.Status


def session(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def snapshot(judged) -> ExportSnapshot:
    return export(judged, "pairwise")


def rm_run(judged, snapshot, **options) -> TrainingRun:
    values = {"kind": "reward_model", "base_model": {"path": "/models/backbone"}, "config": dict(FAST_RM), "dispatch": False}
    return training_run_create(user=judged.trainer, snapshot=snapshot, **{**values, **options})


def ok_result(run: TrainingRun, **extra) -> dict:
    """An `auralign.train_result/1` as docs/formats.md describes it."""
    return {
        "schema": "auralign.train_result/1", "run_id": str(run.uuid), "kind": run.kind, "status": "ok", "error": None,
        "metrics": {"kind": run.kind, "steps": 2, "eval": {"accuracy": 0.75, "loss": 0.5, "pairs": 8}},
        "artifacts": [{"path": "checkpoint/config.json", "sha256": "0" * 64, "bytes": 10}],
        "checkpoint": storage_location(run.prefix + "checkpoint"), **extra,
    }


# --- the status machine ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("start", "allowed"),
    [("queued", {"running", "succeeded", "failed"}), ("running", {"succeeded", "failed"}), ("succeeded", set()), ("failed", set())],
)
def test_a_run_moves_only_forward(start, allowed):
    run = TrainingRun(status=start)
    assert {s for s in Status.values if run.can_become(s)} == allowed


def test_a_succeeded_run_needs_a_checkpoint_in_the_database(judged, snapshot):
    run = rm_run(judged, snapshot)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingRun.objects.filter(pk=run.pk).update(status="succeeded")


def test_a_failed_run_needs_its_error_in_the_database(judged, snapshot):
    run = rm_run(judged, snapshot)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingRun.objects.filter(pk=run.pk).update(status="failed")


def test_registering_a_result_twice_changes_nothing_the_second_time(judged, snapshot):
    run = rm_run(judged, snapshot)
    first = training_run_register(result=ok_result(run))
    again = training_run_register(result={**ok_result(run), "status": "failed", "error": "late duplicate"})
    assert first.status == again.status == Status.SUCCEEDED
    run.refresh_from_db()
    assert (run.status, run.error, run.results["eval"]["accuracy"]) == (Status.SUCCEEDED, "", 0.75)
    assert run.artifacts == [{"path": "checkpoint/config.json", "sha256": "0" * 64, "bytes": 10, "key": f"runs/{run.uuid}/checkpoint/config.json"}]


def test_a_failed_result_fails_the_run_with_its_error(judged, snapshot):
    run = rm_run(judged, snapshot)
    training_run_register(result={**ok_result(run), "status": "failed", "error": "ValueError: no training examples", "checkpoint": None})
    run.refresh_from_db()
    assert (run.status, run.error) == (Status.FAILED, "ValueError: no training examples")


def test_a_dpo_result_registers_exactly_one_policy_even_when_delivered_twice(judged, snapshot):
    parent = make_policy(checkpoint="/models/smol", gguf_file="smol.gguf", system_prompt="Be warm.")
    run = training_run_create(user=judged.trainer, snapshot=snapshot, kind="dpo", base_policy=parent, config={"lora": True}, dispatch=False)
    assert run.base_model == {"path": "/models/smol", "gguf_file": "smol.gguf"}
    training_run_register(result=ok_result(run))
    training_run_register(result=ok_result(run))
    policy = Policy.objects.get(produced_by_run=run)
    assert Policy.objects.filter(parent=parent).count() == 1
    assert policy.config == {"checkpoint": storage_location(run.prefix + "checkpoint"), "system_prompt": "Be warm."}


def test_a_result_that_is_not_a_training_result_is_refused():
    with pytest.raises(ValueError, match="auralign.train_result/1"):
        training_run_register(result={"schema": "auralign.sample_result/1"})


# --- creating a run: one test per kind of bad input; nothing is stored --------------------------

def refused(judged, snapshot, **options) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        rm_run(judged, snapshot, **options)
    assert not TrainingRun.objects.exists()
    return caught.value


def test_an_unfinished_snapshot_is_refused(judged):
    pending = snapshot_create(user=judged.trainer, campaigns=[judged.campaign], kind="pairwise", enqueue=False)
    error = refused(judged, pending)
    assert (error.field, "pending" in error.message) == ("snapshot", True)


def test_a_pointwise_snapshot_is_refused(judged):
    error = refused(judged, export(judged, "pointwise"))
    assert error.field == "snapshot" and "pointwise snapshot cannot be trained" in error.message


def test_an_unknown_config_option_is_refused_by_name(judged, snapshot):
    error = refused(judged, snapshot, config={"learning_rate": 0.1})
    assert (error.field, error.message) == ("config.learning_rate", "unknown RMConfig option 'learning_rate' (see docs/training.md)")


def test_a_config_value_of_the_wrong_type_is_refused(judged, snapshot):
    error = refused(judged, snapshot, config={"epochs": "three"})
    assert error.field == "config.epochs" and "must be a float" in error.message


def test_a_config_value_out_of_range_is_refused(judged, snapshot):
    assert refused(judged, snapshot, config={"lr": -1.0}).field == "config.lr"


def test_a_config_value_the_trainer_rejects_is_refused(judged, snapshot):
    error = refused(judged, snapshot, config={"ties": "coin_flip"})
    assert error.field == "config.ties" and "ties must be one of" in error.message


def test_an_option_the_run_sets_itself_is_refused(judged, snapshot):
    assert refused(judged, snapshot, config={"out": "/tmp/elsewhere"}).field == "config.out"


def test_a_dpo_option_is_refused_for_a_reward_model(judged, snapshot):
    assert refused(judged, snapshot, config={"beta": 0.2}).field == "config.beta"


def test_a_reward_model_without_a_backbone_is_refused(judged, snapshot):
    assert refused(judged, snapshot, base_model=None).field == "base_model"


def test_dpo_without_a_base_policy_is_refused(judged, snapshot):
    assert refused(judged, snapshot, kind="dpo", base_model=None).field == "base_policy"


def test_dpo_of_an_endpoint_policy_is_refused(judged, snapshot):
    endpoint = Policy.objects.create(name="vllm", backend="openai", config={"base_url": "http://x", "model": "m"})
    error = refused(judged, snapshot, kind="dpo", base_model=None, base_policy=endpoint)
    assert error.field == "base_policy" and "needs an hf checkpoint" in error.message


def test_a_produced_policy_name_that_is_taken_is_refused(judged, snapshot):
    parent = make_policy(name="taken")
    assert refused(judged, snapshot, kind="dpo", base_model=None, base_policy=parent, policy_name="taken").field == "policy_name"


def test_an_unknown_kind_is_refused(judged, snapshot):
    assert refused(judged, snapshot, kind="ppo").field == "kind"


def test_a_user_who_is_not_trainer_of_every_campaign_is_refused(db):
    a, b = judged_campaign(dialogues=2), judged_campaign(dialogues=2)
    lead = make_user(is_lead=True)
    for judged in (a, b):
        judged.campaign.memberships.create(user=lead, role="lead")
    both = snapshot_create(user=lead, campaigns=[a.campaign, b.campaign], kind="pairwise", enqueue=False)
    from rlhf_export.services import snapshot_run

    both = snapshot_run(snapshot_id=both.pk)
    with pytest.raises(NotFound):
        training_run_create(user=a.trainer, snapshot=both, kind="reward_model", base_model={"path": "/m"}, dispatch=False)
    assert not TrainingRun.objects.exists()


# --- the API: permissions and errors -------------------------------------------------------------

def post_run(api, snapshot, **body):
    return api.post(
        "/api/v1/training-runs",
        {"snapshot": str(snapshot.uuid), "kind": "reward_model", "base_model": {"path": "/models/backbone"}, **body},
        format="json",
    )


def test_a_trainer_creates_a_queued_run_over_the_api(judged, snapshot, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_run(session(judged.trainer), snapshot, config={"epochs": 2})
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "queued" and len(callbacks) == 1  # the dispatch, after commit
    run = TrainingRun.objects.get(uuid=response.json()["id"])
    assert training_job(run=run) == {
        "schema": "auralign.train_job/1", "run_id": str(run.uuid), "kind": "reward_model",
        "snapshot": storage_location(f"exports/{snapshot.uuid}/"), "base_model": {"path": "/models/backbone", "gguf_file": None},
        "audio_encoder": None, "config": {"epochs": 2}, "output": storage_location(f"runs/{run.uuid}/"),
    }


def test_the_api_names_the_bad_config_option(judged, snapshot):
    response = post_run(session(judged.trainer), snapshot, config={"nope": 1})
    assert response.status_code == 400 and "config.nope" in response.json()


def test_an_annotator_cannot_start_a_run(judged, snapshot):
    response = post_run(session(judged.annotators[0]), snapshot)
    assert response.status_code == 404 and not TrainingRun.objects.exists()


def test_a_read_only_token_cannot_start_a_run(judged, snapshot):
    _, secret = api_token_create(user=judged.trainer, name="pull", read_only=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert post_run(api, snapshot).status_code == 403


def test_annotators_and_non_members_do_not_see_runs(judged, snapshot):
    run = rm_run(judged, snapshot)
    for user in (judged.annotators[0], make_user()):
        api = session(user)
        assert api.get(f"/api/v1/training-runs/{run.uuid}").status_code == 404
        assert api.get(f"/api/v1/training-runs/{run.uuid}/metrics").status_code == 404
        assert api.get("/api/v1/training-runs").json() == []
    assert [r["id"] for r in session(judged.lead).get("/api/v1/training-runs").json()] == [str(run.uuid)]


def test_only_the_campaign_lead_may_prioritise(judged, snapshot):
    from rlhf_export.models import CampaignScoring

    run = rm_run(judged, snapshot)
    training_run_register(result=ok_result(run))
    CampaignScoring.objects.create(run=run, campaign=judged.campaign, status="succeeded",
                                   uncertain=[{"item": str(judged.items[0].uuid), "uncertainty": 0.9}])
    body = {"campaign": str(judged.campaign.uuid), "n": 1}
    assert session(judged.trainer).post(f"/api/v1/training-runs/{run.uuid}/prioritise", body, format="json").status_code == 403
    response = session(judged.lead).post(f"/api/v1/training-runs/{run.uuid}/prioritise", body, format="json")
    assert response.status_code == 200 and response.json()["items"] == []  # every item of `judged` is complete


def test_scoring_needs_a_succeeded_reward_model(judged, snapshot):
    run = rm_run(judged, snapshot)
    response = session(judged.trainer).post(f"/api/v1/training-runs/{run.uuid}/score", {"campaign": str(judged.campaign.uuid)}, format="json")
    assert response.status_code == 409


def test_scoring_a_campaign_the_user_cannot_export_is_refused(judged, snapshot):
    run = rm_run(judged, snapshot)
    training_run_register(result=ok_result(run))
    other = make_campaign()
    response = session(judged.trainer).post(f"/api/v1/training-runs/{run.uuid}/score", {"campaign": str(other.uuid)}, format="json")
    assert response.status_code == 404


# --- live metrics and reconcile ---------------------------------------------------------------------

def test_metrics_written_by_the_trainer_show_the_run_running(judged, snapshot):
    run = rm_run(judged, snapshot)
    log = RunLog(Path(run.output))  # the trainer's own metrics log, at the run's output location
    log.log({"split": "train", "step": 1, "total_steps": 4, "loss": 0.7, "accuracy": 0.5})
    run = training_run_refresh(run=run)
    assert run.status == Status.RUNNING and run.started_at is not None
    log.log({"split": "train", "step": 2, "total_steps": 4, "loss": 0.6, "accuracy": 0.6})
    body = session(judged.trainer).get(f"/api/v1/training-runs/{run.uuid}/metrics").json()
    assert [r["step"] for r in body["metrics"]] == [1, 2]
    assert body["series"]["train_loss"] == [{"x": 1, "y": 0.7}, {"x": 2, "y": 0.6}]


def test_live_metrics_never_reopen_a_finished_run(judged, snapshot):
    run = rm_run(judged, snapshot)
    training_run_register(result=ok_result(run))
    RunLog(Path(run.output)).log({"split": "train", "step": 9, "loss": 0.1})
    run.refresh_from_db()
    assert training_run_refresh(run=run).status == Status.SUCCEEDED


@pytest.fixture
def train_queue(redis_url):
    """This process's Celery app on a private Redis database; yields a function that reads the
    messages waiting on the `train` queue."""
    import redis

    from tests import services

    with services.private_broker(redis_url, 11) as url:
        client = redis.Redis.from_url(url)
        yield lambda: [json.loads(m) for m in client.lrange("train", 0, -1)]
    client.flushdb()


def test_reconcile_sends_a_run_whose_message_was_lost(judged, snapshot, train_queue):
    run = rm_run(judged, snapshot)  # stored, never sent: as if the broker lost it
    TrainingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert training_runs_reconcile()["redispatched"] == 1
    run.refresh_from_db()
    (message,) = train_queue()
    assert message["headers"]["task"] == "auralign.train.run" and message["headers"]["id"] == run.celery_task_id
    assert run.attempts == 1 and run.status == Status.QUEUED
    assert training_runs_reconcile()["redispatched"] == 0  # just sent: not lost
    assert len(train_queue()) == 1


def test_reconcile_fails_a_run_no_worker_took(judged, snapshot, train_queue, settings):
    run = rm_run(judged, snapshot)
    TrainingRun.objects.filter(pk=run.pk).update(
        attempts=settings.TRAINING_MAX_ATTEMPTS, dispatched_at=timezone.now() - timedelta(seconds=settings.TRAINING_DISPATCH_TIMEOUT_S + 1)
    )
    assert training_runs_reconcile()["failed"] == 1
    run.refresh_from_db()
    assert run.status == Status.FAILED and "'train' queue" in run.error and train_queue() == []


def test_reconcile_fails_a_running_run_that_stopped_reporting(judged, snapshot, settings):
    quiet, busy = rm_run(judged, snapshot), rm_run(judged, snapshot)
    long_ago = timezone.now() - timedelta(seconds=settings.TRAINING_STALE_S + 60)
    TrainingRun.objects.filter(pk=quiet.pk).update(status=Status.RUNNING, started_at=long_ago, heartbeat_at=long_ago)
    TrainingRun.objects.filter(pk=busy.pk).update(status=Status.RUNNING, started_at=long_ago, heartbeat_at=timezone.now())
    assert training_runs_reconcile() == {"redispatched": 0, "failed": 1, "running": 1}
    quiet.refresh_from_db()
    assert quiet.status == Status.FAILED and "no progress reported for 6 h" in quiet.error


def test_a_conflicting_transition_is_refused(judged, snapshot):
    from rlhf_export.services import training_run_fail

    run = rm_run(judged, snapshot)
    training_run_register(result=ok_result(run))
    with pytest.raises(Conflict):
        training_run_fail(run=run, error="too late")
