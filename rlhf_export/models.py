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


TRAINABLE_KINDS = (ExportSnapshot.Kind.PAIRWISE, ExportSnapshot.Kind.LISTWISE, ExportSnapshot.Kind.PAIRWISE_CONSENSUS)


class TrainingRun(PublicIdModel):
    """A reward-model or DPO run on one export snapshot (docs/training.md, "The platform").

    queued → running → succeeded | failed (queued may also end directly: a run whose result comes
    back before any live metrics were seen, or one that could never be dispatched). Live metrics
    are the run's metrics.jsonl records; a succeeded DPO run produced exactly one Policy
    (`produced_policy`, the reverse of Policy.produced_by_run)."""

    class Kind(models.TextChoices):
        REWARD_MODEL = "reward_model", "reward model"
        DPO = "dpo", "DPO"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    TRANSITIONS = {
        Status.QUEUED: {Status.RUNNING, Status.SUCCEEDED, Status.FAILED},
        Status.RUNNING: {Status.SUCCEEDED, Status.FAILED},
        Status.SUCCEEDED: set(),
        Status.FAILED: set(),
    }

    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    snapshot = models.ForeignKey(ExportSnapshot, on_delete=models.PROTECT, related_name="training_runs")
    base_policy = models.ForeignKey(
        "policies.Policy", null=True, blank=True, on_delete=models.PROTECT, related_name="training_runs",
        help_text="DPO: the policy whose checkpoint is trained (the new policy's parent); RM: optional backbone source",
    )
    base_model = models.JSONField(help_text='{"path": folder or s3:// prefix, "gguf_file": name or null}')
    audio_encoder = models.CharField(max_length=1000, blank=True, help_text="reward model: Whisper / wav2vec2 checkpoint")
    config = models.JSONField(default=dict, blank=True, help_text="training options (RMConfig / DPOConfig field names)")
    policy_name = models.CharField(max_length=120, blank=True, help_text="DPO: name of the policy it produces")
    output = models.CharField(max_length=1000, help_text="where the worker writes: a local folder or s3://bucket/runs/<uuid>/")
    metrics = models.JSONField(default=list, blank=True, help_text="live metrics.jsonl records, in order")
    results = models.JSONField(null=True, blank=True, help_text="final metrics (metrics.json) of a succeeded run")
    artifacts = models.JSONField(default=list, blank=True, help_text="path, sha256, bytes, key (object-storage key)")
    checkpoint = models.CharField(max_length=1000, blank=True, help_text="the trained model folder (local path or s3://)")
    error = models.TextField(blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True, help_text="the auralign.train.run task of the last dispatch")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="dispatches so far (reconcile re-dispatches lost ones)")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="last time new live metrics were seen")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["reward_model", "dpo"]), name="training_kind_known"),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]), name="training_status_known"
            ),
            models.CheckConstraint(condition=~Q(kind="dpo") | Q(base_policy__isnull=False), name="training_dpo_has_policy"),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | (~Q(checkpoint="") & Q(results__isnull=False)),
                name="training_succeeded_has_checkpoint",
            ),
            models.CheckConstraint(condition=~Q(status="failed") | ~Q(error=""), name="training_failed_has_error"),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} run {self.uuid} ({self.status})"

    @property
    def prefix(self) -> str:
        """Where its artefacts live in object storage (docs/formats.md)."""
        return f"runs/{self.uuid}/"

    @property
    def is_done(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}

    def can_become(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.status]


class CampaignScoring(PublicIdModel):
    """A succeeded reward model scoring every candidate of one campaign: the scores
    (CandidateScore), its agreement with the human judgments, and the items it is least sure of."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="scorings")
    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="rm_scorings")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempt = models.PositiveIntegerField(default=0)
    candidates_scored = models.PositiveIntegerField(default=0)
    agreement = models.JSONField(
        null=True, blank=True,
        help_text='{"overall": {"agreement", "pairs"}, "criteria": {key: {"agreement", "pairs"}}, "judgments"}',
    )
    uncertain = models.JSONField(default=list, blank=True, help_text='[{"item": uuid, "uncertainty": u}], least certain first')
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "campaign"], name="scoring_once_per_run_campaign"),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]), name="scoring_status_known"
            ),
        ]

    @property
    def is_done(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}


class CandidateScore(models.Model):
    """A reward model's scores for one candidate: overall, and one per rubric criterion."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="candidate_scores")
    candidate = models.ForeignKey("generation.Candidate", on_delete=models.CASCADE, related_name="rm_scores")
    overall = models.FloatField()
    criteria = models.JSONField(default=dict, blank=True, help_text="{criterion key: score}")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "candidate"], name="candidate_score_unique")]
