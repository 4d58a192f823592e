"""The three selectors the export reads: annotator_weights, qualified_annotator_ids, item_agreement."""

import pytest

from auralign.quality.selectors import annotator_weights, item_agreement, qualified_annotator_ids
from auralign.quality.services import quality_recompute
from tests.factories import make_campaign, make_items, make_judgment, make_user

pytestmark = pytest.mark.django_db


def cands(item):
    return [str(c.uuid) for c in item.candidates.order_by("item_links__position")]


def test_item_agreement_is_one_when_two_judgments_agree_and_zero_when_they_disagree():
    a, b = make_user(), make_user()
    campaign = make_campaign(annotators=[a, b], dialogues=2)
    agree, disagree = make_items(campaign)
    x, y = cands(agree)
    make_judgment(agree, a, ranking=[[x], [y]])
    make_judgment(agree, b, ranking=[[x], [y]])
    x, y = cands(disagree)
    make_judgment(disagree, a, ranking=[[x], [y]])
    make_judgment(disagree, b, ranking=[[y], [x]])
    quality_recompute(campaign_id=campaign.pk)
    assert item_agreement(campaign_ids=[campaign.pk]) == {agree.pk: 1.0, disagree.pk: 0.0}


def test_item_agreement_averages_over_candidate_pairs():
    a, b = make_user(), make_user()
    campaign = make_campaign(annotators=[a, b], dialogues=1, k=3, policies=3)
    (item,) = make_items(campaign)
    x, y, z = cands(item)
    make_judgment(item, a, ranking=[[x], [y], [z]])
    make_judgment(item, b, ranking=[[x], [z], [y]])  # agrees on x>y and x>z, not on y vs z
    quality_recompute(campaign_id=campaign.pk)
    assert item_agreement(campaign_ids=[campaign.pk])[item.pk] == pytest.approx(2 / 3)


def test_item_agreement_leaves_out_items_with_one_judgment():
    a = make_user()
    campaign = make_campaign(annotators=[a], dialogues=1)
    (item,) = make_items(campaign)
    make_judgment(item, a)
    quality_recompute(campaign_id=campaign.pk)
    assert item_agreement(campaign_ids=[campaign.pk]) == {}


def test_qualified_annotator_ids_is_everyone_with_judgments_without_a_gate():
    a, b, idle = make_user(), make_user(), make_user()
    campaign = make_campaign(annotators=[a, b, idle], dialogues=1, qualification_gold_items=0)
    (item,) = make_items(campaign)
    make_judgment(item, a)
    make_judgment(item, b)
    assert qualified_annotator_ids(campaign_id=campaign.pk) == {a.pk, b.pk}


def test_qualified_annotator_ids_needs_enough_gold_items_at_the_accuracy():
    good, sloppy, newcomer = make_user(), make_user(), make_user()
    campaign = make_campaign(
        annotators=[good, sloppy, newcomer], dialogues=3, overlap=3, qualification_gold_items=2, qualification_min_accuracy=0.75
    )
    g1, g2, regular = make_items(campaign, gold=2)  # gold ranking: first candidate best
    for g in (g1, g2):
        x, y = cands(g)
        make_judgment(g, good, ranking=[[x], [y]])
    x, y = cands(g1)
    make_judgment(g1, sloppy, ranking=[[x], [y]])
    x, y = cands(g2)
    make_judgment(g2, sloppy, ranking=[[y], [x]])  # 50 % < 75 %
    make_judgment(g1, newcomer, ranking=[cands(g1)])  # one gold item (a tie: wrong) of the two needed
    for user in (good, sloppy, newcomer):
        make_judgment(regular, user)
    assert qualified_annotator_ids(campaign_id=campaign.pk) == {good.pk}


def test_annotator_weights_are_lower_for_an_annotator_who_contradicts_everyone():
    careful = [make_user() for _ in range(3)]
    contrarian = make_user()
    campaign = make_campaign(annotators=[*careful, contrarian], dialogues=12, overlap=4)
    for item in make_items(campaign):
        x, y = cands(item)
        for user in careful:
            make_judgment(item, user, ranking=[[x], [y]])
        make_judgment(item, contrarian, ranking=[[y], [x]])
    quality_recompute(campaign_id=campaign.pk)
    weights = annotator_weights(campaign_ids=[campaign.pk])
    assert set(weights) == {u.pk for u in [*careful, contrarian]}
    assert all(0.0 <= w <= 1.0 for w in weights.values())
    assert weights[contrarian.pk] < 0.5 < min(weights[u.pk] for u in careful)


def test_annotator_weights_combine_campaigns_by_judgment_count():
    user, other = make_user(), make_user()
    first = make_campaign(annotators=[user, other], dialogues=1)
    second = make_campaign(annotators=[user, other], dialogues=3)
    from auralign.quality.models import AnnotatorStats

    for campaign in (first, second):
        for item in make_items(campaign):
            make_judgment(item, user)
        quality_recompute(campaign_id=campaign.pk)
    AnnotatorStats.objects.filter(campaign=first, annotator=user).update(weight=0.2)
    AnnotatorStats.objects.filter(campaign=second, annotator=user).update(weight=0.6)
    assert annotator_weights(campaign_ids=[first.pk, second.pk]) == {user.pk: pytest.approx((0.2 * 1 + 0.6 * 3) / 4)}
    assert other.pk not in annotator_weights(campaign_ids=[first.pk])
