"""Load test of the annotation engine: C simulated annotators, each asking for its next item and
submitting a judgment at once (no think time), against gunicorn + PostgreSQL, on a campaign of
N items (1M by default, seeded with bulk SQL).

    python bench/annotate_load.py [--quick] [--concurrency 50] [--items 1000000] [--seconds 30]

Needs PostgreSQL (--database-url; that database is dropped and created afresh) and gunicorn.
Prints judgments/s, p50 and p99 latency of "next" and of "submit", and the invariant counts:
lost (acknowledged judgments missing from the database), duplicated (an item twice for one
annotator, or a submission id stored twice) and over-assigned (an item with more counted
judgments or slots than its overlap, or whose slot count disagrees with its leases and
judgments), and the server CPU (gunicorn workers + PostgreSQL backends) spent per judgment,
which bounds the throughput the machine could carry whatever else runs on it, with the shares
of the machine's CPU the server, this load client (a lean hand-written HTTP/1.1 client) and
everything else took during the run. The last line is one JSON object with every figure.
`--floor` then measures the framework's own floor through the same server and client (every
annotator asking for /healthz: Django's middleware and one SELECT 1): half its requests/s is the
judgments/s no service code could beat on this machine. `--with-next` submits as the task page
does (`?next=1`: each answer brings the next item, so a judgment is one request, not two).
Measures; asserts nothing. Linux only (/proc). Figures and analysis: docs/annotation.md, "Load".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
DIALOGUES = 500  # items cycle over this many dialogues (2 replies each)
ITEM_CHUNK = 100_000
BULK_TABLES = ("annotation_item", "annotation_itemcandidate")
BALANCED = "auralign.core.server.BalancedThreadWorker"  # the platform's own (gthread, connections kept even)
EPOLL_WORKERS = ("gthread", BALANCED)  # worker classes whose event loop is an epoll set the bench can inspect


def fail(message: str) -> None:
    print(f"annotate_load: {message}", file=sys.stderr)
    sys.exit(1)


def platform_env(database_url: str, var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AURALIGN_", "DJANGO_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO / "platform"), str(REPO)]),
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        DB_CONN_MAX_AGE="600",
        SECRET_KEY="bench-" + secrets.token_hex(24),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        AURALIGN_VAR_DIR=str(var_dir),
        AURALIGN_MEDIA_ROOT=str(var_dir / "media"),
        LOG_LEVEL="WARNING",
    )
    return env


def recreate_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        fail(f"--database-url names database {name!r}; use letters, digits and _ only")
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        fail(f"cannot reach PostgreSQL at {admin}: {str(exc).strip().splitlines()[0]}")


# --- seeding (runs in a child process with Django set up) ----------------------------------------


def seed(items: int, annotators: int) -> dict:
    """Rubric, policies, dialogues, candidates with real audio and tokens through the real
    services; then `items` items and their candidate links with bulk SQL."""
    import django

    django.setup()
    import numpy as np
    from django.db import connection
    from tqdm import tqdm

    from auralign.accounts.models import User
    from auralign.accounts.services import api_token_create
    from auralign.campaigns.models import Campaign, CampaignPolicy, Membership
    from auralign.dialogues.models import Dialogue, DialogueSet, Turn
    from auralign.generation.models import Candidate
    from auralign.media.services import audio_asset_store, audio_check
    from auralign.policies.models import Policy
    from auralign.rubrics.seed import SEED_CRITERIA, SEED_INSTRUCTIONS
    from auralign.rubrics.services import rubric_create, rubric_version_freeze
    from worker.audio import encode_wav

    lead = User.objects.create_user("bench-lead", is_lead=True)
    version = rubric_version_freeze(
        version=rubric_create(slug="bench", name="Bench", criteria=SEED_CRITERIA, instructions=SEED_INSTRUCTIONS)
    )
    ds = DialogueSet.objects.create(name="bench")
    dialogues = Dialogue.objects.bulk_create(
        [Dialogue(dialogue_set=ds, external_id=f"d{i}", content_sha256=f"{i:064x}") for i in range(DIALOGUES)]
    )
    Turn.objects.bulk_create([Turn(dialogue=d, index=0, role="user", text=f"Question {d.external_id}") for d in dialogues])
    policies = [Policy.objects.create(name=f"bench-policy-{i}", backend="hf", config={"checkpoint": "/none"}) for i in range(2)]
    campaign = Campaign.objects.create(
        name="bench", rubric_version=version, dialogue_set=ds, status=Campaign.Status.ANNOTATING,
        candidates_per_item=2, judgments_per_item=3, created_by=lead,
    )
    for p in policies:
        CampaignPolicy.objects.create(campaign=campaign, policy=p)
    assets = []
    for freq in (220.0, 330.0):
        t = np.arange(24000 * 2) / 24000
        data = encode_wav((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)[:, None], 24000)
        assets.append(audio_asset_store(data=data, info=audio_check(data=data, name="reply.wav")[1]))
    Candidate.objects.bulk_create(
        [
            Candidate(campaign=campaign, dialogue=d, policy=p, sample_index=0, reply_text="Sure.", audio=assets[n])
            for d in dialogues
            for n, p in enumerate(policies)
        ]
    )
    tokens = []
    for i in range(annotators):
        user = User.objects.create_user(f"bench-annotator-{i}")
        Membership.objects.create(campaign=campaign, user=user, role=Membership.Role.ANNOTATOR)
        tokens.append(api_token_create(user=user, name="bench")[1])

    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit TO off")  # setup only; the measured requests commit normally
        cur.execute("SET maintenance_work_mem TO '256MB'")
        # Secondary indexes and unique/foreign keys are dropped for the bulk load and rebuilt
        # after it: one sort per index instead of millions of random insertions.
        cur.execute(
            """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
               WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f')""",
            [list(BULK_TABLES)],
        )
        constraints = cur.fetchall()
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname NOT LIKE '%%_pkey' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            [list(BULK_TABLES)],
        )
        indexes = cur.fetchall()
        for table, name, _ in constraints:  # only primary keys are referenced, and they stay
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        with tqdm(total=items, desc="items", unit="item", file=sys.stderr) as bar:
            for start in range(0, items, ITEM_CHUNK):
                n = min(ITEM_CHUNK, items - start)
                cur.execute("SELECT coalesce(max(id), 0) FROM annotation_item")
                before = cur.fetchone()[0]
                cur.execute(
                    """
                    INSERT INTO annotation_item (uuid, campaign_id, dialogue_id, is_gold, is_honeypot, overlap,
                        slots_used, judgment_count, priority, tiebreak, created_at)
                    SELECT gen_random_uuid(), %s, d.ids[1 + (g %% cardinality(d.ids))], false, false, 3, 0, 0, 0,
                        random(), now()
                    FROM generate_series(%s, %s) AS g,
                         (SELECT array_agg(id ORDER BY id) AS ids FROM dialogues_dialogue WHERE dialogue_set_id = %s) AS d
                    """,
                    [campaign.pk, start, start + n - 1, ds.pk],
                )
                cur.execute(
                    """
                    INSERT INTO annotation_itemcandidate (item_id, candidate_id, position)
                    SELECT i.id, c.id, c.pos
                    FROM annotation_item i
                    JOIN (SELECT id, dialogue_id, row_number() OVER (PARTITION BY dialogue_id ORDER BY id) - 1 AS pos
                          FROM generation_candidate WHERE campaign_id = %s) c ON c.dialogue_id = i.dialogue_id
                    WHERE i.id > %s
                    """,
                    [campaign.pk, before],
                )
                bar.update(n)
        for _, ddl in tqdm(indexes, desc="indexes", file=sys.stderr):
            cur.execute(ddl)
        for table, name, ddl in tqdm(constraints, desc="constraints", file=sys.stderr):
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {ddl}')
        cur.execute("VACUUM ANALYZE annotation_item")
        cur.execute("VACUUM ANALYZE annotation_itemcandidate")
        # Flush the seeding's WAL now: otherwise the checkpoint it triggers lands in the load phase
        # and its fsyncs stall commits (the bench measures steady serving, not the aftermath of a
        # bulk load).
        try:
            cur.execute("CHECKPOINT")
        except Exception as exc:  # noqa: BLE001 (needs superuser or pg_checkpoint; the bench runs without it)
            print(f"note: no CHECKPOINT before the load ({exc.__class__.__name__}); a checkpoint may land in it", file=sys.stderr)
    return {"campaign": str(campaign.uuid), "campaign_id": campaign.pk, "tokens": tokens}


