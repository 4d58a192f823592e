import uuid

from django.db import models


class PublicIdModel(models.Model):
    """Rows that leave the server are named by an opaque uuid, never by their sequential id."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Meta:
        abstract = True
