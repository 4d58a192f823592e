"""Precomputed quality figures. Only the recompute task writes them; pages, APIs and exports read.

Definitions of every figure: docs/quality.md.
"""

from django.conf import settings
from django.db import models


class CampaignQuality(models.Model):
    """One campaign's latest figures (JSON, as served by the API) and the recompute bookkeeping."""

    campaign = models.OneToOneField("campaigns.Campaign", on_delete=models.CASCADE, related_name="quality")
    computed_at = models.DateTimeField(null=True, blank=True)
    watermark = models.BigIntegerField(default=0, help_text="highest judgment id the figures cover")
    judgment_count = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    scheduled_at = models.DateTimeField(null=True, blank=True, help_text="a recompute is queued (debounce)")
    progress = models.JSONField(default=dict)
    agreement = models.JSONField(default=dict)
    leaderboard = models.JSONField(default=dict)
    flags = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"quality of {self.campaign}"


class AnnotatorStats(models.Model):
    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="annotator_stats")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quality_stats")
    judgments = models.PositiveIntegerField(default=0)
    qualified = models.BooleanField(default=True, help_text="passed the campaign's gate: their judgments count")
    gold_answered = models.PositiveIntegerField(default=0)
    gold_accuracy = models.FloatField(null=True, blank=True)
    honeypots_seen = models.PositiveIntegerField(default=0)
    honeypots_caught = models.PositiveIntegerField(default=0)
    loo_agreement = models.FloatField(null=True, blank=True, help_text="agreement with the leave-one-out consensus")
    loo_pairs = models.PositiveIntegerField(default=0)
    first_shown_win_rate = models.FloatField(null=True, blank=True)
    first_shown_chance = models.FloatField(null=True, blank=True)
    position_bias_z = models.FloatField(null=True, blank=True)
    listened_mean = models.FloatField(null=True, blank=True)
    median_time_ms = models.PositiveIntegerField(null=True, blank=True)
    judgments_per_hour = models.FloatField(null=True, blank=True, help_text="per hour of time spent on items")
    judgments_last_24h = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    weight = models.FloatField(default=1.0, help_text="reliability weight in [0, 1]")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "annotator"], name="annotator_stats_unique"),
            models.CheckConstraint(condition=models.Q(weight__gte=0, weight__lte=1), name="annotator_weight_unit"),
        ]

    @property
    def honeypot_catch_rate(self) -> float | None:
        return self.honeypots_caught / self.honeypots_seen if self.honeypots_seen else None


class ItemConsensus(models.Model):
    item = models.OneToOneField("annotation.Item", on_delete=models.CASCADE, primary_key=True, related_name="consensus")
    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    judgments = models.PositiveIntegerField(default=0, help_text="counted judgments")
    agreement = models.FloatField(null=True, blank=True, help_text="pairwise agreement of the ranking; null if < 2")
    ranking = models.JSONField(default=list, help_text="consensus tiers of candidate uuids, best first")

    class Meta:
        indexes = [models.Index(fields=["campaign", "agreement"])]
