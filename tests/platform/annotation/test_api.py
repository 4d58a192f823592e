import uuid

import pytest
from rest_framework.test import APIClient

from auralign.accounts.services import api_token_create
from auralign.annotation.models import Assignment, Judgment, Skip
from auralign.campaigns.models import Campaign
from tests.factories import judgment_payload, make_campaign, make_items, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def task():
    """An annotator logged in, with a live lease on a 3-candidate item."""
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator], policies=3, k=3, dialogues=2, min_listened_fraction=0.8)
    make_items(campaign)
    client = APIClient()
    client.force_login(annotator)
    body = client.post(f"/api/v1/annotate/campaigns/{campaign.uuid}/next").json()
    assignment = Assignment.objects.select_related("item", "campaign__rubric_version").get(item__uuid=body["item"])
    return client, assignment, body


def post_judgment(client, assignment, **overrides):
    return client.post(
        f"/api/v1/annotate/items/{assignment.item.uuid}/judgment", judgment_payload(assignment, **overrides), format="json"
    )


def errors_for(response, field):
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    return " ".join(response.json()[field])


# --- next ---------------------------------------------------------------------------------------


def test_next_gives_the_candidates_lettered_in_the_annotators_order(task):
    client, assignment, body = task
    assert [c["id"] for c in body["candidates"]] == assignment.display_order
    assert [c["label"] for c in body["candidates"]] == ["A", "B", "C"]


def test_next_gives_peaks_and_a_playable_audio_url_per_candidate(task):
    client, assignment, body = task
    card = body["candidates"][0]
    assert card["audio"]["peaks"] and card["audio"]["duration_s"] > 0
    response = client.get(card["audio"]["url"], HTTP_RANGE="bytes=0-3")
    assert response.status_code == 206 and b"".join(response.streaming_content) == b"RIFF"


def test_next_gives_the_dialogue_turns_with_their_transcripts(task):
    client, assignment, body = task
    assert [t["role"] for t in body["turns"]] == ["user", "assistant", "user"]
    assert "hello" in body["turns"][0]["text"]


def test_next_hides_the_reasoning_when_the_campaign_hides_it(task):
    client, assignment, body = task
    assert "reasoning" in body["candidates"][0]
    Campaign.objects.filter(pk=assignment.campaign_id).update(reasoning_display=Campaign.Reasoning.HIDDEN)
    again = client.post(f"/api/v1/annotate/campaigns/{assignment.campaign.uuid}/next").json()
    assert again["resumed"] and all("reasoning" not in c for c in again["candidates"])


def test_next_says_so_when_nothing_is_left(task):
    client, assignment, body = task
    post_judgment(client, assignment)
    second = client.post(f"/api/v1/annotate/campaigns/{assignment.campaign.uuid}/next").json()
    post_judgment(client, Assignment.objects.select_related("item", "campaign").get(item__uuid=second["item"]))
    done = client.post(f"/api/v1/annotate/campaigns/{assignment.campaign.uuid}/next")
    assert done.status_code == 200 and done.json()["item"] is None


def test_next_for_a_campaign_i_am_not_in_is_404():
    client = APIClient()
    client.force_login(make_user())
    campaign = make_campaign()
    assert client.post(f"/api/v1/annotate/campaigns/{campaign.uuid}/next").status_code == 404


def test_next_needs_a_login():
    campaign = make_campaign()
    assert APIClient().post(f"/api/v1/annotate/campaigns/{campaign.uuid}/next").status_code in (401, 403)


def test_next_on_a_paused_campaign_is_409_with_a_code():
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator], status=Campaign.Status.PAUSED)
    client = APIClient()
    client.force_login(annotator)
    response = client.post(f"/api/v1/annotate/campaigns/{campaign.uuid}/next")
    assert response.status_code == 409 and response.json()["code"] == "campaign_not_annotating"


