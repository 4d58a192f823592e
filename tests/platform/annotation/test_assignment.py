import importlib
import random
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.db import IntegrityError
from django.utils import timezone

from auralign.annotation import services
from auralign.annotation.models import Assignment, Item
from auralign.annotation.services import (
    AnnotationConflict,
    NotAnnotator,
    assignment_next,
    assignment_skip,
    draft_save,
    judgment_submit,
    lease_heartbeat,
    leases_expire,
)
from auralign.campaigns.models import Campaign, Membership
from auralign.core.errors import NotFound, ServiceError
from tests.factories import judgment_payload, make_campaign, make_items, make_user

pytestmark = pytest.mark.django_db


def setup(n_annotators=1, gold=0, **kw):
    annotators = [make_user() for _ in range(n_annotators)]
    kw.setdefault("dialogues", 3)
    campaign = make_campaign(annotators=annotators, **kw)
    items = make_items(campaign, with_audio=False, gold=gold)
    return campaign, items, annotators


def submit(assignment, **kw):
    return judgment_submit(item_uuid=assignment.item.uuid, annotator=assignment.annotator, data=judgment_payload(assignment), **kw)


def test_next_leases_an_item_and_takes_its_slot():
    campaign, items, (ann,) = setup()
    lease = assignment_next(campaign=campaign, annotator=ann)
    item = Item.objects.get(pk=lease.assignment.item_id)
    assert lease.assignment.status == Assignment.Status.LIVE and not lease.resumed
    assert item.slots_used == 1
    assert lease.assignment.expires_at > timezone.now() + timedelta(seconds=campaign.lease_seconds - 5)


def test_next_resumes_the_annotators_own_live_lease():
    campaign, items, (ann,) = setup()
    first = assignment_next(campaign=campaign, annotator=ann)
    again = assignment_next(campaign=campaign, annotator=ann)
    assert again.resumed and again.assignment.pk == first.assignment.pk
    assert Item.objects.get(pk=first.assignment.item_id).slots_used == 1


def test_resuming_renews_the_lease():
    campaign, items, (ann,) = setup()
    first = assignment_next(campaign=campaign, annotator=ann, now=timezone.now() - timedelta(seconds=500))
    again = assignment_next(campaign=campaign, annotator=ann)
    assert again.assignment.expires_at > first.assignment.expires_at + timedelta(seconds=400)


def test_next_never_gives_an_annotator_the_same_item_twice():
    campaign, items, (ann,) = setup(dialogues=3, overlap=3)
    seen = []
    while (lease := assignment_next(campaign=campaign, annotator=ann)) is not None:
        seen.append(lease.assignment.item_id)
        submit(lease.assignment)
    assert sorted(seen) == sorted(i.pk for i in items)


def test_next_prefers_the_item_closest_to_completion():
    campaign, items, (a, b) = setup(n_annotators=2, dialogues=4, overlap=3)
    Item.objects.filter(pk=items[2].pk).update(slots_used=2, tiebreak=0.9)
    Item.objects.filter(pk=items[0].pk).update(slots_used=1, tiebreak=0.0)
    assert assignment_next(campaign=campaign, annotator=a).assignment.item_id == items[2].pk


def test_next_prefers_higher_priority_among_equally_complete_items():
    campaign, items, (ann,) = setup(dialogues=4)
    Item.objects.filter(pk=items[3].pk).update(priority=5.0, tiebreak=0.99)
    assert assignment_next(campaign=campaign, annotator=ann).assignment.item_id == items[3].pk


def test_next_orders_equal_items_by_their_random_tiebreak():
    campaign, items, (ann,) = setup(dialogues=4)
    for item, tb in zip(items, [0.7, 0.2, 0.9, 0.5], strict=True):
        Item.objects.filter(pk=item.pk).update(tiebreak=tb)
    assert assignment_next(campaign=campaign, annotator=ann).assignment.item_id == items[1].pk


def ahead_of_the_others(n_items, tiebreaks):
    """An annotator who has judged the first two items of a campaign (overlap 2) on their own."""
    campaign, items, (ann,) = setup(dialogues=n_items, overlap=2)
    for item, tb in zip(items, tiebreaks, strict=True):
        Item.objects.filter(pk=item.pk).update(tiebreak=tb)
    for _ in range(2):
        submit(assignment_next(campaign=campaign, annotator=ann).assignment)
    assert set(Assignment.objects.filter(annotator=ann).values_list("item_id", flat=True)) == {items[0].pk, items[1].pk}
    return campaign, items, ann


