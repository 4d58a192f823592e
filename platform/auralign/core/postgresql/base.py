"""Django's PostgreSQL backend, health-checking a persistent connection only after it sat idle.

With `CONN_HEALTH_CHECKS`, Django tests a persistent connection (`SELECT 1`, a round trip to the
database) at the start of every request. Under load that was 2 of the 15 round trips of an
annotator's next + submit, spent on connections that had served a request milliseconds before.
Here a connection used less than `DB_HEALTH_CHECK_IDLE_SECONDS` ago (default 1 s) is not
checked; one idle for longer (a quiet spell, a database restart or failover) is checked before
use exactly as Django does. 0 checks before every request again.

What this gives up: when the database restarts within that second after a connection's last
use, the connection's next request fails once (a 500) and Django closes the broken connection
at the end of it (`close_if_unusable_or_obsolete`); the request after reconnects.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    last_used: float | None = None  # monotonic time this connection was last asked for a cursor

    def close_if_health_check_failed(self) -> None:
        # Django calls this before every cursor and transaction; the check itself runs once per
        # request (health_check_done), which is where a recent use now counts as one.
        now = time.monotonic()
        if (
            self.connection is not None
            and not self.health_check_done
            and self.last_used is not None
            and now - self.last_used < settings.DB_HEALTH_CHECK_IDLE_SECONDS
        ):
            self.health_check_done = True
        super().close_if_health_check_failed()
        self.last_used = now
