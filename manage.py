#!/usr/bin/env python
"""Django's command-line utility. The ONE place that puts platform/ (the backend source root,
never a package) on sys.path; pytest, gunicorn, celery and compose use PYTHONPATH instead."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> None:
    sys.path.insert(0, str(ROOT / "platform"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