def test_past_a_head_of_items_already_judged_a_fresh_item_comes_before_a_deeper_one_in_progress(monkeypatch):
    monkeypatch.setattr(services, "HEAD_SCAN", 2)
    campaign, items, ann = ahead_of_the_others(5, [0.1, 0.2, 0.5, 0.6, 0.9])
    Item.objects.filter(pk=items[3].pk).update(slots_used=1)  # in progress with someone else, third in the queue
    assert assignment_next(campaign=campaign, annotator=ann).assignment.item_id == items[2].pk  # the first fresh one


def test_past_a_head_of_items_already_judged_the_whole_queue_is_read_when_nothing_is_fresh(monkeypatch):
    monkeypatch.setattr(services, "HEAD_SCAN", 2)
    campaign, items, ann = ahead_of_the_others(3, [0.1, 0.2, 0.5])
    Item.objects.filter(pk=items[2].pk).update(slots_used=1)  # the only item left for them, third in the queue
    assert assignment_next(campaign=campaign, annotator=ann).assignment.item_id == items[2].pk


def test_next_gives_no_item_whose_slots_are_all_leased():
    campaign, items, annotators = setup(n_annotators=3, dialogues=1, overlap=2)
    assert assignment_next(campaign=campaign, annotator=annotators[0]) is not None
    assert assignment_next(campaign=campaign, annotator=annotators[1]) is not None
    assert assignment_next(campaign=campaign, annotator=annotators[2]) is None
    assert Item.objects.get(pk=items[0].pk).slots_used == 2


def test_next_returns_none_when_every_item_is_complete():
    campaign, items, (a, b) = setup(n_annotators=2, dialogues=1, overlap=1)
    submit(assignment_next(campaign=campaign, annotator=a).assignment)
    assert Item.objects.get(pk=items[0].pk).completed_at is not None
    assert assignment_next(campaign=campaign, annotator=b) is None


def test_display_order_is_a_permutation_of_the_item_candidates():
    campaign, items, (ann,) = setup(policies=6, k=6)
    lease = assignment_next(campaign=campaign, annotator=ann)
    item = Item.objects.get(pk=lease.assignment.item_id)
    assert sorted(lease.assignment.display_order) == sorted(str(c.uuid) for c in item.candidates.all())


def test_display_order_is_random_per_annotator():
    random.seed(7)
    campaign, items, annotators = setup(n_annotators=4, policies=6, k=6, dialogues=1, overlap=4)
    orders = [tuple(assignment_next(campaign=campaign, annotator=a).assignment.display_order) for a in annotators]
    assert len(set(orders)) > 1


def test_a_gold_item_comes_first_when_the_campaign_uses_gold():
    campaign, items, (ann,) = setup(dialogues=6, gold=2, gold_rate=0.2)
    assert Item.objects.get(pk=assignment_next(campaign=campaign, annotator=ann).assignment.item_id).is_gold


def test_no_gold_is_served_when_the_gold_rate_is_zero():
    campaign, items, (ann,) = setup(dialogues=4, gold=2, gold_rate=0.0, overlap=1)
    served = []
    while (lease := assignment_next(campaign=campaign, annotator=ann)) is not None:
        served.append(Item.objects.get(pk=lease.assignment.item_id).is_gold)
        submit(lease.assignment)
    assert served == [False, False]


def test_the_gold_share_tracks_the_gold_rate():
    campaign, items, (ann,) = setup(dialogues=12, gold=4, gold_rate=0.25)
    served = []
    for _ in range(8):
        lease = assignment_next(campaign=campaign, annotator=ann)
        served.append(Item.objects.get(pk=lease.assignment.item_id).is_gold)
        submit(lease.assignment)
    assert served == [True, False, False, False, True, False, False, False]


def test_qualification_gold_items_are_served_before_regular_ones():
    campaign, items, (ann,) = setup(dialogues=6, gold=3, qualification_gold_items=3)
    served = []
    for _ in range(4):
        lease = assignment_next(campaign=campaign, annotator=ann)
        served.append(Item.objects.get(pk=lease.assignment.item_id).is_gold)
        submit(lease.assignment)
    assert served == [True, True, True, False]


def lease_counts(campaign, annotator) -> tuple[int, int]:
    m = Membership.objects.get(campaign=campaign, user=annotator, role=Membership.Role.ANNOTATOR)
    return m.items_leased, m.gold_leased


def test_the_membership_counts_every_item_leased_and_the_gold_among_them():
    campaign, items, (ann,) = setup(dialogues=8, gold=3, gold_rate=0.25)
    submit(assignment_next(campaign=campaign, annotator=ann).assignment)
    lease = assignment_next(campaign=campaign, annotator=ann)
    assignment_skip(item_uuid=lease.assignment.item.uuid, annotator=ann, reason="cannot hear it")
    for _ in range(3):
        submit(assignment_next(campaign=campaign, annotator=ann).assignment)
    assignment_next(campaign=campaign, annotator=ann)  # a live one counts too
    assignment_next(campaign=campaign, annotator=ann)  # resumed: not a new lease
    mine = Assignment.objects.filter(campaign=campaign, annotator=ann)
    assert lease_counts(campaign, ann) == (mine.count(), mine.filter(item__is_gold=True).count()) == (6, 2)


