"""The statistics on plain arrays: relations, agreement, α plumbing, Bradley–Terry."""

import krippendorff
import numpy as np
import pytest

from auralign.quality import stats

nan = np.nan


def test_rank_relations_give_sign_of_each_position_pair():
    ranks = np.array([[0, 1, 1], [2, 0, nan]])
    # pairs (0,1), (0,2), (1,2)
    np.testing.assert_array_equal(stats.rank_relations(ranks), [[1, 1, 0], [-1, nan, nan]])


def test_mid_ranks_share_the_mean_position_within_a_tie():
    np.testing.assert_array_equal(stats.mid_ranks(np.array([[0, 1, 1, 2]])), [[0, 1.5, 1.5, 3]])


def test_value_counts_feed_krippendorff_the_same_alpha_as_a_reliability_matrix():
    rng = np.random.default_rng(3)
    data = rng.integers(0, 5, (4, 60)).astype(float)
    data[rng.random(data.shape) < 0.3] = nan
    units = np.tile(np.arange(60), 4)
    counts = stats.value_counts(units, data.reshape(-1), 60, 5)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    assert stats.krippendorff_alpha(counts) == pytest.approx(expected, abs=1e-12)


def test_krippendorff_alpha_is_none_when_everyone_gives_one_value():
    assert stats.krippendorff_alpha(np.array([[3, 0], [2, 0]])) is None


def test_relation_agreement_counts_agreeing_pairs_of_judgments():
    item = np.array([0, 0, 0])
    rel = np.array([[1.0], [1.0], [-1.0]])  # three judgments of one pair: 2 of 6 ordered judgment pairs agree
    ra = stats.relation_agreement(item, rel, 1)
    assert ra.per_item[0] == pytest.approx(1 / 3)
    assert ra.pooled == pytest.approx(1 / 3)


def test_leave_one_out_agreement_scores_each_judgment_against_the_others():
    item = np.array([0, 0, 0])
    rel = np.array([[1.0], [1.0], [-1.0]])
    agree, pairs = stats.leave_one_out_agreement(item, rel, np.array([True, True, True]), 1)
    # others of judgment 0: +1 - 1 = 0 (split) -> 0.5; of judgment 2: +2 -> opposite -> 0
    np.testing.assert_allclose(agree, [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(pairs, [1, 1, 1])


def test_bt_fit_matches_the_closed_form_for_two_players():
    wins = np.array([[0.0, 30.0], [10.0, 0.0]])
    theta = stats.bt_fit(wins, prior=0.0)
    assert theta[0] - theta[1] == pytest.approx(np.log(3.0))


def test_bt_fit_keeps_strengths_finite_for_an_unbeaten_player():
    theta = stats.bt_fit(np.array([[0.0, 5.0], [0.0, 0.0]]))
    assert np.isfinite(theta).all() and theta[0] > theta[1]


def test_comparison_patterns_group_identical_judgments():
    # judgments 0 and 1 both say policy 0 beat 1; judgment 2 ties 0 and 1
    patterns = stats.comparison_patterns(
        np.array([0, 1, 2, 2]), np.array([0, 0, 0, 1]), np.array([1, 1, 1, 0]), np.array([2, 2, 1, 1]), 2
    )
    assert sorted(patterns.counts.tolist()) == [1, 2]
    np.testing.assert_allclose(patterns.total, [[0, 2.5], [0.5, 0]])


def simulate(true, judgments, k, rng):
    """Judgments ranking k random distinct policies by Plackett–Luce with the true strengths."""
    p = len(true)
    rows = []
    for j in range(judgments):
        chosen = rng.choice(p, size=k, replace=False)
        order = []
        left = list(chosen)
        while left:
            w = np.exp(true[left])
            order.append(left.pop(rng.choice(len(left), p=w / w.sum())))
        for a in range(k):
            for b in range(a + 1, k):
                rows.append((j, order[a], order[b]))
    j, winner, loser = map(np.array, zip(*rows, strict=True))
    return stats.comparison_patterns(j, winner, loser, np.full(len(j), 2), p)


def test_bradley_terry_recovers_known_strengths_within_its_confidence_intervals():
    rng = np.random.default_rng(7)
    true = np.array([-1.0, -0.4, 0.0, 0.5, 0.9])
    true -= true.mean()
    patterns = simulate(true, 3000, 3, rng)
    board = stats.bt_leaderboard(patterns, rounds=300, rng=rng, prior=0.0)
    assert ((board.ci_low <= true) & (true <= board.ci_high)).all()
    assert np.abs(board.theta - true).max() < 0.1
    assert (board.ci_high - board.ci_low).max() < 0.3  # the intervals are informative, not vacuous
