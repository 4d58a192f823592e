"""Periodic annotation upkeep (queue `cpu`)."""

from celery import shared_task

from auralign.annotation.services import leases_expire


@shared_task(name="auralign.annotation.expire_leases")
def expire_leases() -> int:
    """Free the slots of leases nobody renewed (the "next item" call also does this lazily)."""
    return leases_expire()
