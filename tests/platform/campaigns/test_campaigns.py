import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from auralign.campaigns.models import Campaign, CampaignPolicy, Membership
from auralign.campaigns.services import campaign_transition
from auralign.core.errors import Conflict
from tests.factories import make_campaign, make_dialogue_set, make_policy, make_rubric, make_user

pytestmark = pytest.mark.django_db


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def lead():
    return make_user(is_lead=True)


def create_payload(**extra) -> dict:
    rubric = make_rubric(slug="demo")
    ds = make_dialogue_set(2)
    return {
        "name": "round 1",
        "rubric": f"{rubric.rubric.slug}@1",
        "dialogue_set": str(ds.uuid),
        "policies": [{"policy": str(make_policy("p-a").uuid), "samples": 1}, {"policy": str(make_policy("p-b").uuid), "samples": 2}],
        "candidates_per_item": 3,
        **extra,
    }


def test_lead_creates_a_draft_campaign_and_becomes_its_lead(lead):
    response = api_for(lead).post("/api/v1/campaigns", create_payload(), format="json")
    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get(uuid=response.json()["id"])
    assert campaign.status == "draft" and campaign.rubric_version.is_frozen
    assert Membership.objects.filter(campaign=campaign, user=lead, role="lead").exists()
    assert sorted(response.json()["policies"], key=lambda p: p["name"])[1]["samples"] == 2


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"candidates_per_item": 7}, "candidates_per_item"),
        ({"candidates_per_item": 4}, "candidates_per_item"),  # only 3 candidates per dialogue
        ({"gold_rate": 1.5}, "gold_rate"),
        ({"lease_seconds": 5}, "lease_seconds"),
        ({"reasoning_display": "sideways"}, "reasoning_display"),
        ({"rubric": "nope@1"}, "rubric"),
        ({"policies": []}, "policies"),
    ],
)
def test_bad_campaign_settings_are_400_naming_the_field(lead, extra, field):
    response = api_for(lead).post("/api/v1/campaigns", create_payload(**extra), format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Campaign.objects.exists()


def test_annotators_cannot_create_campaigns():
    response = api_for(make_user()).post("/api/v1/campaigns", create_payload(), format="json")
    assert response.status_code == 403


def test_settings_are_editable_only_in_draft(lead):
    campaign = make_campaign(lead=lead, status="annotating")
    api = api_for(lead)
    response = api.patch(f"/api/v1/campaigns/{campaign.uuid}", {"gold_rate": 0.2}, format="json")
    assert response.status_code == 409
    assert api.patch(f"/api/v1/campaigns/{campaign.uuid}", {"description": "now"}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("start", "to", "allowed"),
    [
        ("draft", "sampling", True), ("draft", "annotating", False), ("sampling", "annotating", True),
        ("annotating", "paused", True), ("paused", "annotating", True), ("paused", "completed", True),
        ("annotating", "completed", True), ("completed", "annotating", False), ("sampling", "draft", False),
    ],
)
def test_status_machine(start, to, allowed):
    campaign = make_campaign(status=start)
    if allowed:
        assert campaign_transition(campaign=campaign, to=to).status == to
    else:
        with pytest.raises(Conflict):
            campaign_transition(campaign=campaign, to=to)
        campaign.refresh_from_db()
        assert campaign.status == start


def test_database_refuses_k_outside_2_to_6():
    campaign = make_campaign()
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(candidates_per_item=9)


def test_database_refuses_the_same_policy_twice():
    campaign = make_campaign()
    policy = campaign.campaign_policies.first().policy
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignPolicy.objects.create(campaign=campaign, policy=policy)


def test_annotators_see_campaigns_without_policies():
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator])
    body = api_for(annotator).get(f"/api/v1/campaigns/{campaign.uuid}").json()
    assert "policies" not in body and "dialogue_set" not in body
    assert [c["id"] for c in api_for(annotator).get("/api/v1/campaigns").json()] == [str(campaign.uuid)]


def test_non_members_get_404():
    campaign = make_campaign()
    assert api_for(make_user()).get(f"/api/v1/campaigns/{campaign.uuid}").status_code == 404


def test_annotators_cannot_edit_or_manage_members():
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator], status="draft")
    api = api_for(annotator)
    assert api.patch(f"/api/v1/campaigns/{campaign.uuid}", {"name": "x"}, format="json").status_code == 403
    assert api.get(f"/api/v1/campaigns/{campaign.uuid}/members").status_code == 403


def test_lead_manages_the_annotator_pool(lead):
    campaign = make_campaign(lead=lead)
    newcomer = make_user("newcomer")
    api = api_for(lead)
    assert api.post(f"/api/v1/campaigns/{campaign.uuid}/members", {"username": "newcomer", "role": "annotator"}, format="json").status_code == 201
    assert api.delete(f"/api/v1/campaigns/{campaign.uuid}/members/newcomer/annotator").status_code == 204
    assert not Membership.objects.get(user=newcomer).active
    response = api.post(f"/api/v1/campaigns/{campaign.uuid}/members", {"username": "ghost", "role": "annotator"}, format="json")
    assert response.status_code == 400 and response.json() == {"username": ["no active user 'ghost'"]}


def test_pause_and_resume_through_the_api(lead):
    campaign = make_campaign(lead=lead, status="annotating")
    api = api_for(lead)
    assert api.post(f"/api/v1/campaigns/{campaign.uuid}/status", {"status": "paused"}, format="json").json()["status"] == "paused"
    assert api.post(f"/api/v1/campaigns/{campaign.uuid}/status", {"status": "annotating"}, format="json").status_code == 200
    response = api.post(f"/api/v1/campaigns/{campaign.uuid}/status", {"status": "sampling"}, format="json")
    assert response.status_code == 400
