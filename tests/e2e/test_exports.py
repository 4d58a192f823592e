"""The export page in a real Chromium against a live server: a trainer creates an export with the
form and watches it go from pending to succeeded without reloading by hand."""

import time

import pytest

from rlhf_export.models import ExportSnapshot
from rlhf_export.services import snapshot_run
from tests.e2e.conftest import logged_in_context
from tests.rlhf_export.conftest import judged_campaign

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_trainer_creates_an_export_and_sees_it_finish(browser, live_server, queue):
    judged = judged_campaign(dialogues=2)
    context = logged_in_context(browser, live_server, judged.trainer)
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
