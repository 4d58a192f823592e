from django.conf import settings
from django.db import models
from django.db.models import Q

from auralign.core.models import PublicIdModel


class Campaign(PublicIdModel):
    class Status(models.TextChoices):
        DRAFT = "draft"
        SAMPLING = "sampling"
        ANNOTATING = "annotating"
        PAUSED = "paused"
        COMPLETED = "completed"

    class Reasoning(models.TextChoices):
        HIDDEN = "hidden", "hidden from annotators"
        COLLAPSED = "collapsed", "shown collapsed"
        SHOWN = "shown", "shown expanded"

    # draft → sampling → annotating ⇄ paused → completed (DESIGN.md)
    TRANSITIONS = {
        Status.DRAFT: {Status.SAMPLING},
        Status.SAMPLING: {Status.ANNOTATING},
        Status.ANNOTATING: {Status.PAUSED, Status.COMPLETED},
        Status.PAUSED: {Status.ANNOTATING, Status.COMPLETED},
        Status.COMPLETED: set(),
    }

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    instructions = models.TextField(blank=True, help_text="shown to annotators above the rubric's instructions")
    rubric_version = models.ForeignKey("rubrics.RubricVersion", on_delete=models.PROTECT, related_name="campaigns")
    dialogue_set = models.ForeignKey("dialogues.DialogueSet", on_delete=models.PROTECT, related_name="campaigns")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)

    candidates_per_item = models.PositiveSmallIntegerField(default=2, help_text="K replies shown together (2-6)")
    judgments_per_item = models.PositiveSmallIntegerField(default=3, help_text="overlap: annotators per item")
    lease_seconds = models.PositiveIntegerField(default=600)
    gold_rate = models.FloatField(default=0.0, help_text="fraction of served items that are gold (0-1)")
    min_listened_fraction = models.FloatField(default=0.8)
    reasoning_display = models.CharField(max_length=16, choices=Reasoning.choices, default=Reasoning.COLLAPSED)
    sample_rate = models.PositiveIntegerField(default=24000, help_text="reply audio sample rate (Hz)")
    target_lufs = models.FloatField(default=-20.0, help_text="reply loudness after normalisation")
    qualification_gold_items = models.PositiveSmallIntegerField(
        default=0, help_text="judgments count only after this many gold items... (0 = no gate)"
    )
    qualification_min_accuracy = models.FloatField(default=0.0, help_text="...answered at least this accurately (0-1)")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["draft", "sampling", "annotating", "paused", "completed"]),
                name="campaign_status_known",
            ),
            models.CheckConstraint(
                condition=Q(candidates_per_item__gte=2, candidates_per_item__lte=6), name="campaign_k_2_to_6"
            ),
            models.CheckConstraint(condition=Q(judgments_per_item__gte=1), name="campaign_overlap_positive"),
            models.CheckConstraint(condition=Q(lease_seconds__gte=30), name="campaign_lease_at_least_30s"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0, gold_rate__lte=1), name="campaign_gold_rate_fraction"),
            models.CheckConstraint(
                condition=Q(min_listened_fraction__gte=0, min_listened_fraction__lte=1),
                name="campaign_listened_fraction",
            ),
            models.CheckConstraint(
                condition=Q(qualification_min_accuracy__gte=0, qualification_min_accuracy__lte=1),
                name="campaign_qualification_accuracy_fraction",
            ),
            models.CheckConstraint(
                condition=Q(sample_rate__gte=8000, sample_rate__lte=96000), name="campaign_sample_rate_sane"
            ),
            models.CheckConstraint(
                condition=Q(reasoning_display__in=["hidden", "collapsed", "shown"]), name="campaign_reasoning_known"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignPolicy(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="campaign_policies")
    policy = models.ForeignKey("policies.Policy", on_delete=models.PROTECT, related_name="campaign_policies")
    samples_per_dialogue = models.PositiveSmallIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "policy"], name="campaign_policy_unique"),
            models.CheckConstraint(
                condition=Q(samples_per_dialogue__gte=1, samples_per_dialogue__lte=16), name="campaign_policy_n_1_to_16"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} ← {self.policy} ×{self.samples_per_dialogue}"


class Membership(models.Model):
    class Role(models.TextChoices):
        LEAD = "lead"
        ANNOTATOR = "annotator"
        TRAINER = "trainer"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    active = models.BooleanField(default=True, help_text="inactive annotators get no new items")
    # Kept by the assignment engine as it leases (annotators only): every item leased to them in
    # this campaign, whatever became of the lease, and the gold ones among them. "Is gold due?"
    # reads these from the row "next" locks anyway, instead of counting the annotator's
    # assignments on every call (which grew with their history: 13-23 ms at 5,000 items).
    items_leased = models.PositiveIntegerField(default=0, editable=False)
    gold_leased = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "user", "role"], name="membership_unique"),
            models.CheckConstraint(condition=Q(role__in=["lead", "annotator", "trainer"]), name="membership_role_known"),
        ]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.campaign}"

    ENGINE_COUNTS = ("items_leased", "gold_leased")

    def save(self, *args, **kwargs):
        """Saving a loaded membership (a lead's edit, the admin) never writes the engine's counts
        back: a lease between the read and the save would be lost from them."""
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields if not f.primary_key and f.name not in self.ENGINE_COUNTS
            ]
        super().save(*args, **kwargs)
