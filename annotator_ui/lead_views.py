"""Lead pages: thin views over the services (writes) and selectors (reads). Figures on the
dashboard are fetched by the browser from the quality API, the same endpoints scripts use."""

from __future__ import annotations

import random
from functools import wraps

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotator_ui.lead_forms import (
    CampaignForm,
    CriterionForm,
    CriterionFormSet,
    DialogueSetUploadForm,
    GoldImportForm,
    HoneypotForm,
    MembersAddForm,
    PolicyForm,
    RubricForm,
    add_service_error,
    criteria_from,
)
from auralign.annotation.models import Item
from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.selectors import campaign_members, campaign_roles, campaigns_for_user
from auralign.campaigns.services import (
    campaign_create,
    campaign_transition,
    campaign_update,
    membership_add,
    membership_deactivate,
)
from auralign.core import storage
from auralign.core.errors import ServiceError
from auralign.dialogues.selectors import dialogue_set_list, dialogue_turns
from auralign.dialogues.services import dialogue_set_import
from auralign.dialogues.sources import UploadedSource
from auralign.policies.models import Policy
from auralign.policies.services import policy_create, policy_update
from auralign.quality import selectors as quality
from auralign.quality.services import gold_import, honeypots_create, item_gold_clear, item_gold_set
from auralign.rubrics.models import Rubric, RubricVersion
from auralign.rubrics.selectors import rubric_list, rubric_version_as_dict, rubric_version_diff
from auralign.rubrics.services import rubric_create, rubric_update

LEAD = Membership.Role.LEAD
LETTERS = "ABCDEF"


