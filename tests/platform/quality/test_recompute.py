"""The recompute on real rows: α, annotator stats, consensus, leaderboard, progress."""

import krippendorff
import numpy as np
import pytest

from auralign.quality.models import AnnotatorStats, CampaignQuality, ItemConsensus
from auralign.quality.services import quality_recompute
from tests.factories import make_campaign, make_items, make_judgment, make_policy, make_rubric, make_user

pytestmark = pytest.mark.django_db

ONE_CRITERION = [{"key": "fluency", "label": "Fluency", "scale_min": 1, "scale_max": 5}]


def cands(item):
    return [str(c.uuid) for c in item.candidates.order_by("item_links__position")]


def test_alpha_per_criterion_and_for_rankings_equals_the_krippendorff_package_on_random_data():
    rng = np.random.default_rng(11)
    annotators = [make_user() for _ in range(4)]
    campaign = make_campaign(annotators=annotators, dialogues=25, overlap=4, k=3, policies=3, rubric_version=make_rubric(criteria=ONE_CRITERION, frozen=True))
    items = make_items(campaign)
    scores = np.full((4, 25 * 3), np.nan)
    ranks = np.full((4, 25 * 3), np.nan)
    for r, user in enumerate(annotators):
        for i, item in enumerate(items):
            if rng.random() < 0.3:
                continue
            ids = cands(item)
            tiers = rng.integers(0, 3, size=3)
            tiers = np.unique(tiers, return_inverse=True)[1]  # dense tiers 0..t
            ranking = [[ids[p] for p in range(3) if tiers[p] == t] for t in range(tiers.max() + 1)]
            given = {ids[p]: {"fluency": int(rng.integers(1, 6))} for p in range(3)}
            make_judgment(item, user, ranking=ranking, scores=given)
            for p in range(3):
                scores[r, i * 3 + p] = given[ids[p]]["fluency"]
                ranks[r, i * 3 + p] = tiers[p]
    quality_recompute(campaign_id=campaign.pk)
    agreement = CampaignQuality.objects.get(campaign=campaign).agreement
    assert agreement["criteria"][0]["alpha"] == pytest.approx(krippendorff.alpha(reliability_data=scores, level_of_measurement="ordinal"), abs=1e-6)
    assert agreement["ranking"]["alpha"] == pytest.approx(krippendorff.alpha(reliability_data=ranks, level_of_measurement="ordinal"), abs=1e-6)


def test_position_bias_shows_an_annotator_who_always_picks_the_first_shown_reply():
    biased, fair = make_user(), make_user()
    campaign = make_campaign(annotators=[biased, fair], dialogues=8)
    for n, item in enumerate(make_items(campaign)):
        x, y = cands(item)  # make_judgment shows candidates in position order: x first
        make_judgment(item, biased, ranking=[[x], [y]])
        make_judgment(item, fair, ranking=[[x], [y]] if n % 2 else [[y], [x]])
    quality_recompute(campaign_id=campaign.pk)
    b = AnnotatorStats.objects.get(campaign=campaign, annotator=biased)
    f = AnnotatorStats.objects.get(campaign=campaign, annotator=fair)
    assert (b.first_shown_win_rate, b.first_shown_chance) == (1.0, 0.5)
    assert b.position_bias_z == pytest.approx(8 * 0.5 / np.sqrt(8 * 0.25))
    assert f.first_shown_win_rate == 0.5 and f.position_bias_z == 0.0


def test_annotator_stats_report_time_listening_and_gold_accuracy():
    user = make_user()
    campaign = make_campaign(annotators=[user], dialogues=3)
    gold_item, a, b = make_items(campaign, gold=1)
    x, y = cands(gold_item)
    make_judgment(gold_item, user, ranking=[[y], [x]], time_spent_ms=10_000, listened=0.5)  # gold expects x first
    make_judgment(a, user, time_spent_ms=20_000, listened=1.0)
    make_judgment(b, user, time_spent_ms=60_000, listened=1.0)
    quality_recompute(campaign_id=campaign.pk)
    s = AnnotatorStats.objects.get(campaign=campaign, annotator=user)
    assert (s.judgments, s.gold_answered, s.gold_accuracy, s.median_time_ms) == (3, 1, 0.0, 20_000)
    assert s.listened_mean == pytest.approx(2.5 / 3)
    assert s.judgments_per_hour == pytest.approx(3 / (90 / 3600))
    assert s.judgments_last_24h == 3


def test_unqualified_annotators_do_not_count_toward_consensus():
    good, failing = make_user(), make_user()
    campaign = make_campaign(annotators=[good, failing], dialogues=2, qualification_gold_items=1, qualification_min_accuracy=1.0)
    gold_item, item = make_items(campaign, gold=1)
    x, y = cands(gold_item)
    make_judgment(gold_item, good, ranking=[[x], [y]])
    make_judgment(gold_item, failing, ranking=[[y], [x]])
    x, y = cands(item)
    make_judgment(item, good, ranking=[[x], [y]])
    make_judgment(item, failing, ranking=[[y], [x]])
    quality_recompute(campaign_id=campaign.pk)
    consensus = ItemConsensus.objects.get(item=item)
    assert (consensus.judgments, consensus.ranking, consensus.agreement) == (1, [[x], [y]], None)
    assert not AnnotatorStats.objects.get(campaign=campaign, annotator=failing).qualified