# --- load ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(
    env: dict, port: int, workers: int, threads: int, worker_class: str, worker_connections: int, log: Path
) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--threads", str(threads), "--worker-class", worker_class,
        "--worker-connections", str(worker_connections),
        "--backlog", "2048", "--log-level", "warning", "--keep-alive", "30", "--preload",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"gunicorn exited with {proc.returncode}; see {log}")
        if worker_class not in EPOLL_WORKERS and len(children(proc.pid)) >= workers:
            time.sleep(1.0)  # other worker classes poll without epoll: give them a second to start
            return proc
        if accepting_workers(proc.pid, port) >= workers:
            return proc
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    fail(f"gunicorn's {workers} workers were not all accepting on port {port} within 60 s; see {log}")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return found


def tcp_sockets(port: int, state: str) -> set[str]:
    """The sockets on local `port` in a TCP state ("0A" listening, "01" established), as the
    "socket:[inode]" names /proc/<pid>/fd links show (/proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
            found.add(f"socket:[{fields[9]}]")
    return found


def accepting_workers(master: int, port: int) -> int:
    """How many gunicorn workers watch the listening socket in their event loop (its fd is in one
    of their epoll sets). The port answers as soon as the master binds it, before the workers run:
    connections opened then all land in the backlog and go to the first worker that starts, which
    then holds every keep-alive connection of the run."""
    listening = tcp_sockets(port, "0A")
    ready = 0
    for pid in children(master):
        try:
            fds = {fd.name for fd in Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd) in listening}
            watched = {
                line.split()[1]
                for info in Path(f"/proc/{pid}/fdinfo").iterdir()
                for line in info.read_text().splitlines()
                if line.startswith("tfd:")
            }
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        ready += bool(fds & watched)
    return ready


class Connection:
    """One keep-alive HTTP/1.1 connection, written by hand: the load client shares the machine's
    two cores with the server, and a general-purpose client (httpx) spent more CPU per request
    than the server's own work. Enough HTTP for gunicorn's answers (Content-Length or chunked)."""

    def __init__(self, port: int, token: str, keep_alive: bool = True):
        self.port, self.keep_alive = port, keep_alive
        self.head = f"Host: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\nAccept: application/json\r\n"
        if not keep_alive:  # one connection per request, as behind a proxy that does not pool (nginx's default)
            self.head += "Connection: close\r\n"
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else "Content-Length: 0\r\n"
        if not self.keep_alive:
            await self.open()
        self.writer.write(f"{method} {path} HTTP/1.1\r\n{self.head}{extra}\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            await self.reader.readuntil(b"\r\n")
            data = b"".join(parts)
        else:
            raise RuntimeError(f"{method} {path}: a response without a length")
        if not self.keep_alive:
            self.writer.close()
        elif headers.get("connection", "").lower() == "close":
            self.writer.close()
            await self.open()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def annotator(
    conn: Connection, campaign: str, criteria: list[str], until: float, out: dict, with_next: bool = False
) -> None:
    """Next, then submit, in a loop. `with_next`: as the task page does, each submission also
    brings the next item (`?next=1`); "next" is then asked only when a submission brought none."""
    next_path = f"/api/v1/annotate/campaigns/{campaign}/next"
    task = None
    while time.perf_counter() < until:
        if task is None:
            t0 = time.perf_counter()
            status, body = await conn.request("POST", next_path)
            out["next"].append(time.perf_counter() - t0)
            if status != 200:
                out["errors"].append(f"next {status}: {body[:200]!r}")
                continue
            task = json.loads(body)
        if task["item"] is None:
            return
        ids = [c["id"] for c in task["candidates"]]
        csid = str(uuid.uuid4())
        payload = json.dumps({
            "client_submission_id": csid,
            "ranking": [[c] for c in ids],
            "scores": {c: {key: 3 for key in criteria} for c in ids},
            "listened": {c: 1.0 for c in ids},
            "time_spent_ms": 1000,
        }).encode()
        t0 = time.perf_counter()
        query = "?next=1" if with_next else ""
        status, body = await conn.request("POST", f"/api/v1/annotate/items/{task['item']}/judgment{query}", payload)
        out["submit"].append(time.perf_counter() - t0)
        task = None
        if status in (200, 201):
            out["acked"].append(csid)
            if with_next:
                task = json.loads(body)["next"]
        else:
            out["errors"].append(f"submit {status}: {body[:200]!r}")


async def run_load(
    port: int, seeded: dict, seconds: float, criteria: list[str], on_start, keep_alive: bool = True, with_next: bool = False
) -> tuple[dict, float, float]:
    """Returns the samples, the load phase's length and the CPU seconds this client spent in it."""
    out = {"next": [], "submit": [], "acked": [], "errors": []}
    conns = [Connection(port, t, keep_alive) for t in seeded["tokens"]]
    try:
        if keep_alive:
            for c in conns:  # one after another, as annotators arrive (not 50 connects in one instant)
                await c.open()
                await c.request("GET", "/api/v1/me")
        for _ in range(3):  # warm up every worker and connection before measuring
            await asyncio.gather(*(c.request("GET", "/api/v1/me") for c in conns))
        on_start()
        cpu0 = time.process_time()
        start = time.perf_counter()
        until = start + seconds
        await asyncio.gather(*(annotator(c, seeded["campaign"], criteria, until, out, with_next) for c in conns))
        elapsed = time.perf_counter() - start
        client_cpu = time.process_time() - cpu0
    finally:
        for c in conns:
            c.close()
    return out, elapsed, client_cpu


