"""Celery settings shared by the platform app (config.celery_app) and the Django-free GPU worker
app (worker.app), so both ends of a queue agree on serialisation, acknowledgement and transport.

Django-free: the platform passes its settings in; the worker reads the same environment variables.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VISIBILITY_TIMEOUT = 6 * 3600  # seconds; must exceed the longest task


def var_dir() -> Path:
    return Path(os.environ.get("AURALIGN_VAR_DIR", REPO / "var"))


def common() -> dict:
    """Reliability settings every Auralign Celery app uses (DESIGN.md, "Reliability")."""
    return {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_routes": {
            "auralign.worker.*": {"queue": "gpu"},
            "auralign.train.*": {"queue": "train"},
        },
        "broker_connection_retry_on_startup": True,
    }


def filesystem_options(folder: Path | str) -> dict:
    """Everything under `folder`, including the exchange tables (kombu's default for those is a
    `control/` folder in the current directory)."""
    for sub in ("queue", "processed", "control"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    return {
        "data_folder_in": os.path.join(folder, "queue"),
        "data_folder_out": os.path.join(folder, "queue"),
        "processed_folder": os.path.join(folder, "processed"),
        "control_folder": os.path.join(folder, "control"),
        "store_processed": False,
    }


def transport_options(broker_url: str, *, filesystem_dir: Path | str, visibility_timeout: int) -> dict:
    """kombu transport options for the broker URL: the shared folder of the embedded default, or
    Redis' redelivery timeout (an unacknowledged task comes back after this many seconds)."""
    if broker_url.startswith("filesystem"):
        return filesystem_options(filesystem_dir)
    if broker_url.startswith(("redis", "rediss")):
        return {"visibility_timeout": visibility_timeout}
    return {}
