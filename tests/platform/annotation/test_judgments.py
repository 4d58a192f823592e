from datetime import timedelta

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from auralign.annotation.models import Assignment, Item, Judgment
from auralign.annotation.services import (
    AnnotationConflict,
    JudgmentInvalid,
    assignment_next,
    assignment_skip,
    judgment_submit,
    leases_expire,
)
from tests.factories import judgment_payload, make_campaign, make_items, make_user

pytestmark = pytest.mark.django_db


def setup(n_annotators=1, **kw):
    annotators = [make_user() for _ in range(n_annotators)]
    kw.setdefault("dialogues", 1)
    campaign = make_campaign(annotators=annotators, **kw)
    return campaign, make_items(campaign, with_audio=False), annotators


def lease_for(campaign, annotator, *, overdue=False):
    now = timezone.now() - timedelta(seconds=campaign.lease_seconds + 1) if overdue else None
    return assignment_next(campaign=campaign, annotator=annotator, now=now).assignment


def submit(assignment, payload=None):
    return judgment_submit(
        item_uuid=assignment.item.uuid, annotator=assignment.annotator, data=payload or judgment_payload(assignment)
    )


def test_a_judgment_on_a_live_lease_counts_and_turns_the_lease_slot_into_a_judgment():
    campaign, (item,), (ann,) = setup(overlap=2)
    judgment, created = submit(lease_for(campaign, ann))
    item.refresh_from_db()
    assert created and not judgment.is_late and not judgment.is_surplus
    assert (item.slots_used, item.judgment_count) == (1, 1)


def test_the_judgment_stores_what_was_submitted():
    campaign, (item,), (ann,) = setup()
    assignment = lease_for(campaign, ann)
    a, b = assignment.display_order
    payload = judgment_payload(
        assignment, ranking=[[a, b]], flags={b: ["unsafe"], "_item": ["none_acceptable"]}, rationale=" both fine ",
        time_spent_ms=4321,
    )
    judgment, _ = submit(assignment, payload)
    judgment.refresh_from_db()
    assert judgment.ranking == [[a, b]]
    assert judgment.flags == {b: ["unsafe"], "_item": ["none_acceptable"]}
    assert judgment.rationale == "both fine" and judgment.time_spent_ms == 4321
    assert judgment.scores == payload["scores"] and judgment.listened == payload["listened"]
    assert judgment.rubric_version_id == campaign.rubric_version_id


def test_submitting_marks_the_assignment_submitted_and_clears_its_draft():
    campaign, (item,), (ann,) = setup()
    assignment = lease_for(campaign, ann)
    Assignment.objects.filter(pk=assignment.pk).update(draft={"x": 1})
    submit(assignment)
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED and assignment.draft is None


def test_the_item_completes_when_its_overlap_of_judgments_is_in():
    campaign, (item,), (a, b) = setup(n_annotators=2, overlap=2)
    submit(lease_for(campaign, a))
    item.refresh_from_db()
    assert item.completed_at is None
    submit(lease_for(campaign, b))
    item.refresh_from_db()
    assert item.completed_at is not None and item.judgment_count == 2


def test_resubmitting_the_same_client_submission_id_returns_the_stored_judgment():
    campaign, (item,), (ann,) = setup()
    assignment = lease_for(campaign, ann)
    payload = judgment_payload(assignment)
    first, created = submit(assignment, payload)
    again, created_again = submit(assignment, payload)
    assert created and not created_again and again.pk == first.pk
    assert Judgment.objects.filter(item=item).count() == 1
    item.refresh_from_db()
    assert item.judgment_count == 1


def test_a_second_judgment_with_a_new_id_for_the_same_item_is_refused():
    campaign, (item,), (ann,) = setup()
    assignment = lease_for(campaign, ann)
    submit(assignment)
    with pytest.raises(AnnotationConflict) as exc:
        submit(assignment)
    assert exc.value.code == "finished"


def test_reusing_a_client_submission_id_for_another_item_is_refused():
    campaign, items, (ann,) = setup(dialogues=2)
    first = lease_for(campaign, ann)
    payload = judgment_payload(first)
    submit(first, payload)
    second = lease_for(campaign, ann)
    with pytest.raises(AnnotationConflict) as exc:
        submit(second, judgment_payload(second, client_submission_id=payload["client_submission_id"]))
    assert exc.value.field == "client_submission_id"


def test_a_judgment_after_the_lease_time_but_before_its_slot_was_freed_counts_and_is_late():
    campaign, (item,), (ann,) = setup()
    judgment, _ = submit(lease_for(campaign, ann, overdue=True))
    item.refresh_from_db()
    assert judgment.is_late and not judgment.is_surplus
    assert (item.slots_used, item.judgment_count) == (1, 1)


def test_a_late_judgment_takes_a_free_slot_and_counts():
    campaign, (item,), (ann,) = setup(overlap=1)
    assignment = lease_for(campaign, ann, overdue=True)
    leases_expire()
    judgment, _ = submit(assignment)
    item.refresh_from_db()
    assert judgment.is_late and not judgment.is_surplus
    assert (item.slots_used, item.judgment_count) == (1, 1) and item.completed_at is not None


def test_a_late_judgment_on_a_full_item_is_stored_as_surplus():
    campaign, (item,), (a, b) = setup(n_annotators=2, overlap=1)
    late = lease_for(campaign, a, overdue=True)
    submit(lease_for(campaign, b))  # b's request frees a's slot and takes it
    judgment, created = submit(late)
    item.refresh_from_db()
    assert created and judgment.is_late and judgment.is_surplus
    assert (item.slots_used, item.judgment_count) == (1, 1)
    assert Judgment.objects.filter(item=item).count() == 2


def test_an_invalid_judgment_stores_nothing():
    campaign, (item,), (ann,) = setup()
    assignment = lease_for(campaign, ann)
    with pytest.raises(JudgmentInvalid):
        submit(assignment, judgment_payload(assignment, ranking=[]))
    assignment.refresh_from_db()
    item.refresh_from_db()
    assert not Judgment.objects.exists() and assignment.status == Assignment.Status.LIVE
    assert item.judgment_count == 0


def test_submitting_a_skipped_item_is_refused():
    campaign, (item,), (ann,) = setup()
    assignment = lease_for(campaign, ann)
    assignment_skip(item_uuid=item.uuid, annotator=ann, reason="broken")
    with pytest.raises(AnnotationConflict):
        submit(assignment)


def test_a_stored_judgment_cannot_be_changed():
    campaign, (item,), (ann,) = setup()
    judgment, _ = submit(lease_for(campaign, ann))
    with pytest.raises(DatabaseError), transaction.atomic():
        Judgment.objects.filter(pk=judgment.pk).update(rationale="edited")


def test_slots_used_equals_live_leases_plus_counted_judgments_after_a_mixed_history():
    campaign, items, annotators = setup(n_annotators=4, dialogues=2, overlap=2)
    a, b, c, d = annotators
    late = lease_for(campaign, a, overdue=True)
    submit(lease_for(campaign, b))
    lease_for(campaign, c)
    submit(late)
    skipped = lease_for(campaign, d)
    assignment_skip(item_uuid=skipped.item.uuid, annotator=d, reason="no")
    for item in Item.objects.filter(campaign=campaign):
        live = Assignment.objects.filter(item=item, status="live").count()
        counted = Judgment.objects.filter(item=item, is_surplus=False).count()
        assert item.slots_used == live + counted and item.judgment_count == counted <= item.overlap
