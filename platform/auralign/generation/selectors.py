"""Sampling progress per campaign, for the API and the admin (leads and trainers only: it names
policies, which annotators must never see)."""

from __future__ import annotations

from django.db.models import Count, Sum

from auralign.annotation.models import Item
from auralign.campaigns.models import Campaign
from auralign.generation.models import Candidate, GenerationTask

MAX_FAILURES_LISTED = 50


def campaign_progress(*, campaign: Campaign) -> dict:
    tasks = GenerationTask.objects.filter(campaign=campaign)
    by_status = {s: 0 for s in GenerationTask.Status.values}
    by_status.update(dict(tasks.values_list("status").annotate(n=Count("id")).order_by()))
    total = sum(by_status.values())
    finished = by_status["succeeded"] + by_status["failed"]
    candidates = Candidate.objects.filter(campaign=campaign, honeypot_of__isnull=True)
    per_policy_candidates = dict(candidates.values_list("policy_id").annotate(n=Count("id")).order_by())
    policies: dict[int, dict] = {}
    for row in tasks.values("policy_id", "policy__uuid", "policy__name", "status").annotate(n=Count("id"), s=Sum("samples")).order_by():
        entry = policies.setdefault(
            row["policy_id"],
            {"policy": str(row["policy__uuid"]), "name": row["policy__name"], "tasks": 0, "succeeded": 0, "failed": 0,
             "samples_expected": 0, "samples_done": per_policy_candidates.get(row["policy_id"], 0)},
        )
        entry["tasks"] += row["n"]
        entry["samples_expected"] += row["s"]
        if row["status"] in ("succeeded", "failed"):
            entry[row["status"]] += row["n"]
    items = Item.objects.filter(campaign=campaign, is_gold=False, is_honeypot=False)
    failures = [
        {
            "dialogue": t.dialogue.external_id,
            "policy": t.policy.name,
            "attempts": t.attempts,
            "error": t.error,
            "finished_at": t.finished_at,
        }
        for t in tasks.filter(status=GenerationTask.Status.FAILED)
        .select_related("dialogue", "policy")
        .order_by("-finished_at")[:MAX_FAILURES_LISTED]
    ]
    return {
        "campaign": str(campaign.uuid),
        "status": Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk),
        "tasks": {"total": total, **by_status},
        "fraction_done": round(finished / total, 4) if total else 0.0,
        "samples": {"expected": sum(p["samples_expected"] for p in policies.values()), "done": candidates.count()},
        "dialogues": {
            "total": tasks.values("dialogue_id").distinct().count(),
            "with_items": items.values("dialogue_id").distinct().count(),
        },
        "items": items.count(),
        "policies": sorted(policies.values(), key=lambda p: p["name"]),
        "failures": failures,
    }


def progress_line(progress: dict) -> str:
    """One line for terminals and the admin list: "sampling 7/12 tasks (1 failed), 7/12 samples, 3 items"."""
    t = progress["tasks"]
    failed = f" ({t['failed']} failed)" if t["failed"] else ""
    return (
        f"{progress['status']} {t['succeeded'] + t['failed']}/{t['total']} tasks{failed}, "
        f"{progress['samples']['done']}/{progress['samples']['expected']} samples, {progress['items']} items"
    )
