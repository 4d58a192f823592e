"""The export API: who may create and see snapshots, what GET returns, audio resolution."""

import hashlib

import httpx
import pytest
from rest_framework.test import APIClient

from auralign.accounts.services import api_token_create
from rlhf_export.services import snapshot_create
from tests.factories import make_audio_asset, make_campaign, make_user
from tests.rlhf_export.conftest import export, judged_campaign, read_rows

pytestmark = pytest.mark.django_db


def session(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def token_client(user, **options) -> APIClient:
    _, secret = api_token_create(user=user, name="t", **options)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return api


def create(api: APIClient, campaigns, **body):
    return api.post("/api/v1/exports", {"campaigns": [str(c.uuid) for c in campaigns], "kind": "pairwise", **body}, format="json")


def test_a_trainer_creates_an_export_that_waits_for_the_cpu_queue(judged):
    response = create(session(judged.trainer), [judged.campaign], filters={"exclude_gold": True})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending" and body["campaigns"] == [str(judged.campaign.uuid)]
    assert body["spec"]["filters"]["exclude_gold"] is True and body["spec"]["filters"]["exclude_honeypots"] is True


def test_a_write_token_may_create_an_export(judged):
    assert create(token_client(judged.trainer), [judged.campaign]).status_code == 201


def test_a_read_only_token_cannot_create_an_export(judged):
    response = create(token_client(judged.trainer, read_only=True), [judged.campaign])
    assert response.status_code == 403 and "read-only" in response.json()["detail"]


def test_an_annotator_cannot_export_their_campaign(judged):
    response = create(session(judged.annotators[0]), [judged.campaign])
    assert response.status_code == 400 and "campaigns" in response.json()


def test_a_token_scoped_to_another_campaign_cannot_export_this_one(judged):
    other = make_campaign(trainers=[judged.trainer])
    response = create(token_client(judged.trainer, campaigns=[other]), [judged.campaign])
    assert response.status_code == 400 and "campaigns" in response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filters": {"min_reliability": 2}}, "filters"),
        ({"filters": {"exclude_gol": True}}, "filters"),
        ({"splits": {"train": 0.5, "test": 0.2}}, "splits"),
        ({"splits": {"holdout": 1.0}}, "splits"),
        ({"kind": "ranking"}, "kind"),
        ({"formats": ["csv"]}, "formats"),
        ({"rows_per_shard": 1}, "rows_per_shard"),
        ({"filters": {"rubric_versions": ["nope@1"]}}, "filters.rubric_versions"),
        ({"filters": {"judged_after": "2026-02-01T00:00:00Z", "judged_before": "2026-01-01T00:00:00Z"}}, "filters.judged_before"),
    ],
)
def test_bad_export_requests_are_refused_naming_the_field(judged, body, field):
    response = create(session(judged.trainer), [judged.campaign], **body)
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_a_scoped_token_sees_only_snapshots_within_its_campaigns(db):
    a, b = judged_campaign(dialogues=1), judged_campaign(dialogues=1)
    trainer = a.trainer
    b.campaign.memberships.create(user=trainer, role="trainer")
    only_a, only_b = export(a), export(b)
    both = snapshot_create(user=trainer, campaigns=[a.campaign, b.campaign], kind="pairwise", enqueue=False)
    scoped = token_client(trainer, campaigns=[a.campaign], read_only=True)
    assert [s["id"] for s in scoped.get("/api/v1/exports").json()] == [str(only_a.uuid)]
    assert scoped.get(f"/api/v1/exports/{only_b.uuid}").status_code == 404
    assert scoped.get(f"/api/v1/exports/{both.uuid}").status_code == 404
    unscoped = token_client(trainer, read_only=True)
    assert {s["id"] for s in unscoped.get("/api/v1/exports").json()} == {str(only_a.uuid), str(only_b.uuid), str(both.uuid)}


def test_a_member_of_only_some_campaigns_does_not_see_the_snapshot(db):
    a, b = judged_campaign(dialogues=1), judged_campaign(dialogues=1)
    both = snapshot_create(user=None, campaigns=[a.campaign, b.campaign], kind="pairwise", enqueue=False)
    assert session(a.trainer).get(f"/api/v1/exports/{both.uuid}").status_code == 404
    assert session(a.annotators[0]).get("/api/v1/exports").json() == []


def test_get_returns_the_manifest_and_short_lived_urls_that_download_the_files(judged, client):
    snapshot = export(judged)
    body = token_client(judged.trainer, read_only=True).get(f"/api/v1/exports/{snapshot.uuid}").json()
    assert body["manifest"]["files"] == snapshot.files and body["urls_expire_in"] > 0
    assert set(body["urls"]) == {"manifest.json", *(f["path"] for f in snapshot.files)}
    for f in snapshot.files:
        data = b"".join(client.get(body["urls"][f["path"]]).streaming_content)
        assert hashlib.sha256(data).hexdigest() == f["sha256"]


def test_an_unfinished_snapshot_has_no_files_and_reports_progress(judged):
    pending = snapshot_create(user=judged.trainer, campaigns=[judged.campaign], kind="pairwise", enqueue=False)
    api = session(judged.trainer)
    body = api.get(f"/api/v1/exports/{pending.uuid}").json()
    assert (body["status"], body["manifest"], body["urls"]) == ("pending", None, {})
    assert api.get(f"/api/v1/exports/{pending.uuid}/progress").json()["progress"] == 0.0


def test_audio_keys_of_the_snapshot_resolve_to_urls(db, client):
    judged = judged_campaign(dialogues=1, k=2, annotators=1, with_audio=True)
    snapshot = export(judged)
    keys = sorted({r["chosen_audio"] for r in read_rows(snapshot)} | {r["rejected_audio"] for r in read_rows(snapshot)})
    response = session(judged.trainer).get(f"/api/v1/exports/{snapshot.uuid}/audio", {"key": keys})
    assert response.status_code == 200
    urls = response.json()["urls"]
    assert sorted(urls) == keys
    data = b"".join(client.get(urls[keys[0]]).streaming_content)
    assert hashlib.sha256(data).hexdigest() == keys[0].split("/")[-1].split(".")[0]


def test_audio_outside_the_snapshot_campaigns_is_refused(db):
    judged = judged_campaign(dialogues=1, k=2, annotators=1, with_audio=True)
    snapshot = export(judged)
    foreign = make_audio_asset(0.3).key
    response = session(judged.trainer).get(f"/api/v1/exports/{snapshot.uuid}/audio", {"key": [foreign]})
    assert response.status_code == 404 and "key" in response.json()


def test_non_members_get_404_for_snapshots(judged):
    snapshot = export(judged)
    outsider = session(make_user())
    assert outsider.get(f"/api/v1/exports/{snapshot.uuid}").status_code == 404
    assert outsider.get(f"/api/v1/exports/{snapshot.uuid}/progress").status_code == 404


@pytest.mark.services
def test_get_on_s3_returns_presigned_urls_that_expire_and_cannot_be_tampered(judged, s3_settings):
    snapshot = export(judged)
    body = token_client(judged.trainer, read_only=True).get(f"/api/v1/exports/{snapshot.uuid}").json()
    f = snapshot.files[0]
    url = body["urls"][f["path"]]
    assert url.startswith(s3_settings.endpoint_url) and "X-Amz-Signature" in url
    assert hashlib.sha256(httpx.get(url).content).hexdigest() == f["sha256"]
    assert httpx.get(url.replace(f["path"], snapshot.files[1]["path"])).status_code == 403
