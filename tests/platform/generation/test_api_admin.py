import pytest
from rest_framework.test import APIClient

from auralign.generation.models import GenerationTask
from auralign.generation.services import campaign_launch, generation_dispatch
from tests.platform.generation.conftest import make_policy, sample_and_ingest


@pytest.fixture
def campaign(make_campaign, causal_lm, people):
    return make_campaign([(make_policy("alpha", causal_lm, user=people["lead"]), 1), (make_policy("beta", causal_lm, user=people["lead"]), 1)])


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_lead_launches_and_gets_progress(campaign, people):
    response = _client(people["lead"]).post(f"/api/v1/campaigns/{campaign.uuid}/launch")
    assert response.status_code == 202
    assert response.json()["status"] == "sampling"
    assert response.json()["tasks"] == {"total": 6, "pending": 6, "dispatched": 0, "succeeded": 0, "failed": 0}


def test_launching_a_launched_campaign_is_409(campaign, people):
    campaign_launch(campaign=campaign)
    response = _client(people["lead"]).post(f"/api/v1/campaigns/{campaign.uuid}/launch")
    assert response.status_code == 409


@pytest.mark.parametrize(("who", "status"), [("annotator", 403), ("trainer", 403), ("outsider", 404)])
def test_only_leads_launch(campaign, people, who, status):
    assert _client(people[who]).post(f"/api/v1/campaigns/{campaign.uuid}/launch").status_code == status
    assert not GenerationTask.objects.exists()


def test_trainer_reads_progress_per_policy(campaign, people):
    campaign_launch(campaign=campaign)
    generation_dispatch(campaign=campaign)
    sample_and_ingest(campaign)
    body = _client(people["trainer"]).get(f"/api/v1/campaigns/{campaign.uuid}/progress").json()
    assert body["status"] == "annotating" and body["fraction_done"] == 1.0
    assert body["samples"] == {"expected": 6, "done": 6} and body["items"] == 3
    assert [(p["name"], p["samples_done"]) for p in body["policies"]] == [("alpha", 3), ("beta", 3)]


def test_annotators_never_see_progress_or_policies(campaign, people):
    campaign_launch(campaign=campaign)
    assert _client(people["annotator"]).get(f"/api/v1/campaigns/{campaign.uuid}/progress").status_code == 403


def test_retry_needs_a_sampling_campaign(campaign, people):
    response = _client(people["lead"]).post(f"/api/v1/campaigns/{campaign.uuid}/sampling/retry")
    assert response.status_code == 409


def test_admin_shows_progress_and_candidates_with_audio(campaign, people, client):
    campaign_launch(campaign=campaign)
    generation_dispatch(campaign=campaign)
    sample_and_ingest(campaign)
    people["lead"].is_staff = people["lead"].is_superuser = True
    people["lead"].save()
    client.force_login(people["lead"])
    page = client.get("/admin/generation/samplingprogress/").content.decode()
    assert "annotating 6/6 tasks, 6/6 samples, 3 items" in page
    page = client.get("/admin/generation/candidate/").content.decode()
    assert page.count("<audio controls") == 6
