from django.conf import settings
from django.db import models
from django.db.models import Q

from auralign.core.models import PublicIdModel

SCHEMA_VERSION = 1  # docs/formats.md "Export snapshot"; bump on any change to the files' columns


class ExportSnapshot(PublicIdModel):
    """An immutable, reproducible preference dataset: the spec it was built from, the watermark
    (exactly which judgments it covers) and its files with row counts and sha256.

    pending → running → succeeded | failed. Only a succeeded snapshot has files; the database
    refuses any UPDATE once it is succeeded or failed (migration 0002)."""

    class Kind(models.TextChoices):
        PAIRWISE = "pairwise", "pairwise: one row per preference in one judgment"
        PAIRWISE_CONSENSUS = "pairwise_consensus", "pairwise consensus: one row per item pair"
        LISTWISE = "listwise", "listwise: one row per judgment"
        POINTWISE = "pointwise", "pointwise: one row per candidate × criterion"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    spec = models.JSONField(help_text="campaign uuids, filters, splits, formats: everything the files depend on")
    campaigns = models.ManyToManyField("campaigns.Campaign", related_name="export_snapshots")
    schema_version = models.PositiveSmallIntegerField(default=SCHEMA_VERSION)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    progress = models.FloatField(default=0.0, help_text="fraction of candidate judgments processed (0-1)")
    rows = models.PositiveBigIntegerField(default=0, help_text="rows written so far (all splits, one format)")
    attempt = models.PositiveIntegerField(default=0, help_text="runs started; a newer run supersedes an older one")
    error = models.TextField(blank=True)
    watermark = models.JSONField(null=True, blank=True, help_text="max_judgment_id, judgment_count, judgments_sha256")
    files = models.JSONField(default=list, blank=True, help_text="path, split, format, rows, bytes, sha256")
    manifest = models.JSONField(null=True, blank=True, help_text="the manifest.json written with the files")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="last progress report of the running attempt")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["pairwise", "pairwise_consensus", "listwise", "pointwise"]), name="export_kind_known"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "succeeded", "failed"]), name="export_status_known"
            ),
            models.CheckConstraint(condition=Q(progress__gte=0, progress__lte=1), name="export_progress_fraction"),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | Q(manifest__isnull=False, watermark__isnull=False),
                name="export_succeeded_has_manifest",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} export {self.uuid} ({self.status})"

    @property
    def prefix(self) -> str:
        """Where its files live in object storage (docs/formats.md)."""
        return f"exports/{self.uuid}/"

    @property
    def is_done(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}
