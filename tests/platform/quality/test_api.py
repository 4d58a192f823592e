"""The quality API: who sees which figure, parameter checks, and the lead's actions."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from auralign.accounts.services import api_token_create
from auralign.quality.models import CampaignQuality
from auralign.quality.services import quality_recompute, quality_schedule_recompute
from tests.factories import make_campaign, make_items, make_judgment, make_user

pytestmark = pytest.mark.django_db

FIGURES = ["quality", "quality/progress", "quality/agreement", "quality/flags", "quality/leaderboard", "quality/items"]


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def judged():
    """A campaign with a lead, a trainer, two annotators, judgments and computed figures."""
    lead, trainer = make_user(is_lead=True), make_user()
    annotators = [make_user("ann-a"), make_user("ann-b")]
    campaign = make_campaign(lead=lead, annotators=annotators, trainers=[trainer], dialogues=3)
    for item in make_items(campaign):
        for user in annotators:
            make_judgment(item, user)
    quality_recompute(campaign_id=campaign.pk)
    return campaign, lead, trainer, annotators


def url(campaign, tail):
    return f"/api/v1/campaigns/{campaign.uuid}/{tail}"


@pytest.mark.parametrize("tail", [*FIGURES, "quality/annotators"])
def test_annotators_get_403_on_every_quality_figure(judged, tail):
    campaign, _, _, annotators = judged
    assert api_for(annotators[0]).get(url(campaign, tail)).status_code == 403


@pytest.mark.parametrize("tail", [*FIGURES, "quality/annotators", "items"])
def test_non_members_get_404(judged, tail):
    campaign, *_ = judged
    assert api_for(make_user()).get(url(campaign, tail)).status_code == 404


@pytest.mark.parametrize("tail", FIGURES)
def test_trainers_read_every_figure(judged, tail):
    campaign, _, trainer, _ = judged
    assert api_for(trainer).get(url(campaign, tail)).status_code == 200


def test_trainers_do_not_see_the_annotator_table(judged):
    campaign, _, trainer, _ = judged
    assert api_for(trainer).get(url(campaign, "quality/annotators")).status_code == 403


def test_leads_see_annotators_by_name_with_their_stats(judged):
    campaign, lead, _, _ = judged
    body = api_for(lead).get(url(campaign, "quality/annotators")).json()
    assert [a["username"] for a in body["annotators"]] == ["ann-a", "ann-b"]
    assert body["annotators"][0]["judgments"] == 3 and not body["stale"]


def test_no_figure_names_an_annotator(judged):
    campaign, _, trainer, _ = judged
    for tail in FIGURES:
        assert "ann-a" not in api_for(trainer).get(url(campaign, tail)).content.decode()


def test_a_read_only_token_reads_the_leaderboard(judged):
    campaign, _, trainer, _ = judged
    _, secret = api_token_create(user=trainer, name="ci", read_only=True, campaigns=[campaign])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    body = api.get(url(campaign, "quality/leaderboard?view=criterion.correctness&min_weight=0.5")).json()
    assert body["view"] == "criterion.correctness" and len(body["board"]["policies"]) == 2
    assert api.post(url(campaign, "quality/recompute")).status_code == 403


def test_leaderboard_rejects_an_unknown_view_and_threshold(judged):
    campaign, lead, _, _ = judged
    api = api_for(lead)
    assert "view" in api.get(url(campaign, "quality/leaderboard?view=nope")).json()
    assert "min_weight" in api.get(url(campaign, "quality/leaderboard?min_weight=0.3")).json()


def test_figures_report_staleness_after_a_new_judgment(judged):
    campaign, lead, _, _ = judged
    item = campaign.items.first()
    make_judgment(item, make_user())
    assert api_for(lead).get(url(campaign, "quality")).json()["stale"] is True


def test_recompute_is_queued_once_until_it_runs(judged, django_capture_on_commit_callbacks, settings):
    campaign, lead, _, _ = judged
    with django_capture_on_commit_callbacks() as callbacks:
        first = api_for(lead).post(url(campaign, "quality/recompute"))
        second = api_for(lead).post(url(campaign, "quality/recompute"))
    assert (first.status_code, first.json(), second.json()) == (202, {"queued": True}, {"queued": False})
    assert len(callbacks) == 1


def test_the_queued_recompute_runs_the_task_and_clears_the_flag(judged, django_capture_on_commit_callbacks):
    from config.celery_app import app

    campaign, _, _, annotators = judged
    make_judgment(campaign.items.last(), make_user())
    with django_capture_on_commit_callbacks() as callbacks:
        assert quality_schedule_recompute(campaign.pk)
    _ = app.conf.broker_url  # load the app's configuration first, or it would override the line below
    app.conf.task_always_eager = True
    try:
        callbacks[0]()
    finally:
        app.conf.task_always_eager = False
    row = CampaignQuality.objects.get(campaign=campaign)
    assert (row.scheduled_at, row.judgment_count) == (None, 7)


def test_lead_marks_an_item_gold_and_annotators_cannot(judged):
    campaign, lead, _, annotators = judged
    item = campaign.items.first()
    x, y = [str(c.uuid) for c in item.candidates.order_by("item_links__position")]
    assert api_for(annotators[0]).put(url(campaign, f"items/{item.uuid}/gold"), {"ranking": [[y], [x]]}, format="json").status_code == 403
    response = api_for(lead).put(url(campaign, f"items/{item.uuid}/gold"), {"ranking": [[y], [x]]}, format="json")
    assert response.status_code == 200 and response.json()["gold_ranking"] == [[y], [x]]


def test_gold_with_a_foreign_candidate_is_a_400_naming_the_field(judged):
    campaign, lead, _, _ = judged
    item = campaign.items.first()
    response = api_for(lead).put(url(campaign, f"items/{item.uuid}/gold"), {"pairs": [["a", "b"]]}, format="json")
    assert response.status_code == 400 and "pairs" in response.json()


def test_gold_import_endpoint_marks_items(judged):
    campaign, lead, _, _ = judged
    item = campaign.items.first()
    x, y = [str(c.uuid) for c in item.candidates.order_by("item_links__position")]
    upload = SimpleUploadedFile("gold.jsonl", json.dumps({"item": str(item.uuid), "ranking": [[x], [y]]}).encode())
    response = api_for(lead).post(url(campaign, "gold/import"), {"file": upload}, format="multipart")
    assert (response.status_code, response.json()) == (201, {"marked": 1})


def test_honeypots_endpoint_plants_degraded_items(judged):
    campaign, lead, _, _ = judged
    response = api_for(lead).post(url(campaign, "honeypots"), {"count": 2, "kinds": ["clipping"]}, format="json")
    assert response.status_code == 201
    items = response.json()["items"]
    assert len(items) == 2 and all(i["is_honeypot"] for i in items)
    assert all(sum(c["degradation"] is not None for c in i["candidates"]) == 1 for i in items)


def test_recompute_due_queues_only_campaigns_whose_figures_lag(judged, django_capture_on_commit_callbacks):
    from auralign.quality.tasks import recompute_due

    fresh, *_ = judged
    lagging = make_campaign(annotators=[make_user()], dialogues=1)
    make_judgment(make_items(lagging)[0], lagging.memberships.get(role="annotator").user)
    make_campaign(dialogues=1)  # no judgments: nothing to compute
    with django_capture_on_commit_callbacks():
        assert recompute_due() == [lagging.pk]
    assert CampaignQuality.objects.get(campaign=lagging).scheduled_at is not None
    assert CampaignQuality.objects.get(campaign=fresh).scheduled_at is None
