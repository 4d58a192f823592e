"""Rubric writes. A version used by a campaign is frozen; editing it creates version + 1."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from auralign.accounts.models import User
from auralign.core.errors import Conflict, ServiceError
from auralign.rubrics.models import Criterion, Rubric, RubricVersion

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
_CRITERION_FIELDS = {"key", "label", "guidance", "scale_min", "scale_max", "anchors", "weight", "required"}


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ServiceError("must be an integer", field=field)
    return value


def criteria_validate(criteria: Any) -> list[dict]:
    """Check a criteria list from untrusted input; returns normalised dicts or raises naming the field."""
    if not isinstance(criteria, list) or not criteria:
        raise ServiceError("a rubric needs at least one criterion", field="criteria")
    out, seen = [], set()
    for i, c in enumerate(criteria):
        f = f"criteria[{i}]"
        if not isinstance(c, dict):
            raise ServiceError("must be an object", field=f)
        unknown = set(c) - _CRITERION_FIELDS
        if unknown:
            raise ServiceError(f"unknown field(s): {', '.join(sorted(unknown))}", field=f)
        key = c.get("key")
        if not isinstance(key, str) or not _KEY.match(key):
            raise ServiceError("must be lowercase letters, digits or _ and start with a letter", field=f"{f}.key")
        if key in seen:
            raise ServiceError(f"duplicate criterion key '{key}'", field=f"{f}.key")
        seen.add(key)
        label = c.get("label")
        if not isinstance(label, str) or not label.strip() or len(label) > 120:
            raise ServiceError("must be a non-empty string of at most 120 characters", field=f"{f}.label")
        lo = _int(c.get("scale_min", 1), f"{f}.scale_min")
        hi = _int(c.get("scale_max", 5), f"{f}.scale_max")
        if not lo < hi or hi - lo > 100:
            raise ServiceError(f"scale {lo}..{hi} must satisfy min < max and span at most 100 points", field=f"{f}.scale_max")
        anchors = c.get("anchors", {})
        if not isinstance(anchors, dict):
            raise ServiceError("must be an object mapping score points to text", field=f"{f}.anchors")
        norm_anchors = {}
        for point, text in anchors.items():
            try:
                p = int(point)
            except (TypeError, ValueError):
                raise ServiceError(f"'{point}' is not a score point", field=f"{f}.anchors") from None
            if not lo <= p <= hi:
                raise ServiceError(f"point {p} is outside the scale {lo}..{hi}", field=f"{f}.anchors")
            if not isinstance(text, str):
                raise ServiceError(f"anchor for point {p} must be text", field=f"{f}.anchors")
            norm_anchors[str(p)] = text
        weight = c.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0 or weight != weight:
            raise ServiceError("must be a number >= 0", field=f"{f}.weight")
        guidance = c.get("guidance", "")
        if not isinstance(guidance, str):
            raise ServiceError("must be text", field=f"{f}.guidance")
        required = c.get("required", True)
        if not isinstance(required, bool):
            raise ServiceError("must be true or false", field=f"{f}.required")
        out.append(
            {
                "key": key,
                "label": label.strip(),
                "guidance": guidance,
                "scale_min": lo,
                "scale_max": hi,
                "anchors": dict(sorted(norm_anchors.items(), key=lambda kv: int(kv[0]))),
                "weight": float(weight),
                "required": required,
            }
        )
    return out


def _write_criteria(version: RubricVersion, criteria: list[dict]) -> None:
    Criterion.objects.bulk_create(
        [Criterion(rubric_version=version, order=i, **c) for i, c in enumerate(criteria)]
    )


@transaction.atomic
def rubric_create(
    *, slug: str, name: str, criteria: list[dict], instructions: str = "", user: User | None = None
) -> RubricVersion:
    if not re.match(r"^[a-z0-9][a-z0-9-]{0,79}$", slug or ""):
        raise ServiceError("must be lowercase letters, digits and dashes", field="slug")
    if not (name or "").strip():
        raise ServiceError("a rubric needs a name", field="name")
    if Rubric.objects.filter(slug=slug).exists():
        raise ServiceError(f"a rubric '{slug}' already exists", field="slug")
    clean = criteria_validate(criteria)
    rubric = Rubric.objects.create(slug=slug, name=name.strip(), created_by=user)
    version = RubricVersion.objects.create(rubric=rubric, version=1, instructions=instructions or "", created_by=user)
    _write_criteria(version, clean)
    return version


@transaction.atomic
def rubric_update(
    *,
    rubric: Rubric,
    user: User | None = None,
    name: str | None = None,
    instructions: str | None = None,
    criteria: list[dict] | None = None,
    changelog: str = "",
) -> RubricVersion:
    """Edit the latest version in place while it is a draft; once frozen, write version + 1."""
    rubric = Rubric.objects.select_for_update().get(pk=rubric.pk)
    latest = rubric.versions.order_by("-version").first()
    clean = criteria_validate(criteria) if criteria is not None else [c.as_dict() for c in latest.criteria.all()]
    if name is not None:
        if not name.strip():
            raise ServiceError("a rubric needs a name", field="name")
        rubric.name = name.strip()
        rubric.save(update_fields=["name"])
    new_instructions = latest.instructions if instructions is None else instructions
    if not latest.is_frozen:
        latest.instructions = new_instructions
        latest.changelog = changelog or latest.changelog
        latest.save(update_fields=["instructions", "changelog"])
        latest.criteria.all().delete()
        _write_criteria(latest, clean)
        return latest
    version = RubricVersion.objects.create(
        rubric=rubric, version=latest.version + 1, instructions=new_instructions, changelog=changelog, created_by=user
    )
    _write_criteria(version, clean)
    return version


def rubric_version_freeze(*, version: RubricVersion) -> RubricVersion:
    """Freeze a version (a campaign now depends on it). Idempotent."""
    RubricVersion.objects.filter(pk=version.pk, frozen_at__isnull=True).update(frozen_at=timezone.now())
    version.refresh_from_db(fields=["frozen_at"])
    return version


def rubric_version_assert_editable(*, version: RubricVersion) -> None:
    if version.is_frozen:
        raise Conflict(f"rubric {version.label} is frozen (a campaign uses it); edit the rubric to create a new version")
