"""Blindness probe: everything an annotator can reach (pages, every JSON answer of the annotate
API, every URL found in them: static files, audio) is fetched, and no policy name, id or
configuration value may appear in any of it."""

import html
import json
import re

import pytest
from django.test import Client

from auralign.annotation.models import Assignment
from tests.factories import judgment_payload, make_campaign, make_items, make_policy, make_user

pytestmark = pytest.mark.django_db

LINK = re.compile(r"""(?:href|src)="([^"]+)"|"(/(?:static|media|api|annotate)/[^"\s<>]*)\"""")


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def urls_in(value):
    """Same-site URLs inside a JSON value or a page."""
    if isinstance(value, dict):
        for v in value.values():
            yield from urls_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from urls_in(v)
    elif isinstance(value, str):
        if value.startswith("/"):
            yield value
        elif "<" in value:
            for a, b in LINK.findall(value):
                url = html.unescape(a or b)
                if url.startswith("/") and not url.startswith("//"):
                    yield url


@pytest.fixture
def secrets_and_campaign():
    policies = [make_policy("qwen-secret-alpha"), make_policy("gemma-hidden-beta", checkpoint="/models/gemma-hidden-beta-ckpt")]
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator], policies=policies, dialogues=3, k=2)
    make_items(campaign)
    secrets = set()
    for p in policies:
        secrets |= {p.name, str(p.uuid), str(p.uuid).replace("-", ""), p.config["checkpoint"]}
    return secrets, campaign, annotator


def test_nothing_an_annotator_can_reach_names_a_policy(secrets_and_campaign):
    secrets, campaign, annotator = secrets_and_campaign
    client = Client()
    client.force_login(annotator)
    seen: dict[str, bytes] = {}

    def fetch(method, url, data=None):
        response = getattr(client, method)(url, data=data, content_type="application/json") if data is not None else getattr(client, method)(url)
        assert response.status_code < 400, (url, response.status_code)
        body = body_of(response)
        seen[f"{method.upper()} {url}"] = body
        return body

    pages = ["/", f"/annotate/{campaign.uuid}/", "/api/v1/me", "/api/v1/campaigns", f"/api/v1/campaigns/{campaign.uuid}"]
    for url in pages:
        fetch("get", url)
    base = "/api/v1/annotate"
    task = json.loads(fetch("post", f"{base}/campaigns/{campaign.uuid}/next"))
    item = task["item"]
    fetch("post", f"{base}/items/{item}/heartbeat")
    fetch("put", f"{base}/items/{item}/draft", {"draft": {"rationale": "x"}})
    fetch("get", f"{base}/items/{item}/audio")
    fetch("post", f"{base}/campaigns/{campaign.uuid}/next")  # the resumed lease
    assignment = Assignment.objects.select_related("campaign__rubric_version").get(item__uuid=item)
    second = json.loads(fetch("post", f"{base}/items/{item}/judgment?next=1", judgment_payload(assignment)))["next"]
    assert second["item"] == json.loads(fetch("post", f"{base}/campaigns/{campaign.uuid}/next"))["item"]
    fetch("post", f"{base}/items/{second['item']}/skip", {"reason": "probe"})

    # Follow every same-site URL found in what came back: static files, audio, links.
    queue = [u for body in list(seen.values()) for u in urls_in(_decoded(body))]
    queue += [u for body in list(seen.values()) for u in urls_in(body.decode("utf-8", "replace"))]
    while queue:
        url = queue.pop()
        if f"GET {url}" in seen or url.startswith(("/logout", "/admin")):
            continue
        body = fetch("get", url)
        if url.endswith((".html", "/")):
            queue += list(urls_in(body.decode("utf-8", "replace")))

    assert any(k.startswith("GET /media/audio/") for k in seen), "the probe must have fetched audio"
    assert any("/static/" in k for k in seen), "the probe must have fetched the page's scripts"
    for where, body in seen.items():
        for secret in secrets:
            assert secret not in where, f"{secret!r} in the URL {where}"
            assert secret.encode() not in body, f"{secret!r} in the answer to {where}"


def _decoded(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None
