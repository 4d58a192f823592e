"""Invariants the database itself enforces (DESIGN.md, in bold)."""

import pytest
from django.db import DatabaseError, IntegrityError, transaction

from auralign.annotation.models import Assignment, Item, Judgment
from auralign.generation.models import Candidate
from tests.factories import make_campaign, make_items, make_judgment, make_user

pytestmark = pytest.mark.django_db


def test_judgments_are_immutable():
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator])
    judgment = make_judgment(make_items(campaign, with_audio=False)[0], annotator)
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Judgment.objects.filter(pk=judgment.pk).update(rationale="rewritten")
    judgment.refresh_from_db()
    assert judgment.rationale == ""


def test_a_client_submission_id_is_stored_once_per_annotator():
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator], dialogues=2)
    first, second = make_items(campaign, with_audio=False)
    stored = make_judgment(first, annotator)
    other = make_judgment(second, annotator)
    row = Judgment.objects.filter(pk=other.pk).values().get()
    for key in ("id", "uuid", "assignment_id"):
        row.pop(key)
    row["client_submission_id"] = stored.client_submission_id
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(**row, assignment=Assignment.objects.create(
            item=second, campaign=campaign, annotator=make_user(), display_order=[], expires_at=second.created_at))


def test_a_candidate_sample_is_stored_once():
    campaign = make_campaign()
    make_items(campaign, with_audio=False)
    c = Candidate.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Candidate.objects.create(campaign=c.campaign, dialogue=c.dialogue, policy=c.policy, sample_index=c.sample_index)


def test_an_annotator_never_gets_the_same_item_twice():
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator])
    item = make_items(campaign, with_audio=False)[0]
    make_judgment(item, annotator)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(item=item, campaign=campaign, annotator=annotator, display_order=[], expires_at=item.created_at)


def test_an_item_is_never_over_assigned():
    campaign = make_campaign(overlap=2)
    item = make_items(campaign, with_audio=False)[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(slots_used=3)


def test_gold_items_are_shown_to_everyone():
    campaign = make_campaign(overlap=1)
    item = make_items(campaign, with_audio=False, gold=1)[0]
    Item.objects.filter(pk=item.pk).update(slots_used=5)
    assert Item.objects.get(pk=item.pk).slots_used == 5
