"""Dialogue import through the API (multipart upload, background S3 prefix) and the CLI on S3."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.test import APIClient

from auralign.core import storage
from auralign.dialogues.models import Dialogue, DialogueImport, DialogueSet
from auralign.dialogues.services import dialogue_import_run
from auralign.media.models import AudioAsset
from tests import services
from tests.factories import make_user, make_wav

pytestmark = pytest.mark.django_db


def manifest_bytes(*ids: str, audio: str = "hello.wav") -> bytes:
    lines = [
        {"id": i, "turns": [{"role": "user", "text": f"question {i}", "audio": audio}]} for i in ids
    ]
    return "\n".join(json.dumps(x) for x in lines).encode()


@pytest.fixture
def lead_client():
    client = APIClient()
    client.force_authenticate(make_user(is_lead=True))
    return client


def upload(client, manifest: bytes, files: dict[str, bytes], name: str = "api-set"):
    return client.post(
        "/api/v1/dialogue-sets",
        {
            "name": name,
            "manifest": SimpleUploadedFile("m.jsonl", manifest),
            "audio": [SimpleUploadedFile(n, d) for n, d in files.items()],
        },
        format="multipart",
    )


def test_api_upload_imports_the_set(lead_client):
    response = upload(lead_client, manifest_bytes("a", "b"), {"hello.wav": make_wav()})
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 2
    assert response.json()["dialogue_set"]["dialogue_count"] == 2


def test_api_upload_rejection_is_400_listing_the_problems(lead_client):
    response = upload(lead_client, manifest_bytes("a") + b"\n{broken", {"hello.wav": make_wav()})
    assert response.status_code == 400
    errors = response.json()["manifest"]
    assert errors == ["line 2: invalid JSON (Expecting property name enclosed in double quotes)"]
    assert not DialogueSet.objects.exists()


def test_api_upload_refers_only_to_uploaded_files(lead_client):
    response = upload(lead_client, manifest_bytes("a", audio="/etc/passwd.wav"), {})
    assert response.status_code == 400
    assert response.json()["manifest"] == ["line 1: turn 1: audio '/etc/passwd.wav' was not uploaded with the manifest"]


def test_api_upload_refuses_urls(lead_client):
    response = upload(lead_client, manifest_bytes("a", audio="http://169.254.169.254/x.wav"), {})
    assert response.json()["manifest"] == ["line 1: turn 1: audio 'http://169.254.169.254/x.wav': upload the file instead of giving a URL"]


def test_annotators_cannot_import(client):
    api = APIClient()
    api.force_authenticate(make_user())
    response = upload(api, manifest_bytes("a"), {"hello.wav": make_wav()})
    assert response.status_code == 403


def test_dialogue_listing_gives_turns_with_working_audio_urls(lead_client, client):
    upload(lead_client, manifest_bytes("a"), {"hello.wav": make_wav()})
    ds = DialogueSet.objects.get()
    rows = lead_client.get(f"/api/v1/dialogue-sets/{ds.uuid}/dialogues").json()["results"]
    url = rows[0]["turns"][0]["audio_url"]
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:4] == b"RIFF"


@pytest.fixture
def s3_set(s3_settings):
    """A manifest and its audio under s3://bucket/sets/demo/ on the real SeaweedFS server."""
    client = s3_settings.client()
    client.put_object(Bucket=s3_settings.bucket, Key="sets/demo/manifest.jsonl", Body=manifest_bytes("s1", "s2", audio="audio/hello.wav"))
    client.put_object(Bucket=s3_settings.bucket, Key="sets/demo/audio/hello.wav", Body=make_wav(0.5))
    return f"s3://{s3_settings.bucket}/sets/demo/"


def test_cli_imports_from_an_s3_prefix_into_s3_storage(s3_set):
    call_command("import_dialogues", s3_set, "--set", "from-s3", verbosity=0)
    assert Dialogue.objects.filter(dialogue_set__name="from-s3").count() == 2
    asset = AudioAsset.objects.get()
    assert storage.is_s3() and storage.exists(asset.key)


def test_api_s3_import_runs_in_the_background_and_reports(s3_set, lead_client, django_capture_on_commit_callbacks, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with django_capture_on_commit_callbacks(execute=False):
        response = lead_client.post("/api/v1/dialogue-sets/import-s3", {"name": "bg", "s3_prefix": s3_set}, format="json")
    assert response.status_code == 202
    job = DialogueImport.objects.get(uuid=response.json()["id"])
    assert job.status == "pending"
    dialogue_import_run(job_id=job.pk)  # what the queued task runs
    body = lead_client.get(f"/api/v1/dialogue-imports/{job.uuid}").json()
    assert (body["status"], body["created"], body["progress"]) == ("succeeded", 2, 1.0)


def test_background_s3_import_failure_is_recorded_with_the_reason(s3_settings, lead_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = lead_client.post(
            "/api/v1/dialogue-sets/import-s3", {"name": "bg", "s3_prefix": f"s3://{s3_settings.bucket}/missing/"}, format="json"
        )
    job = dialogue_import_run(job_id=DialogueImport.objects.get(uuid=response.json()["id"]).pk)
    assert job.status == "failed"
    assert job.errors == [f"manifest s3://{s3_settings.bucket}/missing/manifest.jsonl could not be read"]
    assert not Dialogue.objects.exists()


def test_manage_py_exits_non_zero_with_one_line(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"id": "x", "turns": [{"role": "bot", "text": "hi"}]}\n')
    result = subprocess.run(
        [sys.executable, "manage.py", "import_dialogues", str(tmp_path / "m.jsonl"), "--verbosity", "0"],
        cwd=services.REPO, env=services.platform_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "CommandError: import rejected, nothing stored: line 1: turn 1: role: unknown role 'bot'; expected one of assistant, system, user"
    ]
