"""`Authorization: Token aur_<prefix>_<secret>` (or `Bearer ...`) for scripts and trainers."""

from __future__ import annotations

import hmac

from django.utils import timezone
from rest_framework import authentication, exceptions

from auralign.accounts.models import ApiToken
from auralign.accounts.selectors import api_token_for_prefix, api_token_forget
from auralign.accounts.services import TOKEN_PREFIX, token_digest


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
        token = api_token_for_prefix(prefix)
        if token is None or not hmac.compare_digest(token.digest, token_digest(secret)):
            raise exceptions.AuthenticationFailed("invalid token")
        now = timezone.now()
        if token.revoked_at or (token.expires_at and token.expires_at < now):
            raise exceptions.AuthenticationFailed("token revoked or expired")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("user inactive")
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            api_token_forget(token.prefix)
        return token.user, token

    def authenticate_header(self, request):
        return "Token"