async def run_floor(port: int, tokens: list[str], path: str, seconds: float) -> tuple[list[float], int, float]:
    """Every annotator's connection asks for `path` in a loop (no think time) for `seconds`;
    returns the latencies, the non-200 answers and the phase's length."""
    conns = [Connection(port, t) for t in tokens]
    latencies: list[float] = []
    errors = 0

    async def loop(conn: Connection, until: float) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            status, _ = await conn.request("GET", path)
            latencies.append(time.perf_counter() - t0)
            errors += status != 200

    try:
        for c in conns:
            await c.open()
            await c.request("GET", path)
        start = time.perf_counter()
        await asyncio.gather(*(loop(c, start + seconds) for c in conns))
        return latencies, errors, time.perf_counter() - start
    finally:
        for c in conns:
            c.close()


def measure_floor(server_pid: int, database_url: str, port: int, tokens: list[str], seconds: float) -> dict:
    """The framework's floor on this machine, through the same server and client: /healthz, which
    runs Django's whole middleware stack and one SELECT 1. A judgment is two requests, so no
    judgment can cost less than two of these, whatever the services do."""
    path = "/healthz"
    meter = ServerCpu(server_pid, database_url)
    latencies, errors, elapsed = asyncio.run(run_floor(port, tokens, path, seconds))
    spent = sum(meter.spent())
    return {
        "path": path,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * quantile(latencies, 0.50), 1),
        "p99_ms": round(1000 * quantile(latencies, 0.99), 1),
        "server_cpu_ms_per_request": round(1000 * spent / max(1, len(latencies)), 2),
        "errors": errors,
    }


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (every core, not idle or waiting on IO), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def server_pids(gunicorn_pid: int, database_url: str) -> tuple[list[int], list[int]]:
    """The gunicorn workers, and the PostgreSQL backends serving the bench database."""
    import psycopg

    workers = children(gunicorn_pid)
    with psycopg.connect(database_url) as conn:
        backends = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )]
    return workers, backends


