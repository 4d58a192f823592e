"""Forms of the lead pages. They only shape browser input; the services validate everything and
their errors are put back on the matching field (see `add_service_error`)."""

from __future__ import annotations

import json
import re

from django import forms

from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.services import SETTINGS_BOUNDS
from auralign.core.errors import ServiceError
from auralign.dialogues.models import DialogueSet
from auralign.policies.models import Policy
from auralign.quality.honeypots import DEGRADATIONS
from auralign.rubrics.models import RubricVersion

_CRITERION_FIELD = re.compile(r"^criteria\[(\d+)\]\.(\w+)$")


def add_service_error(form: forms.Form, exc: ServiceError, formset: forms.BaseFormSet | None = None) -> None:
    """Show a service's error on the field it names (criteria[i].x goes to criterion form i)."""
    match = _CRITERION_FIELD.match(exc.field or "")
    if formset is not None and match and int(match[1]) < len(formset.forms):
        target = formset.forms[int(match[1])]
        target.add_error(match[2] if match[2] in target.fields else None, exc.message)
        return
    field = (exc.field or "").split(".")[0].split("[")[0]
    form.add_error(field if field in form.fields else None, exc.message)


# --- rubrics ----------------------------------------------------------------------------------------


class RubricForm(forms.Form):
    slug = forms.SlugField(max_length=80, help_text="lowercase letters, digits and dashes; cannot change later")
    name = forms.CharField(max_length=200)
    instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    changelog = forms.CharField(max_length=500, required=False, help_text="what changed (shown in the version list)")

    def __init__(self, *args, creating: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if creating:
            del self.fields["changelog"]
        else:
            del self.fields["slug"]


class CriterionForm(forms.Form):
    key = forms.CharField(max_length=60)
    label = forms.CharField(max_length=120)
    guidance = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    scale_min = forms.IntegerField(initial=1)
    scale_max = forms.IntegerField(initial=5)
    anchors = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), required=False, help_text="one per line: point: anchor text",
    )
    weight = forms.FloatField(initial=1.0, min_value=0)
    required = forms.BooleanField(initial=True, required=False)

    def clean_anchors(self) -> dict[str, str]:
        out = {}
        for line in self.cleaned_data["anchors"].splitlines():
            if not line.strip():
                continue
            point, sep, text = line.partition(":")
            if not sep or not point.strip().lstrip("-").isdigit():
                raise forms.ValidationError(f"'{line.strip()}' is not 'point: anchor text'")
            out[str(int(point))] = text.strip()
        return out

    @staticmethod
    def initial_from(criterion: dict) -> dict:
        anchors = "\n".join(f"{point}: {text}" for point, text in criterion["anchors"].items())
        return {**criterion, "anchors": anchors}


CriterionFormSet = forms.formset_factory(CriterionForm, extra=0, can_delete=True, min_num=1, validate_min=True)


def criteria_from(formset) -> list[dict]:
    return [
        {k: v for k, v in f.cleaned_data.items() if k != "DELETE"}
        for f in formset.forms
        if f.cleaned_data and not f.cleaned_data.get("DELETE")
    ]


# --- policies and dialogue sets -------------------------------------------------------------------


class JSONObjectField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})

    def to_python(self, value):
        value = super().to_python(value)
        if not value.strip():
            return {}
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not JSON: {exc.msg} (line {exc.lineno})") from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError("must be a JSON object")
        return parsed


class PolicyForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    backend = forms.ChoiceField(choices=Policy.Backend.choices)
    config = JSONObjectField(help_text='hf: {"checkpoint": "..."}; openai: {"base_url": "...", "model": "..."}')
    generation = JSONObjectField(required=False, help_text='e.g. {"temperature": 0.7, "max_new_tokens": 96}')
    tts = JSONObjectField(required=False, help_text='e.g. {"backend": "piper"}')


class DialogueSetUploadForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False)
    manifest = forms.FileField(help_text="JSONL, one dialogue per line (docs/formats.md)")


# --- campaigns --------------------------------------------------------------------------------------


