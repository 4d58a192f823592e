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

from worker import celery_conf

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("auralign")
app.config_from_object("django.conf:settings", namespace="CELERY")


def configure(app: Celery) -> None:
    from django.conf import settings

    app.conf.update(
        **celery_conf.common(),
        task_default_queue="cpu",
        task_always_eager=settings.CELERY_TASK_ALWAYS_EAGER,
        beat_schedule={
            "reconcile": {
                "task": "auralign.generation.reconcile",
                "schedule": float(settings.CELERY_BEAT_RECONCILE_SECONDS),
            },
            # Quality figures refresh within a minute of new judgments, off the submission hot path.
            "quality-recompute-due": {"task": "auralign.quality.recompute_due", "schedule": 60.0},
            "expire-leases": {"task": "auralign.annotation.expire_leases", "schedule": 60.0},
            "export-reconcile": {"task": "auralign.export.reconcile", "schedule": 300.0},
            # Live metrics of queued / running training runs (metrics.jsonl in object storage).
            "training-sync": {"task": "auralign.training.sync", "schedule": 15.0},
            "training-reconcile": {"task": "auralign.training.reconcile", "schedule": 300.0},
        },
    )
    app.conf.broker_transport_options = celery_conf.transport_options(
        settings.CELERY_BROKER_URL,
        filesystem_dir=settings.CELERY_FILESYSTEM_DIR,
        visibility_timeout=settings.CELERY_VISIBILITY_TIMEOUT,
    )
    # Django-free task modules, present when this process can run them (the embedded default).
    app.conf.include = [m for m in ("worker.tasks", "rlhf_export.training.tasks") if importlib.util.find_spec(m)]


@app.on_after_configure.connect
def _on_after_configure(sender, **kwargs) -> None:
    # A named module-level receiver: Celery's signals hold receivers weakly, so a lambda would be
    # garbage collected before the signal fires and the app would silently keep Celery's defaults.
    configure(sender)


app.autodiscover_tasks()
