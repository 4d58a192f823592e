"""Lead pages, server side: access rules and the forms that drive the services."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from auralign.campaigns.models import Campaign, Membership
from auralign.quality.services import quality_recompute
from auralign.rubrics.models import Rubric
from tests.factories import (
    make_campaign,
    make_dialogue_set,
    make_items,
    make_judgment,
    make_policy,
    make_rubric,
    make_user,
)

pytestmark = pytest.mark.django_db


def client_for(client, user):
    client.force_login(user)
    return client


CAMPAIGN_PAGES = ["", "preview", "dashboard", "items"]


@pytest.mark.parametrize("page", CAMPAIGN_PAGES)
def test_campaign_pages_are_403_for_its_annotators_and_404_for_strangers(client, page):
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator])
    url = f"/lead/campaigns/{campaign.uuid}/{page}"
    assert client_for(client, annotator).get(url).status_code == 403
    assert client_for(client, make_user(is_lead=True)).get(url).status_code == 404


@pytest.mark.parametrize("page", CAMPAIGN_PAGES)
def test_campaign_pages_render_for_its_lead(client, page):
    lead = make_user(is_lead=True)
    campaign = make_campaign(lead=lead, annotators=[make_user()])
    make_items(campaign)
    response = client_for(client, lead).get(f"/lead/campaigns/{campaign.uuid}/{page}")
    assert response.status_code == 200
    assert campaign.name in response.content.decode()


@pytest.mark.parametrize("url", ["/lead/rubrics/", "/lead/rubrics/new", "/lead/policies/", "/lead/dialogue-sets/", "/lead/campaigns/new"])
def test_building_block_pages_are_for_leads_only(client, url):
    assert client_for(client, make_user()).get(url).status_code == 403


def test_lead_pages_need_a_login(client):
    assert client.get("/lead/").status_code == 302


def rubric_post(**overrides):
    data = {
        "slug": "tone", "name": "Tone", "instructions": "Listen.", "changelog": "",
        "criteria-TOTAL_FORMS": "1", "criteria-INITIAL_FORMS": "0", "criteria-MIN_NUM_FORMS": "1", "criteria-MAX_NUM_FORMS": "1000",
        "criteria-0-key": "warmth", "criteria-0-label": "Warmth", "criteria-0-guidance": "", "criteria-0-scale_min": "1",
        "criteria-0-scale_max": "3", "criteria-0-anchors": "1: cold\n3: warm", "criteria-0-weight": "2", "criteria-0-required": "on",
    }
    data.update(overrides)
    return data


def test_rubric_editor_creates_a_rubric_with_anchors_and_weights(client):
    response = client_for(client, make_user(is_lead=True)).post("/lead/rubrics/new", rubric_post())
    assert response.status_code == 302
    criterion = Rubric.objects.get(slug="tone").latest_version.criteria.get()
    assert (criterion.anchors, criterion.weight, criterion.scale_max) == ({"1": "cold", "3": "warm"}, 2.0, 3)


def test_rubric_editor_shows_a_service_error_on_the_criterion_field(client):
    response = client_for(client, make_user(is_lead=True)).post("/lead/rubrics/new", rubric_post(**{"criteria-0-key": "Bad Key"}))
    assert response.status_code == 200
    assert "must be lowercase letters" in response.content.decode()
    assert not Rubric.objects.filter(slug="tone").exists()


def test_editing_a_frozen_rubric_makes_a_new_version_and_the_diff_shows_it(client):
    lead = make_user(is_lead=True)
    version = make_rubric(slug="frozen-one", frozen=True)
    c = client_for(client, lead)
    data = rubric_post(**{"changelog": "warmer"})
    del data["slug"]
    assert c.post("/lead/rubrics/frozen-one/", data).status_code == 302
    assert list(version.rubric.versions.values_list("version", flat=True)) == [1, 2]
    diff = c.get("/lead/rubrics/frozen-one/diff?from=1&to=2").content.decode()
    assert "warmth" in diff and "correctness" in diff  # added and removed criteria


def campaign_post(rubric, ds, policies, **overrides):
    data = {
        "name": "round 1", "description": "", "instructions": "Be kind.", "rubric_version": rubric.pk, "dialogue_set": ds.pk,
        "reasoning_display": "collapsed", "candidates_per_item": 2, "judgments_per_item": 3, "lease_seconds": 600,
        "gold_rate": 0.1, "min_listened_fraction": 0.8, "sample_rate": 24000, "target_lufs": -20.0,
        "qualification_gold_items": 2, "qualification_min_accuracy": 0.75,
    }
    for p in policies:
        data[f"policy_{p.uuid}"] = "on"
        data[f"samples_{p.uuid}"] = 1
    data.update(overrides)
    return data


def test_campaign_form_previews_without_saving(client):
    lead = make_user(is_lead=True)
    rubric, ds, policies = make_rubric(), make_dialogue_set(2), [make_policy("secret-model-a"), make_policy("secret-model-b")]
    response = client_for(client, lead).post("/lead/campaigns/new", {**campaign_post(rubric, ds, policies), "preview": "1"})
    html = response.content.decode()
    assert response.status_code == 200 and not Campaign.objects.exists()
    assert "Reply A" in html and "Reply B" in html and "Be kind." in html
    assert "Wrong, irrelevant or ignores the question" in html  # an anchor of the rubric
    preview = html[html.index('aria-label="Annotator preview"'):]
    assert "secret-model" not in preview


def test_campaign_form_creates_a_draft_with_its_settings(client):
    lead = make_user(is_lead=True)
    rubric, ds, policies = make_rubric(), make_dialogue_set(2), [make_policy(), make_policy()]
    response = client_for(client, lead).post("/lead/campaigns/new", campaign_post(rubric, ds, policies))
    campaign = Campaign.objects.get(name="round 1")
    assert response.status_code == 302 and response["Location"] == f"/lead/campaigns/{campaign.uuid}/"
    assert (campaign.status, campaign.qualification_gold_items, campaign.campaign_policies.count()) == ("draft", 2, 2)


def test_campaign_form_puts_a_service_error_on_its_field(client):
    lead = make_user(is_lead=True)
    rubric, ds, policies = make_rubric(), make_dialogue_set(2), [make_policy()]
    response = client_for(client, lead).post("/lead/campaigns/new", campaign_post(rubric, ds, policies, candidates_per_item=3))
    assert response.status_code == 200 and "policies give 1 candidates per dialogue" in response.content.decode()


def test_lead_pauses_and_resumes_a_campaign(client):
    lead = make_user(is_lead=True)
    campaign = make_campaign(lead=lead)
    c = client_for(client, lead)
    c.post(f"/lead/campaigns/{campaign.uuid}/status", {"status": "paused"})
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    c.post(f"/lead/campaigns/{campaign.uuid}/status", {"status": "annotating"})
    campaign.refresh_from_db()
    assert campaign.status == "annotating"


def test_lead_adds_annotators_by_username_and_deactivates_one(client):
    lead, a, b = make_user(is_lead=True), make_user("alice"), make_user("bob")
    campaign = make_campaign(lead=lead)
    c = client_for(client, lead)
    c.post(f"/lead/campaigns/{campaign.uuid}/members/add", {"usernames": "alice\nbob\nnobody", "role": "annotator"})
    assert set(campaign.memberships.filter(role="annotator", active=True).values_list("user__username", flat=True)) == {"alice", "bob"}
    c.post(f"/lead/campaigns/{campaign.uuid}/members/remove", {"username": "bob", "role": "annotator"})
    assert not Membership.objects.get(campaign=campaign, user=b, role="annotator").active
    assert Membership.objects.get(campaign=campaign, user=a, role="annotator").active


def test_items_page_marks_gold_from_rank_numbers(client):
    lead = make_user(is_lead=True)
    campaign = make_campaign(lead=lead, dialogues=1)
    (item,) = make_items(campaign)
    x, y = [str(c.uuid) for c in item.candidates.order_by("item_links__position")]
    c = client_for(client, lead)
    c.post(f"/lead/campaigns/{campaign.uuid}/items", {"action": "gold", "item": str(item.uuid), f"tier_{x}": "2", f"tier_{y}": "1"})
    item.refresh_from_db()
    assert (item.is_gold, item.gold_ranking) == (True, [[y], [x]])
    page = c.get(f"/lead/campaigns/{campaign.uuid}/items?show=gold").content.decode()
    assert re.search(rf'name="tier_{x}"[^>]*\s+value="2"', page) and re.search(rf'name="tier_{y}"[^>]*\s+value="1"', page)


def test_items_page_imports_gold_and_plants_honeypots(client):
    lead = make_user(is_lead=True)
    campaign = make_campaign(lead=lead, dialogues=3)
    item = make_items(campaign)[0]
    x, y = [str(c.uuid) for c in item.candidates.order_by("item_links__position")]
    c = client_for(client, lead)
    upload = SimpleUploadedFile("gold.jsonl", json.dumps({"item": str(item.uuid), "ranking": [[x], [y]]}).encode())
    c.post(f"/lead/campaigns/{campaign.uuid}/items", {"action": "import", "file": upload})
    c.post(f"/lead/campaigns/{campaign.uuid}/items", {"action": "honeypots", "count": 1, "kinds": ["truncation"]})
    assert campaign.items.filter(is_gold=True).count() == 1 and campaign.items.filter(is_honeypot=True).count() == 1
    page = c.get(f"/lead/campaigns/{campaign.uuid}/items?show=honeypots").content.decode()
    assert "truncation" in page


def test_overview_shows_each_annotators_weight(client):
    lead, annotator = make_user(is_lead=True), make_user("carol")
    campaign = make_campaign(lead=lead, annotators=[annotator], dialogues=2)
    for item in make_items(campaign):
        make_judgment(item, annotator)
    quality_recompute(campaign_id=campaign.pk)
    html = client_for(client, lead).get(f"/lead/campaigns/{campaign.uuid}/").content.decode()
    row = re.search(r"<td>carol</td>(.*?)</tr>", html, re.S)[1]
    assert re.findall(r"<td>([^<]*)</td>", row)[:5] == ["annotator", "yes", "2", "1.00", "yes"]
