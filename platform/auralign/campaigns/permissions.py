"""Campaign-level access: every campaign endpoint names the roles it admits."""

from __future__ import annotations

from rest_framework.exceptions import NotFound, PermissionDenied

from auralign.accounts.models import ApiToken
from auralign.campaigns.models import Campaign
from auralign.campaigns.selectors import campaign_roles


def require_campaign_role(request, campaign: Campaign, roles: set[str]) -> set[str]:
    """Raise unless the requester holds one of `roles` in `campaign` (and a scoped token covers it).
    Non-members get 404, not 403: they must not learn that the campaign exists."""
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is not None and token.campaigns.exists() and not token.campaigns.filter(pk=campaign.pk).exists():
        raise NotFound("no such campaign")
    held = campaign_roles(user=request.user, campaign=campaign)
    if not held:
        raise NotFound("no such campaign")
    if not held & roles:
        raise PermissionDenied(f"this needs the {' or '.join(sorted(roles))} role in this campaign")
    return held