def test_saving_a_membership_read_before_a_lease_keeps_the_lease_counted():
    campaign, items, (ann,) = setup(dialogues=3)
    stale = Membership.objects.get(campaign=campaign, user=ann, role=Membership.Role.ANNOTATOR)
    assignment_next(campaign=campaign, annotator=ann)
    stale.active = False  # a lead's edit of what they read a moment ago
    stale.save()
    assert lease_counts(campaign, ann) == (1, 0)
    assert not Membership.objects.get(pk=stale.pk).active


def test_the_migration_counts_the_leases_made_before_it():
    migration = importlib.import_module("auralign.campaigns.migrations.0002_membership_lease_counts")
    campaign, items, (a, b) = setup(n_annotators=2, dialogues=6, gold=2, gold_rate=0.5)
    for annotator, n in ((a, 4), (b, 1)):
        for _ in range(n):
            submit(assignment_next(campaign=campaign, annotator=annotator).assignment)
    expected = {ann: lease_counts(campaign, ann) for ann in (a, b)}
    Membership.objects.update(items_leased=0, gold_leased=0)
    migration.count_existing_leases(django_apps, None)
    assert {ann: lease_counts(campaign, ann) for ann in (a, b)} == expected == {a: (4, 2), b: (1, 1)}


def test_gold_items_are_shown_to_more_annotators_than_their_overlap():
    campaign, items, annotators = setup(n_annotators=3, dialogues=2, gold=1, gold_rate=1.0, overlap=1)
    for a in annotators:
        submit(assignment_next(campaign=campaign, annotator=a).assignment)
    gold = Item.objects.get(is_gold=True, campaign=campaign)
    assert gold.judgment_count == 3 and gold.completed_at is None


def test_an_expired_lease_frees_its_slot_at_the_next_request():
    campaign, items, (a, b) = setup(n_annotators=2, dialogues=1, overlap=1)
    old = assignment_next(campaign=campaign, annotator=a, now=timezone.now() - timedelta(seconds=campaign.lease_seconds + 1))
    lease = assignment_next(campaign=campaign, annotator=b)
    assert lease.assignment.item_id == old.assignment.item_id
    assert Assignment.objects.get(pk=old.assignment.pk).status == Assignment.Status.EXPIRED
    assert Item.objects.get(pk=items[0].pk).slots_used == 1


def test_leases_expire_frees_every_overdue_lease():
    campaign, items, annotators = setup(n_annotators=3, dialogues=3, overlap=1)
    past = timezone.now() - timedelta(seconds=campaign.lease_seconds + 1)
    for a in annotators:
        assignment_next(campaign=campaign, annotator=a, now=past)
    assert leases_expire(batch=2) == 3
    assert set(Item.objects.filter(campaign=campaign).values_list("slots_used", flat=True)) == {0}


def test_leases_expire_leaves_live_leases_alone():
    campaign, items, (ann,) = setup()
    assignment_next(campaign=campaign, annotator=ann)
    assert leases_expire() == 0


def test_a_non_member_gets_not_found():
    campaign, items, _ = setup()
    with pytest.raises(NotFound):
        assignment_next(campaign=campaign, annotator=make_user())


def test_a_lead_without_the_annotator_role_gets_not_found():
    campaign, items, _ = setup()
    with pytest.raises(NotFound):
        assignment_next(campaign=campaign, annotator=campaign.created_by)


def test_an_inactive_annotator_gets_no_items():
    campaign, items, (ann,) = setup()
    Membership.objects.filter(user=ann).update(active=False)
    with pytest.raises(NotAnnotator):
        assignment_next(campaign=campaign, annotator=ann)


def test_a_paused_campaign_gives_no_new_items():
    campaign, items, (ann,) = setup(status=Campaign.Status.PAUSED)
    with pytest.raises(AnnotationConflict) as exc:
        assignment_next(campaign=campaign, annotator=ann)
    assert exc.value.code == "campaign_not_annotating"


def test_a_paused_campaign_still_hands_back_the_annotators_live_lease():
    campaign, items, (ann,) = setup()
    first = assignment_next(campaign=campaign, annotator=ann)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    campaign.refresh_from_db()
    assert assignment_next(campaign=campaign, annotator=ann).assignment.pk == first.assignment.pk


