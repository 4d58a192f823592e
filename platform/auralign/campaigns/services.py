"""Campaign writes: creation and editing while in draft, membership, the status machine."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from auralign.accounts.models import User
from auralign.campaigns.models import Campaign, CampaignPolicy, Membership
from auralign.core.errors import Conflict, ServiceError
from auralign.dialogues.models import DialogueSet
from auralign.policies.models import Policy
from auralign.rubrics.models import RubricVersion
from auralign.rubrics.services import rubric_version_freeze

# Fields a lead may set; bounds are also database check constraints.
SETTINGS_BOUNDS = {
    "candidates_per_item": (2, 6),
    "judgments_per_item": (1, 50),
    "lease_seconds": (30, 24 * 3600),
    "gold_rate": (0.0, 1.0),
    "min_listened_fraction": (0.0, 1.0),
    "sample_rate": (8000, 96000),
    "target_lufs": (-40.0, -5.0),
    "qualification_gold_items": (0, 1000),
    "qualification_min_accuracy": (0.0, 1.0),
}
TEXT_FIELDS = {"name", "description", "instructions", "reasoning_display"}
ALWAYS_EDITABLE = {"name", "description", "instructions"}


def _check_settings(fields: dict) -> None:
    for key, value in fields.items():
        if key in SETTINGS_BOUNDS:
            lo, hi = SETTINGS_BOUNDS[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
                raise ServiceError(f"must be between {lo} and {hi}", field=key)
            if isinstance(lo, int) and not isinstance(value, int):
                raise ServiceError("must be an integer", field=key)
        elif key == "reasoning_display":
            if value not in Campaign.Reasoning.values:
                raise ServiceError(f"must be one of {', '.join(Campaign.Reasoning.values)}", field=key)
        elif key == "name":
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise ServiceError("a campaign needs a name of at most 200 characters", field="name")
        elif key not in TEXT_FIELDS:
            raise ServiceError(f"unknown campaign setting '{key}'", field=key)


def _set_policies(campaign: Campaign, policies: list[tuple[Policy, int]]) -> None:
    if not policies:
        raise ServiceError("choose at least one policy", field="policies")
    seen = set()
    for i, (policy, n) in enumerate(policies):
        if policy.pk in seen:
            raise ServiceError(f"policy listed twice (entry {i})", field="policies")
        seen.add(policy.pk)
        if policy.archived:
            raise ServiceError(f"policy entry {i} is archived", field="policies")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 16:
            raise ServiceError(f"samples per dialogue must be 1-16 (entry {i})", field="policies")
    CampaignPolicy.objects.filter(campaign=campaign).delete()
    CampaignPolicy.objects.bulk_create(
        [CampaignPolicy(campaign=campaign, policy=p, samples_per_dialogue=n) for p, n in policies]
    )


def _check_k(campaign: Campaign) -> None:
    total = sum(cp.samples_per_dialogue for cp in campaign.campaign_policies.all())
    if total < campaign.candidates_per_item:
        raise ServiceError(
            f"policies give {total} candidates per dialogue but each item shows {campaign.candidates_per_item}",
            field="candidates_per_item",
        )


@transaction.atomic
def campaign_create(
    *,
    name: str,
    rubric_version: RubricVersion,
    dialogue_set: DialogueSet,
    policies: list[tuple[Policy, int]],
    user: User,
    **settings,
) -> Campaign:
    _check_settings({"name": name, **settings})
    if Campaign.objects.filter(name=name.strip()).exists():
        raise ServiceError(f"a campaign named '{name.strip()}' already exists", field="name")
    if not dialogue_set.dialogues.exists():
        raise ServiceError("the dialogue set is empty", field="dialogue_set")
    campaign = Campaign.objects.create(
        name=name.strip(), rubric_version=rubric_version, dialogue_set=dialogue_set, created_by=user, **settings
    )
    _set_policies(campaign, policies)
    _check_k(campaign)
    rubric_version_freeze(version=rubric_version)
    Membership.objects.create(campaign=campaign, user=user, role=Membership.Role.LEAD)
    return campaign


@transaction.atomic
def campaign_update(
    *,
    campaign: Campaign,
    rubric_version: RubricVersion | None = None,
    dialogue_set: DialogueSet | None = None,
    policies: list[tuple[Policy, int]] | None = None,
    **fields,
) -> Campaign:
    """Edit a campaign. Everything is editable in draft; afterwards only name, description and
    instructions (the rest would change what was already sampled or judged)."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    _check_settings(fields)
    structural = set(fields) - ALWAYS_EDITABLE
    if rubric_version is not None or dialogue_set is not None or policies is not None:
        structural.add("rubric_version/dialogue_set/policies")
    if structural and campaign.status != Campaign.Status.DRAFT:
        raise Conflict(f"campaign is {campaign.status}; {', '.join(sorted(structural))} can only change in draft")
    if "name" in fields:
        fields["name"] = fields["name"].strip()
        if Campaign.objects.exclude(pk=campaign.pk).filter(name=fields["name"]).exists():
            raise ServiceError(f"a campaign named '{fields['name']}' already exists", field="name")
    for key, value in fields.items():
        setattr(campaign, key, value)
    if rubric_version is not None:
        campaign.rubric_version = rubric_version
        rubric_version_freeze(version=rubric_version)
    if dialogue_set is not None:
        if not dialogue_set.dialogues.exists():
            raise ServiceError("the dialogue set is empty", field="dialogue_set")
        campaign.dialogue_set = dialogue_set
    campaign.save()
    if policies is not None:
        _set_policies(campaign, policies)
    _check_k(campaign)
    return campaign


@transaction.atomic
def campaign_transition(*, campaign: Campaign, to: str) -> Campaign:
    """Move along draft → sampling → annotating ⇄ paused → completed; anything else is a 409."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if to not in Campaign.Status.values:
        raise ServiceError(f"unknown status '{to}'", field="status")
    if to not in Campaign.TRANSITIONS[campaign.status]:
        raise Conflict(f"a campaign cannot go from {campaign.status} to {to}")
    now = timezone.now()
    campaign.status = to
    if to == Campaign.Status.SAMPLING:
        campaign.launched_at = now
    if to == Campaign.Status.COMPLETED:
        campaign.completed_at = now
    campaign.save(update_fields=["status", "launched_at", "completed_at"])
    return campaign


@transaction.atomic
def membership_add(*, campaign: Campaign, user: User, role: str) -> Membership:
    if role not in Membership.Role.values:
        raise ServiceError(f"role must be one of {', '.join(Membership.Role.values)}", field="role")
    membership, created = Membership.objects.get_or_create(campaign=campaign, user=user, role=role)
    if not created and not membership.active:
        membership.active = True
        membership.save(update_fields=["active"])
    return membership


@transaction.atomic
def membership_deactivate(*, campaign: Campaign, user: User, role: str) -> None:
    """Deactivate rather than delete: past judgments keep their author's role history."""
    updated = Membership.objects.filter(campaign=campaign, user=user, role=role).update(active=False)
    if not updated:
        raise ServiceError(f"{user.username} has no {role} role in this campaign", field="user")
