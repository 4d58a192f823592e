import pytest
from rest_framework.test import APIClient

from auralign.policies.models import Policy
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(make_user(is_lead=True))
    return client


def test_lead_registers_an_openai_policy(api):
    body = {"name": "vllm-a", "backend": "openai", "config": {"base_url": "http://gpu:8000/v1", "model": "m"},
            "generation": {"temperature": 0.9, "max_new_tokens": 256}}
    response = api.post("/api/v1/policies", body, format="json")
    assert response.status_code == 201
    assert Policy.objects.get().tts == {"backend": "piper"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"backend": "tgi", "config": {}}, "backend"),
        ({"backend": "hf", "config": {}}, "config.checkpoint"),
        ({"backend": "openai", "config": {"base_url": "ftp://x", "model": "m"}}, "config.base_url"),
        ({"backend": "hf", "config": {"checkpoint": "/m"}, "generation": {"temperature": 9}}, "generation.temperature"),
        ({"backend": "hf", "config": {"checkpoint": "/m"}, "generation": {"beams": 2}}, "generation.beams"),
        ({"backend": "hf", "config": {"checkpoint": "/m"}, "tts": {"backend": "vits"}}, "tts.checkpoint"),
        (
            {"backend": "hf", "config": {"checkpoint": "/m"}, "generation": {"max_new_tokens": 8, "min_new_tokens": 9}},
            "generation.min_new_tokens",
        ),
    ],
)
def test_bad_policy_config_is_400_naming_the_field(api, body, field):
    response = api.post("/api/v1/policies", {"name": "p", **body}, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Policy.objects.exists()


def test_annotators_cannot_list_policies():
    client = APIClient()
    client.force_authenticate(make_user())
    assert client.get("/api/v1/policies").status_code == 403