class CampaignForm(forms.Form):
    """Everything a campaign is made of. After draft only name, description and instructions
    may change (`structural=False` drops the rest)."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    instructions = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="shown to annotators above the rubric's instructions")
    rubric_version = forms.ModelChoiceField(queryset=RubricVersion.objects.select_related("rubric").order_by("rubric__slug", "-version"))
    dialogue_set = forms.ModelChoiceField(queryset=DialogueSet.objects.order_by("name"))
    reasoning_display = forms.ChoiceField(choices=Campaign.Reasoning.choices, initial=Campaign.Reasoning.COLLAPSED)

    def __init__(self, *args, structural: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rubric_version"].label_from_instance = lambda v: f"{v.label} — {v.rubric.name}" + (" (frozen)" if v.is_frozen else "")
        for name, (lo, hi) in SETTINGS_BOUNDS.items():
            model_field = Campaign._meta.get_field(name)
            kind = forms.IntegerField if isinstance(lo, int) else forms.FloatField
            self.fields[name] = kind(min_value=lo, max_value=hi, initial=model_field.default, help_text=model_field.help_text,
                                     label=name.replace("_", " ").capitalize())
        self.policy_rows = []
        for policy in Policy.objects.filter(archived=False).order_by("name"):
            use, samples = f"policy_{policy.uuid}", f"samples_{policy.uuid}"
            self.fields[use] = forms.BooleanField(required=False, label=policy.name)
            self.fields[samples] = forms.IntegerField(min_value=1, max_value=16, initial=1, required=False, label="samples per dialogue")
            self.policy_rows.append((policy, use, samples))
        if not structural:
            for name in list(self.fields):
                if name not in {"name", "description", "instructions"}:
                    del self.fields[name]
            self.policy_rows = []

    def policy_fields(self):
        return [(policy, self[use], self[samples]) for policy, use, samples in self.policy_rows]

    def settings_fields(self):
        return [self[name] for name in [*SETTINGS_BOUNDS, "reasoning_display"] if name in self.fields]

    def clean(self):
        data = super().clean()
        if self.policy_rows and not any(data.get(use) for _, use, _ in self.policy_rows):
            raise forms.ValidationError("choose at least one policy")
        return data

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        kwargs = {k: data[k] for k in ("name", "description", "instructions")}
        if self.policy_rows:
            kwargs["rubric_version"] = data["rubric_version"]
            kwargs["dialogue_set"] = data["dialogue_set"]
            kwargs["policies"] = [(p, data[samples] or 1) for p, use, samples in self.policy_rows if data.get(use)]
            kwargs["reasoning_display"] = data["reasoning_display"]
            kwargs.update({name: data[name] for name in SETTINGS_BOUNDS})
        return kwargs

    @staticmethod
    def initial_from(campaign: Campaign) -> dict:
        initial = {f: getattr(campaign, f) for f in ("name", "description", "instructions", "reasoning_display", *SETTINGS_BOUNDS)}
        initial.update(rubric_version=campaign.rubric_version_id, dialogue_set=campaign.dialogue_set_id)
        for cp in campaign.campaign_policies.select_related("policy"):
            initial[f"policy_{cp.policy.uuid}"] = True
            initial[f"samples_{cp.policy.uuid}"] = cp.samples_per_dialogue
        return initial


class MembersAddForm(forms.Form):
    usernames = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="one username per line")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ANNOTATOR)

    def clean_usernames(self) -> list[str]:
        names = [n.strip() for n in self.cleaned_data["usernames"].replace(",", "\n").splitlines() if n.strip()]
        if not names:
            raise forms.ValidationError("give at least one username")
        return names


class GoldImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL: {\"item\": uuid, \"ranking\": [[candidate uuid], ...]} or {\"dialogue\": id, \"ranking\": [[policy name], ...]}")


class HoneypotForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=100, initial=5)
    kinds = forms.MultipleChoiceField(
        choices=[(k, k) for k in DEGRADATIONS], widget=forms.CheckboxSelectMultiple, initial=list(DEGRADATIONS),
    )
