"""The Django-free GPU worker: `celery -A worker.app worker -Q gpu` (sampling) or `-Q train`
(reward-model and DPO training from rlhf_export/training, also Django-free).

Configured from the environment only: CELERY_BROKER_URL (default: the embedded filesystem
transport under $AURALIGN_VAR_DIR/celery, shared with the platform), CELERY_VISIBILITY_TIMEOUT,
optional CELERY_RESULT_BACKEND, AURALIGN_WORKER_CONCURRENCY (default 1: one model per process),
and the object storage variables of docs/formats.md. It never touches the database.
"""

from __future__ import annotations

import os

from celery import Celery

from worker import celery_conf

broker_url = os.environ.get("CELERY_BROKER_URL", "filesystem://")

app = Celery("auralign_worker")
app.conf.update(
    broker_url=broker_url,
    result_backend=os.environ.get("CELERY_RESULT_BACKEND") or None,
    broker_transport_options=celery_conf.transport_options(
        broker_url,
        filesystem_dir=celery_conf.var_dir() / "celery",
        visibility_timeout=int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", celery_conf.DEFAULT_VISIBILITY_TIMEOUT)),
    ),
    task_default_queue="gpu",
    worker_concurrency=int(os.environ.get("AURALIGN_WORKER_CONCURRENCY", "1")),
    include=["worker.tasks", "rlhf_export.training.tasks"],
    **celery_conf.common(),
)
