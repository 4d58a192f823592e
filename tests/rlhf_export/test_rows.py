"""The pure parts of the row builders: pairs, ties, margins, splits, consensus."""

import collections

from rlhf_export.rows import Criterion, Rubric, margin, pairs, split_of

RUBRIC = Rubric(
    label="r@1",
    criteria=(
        Criterion(key="a", label="A", scale_min=1, scale_max=5, weight=3.0),
        Criterion(key="b", label="B", scale_min=1, scale_max=5, weight=1.0),
    ),
)
SPLITS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def test_pairs_put_the_better_tier_first_in_position_order():
    assert list(pairs(["x", "y", "z"], [["z"], ["x"], ["y"]])) == [("x", "y", False), ("z", "x", False), ("z", "y", False)]


def test_pairs_in_one_tier_are_ties_in_position_order():
    assert list(pairs(["x", "y", "z"], [["y", "x"], ["z"]])) == [("x", "y", True), ("x", "z", False), ("y", "z", False)]


def test_k_candidates_give_k_choose_2_pairs():
    cands = [str(i) for i in range(6)]
    assert len(list(pairs(cands, [[c] for c in reversed(cands)]))) == 15


def test_margin_is_the_rubric_weighted_mean_difference():
    assert margin(RUBRIC.scores({"a": 5, "b": 1}), RUBRIC.scores({"a": 3, "b": 5}), RUBRIC) == (3 * 2 + 1 * -4) / 4


def test_margin_uses_only_criteria_both_candidates_have():
    assert margin(RUBRIC.scores({"a": 5, "b": 1}), RUBRIC.scores({"b": 4}), RUBRIC) == -3.0


def test_margin_is_zero_when_unscored():
    assert margin(RUBRIC.scores({}), RUBRIC.scores({"a": 2}), RUBRIC) == 0.0


def test_scores_follow_rubric_order_and_skip_missing_criteria():
    assert RUBRIC.scores({"b": 2, "zz": 9, "a": 4}) == [("a", 4.0), ("b", 2.0)]


def test_split_of_is_stable_for_a_dialogue():
    assert {split_of("d-42", SPLITS, "seed") for _ in range(5)} == {split_of("d-42", SPLITS, "seed")}


def test_split_fractions_are_respected_over_many_dialogues():
    counts = collections.Counter(split_of(f"dialogue-{i}", SPLITS, "auralign") for i in range(20000))
    assert abs(counts["train"] / 20000 - 0.8) < 0.02
    assert abs(counts["validation"] / 20000 - 0.1) < 0.02


def test_split_seed_reshuffles_dialogues():
    a = [split_of(f"d{i}", SPLITS, "one") for i in range(200)]
    b = [split_of(f"d{i}", SPLITS, "two") for i in range(200)]
    assert a != b


def test_a_zero_fraction_split_gets_nothing():
    only = {"train": 1.0, "validation": 0.0, "test": 0.0}
    assert {split_of(f"d{i}", only, "s") for i in range(500)} == {"train"}
