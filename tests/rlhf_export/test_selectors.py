"""How an export reads the database: on PostgreSQL outside a transaction, a reader thread with its
own connection fetches ahead; inside a transaction (and on SQLite) the same batches are read in
the calling thread. Both must give the same files."""

import threading

import pytest
from django.db import DatabaseError, connection, transaction

from auralign.annotation.models import Judgment
from rlhf_export import selectors
from rlhf_export.spec import DEFAULT_FILTERS
from tests.rlhf_export.conftest import export, judged_campaign

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the reader thread is PostgreSQL's")
committed = pytest.mark.django_db(transaction=True)  # another connection (the reader's) sees the rows


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "export-reader"]


def batches(judged, qs=None):
    campaign_ids = [judged.campaign.pk]
    if qs is None:
        qs = selectors.judgments_query(campaign_ids=campaign_ids, filters=DEFAULT_FILTERS, max_judgment_id=10**12)
    return selectors.export_batches(qs, campaign_ids=campaign_ids, with_listened=False)


def backends_of_this_database() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


@postgresql_only
@committed
@pytest.mark.parametrize("kind", ["pairwise", "listwise"])
def test_the_reader_thread_gives_the_same_files_as_reading_inline(monkeypatch, kind):
    monkeypatch.setattr(selectors, "FETCH_ROWS", 5)  # many batches, so the reader runs ahead and waits
    judged = judged_campaign(dialogues=6, k=3, annotators=3)
    threaded = export(judged, kind)
    with transaction.atomic():  # inside a transaction the export reads in this thread
        inline = export(judged, kind)
    assert threaded.rows == inline.rows == len(judged.judgments) * (3 if kind == "pairwise" else 1)
    assert [(f["path"], f["sha256"]) for f in threaded.files] == [(f["path"], f["sha256"]) for f in inline.files]
    assert threaded.watermark == inline.watermark


@postgresql_only
@committed
def test_outside_a_transaction_a_reader_thread_fetches_the_batches():
    judged = judged_campaign(dialogues=2)
    seen = [len(reader_threads()) for _ in batches(judged)]
    assert seen == [1]
    assert not reader_threads()


@postgresql_only
@committed
def test_inside_a_transaction_the_batches_are_read_in_the_calling_thread():
    judged = judged_campaign(dialogues=2)
    with transaction.atomic():
        seen = [len(reader_threads()) for _ in batches(judged)]
    assert seen == [0]


@postgresql_only
@committed
def test_a_database_error_in_the_reader_is_raised_to_the_export():
    judged = judged_campaign(dialogues=2)
    failing = Judgment.objects.filter(campaign=judged.campaign).extra(where=["1 / (id - id) = 1"]).order_by("item_id", "id")
    with pytest.raises(DatabaseError, match="division by zero"):
        list(batches(judged, failing))
    assert not reader_threads()


@postgresql_only
@committed
def test_leaving_early_stops_the_reader_and_closes_its_connection(monkeypatch):
    monkeypatch.setattr(selectors, "FETCH_ROWS", 2)
    judged = judged_campaign(dialogues=8)
    before = backends_of_this_database()
    reading = batches(judged)
    next(reading)
    assert reader_threads() and backends_of_this_database() == before + 1
    reading.close()
    assert not reader_threads()
    assert backends_of_this_database() == before
