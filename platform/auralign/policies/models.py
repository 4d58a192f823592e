from django.conf import settings
from django.db import models
from django.db.models import Q

from auralign.core.models import PublicIdModel


class Policy(PublicIdModel):
    """A model to sample replies from. Annotators never see a policy's name or id."""

    class Backend(models.TextChoices):
        HF = "hf", "Hugging Face checkpoint (local or s3://)"
        OPENAI = "openai", "OpenAI-compatible endpoint (vLLM, SGLang, hosted)"

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    backend = models.CharField(max_length=16, choices=Backend.choices)
    config = models.JSONField(default=dict, help_text="backend config (docs/formats.md)")
    generation = models.JSONField(default=dict, help_text="temperature, top_p, max_new_tokens")
    tts = models.JSONField(default=dict, help_text='{"backend": "piper" | "vits" | "espeak" | "model", ...}')
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    produced_by_run = models.OneToOneField(
        "rlhf_export.TrainingRun", null=True, blank=True, on_delete=models.PROTECT, related_name="produced_policy",
        help_text="the DPO training run whose checkpoint this policy is (its snapshot is the run's)",
    )
    archived = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "policies"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(backend__in=["hf", "openai"]), name="policy_backend_known"),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="policy_not_own_parent"),
        ]

    def __str__(self) -> str:
        return self.name

    def job_spec(self) -> dict:
        """The policy part of a sampling job (docs/formats.md)."""
        return {
            "id": str(self.uuid),
            "backend": self.backend,
            "config": self.config,
            "generation": self.generation,
            "tts": self.tts,
        }
