"""The platform's Celery app (`celery -A config.celery_app worker -Q cpu`).

Queues: `gpu` (Django-free sampling, worker/), `train` (Django-free training,
rlhf_export/training/), `cpu` (platform tasks: ingest, exports, quality, reconcile).
In the embedded default one local worker consumes all three over kombu's filesystem transport,
so it also imports the Django-free task modules; production runs them on separate machines.
"""

from __future__ import annotations

import importlib.util
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("auralign")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _filesystem_options(folder) -> dict:
    for sub in ("queue", "processed"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    return {
        "data_folder_in": os.path.join(folder, "queue"),
        "data_folder_out": os.path.join(folder, "queue"),
        "processed_folder": os.path.join(folder, "processed"),
        "store_processed": False,
    }


def configure(app: Celery) -> None:
    from django.conf import settings

    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="cpu",
        task_routes={
            "auralign.worker.*": {"queue": "gpu"},
            "auralign.train.*": {"queue": "train"},
        },
        broker_connection_retry_on_startup=True,
        task_always_eager=settings.CELERY_TASK_ALWAYS_EAGER,
        beat_schedule={
            "reconcile": {
                "task": "auralign.generation.reconcile",
                "schedule": float(settings.CELERY_BEAT_RECONCILE_SECONDS),
            },
            # Quality figures refresh within a minute of new judgments, off the submission hot path.
            "quality-recompute-due": {"task": "auralign.quality.recompute_due", "schedule": 60.0},
            "expire-leases": {"task": "auralign.annotation.expire_leases", "schedule": 60.0},
        },
    )
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        app.conf.broker_transport_options = _filesystem_options(settings.CELERY_FILESYSTEM_DIR)
    elif settings.CELERY_BROKER_URL.startswith("redis"):
        # A task not acked within this many seconds is redelivered (must exceed the longest task).
        app.conf.broker_transport_options = {"visibility_timeout": 6 * 3600}
    # Django-free task modules, present when this process can run them (the embedded default).
    app.conf.include = [m for m in ("worker.tasks", "rlhf_export.training.tasks") if importlib.util.find_spec(m)]


app.on_after_configure.connect(lambda sender, **kw: configure(sender))
app.autodiscover_tasks()
