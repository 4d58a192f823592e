from __future__ import annotations

from django.db.models import QuerySet

from auralign.rubrics.models import Rubric, RubricVersion


def rubric_list() -> QuerySet[Rubric]:
    return Rubric.objects.prefetch_related("versions__criteria").order_by("slug")


def rubric_version_get(*, slug: str, version: int) -> RubricVersion | None:
    return RubricVersion.objects.select_related("rubric").filter(rubric__slug=slug, version=version).first()


def rubric_version_as_dict(version: RubricVersion) -> dict:
    return {
        "rubric": version.rubric.slug,
        "version": version.version,
        "instructions": version.instructions,
        "frozen": version.is_frozen,
        "criteria": [c.as_dict() for c in version.criteria.all()],
    }


def rubric_version_diff(*, old: RubricVersion, new: RubricVersion) -> dict:
    """What changed between two versions: instructions, and criteria added / removed / changed
    (per field, old and new value)."""
    a = {c.key: c.as_dict() for c in old.criteria.all()}
    b = {c.key: c.as_dict() for c in new.criteria.all()}
    changed = {}
    for key in a.keys() & b.keys():
        fields = {f: [a[key][f], b[key][f]] for f in a[key] if a[key][f] != b[key][f]}
        if fields:
            changed[key] = fields
    return {
        "from": old.label,
        "to": new.label,
        "instructions": None if old.instructions == new.instructions else [old.instructions, new.instructions],
        "added": [b[k] for k in b if k not in a],
        "removed": [a[k] for k in a if k not in b],
        "changed": dict(sorted(changed.items())),
        "order": None if list(a) == list(b) else [list(a), list(b)],
    }
