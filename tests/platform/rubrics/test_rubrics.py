import copy

import pytest
from rest_framework.test import APIClient

from auralign.core.errors import ServiceError
from auralign.rubrics.models import Criterion, RubricVersion
from auralign.rubrics.seed import SEED_CRITERIA
from auralign.rubrics.selectors import rubric_version_diff
from auralign.rubrics.services import rubric_create, rubric_update, rubric_version_freeze
from tests.factories import make_campaign, make_rubric, make_user

pytestmark = pytest.mark.django_db


def test_editing_a_draft_version_changes_it_in_place():
    v1 = make_rubric(slug="r")
    v = rubric_update(rubric=v1.rubric, instructions="new words")
    assert v.pk == v1.pk and v.version == 1 and v.instructions == "new words"


def test_editing_a_frozen_version_makes_the_next_version_and_keeps_the_old_one():
    v1 = make_rubric(slug="r", frozen=True)
    criteria = copy.deepcopy(SEED_CRITERIA)
    criteria[0]["weight"] = 2.0
    v2 = rubric_update(rubric=v1.rubric, criteria=criteria, changelog="correctness counts double")
    assert v2.version == 2 and not v2.is_frozen
    assert Criterion.objects.get(rubric_version=v1, key="correctness").weight == 1.0
    assert Criterion.objects.get(rubric_version=v2, key="correctness").weight == 2.0


def test_a_campaign_freezes_its_rubric_version():
    campaign = make_campaign(rubric_version=make_rubric())
    from auralign.campaigns.services import campaign_create

    rv = make_rubric()
    assert not rv.is_frozen
    lead = campaign.created_by
    lead.is_lead = True
    lead.save()
    c = campaign_create(
        name="c2", rubric_version=rv, dialogue_set=campaign.dialogue_set,
        policies=[(cp.policy, 1) for cp in campaign.campaign_policies.all()], user=lead,
    )
    c.rubric_version.refresh_from_db()
    assert c.rubric_version.is_frozen


def test_freezing_is_idempotent():
    v = make_rubric()
    first = rubric_version_freeze(version=v).frozen_at
    assert rubric_version_freeze(version=v).frozen_at == first


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda c: c[0].update(key="Bad Key"), "criteria[0].key", "must be lowercase"),
        (lambda c: c[1].update(key="correctness"), "criteria[1].key", "duplicate criterion key 'correctness'"),
        (lambda c: c[0].update(scale_min=5, scale_max=1), "criteria[0].scale_max", "min < max"),
        (lambda c: c[0].update(anchors={"9": "too high"}), "criteria[0].anchors", "point 9 is outside the scale 1..5"),
        (lambda c: c[0].update(weight=-1), "criteria[0].weight", "must be a number >= 0"),
        (lambda c: c[0].update(label=""), "criteria[0].label", "non-empty"),
        (lambda c: c[0].update(colour="red"), "criteria[0]", "unknown field(s): colour"),
        (lambda c: c.clear(), "criteria", "at least one criterion"),
    ],
)
def test_bad_criteria_are_rejected_naming_the_field(mutate, field, message):
    criteria = copy.deepcopy(SEED_CRITERIA)
    mutate(criteria)
    with pytest.raises(ServiceError) as exc:
        rubric_create(slug="x", name="X", criteria=criteria)
    assert exc.value.field == field and message in exc.value.message
    assert not RubricVersion.objects.exists()


def test_diff_lists_added_removed_and_changed_criteria():
    v1 = make_rubric(slug="r", frozen=True)
    criteria = copy.deepcopy(SEED_CRITERIA)[1:]
    criteria[0]["anchors"]["1"] = "Unlistenable"
    criteria.append({"key": "safety", "label": "Safety", "scale_min": 1, "scale_max": 3})
    v2 = rubric_update(rubric=v1.rubric, criteria=criteria)
    diff = rubric_version_diff(old=v1, new=v2)
    assert [c["key"] for c in diff["added"]] == ["safety"]
    assert [c["key"] for c in diff["removed"]] == ["correctness"]
    assert list(diff["changed"]) == ["fluency"]
    assert diff["changed"]["fluency"]["anchors"][1]["1"] == "Unlistenable"


def test_api_patch_on_frozen_rubric_returns_201_with_new_version():
    v1 = make_rubric(slug="r", frozen=True)
    api = APIClient()
    api.force_authenticate(make_user(is_lead=True))
    response = api.patch("/api/v1/rubrics/r", {"instructions": "Be kind.", "changelog": "tone"}, format="json")
    assert response.status_code == 201
    assert response.json()["version"] == 2
    diff = api.get("/api/v1/rubrics/r/diff?from=1&to=2").json()
    assert diff["instructions"] == [v1.instructions, "Be kind."]


def test_api_rubric_create_error_names_the_field():
    api = APIClient()
    api.force_authenticate(make_user(is_lead=True))
    criteria = copy.deepcopy(SEED_CRITERIA)
    criteria[2]["scale_max"] = "five"
    response = api.post("/api/v1/rubrics", {"slug": "r", "name": "R", "criteria": criteria}, format="json")
    assert response.status_code == 400
    assert response.json() == {"criteria[2].scale_max": ["must be an integer"]}
