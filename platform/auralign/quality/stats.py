"""Agreement and ranking statistics on plain numpy arrays (no Django, no database).

Conventions: a judgment's ranking of an item with K candidate positions is a float vector of
tier indices (0 = best tier, equal = tie, NaN = no candidate at that position). Candidate pairs
are the position pairs (a, b) with a < b; a pair's *relation* in one judgment is +1 when a is
better, -1 when b is better, 0 for a tie and NaN when either position is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import krippendorff
import numpy as np


@cache
def position_pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) position pairs with a < b for K positions, as two index arrays."""
    a, b = np.triu_indices(k, 1)
    return a, b


def rank_relations(ranks: np.ndarray) -> np.ndarray:
    """(J, K) tier indices -> (J, P) pair relations (+1 a better, -1 b better, 0 tie, NaN absent)."""
    a, b = position_pairs(ranks.shape[1])
    return np.sign(ranks[:, b] - ranks[:, a])


def score_relations(scores: np.ndarray) -> np.ndarray:
    """(J, K) scores (higher is better) -> (J, P) pair relations."""
    a, b = position_pairs(scores.shape[1])
    return np.sign(scores[:, a] - scores[:, b])


def mid_ranks(ranks: np.ndarray) -> np.ndarray:
    """(J, K) tier indices -> (J, K) positions 0..K-1 with tied candidates sharing their mean
    position (a candidate in a tier of 2 after one better candidate gets 1.5). NaN stays NaN."""
    r = ranks[:, :, None]
    other = ranks[:, None, :]
    better = np.nansum(other < r, axis=2)
    same = np.nansum(other == r, axis=2)
    out = better + (same - 1) / 2.0
    return np.where(np.isnan(ranks), np.nan, out)


def value_counts(units: np.ndarray, values: np.ndarray, n_units: int, n_values: int) -> np.ndarray:
    """How many coders gave each value to each unit: the (units, values) matrix krippendorff takes.
    `values` are integer codes 0..n_values-1; NaN entries are skipped."""
    ok = ~np.isnan(values)
    flat = units[ok].astype(np.int64) * n_values + values[ok].astype(np.int64)
    return np.bincount(flat, minlength=n_units * n_values).reshape(n_units, n_values)


def krippendorff_alpha(counts: np.ndarray, level: str = "ordinal") -> float | None:
    """Krippendorff's α (the `krippendorff` package) from a (units, values) count matrix whose
    columns are the ordered value domain. Units with fewer than two values and values nobody
    gave are dropped first (they carry no pairable information). None when α is undefined:
    no pairable unit, or a single value used throughout."""
    counts = counts[counts.sum(axis=1) >= 2]
    counts = counts[:, counts.sum(axis=0) > 0]
    if counts.shape[0] == 0 or counts.shape[1] < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(krippendorff.alpha(value_counts=counts, value_domain=np.arange(counts.shape[1]), level_of_measurement=level))
    return value if np.isfinite(value) else None


@dataclass(frozen=True)
class RelationAgreement:
    """Agreement on pair relations among the judgments of each item."""

    per_item: np.ndarray  # (I,) mean over the item's pairs of the agreeing fraction of judgment pairs; NaN if < 2 judgments
    agreeing: float  # judgment pairs agreeing, summed over all (item, candidate pair) units
    total: float  # judgment pairs, summed over the same units

    @property
    def pooled(self) -> float | None:
        return self.agreeing / self.total if self.total else None