def lead_required(view):
    """Logged in, and a project lead (may create rubrics, policies, dialogue sets, campaigns)."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.can_lead:
            raise PermissionDenied("only project leads may open the lead pages")
        return view(request, *args, **kwargs)

    return wrapper


def lead_campaign(request, uuid) -> Campaign:
    """The campaign, if the user leads it: 404 for non-members (they must not learn it exists),
    403 for its annotators and trainers."""
    campaign = get_object_or_404(Campaign.objects.select_related("rubric_version__rubric", "dialogue_set"), uuid=uuid)
    roles = campaign_roles(user=request.user, campaign=campaign)
    if not roles:
        raise Http404("no such campaign")
    if LEAD not in roles:
        raise PermissionDenied("this page is for the campaign's leads")
    return campaign


def campaign_page(view):
    @wraps(view)
    @login_required
    def wrapper(request, uuid, *args, **kwargs):
        return view(request, lead_campaign(request, uuid), *args, **kwargs)

    return wrapper


# --- home -----------------------------------------------------------------------------------------


@login_required
def home(request):
    campaigns = list(campaigns_for_user(user=request.user, roles={LEAD}).select_related("rubric_version__rubric", "dialogue_set", "quality"))
    if not campaigns and not request.user.can_lead:
        raise PermissionDenied("only project leads may open the lead pages")
    return render(request, "annotator_ui/lead/home.html", {"campaigns": campaigns})


# --- rubrics --------------------------------------------------------------------------------------


@lead_required
def rubrics(request):
    return render(request, "annotator_ui/lead/rubrics.html", {"rubrics": rubric_list()})


@lead_required
def rubric_new(request):
    form = RubricForm(request.POST or None, creating=True)
    formset = CriterionFormSet(request.POST or None, prefix="criteria", initial=[{}] if request.method == "GET" else None)
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        try:
            version = rubric_create(user=request.user, slug=form.cleaned_data["slug"], name=form.cleaned_data["name"],
                                    instructions=form.cleaned_data["instructions"], criteria=criteria_from(formset))
        except ServiceError as exc:
            add_service_error(form, exc, formset)
        else:
            messages.success(request, f"Rubric {version.label} created.")
            return redirect("lead-rubric", slug=version.rubric.slug)
    return render(request, "annotator_ui/lead/rubric_edit.html", {"form": form, "formset": formset, "creating": True})


@lead_required
def rubric_detail(request, slug):
    rubric = get_object_or_404(Rubric, slug=slug)
    versions = list(rubric.versions.annotate(campaign_count=Count("campaigns")).order_by("-version"))
    latest = versions[0]
    if request.method == "POST":
        form = RubricForm(request.POST, creating=False)
        formset = CriterionFormSet(request.POST, prefix="criteria")
        if form.is_valid() and formset.is_valid():
            try:
                version = rubric_update(rubric=rubric, user=request.user, name=form.cleaned_data["name"],
                                        instructions=form.cleaned_data["instructions"], criteria=criteria_from(formset),
                                        changelog=form.cleaned_data["changelog"])
            except ServiceError as exc:
                add_service_error(form, exc, formset)
            else:
                if version.version != latest.version:
                    messages.success(request, f"Version {latest.version} is frozen (a campaign uses it), so your edit is version {version.version}.")
                else:
                    messages.success(request, f"Draft version {version.version} saved.")
                return redirect("lead-rubric", slug=slug)
    else:
        current = rubric_version_as_dict(latest)
        form = RubricForm(initial={"name": rubric.name, "instructions": current["instructions"]}, creating=False)
        formset = CriterionFormSet(prefix="criteria", initial=[CriterionForm.initial_from(c) for c in current["criteria"]])
    return render(request, "annotator_ui/lead/rubric_edit.html", {
        "form": form, "formset": formset, "creating": False, "rubric": rubric, "versions": versions, "latest": latest,
    })


@lead_required
def rubric_diff(request, slug):
    qs = RubricVersion.objects.select_related("rubric").filter(rubric__slug=slug)
    try:
        old = get_object_or_404(qs, version=int(request.GET.get("from", "")))
        new = get_object_or_404(qs, version=int(request.GET.get("to", "")))
    except ValueError:
        raise Http404("give integer 'from' and 'to' versions") from None
    return render(request, "annotator_ui/lead/rubric_diff.html", {"diff": rubric_version_diff(old=old, new=new), "slug": slug})


# --- policies and dialogue sets --------------------------------------------------------------------


@lead_required
def policies(request):
    form = PolicyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            policy = policy_create(user=request.user, **form.cleaned_data)
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Policy {policy.name} registered.")
            return redirect("lead-policies")
    return render(request, "annotator_ui/lead/policies.html", {"form": form, "policies": Policy.objects.order_by("archived", "name")})


@lead_required
@require_POST
def policy_archive(request, uuid):
    policy = get_object_or_404(Policy, uuid=uuid)
    policy_update(policy=policy, archived=not policy.archived)
    messages.success(request, f"Policy {policy.name} {'archived' if policy.archived else 'restored'}.")
    return redirect("lead-policies")


@lead_required
def dialogue_sets(request):
    form = DialogueSetUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        files = {f.name: f.read() for f in request.FILES.getlist("audio")}
        try:
            report = dialogue_set_import(
                name=form.cleaned_data["name"], description=form.cleaned_data["description"],
                manifest=form.cleaned_data["manifest"].read(), source=UploadedSource(files=files), user=request.user,
            )
        except ServiceError as exc:
            for line in getattr(exc, "errors", [exc.message]):
                form.add_error("manifest" if exc.field == "manifest" else None, line)
        else:
            messages.success(request, f"{report.dialogue_set.name}: {report.created} dialogues imported, {report.unchanged} unchanged.")
            return redirect("lead-dialogue-sets")
    return render(request, "annotator_ui/lead/dialogue_sets.html", {"form": form, "sets": dialogue_set_list()})


# --- campaigns ------------------------------------------------------------------------------------


def preview_context(*, rubric_version: RubricVersion, dialogue_set, k: int, reasoning_display: str, instructions: str,
                    campaign: Campaign | None = None) -> dict:
    """What an annotator's task page shows: instructions, the rubric, the spoken context and K
    anonymised cards. With sampled items, a real item's replies in a random order; before
    sampling, placeholders. Never a policy name."""
    item = None
    if campaign is not None:
        item = Item.objects.filter(campaign=campaign, is_gold=False, is_honeypot=False).select_related("dialogue").order_by("id").first()
    dialogue = item.dialogue if item else dialogue_set.dialogues.order_by("id").first()
    turns = [
        {"role": t.role, "text": t.text, "audio_url": storage.url(t.audio.key) if t.audio_id else None}
        for t in (dialogue_turns(dialogue=dialogue) if dialogue else [])
    ]
    cards = [{"letter": LETTERS[i]} for i in range(k)]
    if item is not None:
        candidates = list(item.candidates.select_related("audio"))
        random.shuffle(candidates)
        cards = [
            {"letter": LETTERS[i], "reply_text": c.reply_text, "reasoning": c.reasoning,
             "audio_url": storage.url(c.audio.key) if c.audio_id else None, "duration": c.audio.duration_s if c.audio_id else None}
            for i, c in enumerate(candidates)
        ]
    criteria = [
        {**c, "points": [(p, c["anchors"].get(str(p), "")) for p in range(c["scale_min"], c["scale_max"] + 1)]}
        for c in rubric_version_as_dict(rubric_version)["criteria"]
    ]
    return {
        "preview": {
            "instructions": instructions, "rubric_instructions": rubric_version.instructions, "criteria": criteria,
            "turns": turns, "cards": cards, "reasoning_display": reasoning_display, "sampled": item is not None,
        }
    }


@lead_required
def campaign_new(request):
    form = CampaignForm(request.POST or None)
    context = {"form": form}
    if request.method == "POST" and form.is_valid():
        kwargs = form.service_kwargs()
        if "preview" in request.POST:
            context.update(preview_context(
                rubric_version=kwargs["rubric_version"], dialogue_set=kwargs["dialogue_set"], k=kwargs["candidates_per_item"],
                reasoning_display=kwargs["reasoning_display"], instructions=kwargs["instructions"],
            ))
        else:
            try:
                campaign = campaign_create(user=request.user, **kwargs)
            except ServiceError as exc:
                add_service_error(form, exc)
            else:
                messages.success(request, f"Campaign {campaign.name} created as a draft. Add annotators, check the preview, then launch.")
                return redirect("lead-campaign", uuid=campaign.uuid)
    return render(request, "annotator_ui/lead/campaign_new.html", context)


def _pipeline(campaign: Campaign) -> dict:
    items = campaign.items.aggregate(
        total=Count("id"), gold=Count("id", filter=Q(is_gold=True)), honeypots=Count("id", filter=Q(is_honeypot=True)),
    )
    return {"candidates": campaign.candidates.count(), **items}


@campaign_page
def campaign_detail(request, campaign: Campaign):
    structural = campaign.status == Campaign.Status.DRAFT
    form = CampaignForm(request.POST or None, structural=structural, initial=CampaignForm.initial_from(campaign))
    if request.method == "POST" and form.is_valid():
        try:
            campaign_update(campaign=campaign, **form.service_kwargs())
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, "Campaign saved.")
            return redirect("lead-campaign", uuid=campaign.uuid)
    stats = {s["username"]: s for s in quality.annotator_table(campaign=campaign)}
    members = [(m, stats.get(m.user.username)) for m in campaign_members(campaign=campaign)]
    return render(request, "annotator_ui/lead/campaign_detail.html", {
        "campaign": campaign, "form": form, "members": members, "members_form": MembersAddForm(),
        "pipeline": _pipeline(campaign), "quality": quality.campaign_quality(campaign=campaign),
        "launch_url": f"/api/v1/campaigns/{campaign.uuid}/launch",
        "transitions": sorted(Campaign.TRANSITIONS[campaign.status] - {Campaign.Status.SAMPLING}),
    })


@campaign_page
@require_POST
def campaign_status(request, campaign: Campaign):
    try:
        campaign_transition(campaign=campaign, to=request.POST.get("status", ""))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Campaign is now {request.POST['status']}.")
    return redirect("lead-campaign", uuid=campaign.uuid)


@campaign_page
@require_POST
def campaign_members_add(request, campaign: Campaign):
    form = MembersAddForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
        return redirect("lead-campaign", uuid=campaign.uuid)
    users = {u.username: u for u in get_user_model().objects.filter(username__in=form.cleaned_data["usernames"], is_active=True)}
    missing = [n for n in form.cleaned_data["usernames"] if n not in users]
    for user in users.values():
        membership_add(campaign=campaign, user=user, role=form.cleaned_data["role"])
    if users:
        messages.success(request, f"Added {', '.join(sorted(users))} as {form.cleaned_data['role']}.")
    if missing:
        messages.error(request, f"No active user named {', '.join(missing)}.")
    return redirect("lead-campaign", uuid=campaign.uuid)


@campaign_page
@require_POST
def campaign_members_remove(request, campaign: Campaign):
    user = get_object_or_404(get_user_model(), username=request.POST.get("username", ""))
    try:
        membership_deactivate(campaign=campaign, user=user, role=request.POST.get("role", ""))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{user.username} is no longer an active {request.POST['role']}.")
    return redirect("lead-campaign", uuid=campaign.uuid)


@campaign_page
def campaign_preview(request, campaign: Campaign):
    context = preview_context(
        rubric_version=campaign.rubric_version, dialogue_set=campaign.dialogue_set, k=campaign.candidates_per_item,
        reasoning_display=campaign.reasoning_display, instructions=campaign.instructions, campaign=campaign,
    )
    return render(request, "annotator_ui/lead/campaign_preview.html", {"campaign": campaign, **context})


@campaign_page
def campaign_dashboard(request, campaign: Campaign):
    api = f"/api/v1/campaigns/{campaign.uuid}"
    return render(request, "annotator_ui/lead/dashboard.html", {
        "campaign": campaign,
        "endpoints": {
            "summary": f"{api}/quality", "leaderboard": f"{api}/quality/leaderboard", "annotators": f"{api}/quality/annotators",
            "recompute": f"{api}/quality/recompute",
        },
    })


@campaign_page
def campaign_items(request, campaign: Campaign):
    if request.method == "POST":
        _items_action(request, campaign)
        return redirect(f"{reverse('lead-campaign-items', kwargs={'uuid': campaign.uuid})}?{request.GET.urlencode()}")
    show = request.GET.get("show", "all")
    items = quality.campaign_items(campaign=campaign)
    if show == "gold":
        items = items.filter(is_gold=True)
    elif show == "honeypots":
        items = items.filter(is_honeypot=True)
    page = Paginator(items, 25).get_page(request.GET.get("page"))
    return render(request, "annotator_ui/lead/campaign_items.html", {
        "campaign": campaign, "page": page, "show": show, "gold_form": GoldImportForm(), "honeypot_form": HoneypotForm(),
    })


def _items_action(request, campaign: Campaign) -> None:
    action = request.POST.get("action")
    try:
        if action == "gold":
            item = get_object_or_404(Item, campaign=campaign, uuid=request.POST.get("item"))
            tiers: dict[int, list[str]] = {}
            for c in item.candidates.all():
                value = request.POST.get(f"tier_{c.uuid}", "").strip()
                if not value.isdigit():
                    raise ServiceError("give every candidate a rank number (1 = best; equal numbers tie)")
                tiers.setdefault(int(value), []).append(str(c.uuid))
            item_gold_set(item=item, ranking=[tiers[t] for t in sorted(tiers)])
            messages.success(request, "Item marked gold.")
        elif action == "clear":
            item_gold_clear(item=get_object_or_404(Item, campaign=campaign, uuid=request.POST.get("item")))
            messages.success(request, "Item is regular again.")
        elif action == "import":
            form = GoldImportForm(request.POST, request.FILES)
            if not form.is_valid():
                raise ServiceError("choose a JSONL file to import")
            messages.success(request, f"{gold_import(campaign=campaign, data=form.cleaned_data['file'].read())} gold items imported.")
        elif action == "honeypots":
            form = HoneypotForm(request.POST)
            if not form.is_valid():
                raise ServiceError("; ".join(e for errors in form.errors.values() for e in errors))
            made = honeypots_create(campaign=campaign, count=form.cleaned_data["count"], kinds=form.cleaned_data["kinds"])
            messages.success(request, f"{len(made)} honeypot items planted.")
        else:
            raise ServiceError(f"unknown action '{action}'")
    except ServiceError as exc:
        messages.error(request, exc.message)
