"""Reward-model scoring of a campaign: agreement with the human judgments, and prioritising the
items the model is least sure of in the assignment engine."""

import pytest

from auralign.annotation.models import Item
from auralign.annotation.services import assignment_next
from auralign.core.errors import Conflict, ServiceError
from rlhf_export.models import CampaignScoring
from rlhf_export.services import (
    campaign_scoring_run,
    items_prioritise,
    rm_agreement,
    training_run_create,
    training_run_register,
)
from tests.factories import make_campaign, make_items, make_user
from tests.rlhf_export.conftest import FAST_RM, judged_campaign, trainable_snapshot

pytestmark = pytest.mark.django_db


def rm(overall: float, **criteria) -> dict:
    return {"overall": overall, "criteria": criteria}


def test_agreement_counts_the_pairs_the_model_orders_as_the_annotator_did():
    scores = {"a": rm(3.0, fluency=1.0), "b": rm(2.0, fluency=2.0), "c": rm(2.0, fluency=0.0)}
    judgments = [
        ([["a"], ["b"], ["c"]], {"a": {"fluency": 5}, "b": {"fluency": 4}, "c": {"fluency": 4}}),
        ([["c"], ["a", "b"]], {}),  # a tie between a and b: no overall pair
    ]
    figures = rm_agreement(judgments=judgments, rm=scores)
    # overall pairs: a>b yes, a>c yes, b>c tie in the model (1/2), c>a no, c>b tie (1/2) -> 3/5
    assert figures["overall"] == {"agreement": 3 / 5, "pairs": 5}
    # fluency pairs (judgment 1 only): a>b no (1 < 2), a>c yes; b=c is no pair -> 1/2
    assert figures["criteria"] == {"fluency": {"agreement": 1 / 2, "pairs": 2}}
    assert figures["judgments"] == 2


def test_agreement_without_any_strict_pair_is_none_not_zero():
    figures = rm_agreement(judgments=[([["a", "b"]], {})], rm={"a": rm(1.0), "b": rm(2.0)})
    assert figures["overall"] == {"agreement": None, "pairs": 0}


def scored_campaign(uncertainties: list[float]):
    """A campaign with open items and a succeeded scoring that found these uncertainties."""
    lead, annotator = make_user(is_lead=True), make_user()
    campaign = make_campaign(lead=lead, annotators=[annotator], dialogues=len(uncertainties), overlap=2)
    items = make_items(campaign, with_audio=False)
    judged = judged_campaign(dialogues=2)
    run = training_run_create(user=None, snapshot=trainable_snapshot(judged), kind="reward_model",
                              base_model={"path": "/m"}, dispatch=False)
    training_run_register(result={
        "schema": "auralign.train_result/1", "run_id": str(run.uuid), "status": "ok", "metrics": {}, "artifacts": [],
        "checkpoint": "/m/checkpoint",
    })
    scoring = CampaignScoring.objects.create(
        run=run, campaign=campaign, status="succeeded",
        uncertain=sorted(({"item": str(i.uuid), "uncertainty": u} for i, u in zip(items, uncertainties, strict=True)),
                         key=lambda r: -r["uncertainty"]),
    )
    return scoring, items, lead, annotator


def test_prioritised_items_are_served_first_least_certain_first():
    scoring, items, lead, annotator = scored_campaign([0.1, 0.2, 0.9, 0.6, 0.3])
    chosen = items_prioritise(scoring=scoring, n=2, user=lead)
    assert [i.pk for i in chosen] == [items[2].pk, items[3].pk]
    served = []
    for _ in range(2):
        lease = assignment_next(campaign=scoring.campaign, annotator=annotator)
        served.append(lease.assignment.item_id)
        lease.assignment.status = "submitted"
        lease.assignment.save(update_fields=["status"])
    assert served == [items[2].pk, items[3].pk]


def test_prioritising_skips_items_that_cannot_be_served_any_more():
    from django.utils import timezone

    scoring, items, lead, _ = scored_campaign([0.9, 0.5])
    items[0].completed_at = timezone.now()
    items[0].save(update_fields=["completed_at"])
    assert [i.pk for i in items_prioritise(scoring=scoring, n=2, user=lead)] == [items[1].pk]


def test_prioritising_needs_a_positive_count():
    scoring, _, lead, _ = scored_campaign([0.5])
    with pytest.raises(ServiceError) as caught:
        items_prioritise(scoring=scoring, n=0, user=lead)
    assert caught.value.field == "n"


def test_prioritising_needs_a_finished_scoring():
    scoring, _, lead, _ = scored_campaign([0.5])
    CampaignScoring.objects.filter(pk=scoring.pk).update(status="running")
    scoring.refresh_from_db()
    with pytest.raises(Conflict):
        items_prioritise(scoring=scoring, n=1, user=lead)


def test_scoring_with_a_checkpoint_that_is_not_there_fails_with_the_reason():
    scoring, *_ = scored_campaign([0.5])
    CampaignScoring.objects.filter(pk=scoring.pk).update(status="queued")
    done = campaign_scoring_run(scoring_id=scoring.pk)
    assert done.status == "failed" and "nothing stored under runs/" in done.error


def test_scoring_in_process_stores_one_score_per_candidate(tiny_lm):
    from rlhf_export.services import training_job
    from rlhf_export.training.tasks import run_job

    judged = judged_campaign(dialogues=4, k=3, annotators=2)
    run = training_run_create(user=judged.trainer, snapshot=trainable_snapshot(judged), kind="reward_model",
                              base_model={"path": str(tiny_lm)}, config=FAST_RM, dispatch=False)
    training_run_register(result=run_job(training_job(run=run)))  # what the train worker and the chain do
    scoring = CampaignScoring.objects.create(run=run, campaign=judged.campaign)
    done = campaign_scoring_run(scoring_id=scoring.pk)
    assert done.status == "succeeded", done.error
    assert done.candidates_scored == 4 * 3 == run.candidate_scores.count()
    assert [r["uncertainty"] for r in done.uncertain] == sorted((r["uncertainty"] for r in done.uncertain), reverse=True)
    assert campaign_scoring_run(scoring_id=scoring.pk).candidates_scored == 12  # done: left alone


def test_a_prioritised_item_is_served_before_a_half_judged_one():
    scoring, items, lead, annotator = scored_campaign([0.1, 0.9])
    Item.objects.filter(pk=items[0].pk).update(slots_used=1)  # one of its two judgments is under way
    items_prioritise(scoring=scoring, n=1, user=lead)
    assert assignment_next(campaign=scoring.campaign, annotator=annotator).assignment.item_id == items[1].pk
