"""The training pages (annotator_ui/training): list + create form, detail with evaluation,
artifacts, produced policy, scorings and the prioritise button."""

import pytest

from rlhf_export.models import CampaignScoring, TrainingRun
from rlhf_export.services import storage_location, training_run_create, training_run_register
from tests.factories import make_policy
from tests.rlhf_export.conftest import export

pytestmark = pytest.mark.django_db


def result(run, **metrics) -> dict:
    return {
        "schema": "auralign.train_result/1", "run_id": str(run.uuid), "status": "ok", "error": None,
        "metrics": {"steps": 4, "train_seconds": 1.5, "eval": {"accuracy": 0.8125, "loss": 0.4, "pairs": 16,
                    "criteria": {"fluency": {"accuracy": 0.625, "pairs": 8}},
                    "calibration": {"ece": 0.05, "brier": 0.2, "bins": [{"p_mean": 0.6, "win_rate": 0.5, "count": 4}]}, **metrics}},
        "artifacts": [{"path": "metrics.json", "sha256": "a" * 64, "bytes": 3}],
        "checkpoint": storage_location(run.prefix + "checkpoint"),
    }


def test_the_form_starts_a_run_from_a_snapshot(judged, client, django_capture_on_commit_callbacks):
    snapshot = export(judged)
    client.force_login(judged.trainer)
    page = client.get(f"/training/?snapshot={snapshot.uuid}").content.decode()
    assert f'value="{snapshot.uuid}" selected' in page
    with django_capture_on_commit_callbacks():
        response = client.post("/training/", {"snapshot": str(snapshot.uuid), "kind": "reward_model",
                                              "base_model": "/models/backbone", "config": '{"epochs": 2}'})
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/training/{run.uuid}/"
    assert (run.config, run.base_model["path"], run.created_by) == ({"epochs": 2}, "/models/backbone", judged.trainer)


def test_the_form_names_the_bad_option_and_stores_nothing(judged, client):
    snapshot = export(judged)
    client.force_login(judged.trainer)
    page = client.post("/training/", {"snapshot": str(snapshot.uuid), "kind": "reward_model",
                                      "base_model": "/m", "config": '{"lr": "fast"}'}).content.decode()
    assert "config.lr: must be a float" in page and not TrainingRun.objects.exists()


def test_the_detail_page_shows_evaluation_artifacts_and_produced_policy(judged, client):
    snapshot = export(judged)
    parent = make_policy(checkpoint="/models/p")
    run = training_run_create(user=judged.trainer, snapshot=snapshot, kind="dpo", base_policy=parent, dispatch=False)
    training_run_register(result=result(run))
    client.force_login(judged.trainer)
    page = client.get(f"/training/{run.uuid}/").content.decode()
    assert 'data-status="succeeded"' in page and "0.813" in page and "ECE 0.050" in page
    assert f"/media/runs/{run.uuid}/metrics.json?" in page  # a signed download link
    assert run.produced_policy.name in page and "chart.umd.min.js" in page


def test_the_detail_page_shows_agreement_uncertain_items_and_prioritise_for_the_lead(judged, client):
    snapshot = export(judged)
    run = training_run_create(user=judged.trainer, snapshot=snapshot, kind="reward_model", base_model={"path": "/m"}, dispatch=False)
    training_run_register(result=result(run))
    CampaignScoring.objects.create(
        run=run, campaign=judged.campaign, status="succeeded", candidates_scored=12,
        agreement={"overall": {"agreement": 0.7, "pairs": 20}, "criteria": {"fluency": {"agreement": 0.55, "pairs": 10}}, "judgments": 8},
        uncertain=[{"item": str(judged.items[0].uuid), "uncertainty": 0.93}],
    )
    client.force_login(judged.trainer)
    page = client.get(f"/training/{run.uuid}/").content.decode()
    assert "0.700" in page and "0.930" in page and 'id="score-form"' in page
    assert 'class="inline prioritise"' not in page  # trainers score; leads reorder the queue
    client.force_login(judged.lead)
    assert 'class="inline prioritise"' in client.get(f"/training/{run.uuid}/").content.decode()


def test_annotators_get_404_for_a_run_page(judged, client):
    run = training_run_create(user=judged.trainer, snapshot=export(judged), kind="reward_model", base_model={"path": "/m"}, dispatch=False)
    client.force_login(judged.annotators[0])
    assert client.get(f"/training/{run.uuid}/").status_code == 404
    assert str(run.uuid)[:10] not in client.get("/training/").content.decode()
