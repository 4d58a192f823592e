"""The PostgreSQL backend health-checks a persistent connection only after it sat idle
(auralign/core/postgresql/base.py), driven by the real request signals and Django's own
close_old_connections."""

from __future__ import annotations

import time

import pytest
from django.core.signals import request_finished, request_started
from django.db import connections

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres")]


@pytest.fixture
def checks(monkeypatch):
    """A persistent, health-checked default connection that has served no request yet; counts
    Django's health checks (`is_usable`, a `SELECT 1`) on it."""
    conn = connections["default"]
    conn.ensure_connection()
    monkeypatch.setattr(conn, "health_check_enabled", True)
    monkeypatch.setattr(conn, "close_at", None)  # CONN_MAX_AGE None
    monkeypatch.setattr(conn, "last_used", None)
    calls = []
    real = conn.is_usable
    monkeypatch.setattr(conn, "is_usable", lambda: calls.append(1) or real())
    return conn, calls


def serve_a_request(conn) -> None:
    request_started.send(sender=None)
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1")
    request_finished.send(sender=None)


def test_the_settings_select_this_backend_for_postgresql():
    assert type(connections["default"]).__module__ == "auralign.core.postgresql.base"


def test_a_connection_used_within_the_window_is_not_checked_again(checks, settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 60
    conn, calls = checks
    serve_a_request(conn)
    serve_a_request(conn)
    assert calls == [1]  # only the first request: the connection had no recent use


def test_a_connection_idle_longer_than_the_window_is_checked_before_use(checks, settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 60
    conn, calls = checks
    serve_a_request(conn)
    conn.last_used = time.monotonic() - 61
    serve_a_request(conn)
    assert calls == [1, 1]


def test_a_zero_window_checks_before_every_request(checks, settings):
    settings.DB_HEALTH_CHECK_IDLE_SECONDS = 0
    conn, calls = checks
    for _ in range(3):
        serve_a_request(conn)
    assert calls == [1, 1, 1]
