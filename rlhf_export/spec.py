"""An export's spec: everything its files depend on, validated and normalised (every default
written out), so the same spec at the same watermark rebuilds byte-identical files."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from auralign.campaigns.models import Campaign
from auralign.core.errors import ServiceError
from auralign.rubrics.models import RubricVersion
from rlhf_export.models import ExportSnapshot

SPLITS = ("train", "validation", "test")
FORMATS = ("parquet", "jsonl")
DEFAULT_SPLITS = {"train": 0.8, "validation": 0.1, "test": 0.1}
DEFAULT_ROWS_PER_SHARD = 500_000
DEFAULT_FILTERS: dict[str, Any] = {
    "rubric_versions": [],  # "slug@version" labels; empty = every version the campaigns used
    "exclude_gold": False,
    "exclude_honeypots": True,  # honeypot items hold deliberately degraded replies
    "exclude_flagged": False,  # drop judgments that flag any candidate or the item
    "min_reliability": None,  # annotator reliability weight in [0, 1] (quality app)
    "min_agreement": None,  # item agreement in [0, 1]; items without a value are dropped
    "qualified_only": False,  # only annotators who passed the campaign's qualification gate
    "judged_after": None,  # ISO 8601, inclusive
    "judged_before": None,  # ISO 8601, exclusive
}
_BOOL_FILTERS = ("exclude_gold", "exclude_honeypots", "exclude_flagged", "qualified_only")


def _fraction(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 1:
        raise ServiceError("must be a number between 0 and 1", field=field)
    return float(value)


def _datetime(value: Any, field: str) -> str | None:
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ServiceError("must be an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z", field=field)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat()


def _filters(raw: Any) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ServiceError("must be an object", field="filters")
    unknown = set(raw) - set(DEFAULT_FILTERS)
    if unknown:
        raise ServiceError(f"unknown filter(s): {', '.join(sorted(unknown))}", field="filters")
    out = {**DEFAULT_FILTERS, **raw}
    for key in _BOOL_FILTERS:
        if not isinstance(out[key], bool):
            raise ServiceError("must be true or false", field=f"filters.{key}")
    for key in ("min_reliability", "min_agreement"):
        if out[key] is not None:
            out[key] = _fraction(out[key], f"filters.{key}")
    labels = out["rubric_versions"]
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ServiceError("must be a list of 'slug@version' labels", field="filters.rubric_versions")
    for label in labels:
        slug, _, version = label.partition("@")
        if not version.isdigit() or not RubricVersion.objects.filter(rubric__slug=slug, version=int(version)).exists():
            raise ServiceError(f"no rubric version '{label}'", field="filters.rubric_versions")
    out["rubric_versions"] = sorted(set(labels))
    out["judged_after"] = _datetime(out["judged_after"], "filters.judged_after")
    out["judged_before"] = _datetime(out["judged_before"], "filters.judged_before")
    if out["judged_after"] and out["judged_before"] and out["judged_after"] >= out["judged_before"]:
        raise ServiceError("must be later than judged_after", field="filters.judged_before")
    return out


def _splits(raw: Any) -> dict[str, float]:
    if raw is None:
        return dict(DEFAULT_SPLITS)
    if not isinstance(raw, dict) or not raw:
        raise ServiceError(f"must map some of {', '.join(SPLITS)} to fractions", field="splits")
    unknown = set(raw) - set(SPLITS)
    if unknown:
        raise ServiceError(f"unknown split(s): {', '.join(sorted(unknown))}; use {', '.join(SPLITS)}", field="splits")
    out = {name: _fraction(raw.get(name, 0.0), f"splits.{name}") for name in SPLITS}
    if not math.isclose(sum(out.values()), 1.0, abs_tol=1e-9):
        raise ServiceError(f"fractions must add up to 1, not {sum(out.values()):g}", field="splits")
    return out


def spec_build(
    *,
    campaigns: list[Campaign],
    kind: str,
    filters: dict | None = None,
    splits: dict | None = None,
    split_seed: str = "auralign",
    formats: list[str] | None = None,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
) -> dict[str, Any]:
    """Validate an export request; returns the normalised spec or raises ServiceError naming the field."""
    if kind not in ExportSnapshot.Kind.values:
        raise ServiceError(f"unknown kind '{kind}'; use one of {', '.join(ExportSnapshot.Kind.values)}", field="kind")
    if not campaigns:
        raise ServiceError("name at least one campaign", field="campaigns")
    formats = list(FORMATS) if formats is None else formats
    if not isinstance(formats, list) or not formats or any(f not in FORMATS for f in formats):
        raise ServiceError(f"must be a non-empty list of {', '.join(FORMATS)}", field="formats")
    if isinstance(rows_per_shard, bool) or not isinstance(rows_per_shard, int) or not 10 <= rows_per_shard <= 10_000_000:
        raise ServiceError("must be an integer between 10 and 10000000", field="rows_per_shard")
    if not isinstance(split_seed, str) or len(split_seed) > 100:
        raise ServiceError("must be a string of at most 100 characters", field="split_seed")
    return {
        "campaigns": sorted({str(c.uuid) for c in campaigns}),
        "filters": _filters(filters),
        "splits": _splits(splits),
        "split_seed": split_seed,
        "formats": [f for f in FORMATS if f in formats],
        "rows_per_shard": rows_per_shard,
    }
