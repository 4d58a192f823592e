from django.conf import settings
from django.db import models
from django.db.models import Q

from auralign.core.models import PublicIdModel


class DialogueSet(PublicIdModel):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Dialogue(PublicIdModel):
    """A multi-turn conversation; candidates answer its last (user) turn.
    `content_sha256` fingerprints the turns so a re-import can tell same from changed."""

    dialogue_set = models.ForeignKey(DialogueSet, on_delete=models.CASCADE, related_name="dialogues")
    external_id = models.CharField(max_length=200, help_text="the id from the import manifest")
    metadata = models.JSONField(default=dict, blank=True)
    content_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dialogue_set_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dialogue_set", "external_id"], name="dialogue_external_id_unique_in_set")
        ]

    def __str__(self) -> str:
        return f"{self.dialogue_set.name}/{self.external_id}"


class Turn(models.Model):
    class Role(models.TextChoices):
        SYSTEM = "system"
        USER = "user"
        ASSISTANT = "assistant"

    dialogue = models.ForeignKey(Dialogue, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveSmallIntegerField()
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField(blank=True)
    audio = models.ForeignKey("media.AudioAsset", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["dialogue_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["dialogue", "index"], name="turn_index_unique_in_dialogue"),
            models.CheckConstraint(condition=Q(role__in=["system", "user", "assistant"]), name="turn_role_known"),
        ]

    def __str__(self) -> str:
        return f"{self.dialogue_id}#{self.index} {self.role}"


class DialogueImport(PublicIdModel):
    """An import run started from the API (S3 prefix imports run in the background)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    dialogue_set = models.ForeignKey(DialogueSet, on_delete=models.CASCADE, related_name="imports")
    source = models.CharField(max_length=1000)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    errors = models.JSONField(default=list, blank=True)
    created = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    progress = models.FloatField(default=0.0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