def test_consensus_ties_candidates_the_judgments_split_on():
    a, b = make_user(), make_user()
    campaign = make_campaign(annotators=[a, b], dialogues=1, k=3, policies=3)
    (item,) = make_items(campaign)
    x, y, z = cands(item)
    make_judgment(item, a, ranking=[[x], [y], [z]])
    make_judgment(item, b, ranking=[[y], [x], [z]])
    quality_recompute(campaign_id=campaign.pk)
    assert ItemConsensus.objects.get(item=item).ranking == [[x, y], [z]]


def test_leaderboard_orders_policies_by_how_often_they_win_overall_and_per_criterion():
    strong, middle, weak = make_policy("strong"), make_policy("middle"), make_policy("weak")
    users = [make_user() for _ in range(3)]
    campaign = make_campaign(annotators=users, policies=[strong, middle, weak], dialogues=10, k=3, overlap=3)
    rank_of = {"strong": 0, "middle": 1, "weak": 2}
    for item in make_items(campaign):
        by_policy = {c.policy.name: str(c.uuid) for c in item.candidates.select_related("policy")}
        for user in users:
            ranking = [[by_policy[name]] for name in sorted(by_policy, key=rank_of.get)]
            # fluency disagrees with the overall ranking: weak sounds best
            scores = {by_policy[name]: {"correctness": 5 - rank_of[name], "fluency": 3 + rank_of[name],
                                        "emotional_resonance": 3, "persona_consistency": 3} for name in by_policy}
            make_judgment(item, user, ranking=ranking, scores=scores)
    quality_recompute(campaign_id=campaign.pk)
    boards = CampaignQuality.objects.get(campaign=campaign).leaderboard["boards"]
    order = lambda key: [p["name"] for p in boards[key]["policies"]]  # noqa: E731
    assert order("ranking@0") == ["strong", "middle", "weak"]
    assert order("criterion.correctness@0") == ["strong", "middle", "weak"]
    assert order("criterion.fluency@0") == ["weak", "middle", "strong"]
    top = boards["ranking@0"]["policies"][0]
    assert top["ci"][0] <= top["strength"] <= top["ci"][1]
    assert top["comparisons"] == 10 * 3 * 2 and boards["ranking@0"]["comparisons"] == 10 * 3 * 3
    assert boards["criterion.emotional_resonance@0"]["policies"][0]["win_rate"] == 0.5  # all ties


def test_progress_counts_items_that_reached_their_overlap():
    a, b = make_user(), make_user()
    campaign = make_campaign(annotators=[a, b], dialogues=3, overlap=2)
    first, second, _ = make_items(campaign)
    make_judgment(first, a)
    make_judgment(first, b)
    make_judgment(second, a)
    quality_recompute(campaign_id=campaign.pk)
    progress = CampaignQuality.objects.get(campaign=campaign).progress
    assert (progress["items"], progress["items_complete"], progress["judgments"]) == (3, 1, 3)
    assert progress["series"][-1]["cumulative"] == 3 and progress["series"][-1]["items_complete"] == 1


def test_recompute_of_a_campaign_without_judgments_stores_empty_figures():
    campaign = make_campaign(dialogues=2)
    make_items(campaign)
    row = quality_recompute(campaign_id=campaign.pk)
    assert (row.judgment_count, row.progress["items"], row.agreement["ranking"]["alpha"]) == (0, 2, None)
    assert all(p["strength"] is None for p in row.leaderboard["boards"]["ranking@0"]["policies"])


def test_demo_quality_prints_agreement_and_every_leaderboard_view():
    import io

    from auralign.quality.demo import demo_quality, demo_quality_setup

    good, bad = make_policy("good-model"), make_policy("bad-model")
    users = [make_user(), make_user()]
    campaign = make_campaign(annotators=users, policies=[good, bad], dialogues=4)
    make_items(campaign)
    assert demo_quality_setup(campaign=campaign, gold_order=["good-model", "bad-model"], gold=1, honeypots=1) == {"gold": 1, "honeypots": 1}
    for item in campaign.items.all():
        for user in users:
            make_judgment(item, user)
    out = io.StringIO()
    demo_quality(campaign=campaign, stdout=out)
    text = out.getvalue()
    assert "Correctness: α =" in text and "leaderboard, Overall (rankings): " in text and "good-model" in text


def test_a_criterion_named_like_an_overall_view_gets_its_own_leaderboard():
    criteria = [{"key": "score", "label": "Score"}, {"key": "ranking", "label": "Ranking"}]
    a, b = make_user(), make_user()
    campaign = make_campaign(annotators=[a, b], dialogues=2, rubric_version=make_rubric(criteria=criteria, frozen=True))
    for item in make_items(campaign):
        x, y = cands(item)
        for user in (a, b):  # the overall ranking says x, both criteria say y
            make_judgment(item, user, ranking=[[x], [y]], scores={x: {"score": 1, "ranking": 1}, y: {"score": 5, "ranking": 5}})
    quality_recompute(campaign_id=campaign.pk)
    lb = CampaignQuality.objects.get(campaign=campaign).leaderboard
    assert [v["key"] for v in lb["views"]] == ["ranking", "score", "criterion.score", "criterion.ranking"]
    first = {v: lb["boards"][f"{v}@0"]["policies"][0]["id"] for v in ("ranking", "criterion.ranking")}
    assert first["ranking"] != first["criterion.ranking"]
