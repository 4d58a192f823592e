import pytest
from rest_framework.test import APIClient

from auralign.campaigns.models import Membership
from tests.factories import make_campaign, make_user

pytestmark = pytest.mark.django_db


def test_me_lists_my_active_roles_per_campaign():
    me = make_user("carol")
    annotating = make_campaign(annotators=[me], trainers=[me])
    left = make_campaign(annotators=[me])
    Membership.objects.filter(campaign=left, user=me).update(active=False)
    make_campaign(annotators=[make_user()])  # not mine
    api = APIClient()
    api.force_authenticate(me)
    body = api.get("/api/v1/me").json()
    assert body["username"] == "carol"
    assert {k: sorted(v) for k, v in body["roles"].items()} == {str(annotating.uuid): ["annotator", "trainer"]}
