"""The gunicorn worker class that keeps keep-alive connections even across workers."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections import Counter

from auralign.core.server import STALE_SECONDS, ConnectionTable, accept_limit
from tests.services import REPO, free_port, stop_process, wait_for_port


def test_accept_limit_is_one_above_the_least_loaded_worker():
    assert accept_limit(connections_cap=1000, least=3) == 4


def test_accept_limit_keeps_gunicorns_own_cap():
    assert accept_limit(connections_cap=2, least=3) == 2


def test_accept_limit_is_gunicorns_cap_while_no_worker_has_reported():
    assert accept_limit(connections_cap=1000, least=None) == 1000


def test_connection_table_gives_the_fewest_connections_of_fresh_entries():
    table = ConnectionTable(slots=8)
    table.publish(1, connections=5, now=100.0)
    table.publish(2, connections=2, now=100.5)
    assert table.least(now=101.0) == 2


def test_connection_table_ignores_an_entry_not_refreshed_lately():
    table = ConnectionTable(slots=8)
    table.publish(1, connections=5, now=100.0)
    table.publish(2, connections=0, now=100.0 - STALE_SECONDS - 1)  # a worker that died
    assert table.least(now=100.0) == 5


def test_connection_table_forgets_a_cleared_entry():
    table = ConnectionTable(slots=8)
    table.publish(1, connections=5, now=100.0)
    table.publish(2, connections=1, now=100.0)
    table.clear(2)
    assert table.least(now=100.0) == 5


def test_connection_table_is_empty_at_first():
    assert ConnectionTable(slots=8).least(now=100.0) is None


PID_APP = '''
import os
from pathlib import Path

Path(__file__).with_name(f"worker-{os.getpid()}").touch()  # imported by each worker as it starts


def app(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def test_gunicorn_workers_share_keep_alive_connections_evenly(tmp_path):
    """Connections opened one after another, each kept alive after one request, end up spread
    over the workers (plain gthread gives most of them to whichever worker answered last)."""
    (tmp_path / "pid_app.py").write_text(PID_APP)
    port, workers, per_worker = free_port(), 3, 4
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(tmp_path)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "pid_app:app", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", "2", "--worker-class", "auralign.core.server.BalancedThreadWorker", "--keep-alive", "60",
         "--log-level", "warning"],
        env=env, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    connections = []
    try:
        wait_for_port(port, proc=proc)
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("worker-*"))) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)  # every worker's event loop turns at least once a second and reports its count
        served = Counter()
        for _ in range(workers * per_worker):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/")
            response = conn.getresponse()
            served[response.read().decode()] += 1
            connections.append(conn)  # kept open: the connection stays with its worker
        assert sorted(served.values()) == [per_worker] * workers, served
    finally:
        for conn in connections:
            conn.close()
        stop_process(proc)
