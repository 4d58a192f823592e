"""The export part of `make demo`: a trainer creates exports of the demo judgments, pulls one with
the CLI's code path over the real API (a read-only token scoped to the campaign), and loads it
with `datasets`. And `make demo-train` (demo_train): the loop closed, reward model → DPO → a new
policy sampled in round 2."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TextIO

import httpx
from django.core.wsgi import get_wsgi_application

from auralign.accounts.models import User
from auralign.accounts.services import api_token_create
from auralign.annotation.models import Judgment
from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.services import campaign_create, membership_add
from auralign.generation.services import campaign_launch
from auralign.policies.models import Policy
from rlhf_export.client import AuralignClient, load_snapshot, pull
from rlhf_export.models import CampaignScoring, ExportSnapshot, TrainingRun
from rlhf_export.services import (
    campaign_scoring_create,
    items_prioritise,
    snapshot_create,
    snapshot_run,
    training_run_create,
)

DEMO_HOST = "http://localhost:9"  # the API served in-process (WSGI): no web server needs to be running


def demo_export(*, trainer: User, campaign: Campaign, out_dir: Path, stdout: TextIO) -> ExportSnapshot:
    """Returns the pairwise snapshot, pulled (with audio) to `out_dir/<kind>` and loaded."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request would drown the demo's output
    snapshots = {}
    for kind in (ExportSnapshot.Kind.PAIRWISE, ExportSnapshot.Kind.LISTWISE):
        snapshot = snapshot_create(user=trainer, campaigns=[campaign], kind=kind, enqueue=False)
        snapshots[kind] = snapshot = snapshot_run(snapshot_id=snapshot.pk)
        if snapshot.status != ExportSnapshot.Status.SUCCEEDED:
            raise RuntimeError(f"{kind} export failed: {snapshot.error}")
        stdout.write(f"export {snapshot.uuid}: {kind}, {snapshot.watermark['judgment_count']} judgments, {snapshot.rows} rows\n")
    _, secret = api_token_create(user=trainer, name="demo export pull", campaigns=[campaign], read_only=True)
    http = httpx.Client(mounts={DEMO_HOST: httpx.WSGITransport(app=get_wsgi_application())}, follow_redirects=True)
    client = AuralignClient(DEMO_HOST, secret, http=http)
    for kind, snapshot in snapshots.items():
        folder = Path(out_dir) / kind
        pull(client, str(snapshot.uuid), folder, with_audio=kind == ExportSnapshot.Kind.PAIRWISE, progress=False)
        dataset = load_snapshot(folder)
        counts = ", ".join(f"{split} {len(ds)}" for split, ds in dataset.items())
        stdout.write(f"pulled to {folder} and loaded with datasets: {counts} rows\n")
        stdout.write(f"  python -m rlhf_export pull {snapshot.uuid} --to {folder}\n")
    return snapshots[ExportSnapshot.Kind.PAIRWISE]


# --- `make demo-train`: the loop closed ------------------------------------------------------------
# Sized for a 2-core CPU: the reward model freezes its SmolLM2 backbone (one forward pass over the
# data, then only the heads train); DPO is a few LoRA steps on short sequences. Both evaluate on the
# export's test split (a tenth of a handful of judgments, the default hold-out, is often nothing).
DEMO_RM_CONFIG = {"freeze_backbone": True, "lr": 1e-3, "epochs": 3, "batch_size": 8, "max_length": 256,
                  "log_every": 1, "device": "cpu", "eval_split": "test"}
DEMO_DPO_CONFIG = {"lora": True, "lora_r": 8, "lr": 1e-5, "epochs": 3, "max_steps": 6, "batch_size": 2, "max_length": 256,
                   "log_every": 1, "device": "cpu", "eval_split": "test"}
ROUND_TWO = "Demo: round 2"


