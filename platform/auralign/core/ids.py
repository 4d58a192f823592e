"""Identifier helpers shared by services, views and commands."""

from __future__ import annotations

import uuid


def is_uuid(value: object) -> bool:
    """Whether `value` spells a UUID, so a lookup by `uuid=value` cannot raise on bad input."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
