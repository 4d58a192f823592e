import hashlib

import pytest
from rest_framework.test import APIClient

from auralign.accounts.models import ApiToken
from auralign.accounts.services import api_token_create, api_token_revoke
from tests.factories import make_campaign, make_user

pytestmark = pytest.mark.django_db


def token_client(secret: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return api


def test_only_a_hash_of_the_secret_is_stored():
    token, secret = api_token_create(user=make_user(), name="ci")
    row = ApiToken.objects.get(pk=token.pk)
    assert secret not in {row.digest, row.prefix, row.name}
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()


def test_a_token_authenticates_its_user():
    user = make_user("alice")
    _, secret = api_token_create(user=user, name="ci")
    assert token_client(secret).get("/api/v1/me").json()["username"] == "alice"


def test_a_wrong_secret_with_a_valid_prefix_is_refused():
    _, secret = api_token_create(user=make_user(), name="ci")
    assert token_client(secret[:-3] + "xyz").get("/api/v1/me").status_code == 401


def test_a_revoked_token_is_refused():
    token, secret = api_token_create(user=make_user(), name="ci")
    api_token_revoke(token=token)
    assert token_client(secret).get("/api/v1/me").status_code == 401


def test_a_read_only_token_cannot_write():
    lead = make_user(is_lead=True)
    _, secret = api_token_create(user=lead, name="ro", read_only=True)
    api = token_client(secret)
    assert api.get("/api/v1/rubrics").status_code == 200
    response = api.post("/api/v1/rubrics", {"slug": "x", "name": "x", "criteria": []}, format="json")
    assert response.status_code == 403 and "read-only" in response.json()["detail"]


def test_a_campaign_scoped_token_sees_only_its_campaigns():
    trainer = make_user()
    a = make_campaign(trainers=[trainer])
    b = make_campaign(trainers=[trainer])
    _, secret = api_token_create(user=trainer, name="scoped", campaigns=[a], read_only=True)
    api = token_client(secret)
    assert [c["id"] for c in api.get("/api/v1/campaigns").json()] == [str(a.uuid)]
    assert api.get(f"/api/v1/campaigns/{b.uuid}").status_code == 404


def test_tokens_cannot_be_scoped_to_foreign_campaigns():
    user = make_user()
    api = APIClient()
    api.force_authenticate(user)
    response = api.post("/api/v1/tokens", {"name": "x", "campaigns": [str(make_campaign().uuid)]}, format="json")
    assert response.status_code == 400 and "campaigns" in response.json()


def test_token_secret_is_shown_once_at_creation():
    api = APIClient()
    api.force_authenticate(make_user())
    created = api.post("/api/v1/tokens", {"name": "laptop"}, format="json").json()
    assert created["token"].startswith("aur_")
    assert all("token" not in t for t in api.get("/api/v1/tokens").json())
