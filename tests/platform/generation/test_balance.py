import itertools
from collections import Counter

import pytest

from auralign.generation.balance import balanced_subsets


def _candidates(policies: int, samples: int) -> list[tuple[str, str]]:
    return [(f"p{p}s{s}", f"p{p}") for p in range(policies) for s in range(samples)]


def _check(items, candidates, k):
    policy = dict(candidates)
    assert all(len(item) == k and len(set(item)) == k for item in items)
    assert {c for item in items for c in item} == set(policy)  # every candidate is shown
    compared = {frozenset((policy[a], policy[b])) for item in items for a, b in itertools.combinations(item, 2)}
    for pair in itertools.combinations(sorted(set(policy.values())), 2):
        assert frozenset(pair) in compared, pair


@pytest.mark.parametrize(("policies", "samples", "k"), [(2, 1, 2), (2, 4, 2), (3, 2, 2), (4, 1, 3), (5, 2, 3), (6, 3, 4), (3, 4, 6)])
def test_every_candidate_shown_and_every_policy_pair_compared(policies, samples, k):
    candidates = _candidates(policies, samples)
    _check(balanced_subsets(candidates, k, seed=1), candidates, k)


def test_two_policies_with_n_samples_pair_off_without_repeats():
    items = balanced_subsets(_candidates(2, 4), 2, seed=3)
    assert len(items) == 4
    assert all({c[:2] for c in item} == {"p0", "p1"} for item in items)


def test_three_policies_two_samples_use_each_candidate_once():
    items = balanced_subsets(_candidates(3, 2), 2, seed=0)
    assert len(items) == 3
    assert set(Counter(c for item in items for c in item).values()) == {1}


def test_exactly_k_candidates_make_one_item():
    assert len(balanced_subsets(_candidates(3, 1), 3, seed=0)) == 1


def test_fewer_than_k_candidates_make_no_item():
    assert balanced_subsets(_candidates(1, 1), 2, seed=0) == []


def test_items_are_deterministic_for_a_seed():
    candidates = _candidates(4, 2)
    assert balanced_subsets(candidates, 2, seed=5) == balanced_subsets(candidates, 2, seed=5)


def test_use_is_spread_evenly():
    counts = Counter(c for item in balanced_subsets(_candidates(4, 3), 3, seed=2) for c in item)
    assert max(counts.values()) - min(counts.values()) <= 1
