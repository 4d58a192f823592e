from config.celery_app import app

from worker import celery_conf


def test_platform_app_is_configured_for_reliability_and_routes():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert conf.task_default_queue == "cpu"
    assert conf.task_routes["auralign.worker.*"] == {"queue": "gpu"}
    assert conf.accept_content == ["json"]
    assert "worker.tasks" in conf.include


def test_platform_app_uses_the_shared_transport_options(settings):
    assert app.conf.broker_transport_options == celery_conf.transport_options(
        settings.CELERY_BROKER_URL, filesystem_dir=settings.CELERY_FILESYSTEM_DIR, visibility_timeout=settings.CELERY_VISIBILITY_TIMEOUT
    )
