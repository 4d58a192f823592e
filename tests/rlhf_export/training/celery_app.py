"""A Django-free Celery app that runs the training task, for the worker-process test.

Started as `celery -A tests.rlhf_export.training.celery_app worker` with the broker and result
backend in CELERY_BROKER_URL / CELERY_RESULT_BACKEND and no DJANGO_SETTINGS_MODULE.
"""

import os

from celery import Celery

app = Celery(
    "training-test",
    broker=os.environ["CELERY_BROKER_URL"],
    backend=os.environ["CELERY_RESULT_BACKEND"],
    include=["rlhf_export.training.tasks"],
)
app.conf.update(
    task_serializer="json", result_serializer="json", accept_content=["json"], worker_prefetch_multiplier=1
)
