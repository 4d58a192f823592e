"""An export created over the API runs as a Celery job on the `cpu` queue of a real worker process
(PostgreSQL shared with the worker, Redis as the broker)."""

import time

import pytest
from rest_framework.test import APIClient

from rlhf_export.models import ExportSnapshot
from tests import services
from tests.rlhf_export.conftest import judged_campaign, read_rows

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
PRIVATE_REDIS_DB = "13"  # its own database: other suites' `cpu` workers on the same Redis never see these jobs


@pytest.fixture
def broker(redis_url):
    """This process's Celery app (which enqueues on commit) pointed at a private Redis database."""
    with services.private_broker(redis_url, PRIVATE_REDIS_DB) as url:
        yield url


@pytest.fixture
def cpu_worker(postgres, broker, settings, tmp_path):
    env = services.platform_env(
        {"CELERY_BROKER_URL": broker, "AURALIGN_STORAGE": "local", "AURALIGN_MEDIA_ROOT": settings.STORAGES["default"]["OPTIONS"]["location"]}
    )
    proc = services.start_celery_worker(app="config.celery_app", queues="cpu", env=env, logfile=tmp_path / "cpu.log")
    yield tmp_path / "cpu.log"
    services.stop_process(proc)


def test_an_export_created_over_the_api_runs_on_the_cpu_queue(cpu_worker):
    judged = judged_campaign(dialogues=3)
    api = APIClient()
    api.force_authenticate(judged.trainer)
    response = api.post("/api/v1/exports", {"campaigns": [str(judged.campaign.uuid)], "kind": "pairwise"}, format="json")
    assert response.status_code == 201
    snapshot = ExportSnapshot.objects.get(uuid=response.json()["id"])
    deadline = time.monotonic() + 120
    while not snapshot.is_done and time.monotonic() < deadline:
        time.sleep(0.3)
        snapshot.refresh_from_db()
    assert snapshot.status == ExportSnapshot.Status.SUCCEEDED, cpu_worker.read_text()[-3000:]
    assert len(read_rows(snapshot)) == 3 * len(judged.judgments)
    assert "auralign.export.run" in cpu_worker.read_text()
