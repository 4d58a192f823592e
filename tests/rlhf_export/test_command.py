"""manage.py export: create (inline here; the Celery path is in test_celery.py) and verify."""

import io

import pytest
from django.core.management import CommandError, call_command

from auralign.generation.models import Candidate
from rlhf_export.models import ExportSnapshot
from tests.factories import make_judgment, make_user
from tests.rlhf_export.conftest import read_rows

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("export", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_export_inline_creates_a_succeeded_snapshot_with_the_given_filters(judged):
    output = run("--campaign", judged.campaign.name, "--kind", "listwise", "--exclude-gold", "--formats", "parquet",
                 "--splits", "train=1", "--inline", "--user", judged.trainer.username)
    snapshot = ExportSnapshot.objects.get()
    assert snapshot.status == "succeeded" and snapshot.created_by == judged.trainer
    assert snapshot.spec["filters"]["exclude_gold"] is True and snapshot.spec["formats"] == ["parquet"]
    assert [f["path"] for f in snapshot.files] == ["listwise/train-00000.parquet"]
    assert len(read_rows(snapshot)) == len(judged.judgments)
    assert str(snapshot.uuid) in output


def test_export_takes_a_campaign_by_uuid(judged):
    run("--campaign", str(judged.campaign.uuid), "--inline")
    assert ExportSnapshot.objects.get().campaigns.get() == judged.campaign


def test_export_names_a_bad_option(judged):
    with pytest.raises(CommandError, match="filters.min_agreement"):
        run("--campaign", judged.campaign.name, "--min-agreement", "1.5", "--inline")
    with pytest.raises(CommandError, match="no campaign 'nope'"):
        run("--campaign", "nope", "--inline")
    assert not ExportSnapshot.objects.exists()


def test_export_no_wait_leaves_the_snapshot_pending_for_the_queue(judged):
    run("--campaign", judged.campaign.name, "--no-wait")
    assert ExportSnapshot.objects.get().status == "pending"


def test_verify_reproduces_a_snapshot_despite_later_judgments(judged):
    run("--campaign", judged.campaign.name, "--inline")
    snapshot = ExportSnapshot.objects.get()
    make_judgment(judged.items[0], make_user())  # after the watermark: must not matter
    assert "reproduced" in run("--verify", str(snapshot.uuid))


def test_verify_reports_files_that_no_longer_reproduce(judged):
    run("--campaign", judged.campaign.name, "--inline", "--splits", "train=1")
    snapshot = ExportSnapshot.objects.get()
    Candidate.objects.filter(pk=judged.items[0].candidates.first().pk).update(reply_text="edited after the export")
    with pytest.raises(CommandError, match="NOT reproduced \\(files differ\\): jsonl/pairwise/train-00000.jsonl, pairwise/train-00000.parquet"):
        run("--verify", str(snapshot.uuid))


def test_verify_refuses_an_unfinished_snapshot(judged):
    run("--campaign", judged.campaign.name, "--no-wait")
    with pytest.raises(CommandError, match="only a succeeded snapshot"):
        run("--verify", str(ExportSnapshot.objects.get().uuid))
