"""Training runs on S3 (SeaweedFS): the job names s3:// locations, the trainer writes the run's
folder to the bucket, the platform reads live metrics, registers the result and scores a
campaign from the checkpoint in the bucket."""

import pytest

from rlhf_export.models import CampaignScoring, TrainingRun
from rlhf_export.services import (
    campaign_scoring_run,
    training_job,
    training_run_create,
    training_run_refresh,
    training_run_register,
)
from rlhf_export.training import tasks
from rlhf_export.training.tasks import run_job
from tests.rlhf_export.conftest import FAST_RM, judged_campaign, trainable_snapshot

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def test_a_run_on_s3_trains_into_the_bucket_and_scores_from_it(s3_settings, monkeypatch, tiny_lm):
    for name, value in s3_settings.env().items():  # what a Django-free worker reads
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(tasks, "LIVE_SYNC_SECONDS", 0.0)
    judged = judged_campaign(dialogues=6, k=3)
    snapshot = trainable_snapshot(judged)
    run = training_run_create(user=judged.trainer, snapshot=snapshot, kind="reward_model",
                              base_model={"path": str(tiny_lm)}, config=FAST_RM, dispatch=False)
    job = training_job(run=run)
    bucket = s3_settings.bucket
    assert (job["snapshot"], job["output"]) == (f"s3://{bucket}/exports/{snapshot.uuid}/", f"s3://{bucket}/runs/{run.uuid}/")

    seen = []

    def platform_polls(record):  # the status endpoint, while the trainer runs
        seen.append(training_run_refresh(run=TrainingRun.objects.get(pk=run.pk)).status)

    result = run_job(job, platform_polls)
    assert result["status"] == "ok", result["error"]
    assert "running" in seen
    run = training_run_register(result=result)
    assert run.checkpoint == f"s3://{bucket}/runs/{run.uuid}/checkpoint"
    assert len(run.metrics) == len([line for line in open_metrics(s3_settings, run) if line])

    scoring = CampaignScoring.objects.create(run=run, campaign=judged.campaign)
    done = campaign_scoring_run(scoring_id=scoring.pk)
    assert done.status == "succeeded", done.error
    assert done.candidates_scored == 6 * 3


def open_metrics(server, run) -> list[bytes]:
    body = server.client().get_object(Bucket=server.bucket, Key=f"runs/{run.uuid}/metrics.jsonl")["Body"].read()
    return body.splitlines()
