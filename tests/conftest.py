"""Session-wide fixtures: real services (tests/services.py) and small factories."""

from __future__ import annotations

import os

os.environ.setdefault("AURALIGN_TESTING", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from tests import services  # noqa: E402


@pytest.fixture(scope="session")
def postgres(django_db_setup):
    ok, reason = services.postgres_available()
    if not ok:
        services.unavailable("postgresql", reason)
    return True


@pytest.fixture(scope="session")
def redis_url():
    url = services.redis_url()
    ok, reason = services.redis_available(url)
    if not ok:
        services.unavailable("redis", reason)
    return url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real SeaweedFS S3 server for the whole session (never a mock: presigned-URL security
    is only meaningful against a real server)."""
    try:
        proc, server = services.start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    except Exception as exc:  # noqa: BLE001
        services.unavailable("s3 (SeaweedFS)", f"{exc.__class__.__name__}: {exc}")
    yield server
    services.stop_process(proc)


@pytest.fixture
def s3_settings(s3_server, settings):
    """Point Django's default storage at the session's SeaweedFS bucket for one test."""
    settings.AURALIGN_STORAGE = "s3"
    settings.S3_ENDPOINT_URL = s3_server.endpoint_url
    settings.S3_ACCESS_KEY_ID = s3_server.access_key
    settings.S3_SECRET_ACCESS_KEY = s3_server.secret_key
    settings.S3_REGION = s3_server.region
    settings.S3_BUCKET = s3_server.bucket
    backend = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": s3_server.bucket,
            "endpoint_url": s3_server.endpoint_url,
            "region_name": s3_server.region,
            "access_key": s3_server.access_key,
            "secret_key": s3_server.secret_key,
            "querystring_auth": True,
            "querystring_expire": 300,
            "file_overwrite": True,
            "default_acl": None,
            "signature_version": "s3v4",
            "addressing_style": "path",
        },
    }
    settings.STORAGES = {**settings.STORAGES, "default": backend}
    return s3_server


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """(Session-wide; tests/rlhf_export/training has its own.) A tiny random Qwen2 causal LM + ChatML tokenizer (tests/rlhf_export/training/factory.py):
    an RM backbone, or an `hf` policy to DPO and sample from."""
    from tests.rlhf_export.training import factory

    return factory.tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "lm", seed=0)


@pytest.fixture(autouse=True)
def _media_root(tmp_path, settings):
    """Each test gets its own local media folder (the embedded default storage)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "media")}},
    }


def pytest_terminal_summary(terminalreporter):
    if services.SKIPPED:
        terminalreporter.section("service tests skipped")
        for service, reason in sorted(services.SKIPPED.items()):
            terminalreporter.write_line(f"{service}: {reason}")
        terminalreporter.write_line("Set DATABASE_URL / TEST_REDIS_URL (see README) to run them; CI sets AURALIGN_REQUIRE_SERVICES=1.")
