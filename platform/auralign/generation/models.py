from django.db import models
from django.db.models import Q

from auralign.campaigns.models import Campaign
from auralign.core.models import PublicIdModel


class GenerationTask(models.Model):
    """One (campaign, dialogue, policy) sampling unit; the database is the truth about what has
    been sampled. Queues carry its id inside a JSON job; reconcile re-dispatches lost ones."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DISPATCHED = "dispatched"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="generation_tasks")
    dialogue = models.ForeignKey("dialogues.Dialogue", on_delete=models.CASCADE, related_name="generation_tasks")
    policy = models.ForeignKey("policies.Policy", on_delete=models.PROTECT, related_name="generation_tasks")
    samples = models.PositiveSmallIntegerField(default=1)
    base_seed = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    job_id = models.UUIDField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "dialogue", "policy"], name="generation_task_unique"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "dispatched", "succeeded", "failed"]), name="generation_status_known"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "status"])]


class Candidate(PublicIdModel):
    """One sampled reply. Unique per (campaign, dialogue, policy, sample index), so a retried or
    duplicated task can never store it twice. `honeypot_of` marks a deliberately degraded copy."""

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="candidates")
    dialogue = models.ForeignKey("dialogues.Dialogue", on_delete=models.CASCADE, related_name="candidates")
    policy = models.ForeignKey("policies.Policy", on_delete=models.PROTECT, related_name="candidates")
    sample_index = models.PositiveSmallIntegerField()
    seed = models.BigIntegerField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    reasoning = models.TextField(blank=True, help_text="reasoning trace, kept apart from the spoken reply")
    reply_text = models.TextField(blank=True)
    audio = models.ForeignKey("media.AudioAsset", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    raw_audio = models.ForeignKey("media.AudioAsset", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    stats = models.JSONField(default=dict, blank=True)
    honeypot_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="honeypots")
    degradation = models.JSONField(default=dict, blank=True, help_text="how a honeypot was degraded")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "dialogue", "policy", "sample_index"], name="candidate_unique_sample"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "dialogue"])]

    def __str__(self) -> str:
        return f"candidate {self.uuid}"


class SamplingProgress(Campaign):
    """The admin's view of a campaign's sampling (a proxy: no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "sampling progress"
        verbose_name_plural = "sampling progress"
