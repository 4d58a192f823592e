"""Judged campaigns for export tests, built with tests/factories.py."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import httpx
import pyarrow.parquet as pq
import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from auralign.accounts.models import User
from auralign.annotation.models import Item, Judgment
from auralign.campaigns.models import Campaign
from auralign.core import storage
from rlhf_export.models import ExportSnapshot
from rlhf_export.services import snapshot_create, snapshot_run
from tests.factories import make_campaign, make_items, make_judgment, make_user


def candidate_ids(item: Item) -> list[str]:
    return [str(c.uuid) for c in item.candidates.order_by("item_links__position")]


@dataclass
class Judged:
    campaign: Campaign
    lead: User
    trainer: User
    annotators: list[User]
    items: list[Item]
    judgments: list[Judgment]


def judged_campaign(*, dialogues: int = 4, k: int = 3, annotators: int = 2, with_audio: bool = False, gold: int = 0) -> Judged:
    """Every annotator judges every item; annotator 0 ranks in position order, annotator 1 ties
    the first two candidates (so ties are always present)."""
    lead, trainer = make_user(is_lead=True), make_user()
    people = [make_user() for _ in range(annotators)]
    campaign = make_campaign(lead=lead, annotators=people, trainers=[trainer], k=k, policies=k, dialogues=dialogues, overlap=annotators)
    items = make_items(campaign, with_audio=with_audio, gold=gold)
    judgments = []
    for item in items:
        cands = candidate_ids(item)
        for n, annotator in enumerate(people):
            ranking = [[c] for c in cands] if n % 2 == 0 else [cands[:2], *[[c] for c in cands[2:]]]
            judgments.append(make_judgment(item, annotator, ranking=ranking))
    return Judged(campaign, lead, trainer, people, items, judgments)


def export(judged: Judged, kind: str = "pairwise", **options) -> ExportSnapshot:
    """Create and run a snapshot in this process (the Celery task does the same)."""
    snapshot = snapshot_create(user=judged.trainer, campaigns=[judged.campaign], kind=kind, enqueue=False, **options)
    snapshot = snapshot_run(snapshot_id=snapshot.pk)
    assert snapshot.status == ExportSnapshot.Status.SUCCEEDED, snapshot.error
    return snapshot


@pytest.fixture
def judged(db) -> Judged:
    return judged_campaign()


SERVER = "http://testserver"


@pytest.fixture
def in_process_api():
    """An httpx client on which http://testserver is this process's Django app (other hosts, e.g.
    the S3 server, go over the network). Like Django's test client, requests keep the database
    connection open: closing it would end the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    with httpx.Client(mounts={SERVER: httpx.WSGITransport(app=get_wsgi_application())}) as http:
        yield http
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def read_rows(snapshot: ExportSnapshot, fmt: str = "parquet", split: str | None = None) -> list[dict]:
    """All rows of a snapshot's files (through the platform storage), in file order."""
    rows = []
    for f in snapshot.files:
        if f["format"] != fmt or (split and f["split"] != split):
            continue
        data = storage.read(snapshot.prefix + f["path"])
        if fmt == "parquet":
            rows += pq.read_table(io.BytesIO(data)).to_pylist()
        else:
            rows += [json.loads(line) for line in data.decode().splitlines()]
    return rows


# --- training runs ---------------------------------------------------------------------------------
FAST_RM = {"eval_split": "train", "lr": 3e-3, "epochs": 2, "batch_size": 8, "log_every": 1, "device": "cpu", "max_length": 128}
FAST_DPO = {"eval_split": "train", "lr": 1e-3, "max_steps": 3, "batch_size": 2, "log_every": 1, "device": "cpu", "max_length": 128}
WORDS = "please thanks kindly the cat dog sun moon river stone cloud city road".split()


def varied_replies(judged: Judged) -> None:
    """Give every candidate its own reply text (the factory's are all alike), so a reward model
    has something to tell apart."""
    for n, item in enumerate(judged.items):
        for m, candidate in enumerate(item.candidates.order_by("item_links__position")):
            words = [WORDS[(n + m * 3 + i) % len(WORDS)] for i in range(4 + m)]
            candidate.reply_text = f"reply {m}: " + " ".join(words)
            candidate.save(update_fields=["reply_text"])


def trainable_snapshot(judged: Judged, kind: str = "pairwise") -> ExportSnapshot:
    varied_replies(judged)
    return export(judged, kind)