class ServerCpu:
    """CPU seconds spent by gunicorn's workers and by the bench database's backends since it was
    made (a process that appears meanwhile counts from its start)."""

    def __init__(self, gunicorn_pid: int, database_url: str):
        self.gunicorn_pid, self.database_url = gunicorn_pid, database_url
        self.app, self.db = server_pids(gunicorn_pid, database_url)
        self.app_before, self.db_before = cpu_seconds(self.app), cpu_seconds(self.db)

    def spent(self) -> tuple[float, float]:
        """(gunicorn, PostgreSQL) CPU seconds so far."""
        app, db = server_pids(self.gunicorn_pid, self.database_url)
        return (
            cpu_seconds(sorted(set(self.app) | set(app))) - self.app_before,
            cpu_seconds(sorted(set(self.db) | set(db))) - self.db_before,
        )


def connections_per_worker(workers: list[int], port: int) -> list[int]:
    """How many of the established connections to `port` each gunicorn worker holds (from
    /proc/net/tcp and each worker's open sockets), most first. Keep-alive connections stay with
    the worker that accepted them; when one worker holds most of them, it is bound to one core."""
    established = tcp_sockets(port, "01")
    held = []
    for pid in workers:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        held.append(sum(link in established for link in links))
    return sorted(held, reverse=True)


