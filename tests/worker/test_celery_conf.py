import json
import subprocess
import sys

from tests import services
from worker import celery_conf


def test_filesystem_transport_shares_one_queue_folder(tmp_path):
    options = celery_conf.transport_options("filesystem://", filesystem_dir=tmp_path, visibility_timeout=60)
    assert options["data_folder_in"] == options["data_folder_out"] == str(tmp_path / "queue")
    assert options["control_folder"] == str(tmp_path / "control")  # not ./control in the working directory
    assert all((tmp_path / sub).is_dir() for sub in ("queue", "processed", "control"))


def test_redis_transport_redelivers_after_the_visibility_timeout(tmp_path):
    assert celery_conf.transport_options("redis://h:6379/0", filesystem_dir=tmp_path, visibility_timeout=42) == {"visibility_timeout": 42}


def test_worker_app_reads_the_broker_from_the_environment(tmp_path):
    # in a subprocess: importing worker.app makes its Celery app the current one
    code = (
        "import json; from worker.app import app; c = app.conf; "
        "print(json.dumps([c.task_acks_late, c.worker_prefetch_multiplier, c.task_default_queue, "
        "c.broker_transport_options['data_folder_in']]))"
    )
    env = services.django_free_env({"CELERY_BROKER_URL": "filesystem://", "AURALIGN_VAR_DIR": str(tmp_path)})
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(run.stdout) == [True, 1, "gpu", str(tmp_path / "celery" / "queue")]
