"""Account reads: the API token behind an `Authorization` header, briefly cached per process.

Every request of a script or annotator client authenticates; the token and its user are read
with one query and the row is kept for `API_TOKEN_CACHE_SECONDS` (default 5 s, 0 turns it off).
Each request still checks the secret against the stored digest, the expiry, the revocation and
the user's `is_active` (against the cached row), and every campaign endpoint checks membership
and role in the database on every request. So a revocation or a deactivated user takes effect
at once in the process that made it, and within that many seconds in the other processes."""

from __future__ import annotations

import time

from django.conf import settings

from auralign.accounts.models import ApiToken, User
from auralign.core import sql

_TOKEN = sql.Columns(ApiToken)
_USER = sql.Columns(User)
_MAX_CACHED = 10_000
_cache: dict[str, tuple[float, tuple]] = {}  # prefix -> (monotonic deadline, row)


def _token_row(prefix: str) -> tuple | None:
    ttl = settings.API_TOKEN_CACHE_SECONDS
    if ttl > 0:
        hit = _cache.get(prefix)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    scope = ApiToken.campaigns.through._meta.db_table
    row = sql.fetchone(
        f"SELECT {_TOKEN.sql('t')}, {_USER.sql('u')},"
        f" EXISTS (SELECT 1 FROM {scope} s WHERE s.apitoken_id = t.id)"
        " FROM accounts_apitoken t JOIN accounts_user u ON u.id = t.user_id WHERE t.prefix = %s",
        [prefix],
    )
    if row is not None and ttl > 0:
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        _cache[prefix] = (time.monotonic() + ttl, row)
    return row


def api_token_for_prefix(prefix: str) -> ApiToken | None:
    """The token with this prefix and its user (fresh instances on every call), or None.
    `token.is_scoped` tells whether it is narrowed to some campaigns (no query needed when not)."""
    row = _token_row(prefix)
    if row is None:
        return None
    token = _TOKEN.load(row)
    token.user = _USER.load(row, len(_TOKEN))
    token.is_scoped = bool(row[-1])
    return token


def api_token_forget(prefix: str) -> None:
    """Drop this process's cached copy of a token (after it changed)."""
    _cache.pop(prefix, None)
