"""Training pages for leads and trainers: list runs and start one from a snapshot, follow one
(live loss / accuracy curves), score a campaign with a reward model, prioritise uncertain items."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from auralign.campaigns.models import Membership
from auralign.campaigns.selectors import campaign_roles
from auralign.core import storage
from auralign.core.errors import ServiceError
from auralign.core.ids import is_uuid
from auralign.policies.models import Policy
from rlhf_export.models import TrainingRun
from rlhf_export.selectors import (
    chart_series,
    export_campaigns,
    run_scorings,
    scoring_uncertain_items,
    trainable_snapshots,
    training_runs_for,
)
from rlhf_export.services import (
    MAX_PRIORITISE,
    campaign_scoring_create,
    items_prioritise,
    training_run_create,
    training_run_refresh,
)


class TrainingForm(forms.Form):
    snapshot = forms.ModelChoiceField(queryset=None, to_field_name="uuid", help_text="a succeeded pairwise or listwise export")
    kind = forms.ChoiceField(choices=TrainingRun.Kind.choices)
    base_policy = forms.ModelChoiceField(
        queryset=None, required=False, to_field_name="uuid",
        help_text="DPO: the policy to train (its checkpoint). Reward model: optional backbone instead of a path.",
    )
    base_model = forms.CharField(required=False, max_length=1000, label="Reward-model backbone path",
                                 help_text="a Hugging Face folder or s3:// prefix, on the training worker")
    gguf_file = forms.CharField(required=False, max_length=200, label="GGUF file in that folder")
    audio_encoder = forms.CharField(required=False, max_length=1000, help_text="reward model: Whisper / wav2vec2 checkpoint")
    config = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), initial="{}",
                             help_text='training options as JSON, e.g. {"lr": 1e-5, "epochs": 1, "lora": true}')
    policy_name = forms.CharField(required=False, max_length=120, help_text="DPO: the new policy's name (default: derived)")

    def __init__(self, *args, snapshots, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["snapshot"].queryset = snapshots
        self.fields["base_policy"].queryset = Policy.objects.filter(backend=Policy.Backend.HF, archived=False).order_by("name")

    def clean_config(self):
        text = self.cleaned_data["config"].strip() or "{}"
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("must be a JSON object of training options")
        return value

    def run_options(self) -> dict:
        d = self.cleaned_data
        path = d["base_model"].strip()
        return {
            "snapshot": d["snapshot"], "kind": d["kind"], "base_policy": d["base_policy"],
            "base_model": {"path": path, "gguf_file": d["gguf_file"].strip() or None} if path else None,
            "audio_encoder": d["audio_encoder"], "config": d["config"], "policy_name": d["policy_name"],
        }


def _error(form: forms.Form, exc: ServiceError) -> None:
    form.add_error(None, exc.describe())


@login_required
@require_http_methods(["GET", "POST"])
def training_list(request):
    snapshots = trainable_snapshots(user=request.user).order_by("-created_at")
    initial = {"snapshot": request.GET.get("snapshot")} if request.GET.get("snapshot") else None
    form = TrainingForm(request.POST or None, initial=initial, snapshots=snapshots)
    if request.method == "POST" and form.is_valid():
        try:
            run = training_run_create(user=request.user, **form.run_options())
        except ServiceError as exc:
            _error(form, exc)
        else:
            return redirect("training-detail", uuid=run.uuid)
    runs = training_runs_for(user=request.user)[:200]
    return render(request, "annotator_ui/training/list.html", {"form": form, "runs": runs, "can_create": snapshots.exists()})


@login_required
@require_http_methods(["GET", "POST"])
def training_detail(request, uuid):
    run = get_object_or_404(training_runs_for(user=request.user), uuid=uuid)
    if request.method == "POST":
        return _detail_action(request, run)
    run = training_run_refresh(run=run)
    ttl = settings.MEDIA_URL_TTL_SECONDS
    artifacts = [{**a, "url": storage.url(a["key"], ttl=ttl)} for a in run.artifacts]
    scorings = []
    for scoring in run_scorings(run=run, user=request.user):
        roles = campaign_roles(user=request.user, campaign=scoring.campaign)
        scorings.append({"scoring": scoring, "items": scoring_uncertain_items(scoring=scoring),
                         "can_prioritise": Membership.Role.LEAD in roles and scoring.status == "succeeded"})
    results = run.results or {}
    evaluation = results.get("eval") or {}
    context = {
        "run": run, "artifacts": artifacts, "scorings": scorings, "results": results, "evaluation": evaluation,
        "criteria": sorted((evaluation.get("criteria") or {}).items()), "calibration": evaluation.get("calibration"),
        "series": chart_series(run.metrics), "last": run.metrics[-1] if run.metrics else None,
        "produced_policy": getattr(run, "produced_policy", None),
        "score_campaigns": export_campaigns(user=request.user).filter(pk__in=run.snapshot.campaigns.values("pk")).order_by("name")
        if run.kind == TrainingRun.Kind.REWARD_MODEL and run.status == TrainingRun.Status.SUCCEEDED else [],
        "max_prioritise": MAX_PRIORITISE,
    }
    return render(request, "annotator_ui/training/detail.html", context)


def _detail_action(request, run: TrainingRun):
    action, campaign_uuid = request.POST.get("action"), request.POST.get("campaign", "")
    campaign = export_campaigns(user=request.user).filter(uuid=campaign_uuid).first() if is_uuid(campaign_uuid) else None
    try:
        if campaign is None:
            raise ServiceError("choose a campaign you lead or train", field="campaign")
        if action == "score":
            campaign_scoring_create(run=run, campaign=campaign, user=request.user)
            messages.success(request, f"Scoring the candidates of {campaign.name} in the background.")
        elif action == "prioritise":
            scoring = run.scorings.filter(campaign=campaign).first()
            if scoring is None:
                raise ServiceError("score this campaign first", field="campaign")
            try:
                n = int(request.POST.get("n", ""))
            except ValueError:
                raise ServiceError("give a whole number of items", field="n") from None
            chosen = items_prioritise(scoring=scoring, n=n, user=request.user)
            messages.success(request, f"{len(chosen)} least-certain open item(s) of {campaign.name} are now served first.")
        else:
            raise ServiceError("unknown action", field="action")
    except ServiceError as exc:
        messages.error(request, exc.describe())
    return redirect("training-detail", uuid=run.uuid)
