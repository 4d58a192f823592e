"""The export page in a real Chromium against a live server: a trainer creates an export with the
form and watches it go from pending to succeeded without reloading by hand."""

import shutil
import time

import pytest
from django.conf import settings
from django.test import Client

from rlhf_export.models import ExportSnapshot
from rlhf_export.services import snapshot_run
from tests import services
from tests.rlhf_export.conftest import judged_campaign

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's ORM calls are still plain
    # synchronous code. Only for this test: a leaked variable would fail later deploy checks.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not shutil.which(CHROMIUM):
        services.unavailable("chromium", f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def queue():
    """The form enqueues the export on commit: keep that message in memory (the test runs the job itself)."""
    from config.celery_app import app

    saved = app.conf.broker_url
    app.conf.broker_url = "memory://"
    app._pool, app.amqp._producer_pool = None, None
    yield
    app.conf.broker_url = saved
    app._pool, app.amqp._producer_pool = None, None


def test_a_trainer_creates_an_export_and_sees_it_finish(browser, live_server, queue):
    judged = judged_campaign(dialogues=2)
    client = Client()
    client.force_login(judged.trainer)
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                          "url": live_server.url}])
    page = context.new_page()
    page.goto("/exports/")
    page.check(f"input[name=campaigns][value='{judged.campaign.uuid}']")
    page.select_option("select[name=kind]", "pairwise")
    page.click("#new-export button[type=submit]")
    page.wait_for_selector("[data-status=pending]")
    assert page.text_content(".state") == "pending"
    snapshot_run(snapshot_id=ExportSnapshot.objects.get().pk)  # what the cpu worker does
    page.wait_for_selector("[data-status=succeeded]", timeout=10_000)  # the page polled and reloaded itself
    assert page.locator("table.exports a", has_text="pairwise/train-00000.parquet").count() == 1
    context.route("**/*", lambda route: route.abort())
    context.close()
    time.sleep(0.3)