def demo_train(
    *,
    out_dir: Path,
    stdout: TextIO,
    campaign: Campaign | None = None,
    trainer: User | None = None,
    lead: User | None = None,
    backbone: Policy | None = None,
    rm_config: dict | None = None,
    dpo_config: dict | None = None,
    timeout_s: float = 1800,
) -> dict:
    """Export the demo judgments, train a reward model and one DPO round as TrainingRuns through
    the real task path (the local worker consumes `train` and `cpu`), register the DPO policy,
    score the campaign with the reward model (agreement, uncertain items, prioritised), then sample
    a round-2 campaign from the new policy. The defaults are the `make demo` campaign and users;
    tests pass their own (and a tiny model as `backbone`). Returns the runs, scoring and campaign."""
    from auralign.generation.demo import CAMPAIGN_NAME, _wait_for_items, demo_policies
    from rlhf_export.progress import follow, summary

    campaign = campaign or Campaign.objects.filter(name=CAMPAIGN_NAME).first()
    trainer = trainer or User.objects.filter(username="trainer").first()
    lead = lead or User.objects.filter(username="lead").first()
    if campaign is None or trainer is None or lead is None:
        raise RuntimeError("no demo campaign yet: run `make demo` first (it samples and simulates judgments)")
    if not Judgment.objects.filter(campaign=campaign).exists():
        raise RuntimeError(f"campaign '{campaign.name}' has no judgments yet: annotate some items first")
    out_dir = Path(out_dir)
    w = stdout.write
    snapshot = demo_export(trainer=trainer, campaign=campaign, out_dir=out_dir / "exports", stdout=stdout)
    backbone = backbone or demo_policies(lead=lead)[0]

    def wait(run: TrainingRun, what: str) -> TrainingRun:
        w(f"{what}: training run {run.uuid} queued for the training worker (queue 'train')\n")
        run = follow(run, stdout=stdout, timeout_s=timeout_s)
        if not run.is_done:
            raise RuntimeError(f"{what} did not finish within {timeout_s:.0f} s; see var/demo-worker.log")
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise RuntimeError(f"{what} failed: {run.error}")
        w(summary(run) + "\n")
        return run

    rm = wait(training_run_create(user=trainer, snapshot=snapshot, kind=TrainingRun.Kind.REWARD_MODEL,
                                  base_policy=backbone, config=rm_config or DEMO_RM_CONFIG), "reward model")
    dpo = wait(training_run_create(user=trainer, snapshot=snapshot, kind=TrainingRun.Kind.DPO, base_policy=backbone,
                                   config=dpo_config or DEMO_DPO_CONFIG), "DPO round")
    policy = Policy.objects.get(produced_by_run=dpo)
    w(f"new policy '{policy.name}': parent '{policy.parent.name}', trained by run {dpo.uuid} on export {snapshot.uuid}\n")

    scoring = campaign_scoring_create(run=rm, campaign=campaign, user=trainer)
    deadline = time.monotonic() + timeout_s
    while not scoring.is_done:
        if time.monotonic() > deadline:
            raise RuntimeError("scoring did not finish in time; see var/demo-worker.log")
        time.sleep(1)
        scoring.refresh_from_db()
    if scoring.status != CampaignScoring.Status.SUCCEEDED:
        raise RuntimeError(f"scoring failed: {scoring.error}")
    overall = scoring.agreement["overall"]
    w(f"reward model scored {scoring.candidates_scored} candidates; agreement with the annotators: "
      f"{_pct(overall['agreement'])} of {overall['pairs']} ranked pairs\n")
    for key, figure in scoring.agreement["criteria"].items():
        w(f"  {key:<22} {_pct(figure['agreement'])} of {figure['pairs']} pairs\n")
    prioritised = items_prioritise(scoring=scoring, n=3, user=lead)
    top = ", ".join(f"{row['uncertainty']:.2f}" for row in scoring.uncertain[:3])
    w(f"{len(prioritised)} least-certain open item(s) now served first (top uncertainties: {top or 'none'})\n")

    round_two = _round_two(campaign=campaign, policy=policy, lead=lead, trainer=trainer)
    w(f"Sampling '{round_two.name}' from the new policy (the first job loads it)\n")
    round_two = _wait_for_items(round_two, stdout, timeout_s)
    w(f"Look at it in the browser (make demo serves it): /training/ (runs, live curves, agreement) · "
      f"/training/{rm.uuid}/ · /training/{dpo.uuid}/ · /lead/ ('{round_two.name}')\n")
    return {"snapshot": snapshot, "reward_model": rm, "dpo": dpo, "policy": policy, "scoring": scoring, "round_two": round_two}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f} %"


def _round_two(*, campaign: Campaign, policy: Policy, lead: User, trainer: User) -> Campaign:
    """A next-round campaign on the same dialogues and rubric: two samples of the new policy per
    dialogue (K = 2), the first campaign's annotators and trainers as members."""
    name = f"{ROUND_TWO}: {policy.name}"[:200]
    existing = Campaign.objects.filter(name=name).first()
    if existing is not None:
        return existing
    new = campaign_create(
        name=name, rubric_version=campaign.rubric_version, dialogue_set=campaign.dialogue_set, policies=[(policy, 2)],
        user=lead, description=f"Round 2: {policy.name}, DPO-trained from {policy.parent.name}.",
        candidates_per_item=2, judgments_per_item=campaign.judgments_per_item,
    )
    for m in Membership.objects.filter(campaign=campaign, role__in=[Membership.Role.ANNOTATOR, Membership.Role.TRAINER]):
        membership_add(campaign=new, user=m.user, role=m.role)
    if trainer and not Membership.objects.filter(campaign=new, user=trainer).exists():
        membership_add(campaign=new, user=trainer, role=Membership.Role.TRAINER)
    return campaign_launch(campaign=new)
