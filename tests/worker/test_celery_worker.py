"""The worker as it runs in production: a `celery -A worker.app worker` process on Redis, with
audio going to SeaweedFS, and no Django anywhere in the process."""

import subprocess
import sys
import uuid

import pytest
from celery import Celery

from tests import services
from tests.worker.conftest import make_job
from worker import celery_conf


def test_the_worker_app_never_imports_django_or_the_platform():
    code = (
        "import sys, worker.app, worker.tasks, worker.samplers.hf, worker.samplers.openai_compat, worker.tts\n"
        # (kombu's JSON helper imports django.utils when Django is installed; that is not the framework)
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('auralign', 'config')\n"
        "             or m.startswith(('django.conf', 'django.db', 'django.apps', 'django.core')))\n"
        "assert not bad, bad\n"
        "assert 'auralign.worker.sample' in worker.app.app.tasks\n"
    )
    run = subprocess.run([sys.executable, "-c", code], env=services.django_free_env(), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


@pytest.mark.services
def test_a_celery_worker_process_on_redis_samples_a_job_into_s3(redis_url, s3_server, causal_lm, tmp_path):
    queue = f"gpu-test-{uuid.uuid4().hex[:8]}"
    env = services.django_free_env(
        {**s3_server.env(), "CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url, "HF_HUB_OFFLINE": "1"}
    )
    proc = services.start_celery_worker(app="worker.app", queues=queue, env=env, logfile=tmp_path / "worker.log")
    client = Celery("test-client", broker=redis_url, backend=redis_url, set_as_current=False)
    client.conf.update(**celery_conf.common())
    try:
        job = make_job({"checkpoint": str(causal_lm)}, dialogues=2, samples=2)
        result = client.signature("auralign.worker.sample", args=[job]).apply_async(queue=queue).get(timeout=180)
    finally:
        services.stop_process(proc)
    assert [t["status"] for t in result["tasks"]] == ["ok", "ok"]
    s3 = s3_server.client()
    for task in result["tasks"]:
        for candidate in task["candidates"]:
            body = s3.get_object(Bucket=s3_server.bucket, Key=candidate["audio"]["key"])["Body"].read()
            assert body[:4] == b"RIFF" and len(body) == candidate["audio"]["size_bytes"]
