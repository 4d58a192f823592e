"""Browser-test plumbing: one Debian Chromium per session (Playwright), logged-in contexts."""

from __future__ import annotations

import shutil

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from tests import services

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        services.unavailable("chromium", f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright():
    """Playwright's sync API keeps an event loop in the test thread while a browser is open; the
    tests' ORM calls are still plain synchronous code. Scoped to the browser-test modules (leaked,
    it would fail the deploy check), and set before the module's browser starts."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(autouse=True)
def _close_connections():
    yield
    connections.close_all()  # a connection opened under Playwright must not outlive the test database


def logged_in_context(browser, live_server, user, **options):
    """A browser context carrying `user`'s session cookie."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(base_url=live_server.url, **options)
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}]
    )
    return context


@pytest.fixture
def queue():
    """Pages that enqueue on commit keep the message in memory: the test runs the job itself."""
    with services.platform_broker("memory://"):
        yield
