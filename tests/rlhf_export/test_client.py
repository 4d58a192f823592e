"""Trainer access: `python -m rlhf_export pull` (resume, checksums, audio) and loading the pulled
folder with pandas and datasets. The API runs in-process (httpx's WSGI transport) or, for the
command line itself, behind a live server."""

import hashlib
import json
import os
import subprocess
import sys
import uuid

import httpx
import pandas as pd
import pytest

from auralign.accounts.services import api_token_create
from rlhf_export.client import AuralignClient, PullError, audio_keys, load_snapshot, pull
from rlhf_export.services import snapshot_create
from tests import services
from tests.rlhf_export.conftest import SERVER, export, judged_campaign, read_rows


def api_client(http: httpx.Client, user, *, requests: list | None = None, **token_options) -> AuralignClient:
    """The real API in-process with a read-only token of `user`; `requests` records every request."""
    _, secret = api_token_create(user=user, name="pull", read_only=True, **token_options)
    http.event_hooks = {"request": [requests.append] if requests is not None else [], "response": []}
    return AuralignClient(SERVER, secret, http=http)


@pytest.fixture
def pulled(db, tmp_path, in_process_api):
    judged = judged_campaign(dialogues=3, k=2, annotators=2, with_audio=True)
    snapshot = export(judged)
    client = api_client(in_process_api, judged.trainer)
    pull(client, str(snapshot.uuid), tmp_path / "snap", progress=False)
    return judged, snapshot, client, tmp_path / "snap"