def test_the_database_refuses_a_second_assignment_of_an_item_to_one_annotator():
    campaign, items, (ann,) = setup()
    lease = assignment_next(campaign=campaign, annotator=ann)
    with pytest.raises(IntegrityError):
        Assignment.objects.create(
            item=lease.assignment.item, campaign=campaign, annotator=ann, display_order=[], expires_at=timezone.now()
        )


def test_heartbeat_renews_the_lease():
    campaign, items, (ann,) = setup()
    lease = assignment_next(campaign=campaign, annotator=ann, now=timezone.now() - timedelta(seconds=300))
    renewed = lease_heartbeat(item_uuid=lease.assignment.item.uuid, annotator=ann)
    assert renewed.expires_at > lease.assignment.expires_at + timedelta(seconds=250)


def test_heartbeat_takes_back_an_expired_lease_whose_slot_is_still_free():
    campaign, items, (ann,) = setup(dialogues=1, overlap=1)
    lease = assignment_next(campaign=campaign, annotator=ann, now=timezone.now() - timedelta(seconds=campaign.lease_seconds + 1))
    leases_expire()
    renewed = lease_heartbeat(item_uuid=lease.assignment.item.uuid, annotator=ann)
    assert renewed.status == Assignment.Status.LIVE
    assert Item.objects.get(pk=items[0].pk).slots_used == 1


def test_heartbeat_on_an_expired_lease_whose_slot_was_taken_is_lease_expired():
    campaign, items, (a, b) = setup(n_annotators=2, dialogues=1, overlap=1)
    lease = assignment_next(campaign=campaign, annotator=a, now=timezone.now() - timedelta(seconds=campaign.lease_seconds + 1))
    assignment_next(campaign=campaign, annotator=b)
    with pytest.raises(AnnotationConflict) as exc:
        lease_heartbeat(item_uuid=lease.assignment.item.uuid, annotator=a)
    assert exc.value.code == "lease_expired"
    assert Item.objects.get(pk=items[0].pk).slots_used == 1


def test_heartbeat_on_another_annotators_item_is_not_found():
    campaign, items, (a, b) = setup(n_annotators=2)
    lease = assignment_next(campaign=campaign, annotator=a)
    with pytest.raises(NotFound):
        lease_heartbeat(item_uuid=lease.assignment.item.uuid, annotator=b)


def test_skip_frees_the_slot_and_records_the_reason():
    campaign, items, (ann,) = setup(dialogues=1)
    lease = assignment_next(campaign=campaign, annotator=ann)
    skip = assignment_skip(item_uuid=lease.assignment.item.uuid, annotator=ann, reason="audio will not play")
    assert skip.reason == "audio will not play"
    assert Assignment.objects.get(pk=lease.assignment.pk).status == Assignment.Status.SKIPPED
    assert Item.objects.get(pk=items[0].pk).slots_used == 0


def test_a_skipped_item_never_comes_back():
    campaign, items, (ann,) = setup(dialogues=1)
    lease = assignment_next(campaign=campaign, annotator=ann)
    assignment_skip(item_uuid=lease.assignment.item.uuid, annotator=ann, reason="not my language")
    assert assignment_next(campaign=campaign, annotator=ann) is None


def test_skip_needs_a_reason():
    campaign, items, (ann,) = setup()
    lease = assignment_next(campaign=campaign, annotator=ann)
    with pytest.raises(ServiceError) as exc:
        assignment_skip(item_uuid=lease.assignment.item.uuid, annotator=ann, reason="  ")
    assert exc.value.field == "reason"


def test_skip_after_submitting_is_refused():
    campaign, items, (ann,) = setup()
    lease = assignment_next(campaign=campaign, annotator=ann)
    submit(lease.assignment)
    with pytest.raises(AnnotationConflict):
        assignment_skip(item_uuid=lease.assignment.item.uuid, annotator=ann, reason="changed my mind")


def test_a_saved_draft_comes_back_with_the_resumed_lease():
    campaign, items, (ann,) = setup()
    lease = assignment_next(campaign=campaign, annotator=ann)
    draft_save(item_uuid=lease.assignment.item.uuid, annotator=ann, draft={"rationale": "half done"})
    assert assignment_next(campaign=campaign, annotator=ann).assignment.draft == {"rationale": "half done"}


def test_a_draft_must_be_an_object():
    campaign, items, (ann,) = setup()
    lease = assignment_next(campaign=campaign, annotator=ann)
    with pytest.raises(ServiceError) as exc:
        draft_save(item_uuid=lease.assignment.item.uuid, annotator=ann, draft=["x"])
    assert exc.value.field == "draft"


def test_a_draft_has_a_size_limit():
    campaign, items, (ann,) = setup()
    lease = assignment_next(campaign=campaign, annotator=ann)
    with pytest.raises(ServiceError):
        draft_save(item_uuid=lease.assignment.item.uuid, annotator=ann, draft={"x": "y" * 70_000})
