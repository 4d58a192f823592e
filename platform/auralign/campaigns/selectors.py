from __future__ import annotations

from django.db.models import QuerySet

from auralign.accounts.models import ApiToken, User
from auralign.campaigns.models import Campaign, Membership


def campaigns_for_user(*, user: User, roles: set[str] | None = None, token: ApiToken | None = None) -> QuerySet[Campaign]:
    """Campaigns the user belongs to (superusers: all), narrowed to a token's campaign scope."""
    qs = Campaign.objects.all()
    if not user.is_superuser:
        memberships = Membership.objects.filter(user=user, active=True)
        if roles:
            memberships = memberships.filter(role__in=roles)
        qs = qs.filter(pk__in=memberships.values("campaign_id"))
    if token is not None and token.campaigns.exists():
        qs = qs.filter(pk__in=token.campaigns.values("pk"))
    return qs


def campaign_roles(*, user: User, campaign: Campaign) -> set[str]:
    if not user.is_authenticated:
        return set()
    roles = set(
        Membership.objects.filter(user=user, campaign=campaign, active=True).values_list("role", flat=True)
    )
    if user.is_superuser:
        roles |= {Membership.Role.LEAD, Membership.Role.TRAINER}
    return roles


def campaign_members(*, campaign: Campaign) -> QuerySet[Membership]:
    return Membership.objects.filter(campaign=campaign).select_related("user").order_by("role", "user__username")