def relation_agreement(item: np.ndarray, relations: np.ndarray, n_items: int) -> RelationAgreement:
    """Pairwise agreement: for every (item, candidate pair), the fraction of pairs of judgments
    that give the same relation (better / worse / tie)."""
    counts = np.zeros((n_items, relations.shape[1], 3))
    j, p = np.nonzero(~np.isnan(relations))
    np.add.at(counts, (item[j], p, relations[j, p].astype(np.int64) + 1), 1)
    n = counts.sum(axis=2)
    agreeing = (counts * (counts - 1)).sum(axis=2)
    pairs = n * (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit_sum = np.where(pairs > 0, agreeing / pairs, 0.0).sum(axis=1)
        units = (pairs > 0).sum(axis=1)
        per_item = np.where(units > 0, unit_sum / units, np.nan)
    return RelationAgreement(per_item=per_item, agreeing=float(agreeing.sum()), total=float(pairs.sum()))


def leave_one_out_agreement(item: np.ndarray, relations: np.ndarray, counted: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Each judgment against the consensus of the item's *other* counted judgments, pair by pair:
    1 when the judgment's relation has the sign of the others' summed relations, 0 when opposite,
    0.5 when exactly one of them is a tie (or the others are split evenly).
    Returns (agreement sum, pairs compared) per judgment; pairs nobody else judged are skipped."""
    rel = np.nan_to_num(relations)
    present = ~np.isnan(relations)
    w = counted.astype(float)[:, None]
    total = np.zeros((n_items, relations.shape[1]))
    seen = np.zeros_like(total)
    np.add.at(total, item, rel * w)
    np.add.at(seen, item, present * w)
    others = total[item] - rel * w
    n_others = seen[item] - present * w
    usable = present & (n_others > 0)
    mine, theirs = np.sign(rel), np.sign(others)
    score = np.where(mine == theirs, 1.0, np.where((mine == 0) | (theirs == 0), 0.5, 0.0))
    return (score * usable).sum(axis=1), usable.sum(axis=1).astype(float)


# --- Bradley–Terry ------------------------------------------------------------------------------


def bt_fit(wins: np.ndarray, *, prior: float = 1.0, tol: float = 1e-9, max_iter: int = 100) -> np.ndarray:
    """Bradley–Terry log-strengths from win matrices `wins[..., i, j]` (times i beat j; ties count
    half to each side), by Newton's method on the log-likelihood, vectorised over leading axes
    (bootstrap rounds). `prior` adds that many virtual ties to every pair: a weak prior that keeps
    strengths finite when a policy never won or lost and links policies never compared directly.
    Strengths are centred (mean 0); P(i beats j) = sigmoid(θi − θj)."""
    wins = np.asarray(wins, dtype=float)
    p = wins.shape[-1]
    off = 1.0 - np.eye(p)
    w = (wins + prior / 2.0) * off  # the diagonal (a policy against itself) carries nothing
    n = w + np.swapaxes(w, -1, -2)
    won = w.sum(axis=-1)
    theta = np.zeros(wins.shape[:-1])
    gauge = np.full((p, p), 1.0 / p)
    for _ in range(max_iter):
        prob = 1.0 / (1.0 + np.exp(theta[..., None, :] - theta[..., :, None]))  # P(i beats j)
        grad = won - (n * prob).sum(axis=-1)
        curv = n * prob * (1.0 - prob)
        laplacian = np.eye(p) * curv.sum(axis=-1)[..., None, :] - curv
        step = np.linalg.solve(laplacian + gauge, grad[..., None])[..., 0]
        largest = np.abs(step).max(axis=-1, keepdims=True)
        step = step * np.minimum(1.0, 2.0 / np.maximum(largest, 1e-300))  # damp far-off starts
        theta = theta + step
        if largest.max() < tol:
            break
    return theta - theta.mean(axis=-1, keepdims=True)


@dataclass(frozen=True)
class ComparisonPatterns:
    """Judgments grouped by the exact comparisons they contribute, for a cluster bootstrap that
    resamples whole judgments without holding one row per judgment in every round."""

    wins: np.ndarray  # (U, P, P) the win matrix one judgment of each pattern contributes
    counts: np.ndarray  # (U,) how many judgments share each pattern

    @property
    def total(self) -> np.ndarray:
        return np.tensordot(self.counts, self.wins, axes=1)


def comparison_patterns(judgment: np.ndarray, winner: np.ndarray, loser: np.ndarray, halves: np.ndarray, n_policies: int) -> ComparisonPatterns:
    """Group comparisons by judgment. Comparison m says `winner[m]` beat `loser[m]` by `halves[m]`
    half-wins (2 = a win, 1 = half of a tie; a tie is given as two comparisons, one each way).
    Judgments with the same multiset of comparisons share a pattern (hashing each judgment's
    comparisons with random 64-bit keys per cell; collisions are ~2^-64 unlikely)."""
    if len(judgment) == 0:
        return ComparisonPatterns(wins=np.zeros((0, n_policies, n_policies)), counts=np.zeros(0, dtype=np.int64))
    cell = winner.astype(np.int64) * n_policies + loser.astype(np.int64)
    keys = np.random.default_rng(0x5EED).integers(1, 2**63, size=n_policies * n_policies, dtype=np.uint64)
    judgments, j_index = np.unique(judgment, return_inverse=True)
    hashes = np.zeros(len(judgments), dtype=np.uint64)
    np.add.at(hashes, j_index, keys[cell] * halves.astype(np.uint64))
    _, first, pattern_of, counts = np.unique(hashes, return_index=True, return_inverse=True, return_counts=True)
    representative = np.zeros(len(judgments), dtype=bool)
    representative[first] = True
    rep = representative[j_index]
    wins = np.zeros((len(counts), n_policies * n_policies))
    np.add.at(wins, (pattern_of[j_index[rep]], cell[rep]), halves[rep] / 2.0)
    return ComparisonPatterns(wins=wins.reshape(-1, n_policies, n_policies), counts=counts)


def bt_bootstrap(patterns: ComparisonPatterns, *, rounds: int, rng: np.random.Generator, prior: float = 1.0, chunk: int = 250) -> np.ndarray:
    """(rounds, P) log-strengths, each fitted on judgments resampled with replacement
    (multinomial counts over the patterns: a nonparametric bootstrap over judgments)."""
    n = int(patterns.counts.sum())
    flat = patterns.wins.reshape(len(patterns.counts), -1)
    p = patterns.wins.shape[-1]
    pvals = patterns.counts / n
    out = []
    for start in range(0, rounds, chunk):
        draws = rng.multinomial(n, pvals, size=min(chunk, rounds - start))
        out.append(bt_fit((draws @ flat).reshape(-1, p, p), prior=prior))
    return np.concatenate(out)


@dataclass(frozen=True)
class Leaderboard:
    theta: np.ndarray  # (P,) centred log-strengths
    ci_low: np.ndarray  # (P,) bootstrap percentile interval
    ci_high: np.ndarray


def bt_leaderboard(patterns: ComparisonPatterns, *, rounds: int, rng: np.random.Generator, level: float = 0.95, prior: float = 1.0) -> Leaderboard:
    """Strengths with bootstrap percentile confidence intervals."""
    theta = bt_fit(patterns.total, prior=prior)
    boot = bt_bootstrap(patterns, rounds=rounds, rng=rng, prior=prior)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(boot, [tail, 100.0 - tail], axis=0)
    return Leaderboard(theta=theta, ci_low=low, ci_high=high)
