from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from auralign.accounts.models import ApiToken, User
from auralign.accounts.selectors import api_token_forget
from auralign.core.errors import ServiceError

TOKEN_PREFIX = "aur_"


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_token_create(
    *,
    user: User,
    name: str,
    campaigns: Iterable | None = None,
    read_only: bool = False,
    ttl: timedelta | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns (row, the full secret). The secret is never stored or shown again."""
    if not name.strip():
        raise ServiceError("a token needs a name", field="name")
    campaigns = list(campaigns or [])
    from auralign.campaigns.selectors import campaigns_for_user  # noqa: PLC0415 (app cycle)

    allowed = set(campaigns_for_user(user=user).values_list("pk", flat=True))
    for c in campaigns:
        if c.pk not in allowed:
            raise ServiceError(f"you are not a member of campaign '{c.slug}'", field="campaigns")
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        user=user,
        name=name.strip(),
        prefix=prefix,
        digest=token_digest(secret),
        read_only=read_only,
        expires_at=timezone.now() + (ttl or settings.API_TOKEN_DEFAULT_TTL),
    )
    token.campaigns.set(campaigns)
    return token, secret


def api_token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        # This process stops accepting it at once (again after commit, in case a request cached
        # the old row meanwhile); other processes within API_TOKEN_CACHE_SECONDS.
        api_token_forget(token.prefix)
        transaction.on_commit(lambda: api_token_forget(token.prefix))
