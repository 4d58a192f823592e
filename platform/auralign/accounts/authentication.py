"""`Authorization: Token aur_<prefix>_<secret>` (or `Bearer ...`) for scripts and trainers."""

from __future__ import annotations

import hmac

from django.utils import timezone
from rest_framework import authentication, exceptions

from auralign.accounts.models import ApiToken, User
from auralign.accounts.services import TOKEN_PREFIX, token_digest
from auralign.core import sql

_TOKEN = sql.Columns(ApiToken)
_USER = sql.Columns(User)


def _token_with_user(prefix: str) -> ApiToken | None:
    """The token, its user, and whether it is narrowed to some campaigns, in one query (every
    API request of a script or the load bench runs it; see docs/annotation.md, "Load")."""
    scope = ApiToken.campaigns.through._meta.db_table
    row = sql.fetchone(
        f"SELECT {_TOKEN.sql('t')}, {_USER.sql('u')},"
        f" EXISTS (SELECT 1 FROM {scope} s WHERE s.apitoken_id = t.id)"
        " FROM accounts_apitoken t JOIN accounts_user u ON u.id = t.user_id WHERE t.prefix = %s",
        [prefix],
    )
    if row is None:
        return None
    token = _TOKEN.load(row)
    token.user = _USER.load(row, len(_TOKEN))
    token.is_scoped = bool(row[-1])  # read by the views' scope checks: no scope, no query
    return token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2 or not header[1].startswith(TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed("malformed token header")
        secret = header[1]
        prefix = secret[len(TOKEN_PREFIX) :].split("_", 1)[0]
        token = _token_with_user(prefix)
        if token is None or not hmac.compare_digest(token.digest, token_digest(secret)):
            raise exceptions.AuthenticationFailed("invalid token")
        now = timezone.now()
        if token.revoked_at or (token.expires_at and token.expires_at < now):
            raise exceptions.AuthenticationFailed("token revoked or expired")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("user inactive")
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return "Token"
