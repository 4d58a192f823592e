from django.conf import settings
from django.db import models
from django.db.models import F, Q

from auralign.core.models import PublicIdModel


class Rubric(PublicIdModel):
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug

    @property
    def latest_version(self) -> "RubricVersion":
        return self.versions.order_by("-version").first()


class RubricVersion(models.Model):
    """One immutable-once-frozen version of a rubric. A version a campaign uses is frozen;
    editing a frozen version makes version + 1 (see services.rubric_update)."""

    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    instructions = models.TextField(blank=True)
    changelog = models.CharField(max_length=500, blank=True)
    frozen_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rubric_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["rubric", "version"], name="rubric_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="rubric_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.rubric.slug}@{self.version}"

    @property
    def label(self) -> str:
        return f"{self.rubric.slug}@{self.version}"

    @property
    def is_frozen(self) -> bool:
        return self.frozen_at is not None


class Criterion(models.Model):
    """One rubric criterion: an integer scale min..max with anchor text for each point."""

    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.CASCADE, related_name="criteria")
    key = models.SlugField(max_length=60)
    label = models.CharField(max_length=120)
    guidance = models.TextField(blank=True)
    scale_min = models.SmallIntegerField(default=1)
    scale_max = models.SmallIntegerField(default=5)
    anchors = models.JSONField(default=dict, help_text='{"1": "anchor text for point 1", ...}')
    weight = models.FloatField(default=1.0)
    required = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["rubric_version_id", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rubric_version", "key"], name="criterion_key_unique_in_version"),
            models.CheckConstraint(condition=Q(scale_max__gt=F("scale_min")), name="criterion_scale_ordered"),
            models.CheckConstraint(condition=Q(scale_max__lte=F("scale_min") + 100), name="criterion_scale_bounded"),
            models.CheckConstraint(condition=Q(weight__gte=0), name="criterion_weight_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"{self.rubric_version}:{self.key}"

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "label": self.label,
            "guidance": self.guidance,
            "scale_min": self.scale_min,
            "scale_max": self.scale_max,
            "anchors": self.anchors,
            "weight": self.weight,
            "required": self.required,
        }