def invariants(database_url: str, campaign_id: int, acked: list[str]) -> dict:
    import psycopg

    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM annotation_judgment WHERE client_submission_id = ANY(%s::uuid[])", [acked]
        ).fetchone()[0]
        duplicated = conn.execute(
            """SELECT (SELECT count(*) FROM (SELECT 1 FROM annotation_assignment WHERE campaign_id = %(c)s
                                             GROUP BY item_id, annotator_id HAVING count(*) > 1) a)
                    + (SELECT count(*) FROM (SELECT 1 FROM annotation_judgment WHERE campaign_id = %(c)s
                                             GROUP BY annotator_id, client_submission_id HAVING count(*) > 1) j)""",
            {"c": campaign_id},
        ).fetchone()[0]
        over_assigned = conn.execute(
            """WITH touched AS (SELECT DISTINCT item_id FROM annotation_assignment WHERE campaign_id = %(c)s),
                    counts AS (
                      SELECT t.item_id,
                        (SELECT count(*) FROM annotation_assignment a WHERE a.item_id = t.item_id AND a.status = 'live') AS live,
                        (SELECT count(*) FROM annotation_judgment j WHERE j.item_id = t.item_id AND NOT j.is_surplus) AS counted
                      FROM touched t)
               SELECT count(*) FROM counts c JOIN annotation_item i ON i.id = c.item_id
               WHERE c.counted > i.overlap OR i.slots_used > i.overlap OR i.slots_used <> c.live + c.counted""",
            {"c": campaign_id},
        ).fetchone()[0]
        stored = conn.execute("SELECT count(*) FROM annotation_judgment WHERE campaign_id = %s", [campaign_id]).fetchone()[0]
    return {"lost": len(acked) - found, "duplicated": duplicated, "over_assigned": over_assigned, "stored": stored}


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    parser.add_argument("--concurrency", type=int, help="simulated annotators (default 50; quick 20)")
    parser.add_argument("--items", type=int, help="items in the campaign (default 1,000,000; quick 20,000)")
    parser.add_argument("--seconds", type=float, help="length of the load phase (default 30; quick 8)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--worker-class", default=BALANCED, help=f"gunicorn worker class (default {BALANCED})")
    parser.add_argument("--worker-connections", type=int, default=1000, help="connections one gunicorn worker holds at most")
    parser.add_argument(
        "--no-keep-alive", action="store_true",
        help="a new connection per request (as behind nginx's default proxying) instead of one keep-alive connection per annotator",
    )
    parser.add_argument(
        "--with-next", action="store_true",
        help="submit as the task page does (?next=1: the answer brings the next item), so a judgment is one request;"
        " 'next' is asked only when a submission brought none",
    )
    parser.add_argument(
        "--floor", action="store_true",
        help="then measure the framework's floor on this machine: the same annotators asking for /healthz"
        " (Django's middleware and one SELECT 1) for half of --seconds",
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/auralign_bench"),
        help="PostgreSQL database to (re)create for the run",
    )
    args = parser.parse_args()
    concurrency = args.concurrency or (20 if args.quick else 50)
    items = args.items or (20_000 if args.quick else 1_000_000)
    seconds = args.seconds or (8.0 if args.quick else 30.0)
    if concurrency < 1 or items < 1 or seconds <= 0:
        fail("--concurrency, --items and --seconds must be positive")
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        fail("--database-url must name a PostgreSQL database (postgres://...)")

    var_dir = Path(tempfile.mkdtemp(prefix="auralign-bench-"))
    env = platform_env(args.database_url, var_dir)
    print(f"database {args.database_url}: creating, migrating, seeding {items:,} items", file=sys.stderr)
    recreate_database(args.database_url)
    t0 = time.perf_counter()
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, cwd=REPO, capture_output=True, text=True)
    if migrate.returncode:
        fail(f"migrate failed: {migrate.stderr.strip().splitlines()[-1] if migrate.stderr.strip() else migrate.returncode}")
    seeding = subprocess.run(
        [sys.executable, __file__, "--_seed", json.dumps([items, concurrency])], env=env, cwd=REPO,
        stdout=subprocess.PIPE, text=True,
    )
    if seeding.returncode:
        fail("seeding failed (see above)")
    seeded = json.loads(seeding.stdout.strip().splitlines()[-1])
    seed_s = time.perf_counter() - t0
    criteria = ["correctness", "fluency", "emotional_resonance", "persona_consistency"]

    port = free_port()
    log = var_dir / "gunicorn.log"
    server = start_gunicorn(env, port, args.workers, args.threads, args.worker_class, args.worker_connections, log)
    try:
        print(f"load: {concurrency} annotators for {seconds:g} s against gunicorn "
              f"({args.workers} workers x {args.threads} threads, {args.worker_class.rsplit('.', 1)[-1]})", file=sys.stderr)
        cpu = {}

        def snapshot():
            cpu["server"] = ServerCpu(server.pid, args.database_url)
            cpu["machine_before"] = machine_cpu_seconds()
            cpu["connections"] = connections_per_worker(cpu["server"].app, port)

        out, elapsed, client_cpu = asyncio.run(
            run_load(port, seeded, seconds, criteria, snapshot, keep_alive=not args.no_keep_alive, with_next=args.with_next)
        )
        machine_cpu = machine_cpu_seconds() - cpu["machine_before"]
        app_cpu, db_cpu = cpu["server"].spent()
        server_cpu = app_cpu + db_cpu
        floor = measure_floor(server.pid, args.database_url, port, seeded["tokens"], seconds / 2) if args.floor else None
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    counts = invariants(args.database_url, seeded["campaign_id"], out["acked"])
    cores = os.cpu_count()

    figures = {
        "bench": "annotate_load",
        "quick": args.quick,
        "concurrency": concurrency,
        "items": items,
        "seconds": round(elapsed, 2),
        "seed_seconds": round(seed_s, 1),
        "judgments": len(out["acked"]),
        "judgments_per_s": round(len(out["acked"]) / elapsed, 1),
        "next_p50_ms": round(1000 * quantile(out["next"], 0.50), 1),
        "next_p99_ms": round(1000 * quantile(out["next"], 0.99), 1),
        "submit_p50_ms": round(1000 * quantile(out["submit"], 0.50), 1),
        "submit_p99_ms": round(1000 * quantile(out["submit"], 0.99), 1),
        "server_cpu_ms_per_judgment": round(1000 * server_cpu / max(1, len(out["acked"])), 1),
        "app_cpu_ms_per_judgment": round(1000 * app_cpu / max(1, len(out["acked"])), 2),
        "db_cpu_ms_per_judgment": round(1000 * db_cpu / max(1, len(out["acked"])), 2),
        "client_cpu_ms_per_judgment": round(1000 * client_cpu / max(1, len(out["acked"])), 2),
        # shares of the machine's CPU time during the load phase (cores x seconds)
        "server_cpu_share": round(server_cpu / (cores * elapsed), 3),
        "client_cpu_share": round(client_cpu / (cores * elapsed), 3),
        "other_cpu_share": round(max(0.0, machine_cpu - server_cpu - client_cpu) / (cores * elapsed), 3),
        "cores": cores,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "errors": len(out["errors"]),
        "lost": counts["lost"],
        "duplicated": counts["duplicated"],
        "over_assigned": counts["over_assigned"],
        "stored": counts["stored"],
        "connections_per_worker": cpu["connections"] if not args.no_keep_alive else None,  # none held between requests
        "gunicorn": f"{args.workers}x{args.threads} {args.worker_class.rsplit('.', 1)[-1]}",
        "keep_alive": not args.no_keep_alive,
        "with_next": args.with_next,
        "floor": floor,
    }
    for error in sorted(set(out["errors"]))[:5]:
        print(f"error: {error}")
    print(f"judgments/s      {figures['judgments_per_s']:>8}   ({figures['judgments']} in {figures['seconds']} s, {concurrency} annotators)")
    print(f"next   p50 / p99 {figures['next_p50_ms']:>8} / {figures['next_p99_ms']} ms")
    print(f"submit p50 / p99 {figures['submit_p50_ms']:>8} / {figures['submit_p99_ms']} ms"
          + (" (each also leasing the next item, ?next=1)" if args.with_next else ""))
    print(f"server CPU       {figures['server_cpu_ms_per_judgment']} ms per judgment (gunicorn + PostgreSQL); "
          f"{os.cpu_count()} cores would carry at most {os.cpu_count() * 1000 / max(0.1, figures['server_cpu_ms_per_judgment']):.0f}"
          f" judgments/s; of it gunicorn {figures['app_cpu_ms_per_judgment']} ms, PostgreSQL {figures['db_cpu_ms_per_judgment']} ms;"
          f" load average during the run {figures['load_average_1m']}")
    print(f"CPU shares       server {figures['server_cpu_share']:.0%}, load client {figures['client_cpu_share']:.0%}"
          f" ({figures['client_cpu_ms_per_judgment']} ms per judgment), anything else on the machine"
          f" {figures['other_cpu_share']:.0%}")
    if figures["connections_per_worker"] is not None:
        print(f"connections      {' / '.join(map(str, figures['connections_per_worker']))} per worker"
              " (keep-alive connections stay where accepted; a worker holding most of them is bound to one core)")
    print(f"invariants       lost {figures['lost']}, duplicated {figures['duplicated']}, over-assigned {figures['over_assigned']}"
          f" ({figures['errors']} HTTP errors)")
    if floor:
        print(f"floor {floor['path']}    {floor['requests_per_s']:>8} requests/s, p50 / p99 {floor['p50_ms']} / {floor['p99_ms']} ms,"
              f" {floor['server_cpu_ms_per_request']} ms of server CPU per request ({floor['errors']} errors): Django's"
              f" middleware and one SELECT 1; a judgment is two requests, so even free services would carry at most"
              f" ~{floor['requests_per_s'] / 2:.0f} judgments/s here")
    print(json.dumps(figures))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--_seed":
        print(json.dumps(seed(*json.loads(sys.argv[2]))))
    else:
        main()
