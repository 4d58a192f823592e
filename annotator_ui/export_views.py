"""Export pages for leads and trainers: list snapshots (live progress), create one, open one."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from auralign.core import storage
from auralign.core.errors import ServiceError
from rlhf_export.models import ExportSnapshot
from rlhf_export.selectors import export_campaigns, snapshots_for
from rlhf_export.services import snapshot_create
from rlhf_export.spec import FORMATS


class ExportForm(forms.Form):
    campaigns = forms.ModelMultipleChoiceField(queryset=None, widget=forms.CheckboxSelectMultiple, to_field_name="uuid")
    kind = forms.ChoiceField(choices=ExportSnapshot.Kind.choices)
    exclude_gold = forms.BooleanField(required=False, label="Exclude gold items")
    exclude_honeypots = forms.BooleanField(required=False, initial=True, label="Exclude honeypot items")
    exclude_flagged = forms.BooleanField(required=False, label="Exclude judgments with flags")
    qualified_only = forms.BooleanField(required=False, label="Qualified annotators only")
    min_reliability = forms.FloatField(required=False, min_value=0, max_value=1, label="Minimum annotator reliability")
    min_agreement = forms.FloatField(required=False, min_value=0, max_value=1, label="Minimum item agreement")
    judged_after = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    judged_before = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    formats = forms.MultipleChoiceField(
        choices=[(f, f) for f in FORMATS], initial=list(FORMATS), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, campaigns, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaigns"].queryset = campaigns

    def snapshot_options(self) -> dict:
        d = self.cleaned_data
        filters = {k: d[k] for k in ("exclude_gold", "exclude_honeypots", "exclude_flagged", "qualified_only",
                                     "min_reliability", "min_agreement", "judged_after", "judged_before")}
        return {"campaigns": list(d["campaigns"]), "kind": d["kind"], "filters": filters, "formats": d["formats"]}


@login_required
@require_http_methods(["GET", "POST"])
def export_list(request):
    campaigns = export_campaigns(user=request.user).order_by("name")
    form = ExportForm(request.POST or None, campaigns=campaigns)
    if request.method == "POST" and form.is_valid():
        try:
            snapshot = snapshot_create(user=request.user, **form.snapshot_options())
        except ServiceError as exc:
            form.add_error(None, exc.describe())
        else:
            return redirect("export-detail", uuid=snapshot.uuid)
    snapshots = snapshots_for(user=request.user).prefetch_related("campaigns")[:200]
    return render(request, "annotator_ui/exports/list.html", {"form": form, "snapshots": snapshots, "can_create": campaigns.exists()})


@login_required
def export_detail(request, uuid):
    snapshot = get_object_or_404(snapshots_for(user=request.user).prefetch_related("campaigns"), uuid=uuid)
    files = []
    if snapshot.status == ExportSnapshot.Status.SUCCEEDED:
        ttl = settings.MEDIA_URL_TTL_SECONDS
        files = [{**f, "url": storage.url(snapshot.prefix + f["path"], ttl=ttl)} for f in snapshot.files]
    base_url = request.build_absolute_uri("/").rstrip("/")
    return render(request, "annotator_ui/exports/detail.html", {"snapshot": snapshot, "files": files, "base_url": base_url})
