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


def test_beat_syncs_live_training_metrics_and_reconciles_lost_runs_on_registered_tasks():
    app.loader.import_default_modules()
    beat = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"auralign.training.sync", "auralign.training.reconcile"} <= beat
    assert beat <= set(app.tasks)  # every scheduled task exists


def test_platform_training_tasks_are_not_routed_to_the_django_free_train_queue():
    router = app.amqp.router
    for name in ("auralign.training.register", "auralign.training.score", "auralign.training.sync"):
        assert router.route({}, name)["queue"].name == "cpu"
    assert router.route({}, "auralign.train.run")["queue"].name == "train"
