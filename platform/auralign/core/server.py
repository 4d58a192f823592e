"""A gunicorn worker class that spreads keep-alive connections evenly over the workers.

    gunicorn config.wsgi:application --worker-class auralign.core.server.BalancedThreadWorker ...

gunicorn's threaded workers (`gthread`) all watch the listening socket, and whichever wakes
first accepts the connection; a keep-alive connection then stays with that worker until it
closes. The worker that has just answered a request is the one already running, so it tends to
win: with 50 annotators connecting one after another, 4 workers ended up holding 34 / 8 / 7 / 1
connections. The busiest one is bound to a single core by its interpreter lock, and its queue
sets everyone's worst latency (docs/annotation.md, "Load").

`BalancedThreadWorker` is gunicorn's `gthread` worker that accepts a new connection only while
it holds no more connections than the least loaded live worker (plus `BALANCE_SLACK`). Each
worker publishes its connection count and a heartbeat in a small shared memory table created
in the master before the workers fork; an entry not refreshed for `STALE_SECONDS` (a worker
that died or is stopping) is ignored. The least loaded worker always accepts, so a connection
is never refused for balance; gunicorn's own `--worker-connections` cap still applies on top.
Nothing here imports Django.
"""

from __future__ import annotations

import mmap
import os
import struct
import time

from gunicorn.workers.gthread import ThreadWorker

SLOTS = 256  # table entries; a worker writes the one at its age (gunicorn's spawn counter) modulo this
STALE_SECONDS = 3.0  # a worker's event loop wakes at least once a second and refreshes its entry
BALANCE_SLACK = 0  # connections a worker may hold beyond the least loaded one's before it stops accepting
_ENTRY = struct.Struct("<ddd")  # pid, open connections, monotonic time of the last refresh


class ConnectionTable:
    """Per-worker connection counts in anonymous shared memory (inherited by the forked workers).
    Each worker writes only its own entry; readers tolerate a stale or half-written one."""

    def __init__(self, slots: int = SLOTS):
        self.slots = slots
        self.memory = mmap.mmap(-1, _ENTRY.size * slots)

    def publish(self, slot: int, *, connections: int, now: float) -> None:
        _ENTRY.pack_into(self.memory, _ENTRY.size * (slot % self.slots), os.getpid(), connections, now)

    def clear(self, slot: int) -> None:
        _ENTRY.pack_into(self.memory, _ENTRY.size * (slot % self.slots), 0, 0, 0)

    def least(self, *, now: float) -> int | None:
        """The fewest connections any live worker holds (None when no entry is fresh)."""
        fresh = [
            count
            for pid, count, at in _ENTRY.iter_unpack(self.memory)
            if pid and now - at <= STALE_SECONDS
        ]
        return int(min(fresh)) if fresh else None


_table: ConnectionTable | None = None


def connection_table() -> ConnectionTable:
    """The table shared by all workers of this gunicorn master (made on first use, which is the
    first worker's construction, in the master, before it forks)."""
    global _table
    if _table is None:
        _table = ConnectionTable()
    return _table


def accept_limit(*, connections_cap: int, least: int | None) -> int:
    """How many connections a worker may hold and still accept one more: gunicorn's cap, lowered
    to one above the least loaded live worker's count (plus the slack)."""
    if least is None:
        return connections_cap
    return min(connections_cap, least + 1 + BALANCE_SLACK)


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker that keeps its share of keep-alive connections even."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # in the master, before the fork
        self.table = connection_table()

    # gthread's event loop re-reads `worker_connections` on every turn to decide whether the
    # listening sockets stay in its poller; the property publishes this worker's count and
    # answers with the balanced limit.
    @property
    def worker_connections(self) -> int:
        now = time.monotonic()
        self.table.publish(self.age, connections=self.nr_conns, now=now)
        return accept_limit(connections_cap=self._connections_cap, least=self.table.least(now=now))

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._connections_cap = value

    def set_accept_enabled(self, enabled: bool) -> None:
        if not enabled and not self.alive:  # stopping: leave the table at once
            self.table.clear(self.age)
        super().set_accept_enabled(enabled)
