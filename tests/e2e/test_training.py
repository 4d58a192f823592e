"""The training pages in a real Chromium against a live server: a trainer starts a reward-model
run from a snapshot with the form, watches its loss and accuracy curves grow while it trains, and
sees the held-out evaluation and artifacts when it is done, without reloading by hand."""

import threading
import time

import pytest

from rlhf_export.models import TrainingRun
from rlhf_export.services import training_job, training_run_register
from rlhf_export.training.tasks import run_job
from tests.e2e.conftest import logged_in_context
from tests.rlhf_export.conftest import judged_campaign, trainable_snapshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_trainer_starts_a_run_and_watches_its_curves_live(browser, live_server, queue, tiny_lm):
    judged = judged_campaign(dialogues=6, k=3)
    snapshot = trainable_snapshot(judged)
    context = logged_in_context(browser, live_server, judged.trainer)
    page = context.new_page()
    page.goto(f"/training/?snapshot={snapshot.uuid}")
    page.select_option("select[name=kind]", "reward_model")
    page.fill("input[name=base_model]", str(tiny_lm))
    page.fill("textarea[name=config]", '{"lr": 0.003, "epochs": 3, "batch_size": 4, "log_every": 1, "device": "cpu", "eval_split": "train"}')
    page.click("#new-training button[type=submit]")
    page.wait_for_selector("#run[data-status=queued]")
    run = TrainingRun.objects.get()

    # What the training worker does, in a thread; it pauses after its first metrics record until
    # the page has drawn it, so the test sees the run mid-training.
    drawn, outcome = threading.Event(), {}

    def first_record_waits(record):
        drawn.wait(timeout=60)

    job = training_job(run=run)
    worker = threading.Thread(target=lambda: outcome.update(result=run_job(job, first_record_waits)))
    worker.start()
    try:
        page.wait_for_selector("#run[data-status=running]", timeout=60_000)  # polled, no reload
        page.wait_for_function("Number(document.getElementById('run').dataset.points) >= 1", timeout=30_000)
        points = page.evaluate("Chart.getChart('loss-chart').data.datasets[0].data.length")
        assert points >= 1
        assert page.text_content("#progress").startswith("step 1 of ")
    finally:
        drawn.set()
        worker.join(timeout=120)
    assert outcome["result"]["status"] == "ok", outcome["result"]["error"]
    with page.expect_navigation(timeout=20_000):  # the page polls, sees the run done and reloads itself
        training_run_register(result=outcome["result"])  # what the chained platform task does
    page.wait_for_selector("#evaluation #eval-accuracy")
    assert page.get_attribute("#run", "data-status") == "succeeded"
    assert page.locator("#artifacts a", has_text="checkpoint/reward_model.json").count() == 1
    run.refresh_from_db()
    train_points = page.evaluate("Chart.getChart('loss-chart').data.datasets[0].data.length")
    assert train_points == len([r for r in run.metrics if r["split"] == "train"])
    context.route("**/*", lambda route: route.abort())
    context.close()
    time.sleep(0.3)