def test_pull_downloads_every_file_with_its_checksum_and_the_manifest(pulled):
    _, snapshot, _, folder = pulled
    for f in snapshot.files:
        assert hashlib.sha256((folder / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert json.loads((folder / "manifest.json").read_text()) == snapshot.manifest
    assert not list(folder.rglob("*.part"))


def test_a_pulled_folder_loads_with_pandas_and_datasets(pulled):
    _, snapshot, _, folder = pulled
    frame = pd.read_parquet(folder / "pairwise")
    assert len(frame) == snapshot.rows
    dataset = load_snapshot(folder)
    expected = {}
    for f in snapshot.files:
        if f["format"] == "parquet" and f["rows"]:
            expected[f["split"]] = expected.get(f["split"], 0) + f["rows"]
    assert {split: len(ds) for split, ds in dataset.items()} == expected
    row = next(iter(dataset.values()))[0]
    assert row["chosen"][0]["role"] == "assistant" and row["prompt"][-1]["role"] == "user"


def test_pull_resumes_a_partial_file_with_a_range_request(pulled):
    judged, snapshot, client, folder = pulled
    f = next(f for f in snapshot.files if f["format"] == "jsonl" and f["bytes"] > 100)
    target = folder / f["path"]
    data = target.read_bytes()
    target.unlink()
    target.with_name(target.name + ".part").write_bytes(data[: len(data) // 2])
    requests: list[httpx.Request] = []
    pull(api_client(client.http, judged.trainer, requests=requests), str(snapshot.uuid), folder, progress=False)
    assert target.read_bytes() == data
    ranged = [r for r in requests if r.url.path.endswith(f["path"])]
    assert [r.headers.get("Range") for r in ranged] == [f"bytes={len(data) // 2}-"]


def test_a_corrupted_partial_file_fails_the_checksum_and_the_next_pull_repairs_it(pulled):
    _, snapshot, client, folder = pulled
    f = next(f for f in snapshot.files if f["format"] == "jsonl" and f["bytes"] > 100)
    target = folder / f["path"]
    target.unlink()
    part = target.with_name(target.name + ".part")
    part.write_bytes(b"x" * (f["bytes"] // 2))
    with pytest.raises(PullError, match="checksum mismatch"):
        pull(client, str(snapshot.uuid), folder, progress=False)
    assert not part.exists()
    pull(client, str(snapshot.uuid), folder, progress=False)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == f["sha256"]


def test_files_already_complete_are_not_downloaded_again(pulled):
    judged, snapshot, client, folder = pulled
    requests: list[httpx.Request] = []
    pull(api_client(client.http, judged.trainer, requests=requests), str(snapshot.uuid), folder, progress=False)
    assert not [r for r in requests if r.url.path.endswith((".parquet", ".jsonl"))]


def test_pull_with_audio_fetches_every_referenced_audio_file(pulled):
    _, snapshot, client, folder = pulled
    pull(client, str(snapshot.uuid), folder, with_audio=True, progress=False)
    rows = read_rows(snapshot)
    keys = {k for r in rows for k in [*r["prompt_audio"], r["chosen_audio"], r["rejected_audio"]] if k}
    assert audio_keys(folder, snapshot.manifest) == keys
    for key in keys:
        assert hashlib.sha256((folder / key).read_bytes()).hexdigest() == key.split("/")[-1].split(".")[0]


def test_pulling_an_unfinished_snapshot_says_so(db, tmp_path, in_process_api):
    judged = judged_campaign(dialogues=1)
    pending = snapshot_create(user=judged.trainer, campaigns=[judged.campaign], kind="pairwise", enqueue=False)
    with pytest.raises(PullError, match="is pending"):
        pull(api_client(in_process_api, judged.trainer), str(pending.uuid), tmp_path, progress=False)


def test_a_token_for_another_campaign_cannot_pull(db, tmp_path, in_process_api):
    judged, other = judged_campaign(dialogues=1), judged_campaign(dialogues=1)
    snapshot = export(judged)
    other.campaign.memberships.create(user=judged.trainer, role="trainer")
    client = api_client(in_process_api, judged.trainer, campaigns=[other.campaign])
    with pytest.raises(PullError, match="HTTP 404"):
        pull(client, str(snapshot.uuid), tmp_path, progress=False)


def test_the_command_line_imports_no_django():
    code = (
        "import sys, rlhf_export.cli, rlhf_export.__main__\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'auralign', 'config'})))\n"
    )
    env = services.django_free_env()
    result = subprocess.run([sys.executable, "-c", code.replace("rlhf_export.__main__", "rlhf_export.client")],
                            env=env, cwd=services.REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    help_run = subprocess.run([sys.executable, "-m", "rlhf_export", "--help"], env=env, cwd=services.REPO,
                              capture_output=True, text=True, timeout=120)
    assert help_run.returncode == 0 and "pull" in help_run.stdout


def cli(*args, env_extra) -> subprocess.CompletedProcess:
    env = services.django_free_env({"AURALIGN_URL": "", "AURALIGN_TOKEN": "", **env_extra})
    return subprocess.run([sys.executable, "-m", "rlhf_export", *args], env=env, cwd=services.REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.django_db(transaction=True)
def test_the_command_line_pulls_from_a_live_server_with_a_progress_bar(live_server, tmp_path):
    judged = judged_campaign(dialogues=2, k=2, annotators=1, with_audio=True)
    snapshot = export(judged)
    _, secret = api_token_create(user=judged.trainer, name="cli", read_only=True, campaigns=[judged.campaign])
    result = cli("pull", str(snapshot.uuid), "--to", str(tmp_path / "d"), "--with-audio",
                 env_extra={"AURALIGN_URL": live_server.url, "AURALIGN_TOKEN": secret})
    assert result.returncode == 0, result.stderr
    assert "checksums verified" in result.stdout.strip().splitlines()[-1]
    assert "pull " in result.stderr and "B/s" in result.stderr  # tqdm's bar
    assert (tmp_path / "d" / "manifest.json").exists()
    listed = cli("list", env_extra={"AURALIGN_URL": live_server.url, "AURALIGN_TOKEN": secret})
    assert str(snapshot.uuid) in listed.stdout


@pytest.mark.django_db(transaction=True)
def test_the_command_line_exits_non_zero_with_one_line_on_a_bad_token(live_server, tmp_path):
    result = cli("pull", str(uuid.uuid4()), "--to", str(tmp_path), env_extra={"AURALIGN_URL": live_server.url, "AURALIGN_TOKEN": "aur_bad_x"})
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: ") and "401" in result.stderr


def test_pull_refuses_something_that_is_not_a_snapshot_id(db, tmp_path, in_process_api):
    judged = judged_campaign(dialogues=1)
    with pytest.raises(PullError, match="not a snapshot id"):
        pull(api_client(in_process_api, judged.trainer), "latest", tmp_path, progress=False)


def test_the_command_line_needs_a_server_and_a_token(tmp_path):
    result = cli("pull", "x", "--to", str(tmp_path), env_extra={})
    assert result.returncode == 1 and result.stderr.strip() == "error: no server URL: pass --url or set AURALIGN_URL"


@pytest.mark.services
def test_pull_from_s3_follows_presigned_urls_without_sending_the_token(db, tmp_path, s3_settings, in_process_api):
    judged = judged_campaign(dialogues=2, k=2, annotators=1, with_audio=True)
    snapshot = export(judged)
    requests: list[httpx.Request] = []
    pull(api_client(in_process_api, judged.trainer, requests=requests), str(snapshot.uuid), tmp_path, with_audio=True, progress=False)
    to_s3 = [r for r in requests if str(r.url).startswith(s3_settings.endpoint_url)]
    assert to_s3 and not any("authorization" in r.headers for r in to_s3)
    for f in snapshot.files:
        assert hashlib.sha256((tmp_path / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert os.path.exists(tmp_path / "manifest.json")
