import hashlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rlhf_export.training import tasks
from rlhf_export.training.tasks import run_job, run_training
from tests import services

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # as the in-process tests (conftest.one_torch_thread)
FAST = {"lr": 3e-3, "epochs": 1, "batch_size": 16, "log_every": 1, "device": "cpu"}


def job(kind: str, snapshot: str, model: str, output: str, **config) -> dict:
    return {
        "schema": "auralign.train_job/1",
        "run_id": str(uuid.uuid4()),
        "kind": kind,
        "snapshot": snapshot,
        "base_model": {"path": model, "gguf_file": None},
        "audio_encoder": None,
        "config": {**FAST, **config},
        "output": output,
    }


def test_reward_model_job_returns_result_with_checksummed_artifacts(tiny_lm, polite_snapshot, tmp_path):
    out = tmp_path / "run"
    result = run_training.apply(
        args=[job("reward_model", str(polite_snapshot), str(tiny_lm), str(out))]
    ).get()
    assert result["schema"] == "auralign.train_result/1"
    assert (result["status"], result["error"]) == ("ok", None)
    assert result["checkpoint"] == str(out / "checkpoint")
    assert result["metrics"]["eval"]["accuracy"] > 0.5
    paths = {a["path"]: a for a in result["artifacts"]}
    assert {"metrics.json", "metrics.jsonl", "curves.png", "checkpoint/reward_model.json"} <= set(paths)
    for path, artifact in paths.items():
        content = (out / path).read_bytes()
        assert artifact == {
            "path": path,
            "sha256": hashlib.sha256(content).hexdigest(),
            "bytes": len(content),
        }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "ppo"}, "job kind must be reward_model or dpo"),
        ({"schema": "auralign.train_job/0"}, "job schema must be"),
        ({"snapshot": "/nonexistent/snapshot"}, "no manifest.json"),
        ({"config": {"no_such_option": 1}}, "unknown RMConfig option(s): no_such_option"),
    ],
)
def test_bad_job_returns_a_failed_result_naming_the_problem(
    tiny_lm, polite_snapshot, tmp_path, change, message
):
    bad = {**job("reward_model", str(polite_snapshot), str(tiny_lm), str(tmp_path)), **change}
    result = run_job(bad)
    assert result["status"] == "failed"
    assert message in result["error"]
    assert result["schema"] == "auralign.train_result/1"


def upload_folder(client, bucket: str, folder: Path, prefix: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")


def test_dpo_job_reads_from_and_writes_to_object_storage_with_live_metrics(
    s3_server, tiny_lm, pairwise_snapshot, monkeypatch
):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(tasks, "LIVE_SYNC_SECONDS", 0.0)
    client, bucket = s3_server.client(), s3_server.bucket
    export, run = str(uuid.uuid4()), str(uuid.uuid4())
    upload_folder(client, bucket, pairwise_snapshot, f"exports/{export}")
    upload_folder(client, bucket, tiny_lm, f"models/{run}")
    output = f"s3://{bucket}/runs/{run}/"

    live_lines = []

    def on_progress(record):  # what the platform would see in object storage while the run goes on
        try:
            body = client.get_object(Bucket=bucket, Key=f"runs/{run}/metrics.jsonl")["Body"].read()
            live_lines.append(len(body.splitlines()))
        except client.exceptions.NoSuchKey:
            live_lines.append(0)

    dpo_job = job(
        "dpo", f"s3://{bucket}/exports/{export}/", f"s3://{bucket}/models/{run}", output, max_steps=4
    )
    result = run_job(dpo_job, on_progress)
    assert (result["status"], result["error"]) == ("ok", None)
    assert result["checkpoint"] == f"s3://{bucket}/runs/{run}/checkpoint"
    stored = {
        o["Key"]: o["Size"] for o in client.list_objects_v2(Bucket=bucket, Prefix=f"runs/{run}/")["Contents"]
    }
    for artifact in result["artifacts"]:
        assert stored[f"runs/{run}/{artifact['path']}"] == artifact["bytes"]
    assert f"runs/{run}/checkpoint/model.safetensors" in stored
    final = client.get_object(Bucket=bucket, Key=f"runs/{run}/metrics.jsonl")["Body"].read().splitlines()
    assert 0 < max(live_lines[1:]) < len(final)  # the log grew in object storage during the run


BLOCK_DJANGO = """
import importlib.abc, sys
class NoDjango(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"django", "auralign", "config", "rest_framework"}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, NoDjango())
"""


def test_train_task_runs_where_django_cannot_be_imported(tiny_lm, polite_snapshot, tmp_path):
    # (kombu tries `from django.utils.functional import Promise` when Django is installed and
    # falls back without it; blocking the import shows that no code path of ours needs Django)
    run = job("reward_model", str(polite_snapshot), str(tiny_lm), str(tmp_path / "run"), max_steps=2)
    code = BLOCK_DJANGO + (
        "import json\n"
        "from celery import Celery\n"
        "app = Celery('t', include=['rlhf_export.training.tasks'])\n"
        "app.loader.import_default_modules()\n"
        "result = app.tasks['auralign.train.run'].apply(args=[json.loads(sys.argv[1])]).get()\n"
        "print(json.dumps({'status': result['status'], 'error': result['error']}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(run)],
        env=services.django_free_env(),
        cwd=services.REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"status": "ok", "error": None}


def test_celery_worker_runs_the_train_task_and_reports_progress(
    redis_url, tiny_lm, polite_snapshot, tmp_path
):
    from celery import Celery

    queue = f"train-test-{uuid.uuid4().hex[:8]}"
    env = services.django_free_env(
        {"CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url, **ONE_THREAD}
    )
    worker = services.start_celery_worker(
        app="tests.rlhf_export.training.celery_app", queues=queue, env=env, logfile=tmp_path / "worker.log"
    )
    try:
        client = Celery("client", broker=redis_url, backend=redis_url)
        sent = client.send_task(
            "auralign.train.run",
            args=[job("reward_model", str(polite_snapshot), str(tiny_lm), str(tmp_path / "run"))],
            queue=queue,
        )
        states, deadline = set(), time.monotonic() + 600
        while not sent.ready() and time.monotonic() < deadline:
            states.add(sent.state)
            if sent.state == "PROGRESS":
                assert {"run_id", "step", "loss"} <= set(sent.info)
            time.sleep(0.2)
        result = sent.get(timeout=10)
    finally:
        services.stop_process(worker)
    assert (result["status"], result["error"]) == ("ok", None), (tmp_path / "worker.log").read_text()[-3000:]
    assert "PROGRESS" in states
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["kind"] == "reward_model"
