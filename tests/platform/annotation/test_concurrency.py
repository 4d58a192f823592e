"""The assignment engine under real concurrency: many threads, each with its own PostgreSQL
connection, against the real services. SQLite serialises writers, so these need PostgreSQL."""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from auralign.annotation.models import Assignment, Item, Judgment
from auralign.annotation.services import (
    AnnotationConflict,
    assignment_next,
    assignment_skip,
    judgment_submit,
    lease_heartbeat,
    leases_expire,
)
from tests.factories import judgment_payload, make_campaign, make_items, make_user

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def run_threads(n, fn):
    """Run fn(i) in n threads that start together; each closes its own connection."""
    barrier = threading.Barrier(n)

    def wrapped(i):
        barrier.wait()
        try:
            return fn(i)
        finally:
            connection.close()

    with ThreadPoolExecutor(n) as pool:
        return [f.result() for f in [pool.submit(wrapped, i) for i in range(n)]]


def test_many_annotators_at_once_never_over_assign_duplicate_or_lose_judgments(postgres):
    annotators = [make_user() for _ in range(24)]
    campaign = make_campaign(annotators=annotators, dialogues=40, overlap=3)
    make_items(campaign, with_audio=False)
    done = threading.Event()

    def annotate(i):
        rng = random.Random(i)
        stored = []
        while (lease := assignment_next(campaign=campaign, annotator=annotators[i])) is not None:
            a = lease.assignment
            if rng.random() < 0.1:
                assignment_skip(item_uuid=a.item.uuid, annotator=a.annotator, reason="thread skips")
                continue
            if rng.random() < 0.3:
                try:
                    lease_heartbeat(item_uuid=a.item.uuid, annotator=a.annotator)
                except AnnotationConflict:
                    pass  # expired by the reaper and taken by someone else: submit late anyway
            payload = judgment_payload(a)
            judgment, created = judgment_submit(item_uuid=a.item.uuid, annotator=a.annotator, data=payload)
            assert created
            stored.append(payload["client_submission_id"])
        return stored

    def reaper():  # expires every live lease now and then, forcing late and surplus judgments
        while not done.is_set():
            leases_expire(now=timezone.now() + timedelta(seconds=campaign.lease_seconds + 1))
            time.sleep(0.05)
        connection.close()

    reaper_thread = threading.Thread(target=reaper)
    reaper_thread.start()
    try:
        acknowledged = [csid for stored in run_threads(len(annotators), annotate) for csid in stored]
    finally:
        done.set()
        reaper_thread.join()

    judgments = Judgment.objects.filter(campaign=campaign)
    assert judgments.count() == len(acknowledged)  # nothing lost, nothing extra
    assert {str(c) for c in judgments.values_list("client_submission_id", flat=True)} == set(acknowledged)
    assert not judgments.values("item", "annotator").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert not Assignment.objects.filter(campaign=campaign).values("item", "annotator").annotate(n=Count("id")).filter(n__gt=1).exists()
    for item in Item.objects.filter(campaign=campaign):
        counted = judgments.filter(item=item, is_surplus=False).count()
        live = Assignment.objects.filter(item=item, status=Assignment.Status.LIVE).count()
        assert counted <= item.overlap, f"item {item.pk} over-assigned"
        assert item.slots_used == live + counted and item.judgment_count == counted
        assert item.completed_at is not None  # every slot freed by expiry or skip was refilled


def test_concurrent_next_calls_of_one_annotator_share_one_lease(postgres):
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator], dialogues=20, overlap=1)
    make_items(campaign, with_audio=False)
    leases = run_threads(12, lambda i: assignment_next(campaign=campaign, annotator=annotator).assignment.pk)
    assert len(set(leases)) == 1
    assert Item.objects.filter(campaign=campaign, slots_used=1).count() == 1


def test_annotators_racing_for_the_last_slots_get_exactly_the_overlap(postgres):
    annotators = [make_user() for _ in range(16)]
    campaign = make_campaign(annotators=annotators, dialogues=1, overlap=2)
    (item,) = make_items(campaign, with_audio=False)
    leases = run_threads(16, lambda i: assignment_next(campaign=campaign, annotator=annotators[i]))
    assert sum(lease is not None for lease in leases) == 2
    item.refresh_from_db()
    assert item.slots_used == 2


def test_concurrent_resubmissions_of_one_judgment_store_it_once(postgres):
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator], dialogues=1)
    make_items(campaign, with_audio=False)
    assignment = assignment_next(campaign=campaign, annotator=annotator).assignment
    payload = judgment_payload(assignment)
    results = run_threads(
        10, lambda i: judgment_submit(item_uuid=assignment.item.uuid, annotator=annotator, data=payload)
    )
    assert len({j.pk for j, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Judgment.objects.filter(campaign=campaign).count() == 1


def test_the_lease_counts_stay_exact_with_two_tabs_per_annotator(postgres):
    annotators = [make_user() for _ in range(6)]
    campaign = make_campaign(annotators=annotators, dialogues=30, overlap=2, gold_rate=0.3)
    make_items(campaign, with_audio=False, gold=4)

    def annotate(i):  # threads 2k and 2k+1 are one annotator's two tabs
        annotator = annotators[i // 2]
        while (lease := assignment_next(campaign=campaign, annotator=annotator)) is not None:
            try:
                judgment_submit(item_uuid=lease.assignment.item.uuid, annotator=annotator, data=judgment_payload(lease.assignment))
            except AnnotationConflict:
                pass  # the other tab submitted this lease first

    run_threads(2 * len(annotators), annotate)
    for membership in campaign.memberships.filter(role="annotator"):
        mine = Assignment.objects.filter(campaign=campaign, annotator=membership.user)
        assert (membership.items_leased, membership.gold_leased) == (mine.count(), mine.filter(item__is_gold=True).count())
        assert membership.gold_leased >= 1  # the first item of each is gold
