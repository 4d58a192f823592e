import random

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from auralign.core.models import PublicIdModel


def random_tiebreak() -> float:
    return random.random()


class Item(PublicIdModel):
    """K candidates of one dialogue shown together. `slots_used` counts live leases plus counted
    judgments; the database refuses more than `overlap` (gold items are shown to everyone)."""

    # No index of its own: (campaign, is_gold, completed_at) leads with it. Every index is
    # rewritten by each slot change, the hot path's most frequent write.
    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="items", db_index=False)
    dialogue = models.ForeignKey("dialogues.Dialogue", on_delete=models.CASCADE, related_name="items")
    candidates = models.ManyToManyField("generation.Candidate", through="ItemCandidate", related_name="items")
    is_gold = models.BooleanField(default=False)
    gold_ranking = models.JSONField(null=True, blank=True, help_text="expected tiers of candidate uuids")
    gold_pairs = models.JSONField(null=True, blank=True, help_text="expected [better, worse] candidate uuid pairs")
    is_honeypot = models.BooleanField(default=False)
    overlap = models.PositiveSmallIntegerField()
    slots_used = models.PositiveSmallIntegerField(default=0)
    judgment_count = models.PositiveIntegerField(default=0)
    priority = models.FloatField(default=0.0, help_text="higher is served first (e.g. reward-model uncertainty)")
    tiebreak = models.FloatField(default=random_tiebreak, help_text="random order among otherwise equal items")
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(is_gold=True) | Q(slots_used__lte=F("overlap")), name="item_never_over_assigned"
            ),
            models.CheckConstraint(condition=Q(overlap__gte=1), name="item_overlap_positive"),
        ]
        indexes = [
            models.Index(fields=["campaign", "is_gold", "completed_at"]),
            # The assignment engine's queue: open regular items, closest to completion first.
            # Only items with a free slot are in it, so "next item" reads its head, never scans.
            models.Index(
                fields=["campaign", "-priority", "-slots_used", "tiebreak"],
                condition=Q(completed_at__isnull=True, is_gold=False, slots_used__lt=F("overlap")),
                name="item_open_queue",
            ),
            models.Index(fields=["campaign", "tiebreak"], condition=Q(is_gold=True), name="item_gold_queue"),
        ]


class ItemCandidate(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="item_candidates")
    candidate = models.ForeignKey("generation.Candidate", on_delete=models.CASCADE, related_name="item_links")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["item_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["item", "candidate"], name="item_candidate_unique"),
            models.UniqueConstraint(fields=["item", "position"], name="item_position_unique"),
        ]


class Assignment(models.Model):
    """An item leased to one annotator until `expires_at`, with that annotator's display order.
    The (item, annotator) pair is unique: an annotator never gets the same item twice."""

    class Status(models.TextChoices):
        LIVE = "live"
        SUBMITTED = "submitted"
        EXPIRED = "expired"
        SKIPPED = "skipped"

    # item and campaign lead the unique (item, annotator) and the (campaign, annotator, status) indexes
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments", db_index=False)
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    display_order = models.JSONField(help_text="candidate uuids in the order this annotator sees them (A, B, ...)")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.LIVE)
    leased_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    draft = models.JSONField(null=True, blank=True, help_text="autosaved, not-yet-submitted work")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="assignment_once_per_annotator"),
            models.CheckConstraint(
                condition=Q(status__in=["live", "submitted", "expired", "skipped"]), name="assignment_status_known"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "annotator", "status"]),
            # Lease expiry reads live leases by expiry; only live ones are in it, so it stays as
            # small as the number of open leases and a finished lease leaves it.
            models.Index(fields=["expires_at"], condition=Q(status="live"), name="assignment_live_expiry"),
        ]


class Judgment(PublicIdModel):
    """An annotator's ranking and scores for one item. Immutable once stored; idempotent by
    (annotator, client_submission_id); late or surplus ones are kept and marked, never dropped."""

    # campaign and annotator lead the (campaign, id) and unique (annotator, client_submission_id) indexes
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.PROTECT, related_name="judgments", db_index=False
    )
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="judgments")
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="judgment")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments", db_index=False
    )
    rubric_version = models.ForeignKey("rubrics.RubricVersion", on_delete=models.PROTECT, related_name="judgments")
    client_submission_id = models.UUIDField()
    ranking = models.JSONField(help_text="tiers of candidate uuids, best first; a tier holds ties")
    scores = models.JSONField(default=dict, help_text="{candidate uuid: {criterion key: score}}")
    flags = models.JSONField(default=dict, help_text="{candidate uuid: [flag, ...], '_item': [...]}")
    rationale = models.TextField(blank=True)
    listened = models.JSONField(default=dict, help_text="{candidate uuid: fraction listened 0-1}")
    time_spent_ms = models.PositiveIntegerField(default=0)
    is_late = models.BooleanField(default=False, help_text="submitted after the lease expired")
    is_surplus = models.BooleanField(default=False, help_text="the item already had its overlap")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "client_submission_id"], name="judgment_idempotent"),
        ]
        indexes = [
            models.Index(fields=["campaign", "id"]),
            # exports stream a campaign's judgments by item, then id (rlhf_export.selectors.judgments_query)
            models.Index(fields=["campaign", "item", "id"], name="judgment_export_order"),
        ]


class Skip(models.Model):
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="skip")
    reason = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