def test_a_token_scoped_to_another_campaign_cannot_take_items(task):
    client, assignment, body = task
    other = make_campaign(annotators=[assignment.annotator])
    _, secret = api_token_create(user=assignment.annotator, name="t", campaigns=[other])
    scoped = APIClient()
    scoped.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert scoped.post(f"/api/v1/annotate/campaigns/{assignment.campaign.uuid}/next").status_code == 404
    assert scoped.post(f"/api/v1/annotate/items/{assignment.item.uuid}/heartbeat").status_code == 404


# --- judgments: accepted ------------------------------------------------------------------------


def test_a_valid_judgment_is_created_and_counted(task):
    client, assignment, body = task
    response = post_judgment(client, assignment)
    assert response.status_code == 201
    assert response.json()["counted"] is True and response.json()["is_late"] is False


def test_resubmitting_the_same_id_returns_200_and_the_same_judgment(task):
    client, assignment, body = task
    payload = judgment_payload(assignment)
    url = f"/api/v1/annotate/items/{assignment.item.uuid}/judgment"
    first = client.post(url, payload, format="json")
    again = client.post(url, payload, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


# --- judgments: submit, then the next item in the same request -------------------------------------


def submit_and_next(client, assignment, payload=None):
    return client.post(
        f"/api/v1/annotate/items/{assignment.item.uuid}/judgment?next=1", payload or judgment_payload(assignment), format="json"
    )


def test_submit_with_next_stores_the_judgment_and_leases_the_next_item(task):
    client, assignment, body = task
    response = submit_and_next(client, assignment)
    assert response.status_code == 201 and response.json()["counted"] is True
    following = response.json()["next"]
    assert following["item"] not in (None, body["item"])
    assert [c["label"] for c in following["candidates"]] == ["A", "B", "C"]
    lease = Assignment.objects.get(item__uuid=following["item"], annotator=assignment.annotator)
    assert lease.status == Assignment.Status.LIVE


def test_submit_without_next_leases_nothing_more(task):
    client, assignment, body = task
    assert "next" not in post_judgment(client, assignment).json()
    assert Assignment.objects.filter(annotator=assignment.annotator).count() == 1


def test_resubmitting_with_next_gives_the_same_next_item_resumed(task):
    client, assignment, body = task
    payload = judgment_payload(assignment)
    first, again = submit_and_next(client, assignment, payload), submit_and_next(client, assignment, payload)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["next"]["item"] == first.json()["next"]["item"] and again.json()["next"]["resumed"] is True


def test_submit_with_next_says_so_when_nothing_is_left(task):
    client, assignment, body = task
    second = submit_and_next(client, assignment).json()["next"]
    last = submit_and_next(client, Assignment.objects.select_related("item", "campaign").get(item__uuid=second["item"]))
    assert last.status_code == 201 and last.json()["next"]["item"] is None


def test_submit_with_next_on_a_paused_campaign_stores_the_judgment_and_gives_next_null(task):
    client, assignment, body = task
    Campaign.objects.filter(pk=assignment.campaign_id).update(status=Campaign.Status.PAUSED)
    response = submit_and_next(client, assignment)
    assert response.status_code == 201 and response.json()["next"] is None
    assert Judgment.objects.filter(assignment=assignment).exists()


def test_ties_are_accepted(task):
    client, assignment, body = task
    a, b, c = assignment.display_order
    response = post_judgment(client, assignment, ranking=[[a, c], [b]])
    assert response.status_code == 201 and response.json()["ranking"] == [[a, c], [b]]


def test_a_candidate_flagged_broken_needs_neither_listening_nor_scores(task):
    client, assignment, body = task
    a, b, c = assignment.display_order
    payload = judgment_payload(assignment, flags={b: ["broken_audio"]})
    payload["listened"][b] = 0.0
    del payload["scores"][b]
    response = client.post(f"/api/v1/annotate/items/{assignment.item.uuid}/judgment", payload, format="json")
    assert response.status_code == 201, response.json()


def test_an_optional_criterion_may_be_left_unscored(task):
    client, assignment, body = task
    assignment.campaign.rubric_version.criteria.filter(key="persona_consistency").update(required=False)
    payload = judgment_payload(assignment)
    for scores in payload["scores"].values():
        del scores["persona_consistency"]
    response = client.post(f"/api/v1/annotate/items/{assignment.item.uuid}/judgment", payload, format="json")
    assert response.status_code == 201, response.json()


# --- judgments: refused, one test per class of bad input -----------------------------------------


def test_a_missing_client_submission_id_is_refused(task):
    client, assignment, body = task
    assert "UUID" in errors_for(post_judgment(client, assignment, client_submission_id=None), "client_submission_id")


def test_a_malformed_client_submission_id_is_refused(task):
    client, assignment, body = task
    errors_for(post_judgment(client, assignment, client_submission_id="not-a-uuid"), "client_submission_id")


def test_a_ranking_that_leaves_a_candidate_out_is_refused(task):
    client, assignment, body = task
    a, b, c = assignment.display_order
    assert "candidate C is not ranked" in errors_for(post_judgment(client, assignment, ranking=[[a], [b]]), "ranking")


def test_a_ranking_that_ranks_a_candidate_twice_is_refused(task):
    client, assignment, body = task
    a, b, c = assignment.display_order
    message = errors_for(post_judgment(client, assignment, ranking=[[a], [b, a], [c]]), "ranking")
    assert "candidate A is ranked more than once" in message


def test_a_ranking_naming_a_foreign_candidate_is_refused(task):
    client, assignment, body = task
    a, b, c = assignment.display_order
    stranger = str(uuid.uuid4())
    assert "not a candidate" in errors_for(post_judgment(client, assignment, ranking=[[a], [b], [c, stranger]]), "ranking")


def test_a_ranking_with_an_empty_tier_is_refused(task):
    client, assignment, body = task
    a, b, c = assignment.display_order
    assert "tier 2" in errors_for(post_judgment(client, assignment, ranking=[[a], [], [b, c]]), "ranking")


def test_a_ranking_that_is_not_a_list_of_tiers_is_refused(task):
    client, assignment, body = task
    errors_for(post_judgment(client, assignment, ranking={"best": "A"}), "ranking")


def test_a_missing_required_score_is_refused(task):
    client, assignment, body = task
    payload = judgment_payload(assignment)
    del payload["scores"][assignment.display_order[1]]["fluency"]
    response = client.post(f"/api/v1/annotate/items/{assignment.item.uuid}/judgment", payload, format="json")
    assert "candidate B: no score for Fluency" in errors_for(response, "scores")


def test_a_score_outside_the_scale_is_refused(task):
    client, assignment, body = task
    payload = judgment_payload(assignment)
    payload["scores"][assignment.display_order[0]]["correctness"] = 6
    response = client.post(f"/api/v1/annotate/items/{assignment.item.uuid}/judgment", payload, format="json")
    assert "from 1 to 5" in errors_for(response, "scores")


def test_a_score_that_is_not_a_whole_number_is_refused(task):
    client, assignment, body = task
    payload = judgment_payload(assignment)
    payload["scores"][assignment.display_order[0]]["correctness"] = 3.5
    response = client.post(f"/api/v1/annotate/items/{assignment.item.uuid}/judgment", payload, format="json")
    errors_for(response, "scores")


def test_a_score_for_an_unknown_criterion_is_refused(task):
    client, assignment, body = task
    payload = judgment_payload(assignment)
    payload["scores"][assignment.display_order[0]]["humour"] = 3
    response = client.post(f"/api/v1/annotate/items/{assignment.item.uuid}/judgment", payload, format="json")
    assert "'humour' is not a criterion" in errors_for(response, "scores")


def test_listening_below_the_campaign_minimum_is_refused(task):
    client, assignment, body = task
    payload = judgment_payload(assignment)
    payload["listened"][assignment.display_order[2]] = 0.5
    response = client.post(f"/api/v1/annotate/items/{assignment.item.uuid}/judgment", payload, format="json")
    assert "candidate C: listened to 50%; listen to at least 80%" in errors_for(response, "listened")


def test_a_listened_fraction_outside_0_to_1_is_refused(task):
    client, assignment, body = task
    errors_for(post_judgment(client, assignment, listened=1.5), "listened")


def test_a_missing_listened_fraction_is_refused(task):
    client, assignment, body = task
    payload = judgment_payload(assignment)
    del payload["listened"][assignment.display_order[0]]
    response = client.post(f"/api/v1/annotate/items/{assignment.item.uuid}/judgment", payload, format="json")
    assert "candidate A" in errors_for(response, "listened")


def test_an_unknown_flag_is_refused(task):
    client, assignment, body = task
    a = assignment.display_order[0]
    assert "broken_audio, unsafe" in errors_for(post_judgment(client, assignment, flags={a: ["boring"]}), "flags")


def test_a_flag_on_a_foreign_candidate_is_refused(task):
    client, assignment, body = task
    errors_for(post_judgment(client, assignment, flags={str(uuid.uuid4()): ["unsafe"]}), "flags")


def test_a_too_long_rationale_is_refused(task):
    client, assignment, body = task
    errors_for(post_judgment(client, assignment, rationale="x" * 5001), "rationale")


def test_a_negative_time_spent_is_refused(task):
    client, assignment, body = task
    errors_for(post_judgment(client, assignment, time_spent_ms=-1), "time_spent_ms")


def test_an_unknown_field_is_refused(task):
    client, assignment, body = task
    errors_for(post_judgment(client, assignment, policy="guess"), "policy")


def test_every_problem_is_reported_at_once(task):
    client, assignment, body = task
    response = post_judgment(client, assignment, ranking=[], listened=0.1, time_spent_ms="soon")
    assert {"ranking", "listened", "time_spent_ms"} <= set(response.json())
    assert not Judgment.objects.exists()


def test_a_judgment_for_another_annotators_item_is_404(task):
    client, assignment, body = task
    other = APIClient()
    other.force_login(make_user())
    response = other.post(
        f"/api/v1/annotate/items/{assignment.item.uuid}/judgment", judgment_payload(assignment), format="json"
    )
    assert response.status_code == 404


# --- heartbeat, draft, audio, skip --------------------------------------------------------------


def test_heartbeat_answers_with_the_new_expiry(task):
    client, assignment, body = task
    response = client.post(f"/api/v1/annotate/items/{assignment.item.uuid}/heartbeat")
    assert response.status_code == 200 and response.json()["status"] == "live"


def test_a_draft_is_saved_and_comes_back_on_reload(task):
    client, assignment, body = task
    url = f"/api/v1/annotate/items/{assignment.item.uuid}/draft"
    assert client.put(url, {"draft": {"rationale": "so far"}}, format="json").status_code == 204
    again = client.post(f"/api/v1/annotate/campaigns/{assignment.campaign.uuid}/next").json()
    assert again["draft"] == {"rationale": "so far"}


def test_audio_urls_are_refreshed_for_a_live_lease(task):
    client, assignment, body = task
    response = client.get(f"/api/v1/annotate/items/{assignment.item.uuid}/audio")
    assert set(response.json()["candidates"]) == set(assignment.display_order)


def test_no_audio_urls_once_the_lease_is_over(task):
    client, assignment, body = task
    post_judgment(client, assignment)
    response = client.get(f"/api/v1/annotate/items/{assignment.item.uuid}/audio")
    assert response.status_code == 409 and response.json()["code"] == "lease_expired"


def test_skip_records_the_reason(task):
    client, assignment, body = task
    response = client.post(f"/api/v1/annotate/items/{assignment.item.uuid}/skip", {"reason": "cannot hear"}, format="json")
    assert response.status_code == 200
    assert Skip.objects.get(assignment=assignment).reason == "cannot hear"


def test_skip_without_a_reason_is_refused(task):
    client, assignment, body = task
    response = client.post(f"/api/v1/annotate/items/{assignment.item.uuid}/skip", {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
