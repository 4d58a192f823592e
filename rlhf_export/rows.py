"""Judgments → Arrow tables, one builder per kind (docs/formats.md "Export snapshot").

Builders are pure: they get one item-aligned `Batch` (judgments plus the items, candidates and
dialogues they reference, already loaded) and the export-wide `Context` (rubrics, pseudonyms,
weights) and return a table in the kind's schema. Row order is canonical: judgments by
(item, judgment id), candidate pairs by the item's candidate positions, criteria in rubric order.

A batch's judgments are columns (`Judgments`), not one object each. Columns shared by many rows
(prompt, reply text, ...) are built once per batch and gathered with Arrow's `take`; so are the
pairwise score lists (each distinct set converted once), whose margins are computed per column;
other nested values are handed to Arrow as tuples (much faster than dicts).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from rlhf_export.schema import MESSAGES, SCHEMAS, SCORES

Scores = list[tuple[str, float]]


@dataclass(frozen=True)
class Criterion:
    key: str
    label: str
    scale_min: int
    scale_max: int
    weight: float


@dataclass(frozen=True)
class Rubric:
    label: str  # slug@version
    criteria: tuple[Criterion, ...]

    @functools.cached_property
    def weights(self) -> dict[str, float]:
        return {c.key: c.weight for c in self.criteria}

    def scores(self, given: dict[str, int]) -> Scores:
        """One candidate's scores in rubric order (unscored criteria left out)."""
        return [(c.key, float(given[c.key])) for c in self.criteria if c.key in given]

    def manifest_entry(self) -> dict:
        return {
            "criteria": [
                {"key": c.key, "label": c.label, "min": c.scale_min, "max": c.scale_max, "weight": c.weight}
                for c in self.criteria
            ]
        }


class JudgmentRow(NamedTuple):
    """One stored judgment as an export reads it."""

    id: int
    uuid: str
    campaign_id: int
    item_id: int
    annotator_id: int
    rubric_version_id: int
    ranking: list[list[str]]
    scores: dict[str, dict[str, int]]
    flags: dict[str, list[str]]
    listened: dict[str, float]


@dataclass
class Judgments:
    """The columns an export reads of a batch of stored judgments, one list each, in export
    order (by item, then judgment id). `listened` is only read for the kinds that show it."""

    ids: list[int]
    uuids: list[str]
    campaign_ids: list[int]
    item_ids: list[int]
    annotator_ids: list[int]
    rubric_version_ids: list[int]
    rankings: list[list[list[str]]]
    scores: list[dict[str, dict[str, int]]]
    flags: list[dict[str, list[str]]]
    listened: list[dict[str, float]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self) -> Iterator[JudgmentRow]:
        """One judgment at a time (the builders that are not on the hot path read them this way)."""
        listened = self.listened if self.listened is not None else [{}] * len(self)
        return map(JudgmentRow._make, zip(
            self.ids, self.uuids, self.campaign_ids, self.item_ids, self.annotator_ids, self.rubric_version_ids,
            self.rankings, self.scores, self.flags, listened, strict=True,
        ))

    def flagged(self) -> list[bool]:
        """Whether each judgment flags any candidate or the item."""
        return [any(f.values()) for f in self.flags]

    def select(self, keep: list[bool]) -> Judgments:
        """The judgments whose `keep` entry is true, in the same order."""
        return Judgments(**{
            name: None if column is None else list(itertools.compress(column, keep))
            for name, column in vars(self).items()
        })


def dashed(uuid: str) -> str:
    """A uuid as the database gives it as text (dashed on PostgreSQL, 32 hex digits on SQLite), dashed."""
    return uuid if len(uuid) == 36 else f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:]}"


@dataclass(frozen=True)
class CandidateInfo:
    uuid: str
    policy_id: str
    reply_text: str
    reasoning: str
    audio_key: str | None


@dataclass
class Batch:
    """Judgments of whole items (never an item split across batches) and what their rows need:
    each item's candidates, and the item and candidate columns as Arrow tables, built once per
    batch and gathered per row with `take`."""

    judgments: Judgments
    item_candidates: dict[int, list[str]]  # item pk → candidate uuids in the item's position order
    item_row: dict[int, int]  # item pk → row of item_table
    item_table: pa.Table  # dialogue_id, item_id, campaign_id, split, prompt, prompt_audio
    cand_row: dict[str, int]  # candidate uuid → row of cand_table
    cand_table: pa.Table  # candidate_id, policy_id, reply_text, reasoning, audio_key, message

    @functools.cached_property
    def candidates(self) -> dict[str, CandidateInfo]:
        columns = [self.cand_table[name].to_pylist() for name in ("candidate_id", "policy_id", "reply_text", "reasoning", "audio_key")]
        return {values[0]: CandidateInfo(*values) for values in zip(*columns, strict=True)}

    def common_columns(self, item_ids: list[int], rubric_labels: list[str] | pa.Array) -> dict[str, pa.ChunkedArray | pa.Array]:
        """The columns every kind has, for rows belonging to these items (one entry per row)."""
        item_row = self.item_row
        taken = self.item_table.take(pa.array([item_row[i] for i in item_ids], pa.int32()))
        columns = {name: taken[name] for name in taken.column_names}
        columns["rubric"] = rubric_labels if isinstance(rubric_labels, pa.Array) else pa.array(rubric_labels, pa.string())
        return columns

    def candidate_columns(self, candidate_ids: list[str]) -> pa.Table:
        """candidate_id, policy_id, reply_text, reasoning, audio_key, message: one row per entry."""
        cand_row = self.cand_row
        return self.cand_table.take(pa.array([cand_row[c] for c in candidate_ids], pa.int32()))


def _dashed_all(uuids: list[str]) -> list[str]:
    return [dashed(u) for u in uuids] if uuids and len(uuids[0]) != 36 else uuids


def batch_build(
    judgments: Judgments, *, items: list[tuple], candidates: list[tuple], turns: dict[int, list[tuple]], splits: dict[str, float],
    split_seed: str, split_cache: dict[str, str],
) -> Batch:
    """A Batch from the rows the database gave (selectors.RawBatch) for these judgments.
    `split_cache` (dialogue uuid → split) carries over from batch to batch; the caller bounds it."""
    wanted = set(judgments.item_ids)
    items = [row for row in items if row[0] in wanted]
    item_pks, item_uuids, campaign_uuids, dialogue_pks, dialogue_uuids = (list(c) for c in zip(*items, strict=True)) if items else ([],) * 5
    dialogue_uuids = _dashed_all(dialogue_uuids)
    item_splits = []
    for dialogue in dialogue_uuids:
        split = split_cache.get(dialogue)
        if split is None:
            split = split_cache[dialogue] = split_of(dialogue, splits, split_seed)
        item_splits.append(split)
    item_turns = [turns.get(pk, ()) for pk in dialogue_pks]
    item_table = pa.table(
        {
            "dialogue_id": pa.array(dialogue_uuids, pa.string()),
            "item_id": pa.array(_dashed_all(item_uuids), pa.string()),
            "campaign_id": pa.array(_dashed_all(campaign_uuids), pa.string()),
            "split": pa.array(item_splits, pa.string()),
            "prompt": pa.array([[(role, text) for role, text, _ in t] for t in item_turns], MESSAGES),
            "prompt_audio": pa.array([[audio for _, _, audio in t] for t in item_turns], pa.list_(pa.string())),
        }
    )
    candidates = [row for row in candidates if row[0] in wanted]
    cand_items, cand_uuids, policies, replies, reasonings, audio_keys = (list(c) for c in zip(*candidates, strict=True)) if candidates else ([],) * 6
    cand_uuids = _dashed_all(cand_uuids)
    item_candidates: dict[int, list[str]] = {}
    for item_pk, uuid in zip(cand_items, cand_uuids, strict=True):
        item_candidates.setdefault(item_pk, []).append(uuid)
    reply_array = pa.array(replies, pa.string())
    messages = pa.ListArray.from_arrays(  # [{"role": "assistant", "content": reply}] per candidate
        pa.array(range(len(replies) + 1), pa.int32()),
        pa.StructArray.from_arrays([pa.array(["assistant"] * len(replies), pa.string()), reply_array], fields=list(MESSAGES.value_type)),
        type=MESSAGES,
    )
    cand_table = pa.table(
        {
            "candidate_id": pa.array(cand_uuids, pa.string()),
            "policy_id": pa.array(_dashed_all(policies), pa.string()),
            "reply_text": reply_array,
            "reasoning": pa.array(reasonings, pa.string()),
            "audio_key": pa.array(audio_keys, pa.string()),
            "message": messages,
        }
    )
    return Batch(
        judgments=judgments, item_candidates=item_candidates,
        item_row={pk: n for n, pk in enumerate(item_pks)}, item_table=item_table,
        cand_row={uuid: n for n, uuid in enumerate(cand_uuids)}, cand_table=cand_table,
    )


@dataclass
class Context:
    """Export-wide inputs: rubric versions, annotator pseudonyms and per-example weights."""

    rubrics: dict[int, Rubric]  # rubric version pk → Rubric
    pseudonym: Callable[[int], str]  # user pk → "ann-…"
    reliability: dict[int, float]  # user pk → reliability in [0, 1]; absent = unknown = 1.0
    agreement: dict[int, float]  # item pk → agreement in [0, 1]; absent = unknown = 1.0

    def weight(self, annotator_id: int, item_id: int) -> float:
        return self.reliability.get(annotator_id, 1.0) * self.agreement.get(item_id, 1.0)

    def weights(self, annotator_ids: list[int], item_ids: list[int]) -> list[float]:
        """weight() of each (annotator, item)."""
        if not self.reliability and not self.agreement:
            return [1.0] * len(annotator_ids)  # = 1.0 * 1.0
        reliability, agreement = self.reliability, self.agreement
        return [reliability.get(a, 1.0) * agreement.get(i, 1.0) for a, i in zip(annotator_ids, item_ids, strict=True)]


def split_of(dialogue_id: str, splits: dict[str, float], seed: str) -> str:
    """train / validation / test by a hash of the dialogue uuid: a dialogue never lands in two splits."""
    u = int.from_bytes(hashlib.sha256(f"{seed}:{dialogue_id}".encode()).digest()[:8], "big") / 2**64
    cumulative = 0.0
    last = next(name for name in reversed(list(splits)) if splits[name] > 0)
    for name, fraction in splits.items():
        cumulative += fraction
        if fraction > 0 and (u < cumulative or name == last):
            return name
    raise AssertionError("unreachable: split fractions add up to 1")


def pairs(candidates: list[str], ranking: list[list[str]]) -> Iterator[tuple[str, str, bool]]:
    """(chosen, rejected, tie) for every pair of candidates, in position order. A tie keeps the
    position order (chosen = the earlier candidate)."""
    tier = {c: t for t, members in enumerate(ranking) for c in members}
    for a, b in itertools.combinations(candidates, 2):
        if tier[b] < tier[a]:
            yield b, a, False
        else:
            yield a, b, tier[a] == tier[b]


def margin(chosen: Scores, rejected: Scores, rubric: Rubric) -> float:
    """Rubric-weighted mean score difference chosen − rejected over the criteria both have (0 if none)."""
    weights = rubric.weights
    theirs = dict(rejected)
    num = den = 0.0
    for key, score in chosen:
        if key in theirs:
            num += weights[key] * (score - theirs[key])
            den += weights[key]
    return num / den if den else 0.0


def _pair_columns(chosen: pa.Table, rejected: pa.Table) -> dict[str, pa.ChunkedArray]:
    return {
        "chosen": chosen["message"],
        "rejected": rejected["message"],
        "chosen_reasoning": chosen["reasoning"],
        "rejected_reasoning": rejected["reasoning"],
        "chosen_audio": chosen["audio_key"],
        "rejected_audio": rejected["audio_key"],
        "chosen_policy": chosen["policy_id"],
        "rejected_policy": rejected["policy_id"],
        "chosen_candidate": chosen["candidate_id"],
        "rejected_candidate": rejected["candidate_id"],
    }


class _ScoreSets:
    """The scores (in rubric order) of the (judgment, candidate)s of one batch, each distinct set
    converted once: a set is an index into `distinct`, so Arrow gathers the scores columns with
    `take` (instead of converting every row's list) and margins are computed for whole columns."""

    def __init__(self) -> None:
        self.distinct: list[Scores] = []
        self.rubric_version_ids: list[int] = []
        self._index: dict[tuple, int] = {}

    def index(self, rubric_version_id: int, rubric: Rubric, given: dict | None) -> int:
        try:
            key = (rubric_version_id, *given.items()) if given else (rubric_version_id,)
            n = self._index.get(key)
        except TypeError:  # an unhashable value among the given scores (one that is not a criterion)
            key, n = None, None
        if n is None:
            n = len(self.distinct)
            self.distinct.append(rubric.scores(given or {}))
            self.rubric_version_ids.append(rubric_version_id)
            if key is not None:
                self._index[key] = n
        return n

    def column(self, indices: list[int]) -> pa.Array:
        return pa.array(self.distinct, SCORES).take(pa.array(indices, pa.int32()))

    def margins(self, chosen: list[int], rejected: list[int], rubrics: dict[int, Rubric]) -> np.ndarray:
        """margin(chosen set, rejected set) for each pair of indices (both sets of one rubric
        version), with the same floating-point operations in the same order as `margin`."""
        out = np.zeros(len(chosen))
        chosen_sets, rejected_sets = np.array(chosen, np.int64), np.array(rejected, np.int64)
        set_rubric = np.array(self.rubric_version_ids, np.int64)
        for rubric_version_id in set(self.rubric_version_ids):
            rubric = rubrics[rubric_version_id]
            column = {c.key: k for k, c in enumerate(rubric.criteria)}
            values = np.zeros((len(self.distinct), len(column)))
            given = np.zeros((len(self.distinct), len(column)), bool)
            for n, scores in enumerate(self.distinct):
                if self.rubric_version_ids[n] == rubric_version_id:
                    for key, score in scores:
                        values[n, column[key]], given[n, column[key]] = score, True
            rows = np.flatnonzero(set_rubric[chosen_sets] == rubric_version_id)
            a, b = chosen_sets[rows], rejected_sets[rows]
            num, den = np.zeros(len(rows)), np.zeros(len(rows))
            for k, criterion in enumerate(rubric.criteria):
                both = given[a, k] & given[b, k]
                num = np.where(both, num + criterion.weight * (values[a, k] - values[b, k]), num)
                den = np.where(both, den + criterion.weight, den)
            out[rows] = np.divide(num, den, out=np.zeros(len(rows)), where=den != 0)
        return out


def pairwise_table(batch: Batch, ctx: Context) -> pa.Table:
    """One row per candidate pair per judgment; pairs in the same tier are rows with tie = true."""
    j = batch.judgments
    rubrics, item_candidates = ctx.rubrics, batch.item_candidates
    score_sets = _ScoreSets()
    set_index = score_sets.index
    judgment_of: list[int] = []  # the judgment (position in the batch) of each row
    chosen_ids: list[str] = []
    rejected_ids: list[str] = []
    ties: list[bool] = []
    chosen_scores: list[int] = []
    rejected_scores: list[int] = []
    for n, (item_id, rubric_version_id, ranking, given) in enumerate(
        zip(j.item_ids, j.rubric_version_ids, j.rankings, j.scores, strict=True)
    ):
        rubric = rubrics[rubric_version_id]
        candidates = item_candidates[item_id]
        scores = {c: set_index(rubric_version_id, rubric, given.get(c)) for c in candidates}
        for chosen, rejected, tie in pairs(candidates, ranking):
            judgment_of.append(n)
            chosen_ids.append(chosen)
            rejected_ids.append(rejected)
            ties.append(tie)
            chosen_scores.append(scores[chosen])
            rejected_scores.append(scores[rejected])
    one_row_each = judgment_of == list(range(len(j)))  # K = 2: no per-judgment column needs repeating

    def per_row(values: list, type_: pa.DataType) -> pa.Array:
        column = pa.array(values, type_)
        return column if one_row_each else column.take(pa.array(judgment_of, pa.int32()))

    columns = {
        **batch.common_columns(
            j.item_ids if one_row_each else [j.item_ids[n] for n in judgment_of],
            per_row([rubrics[r].label for r in j.rubric_version_ids], pa.string()),
        ),
        **_pair_columns(batch.candidate_columns(chosen_ids), batch.candidate_columns(rejected_ids)),
        "margin": pa.array(score_sets.margins(chosen_scores, rejected_scores, rubrics), pa.float64()),
        "tie": pa.array(ties, pa.bool_()),
        "weight": per_row(ctx.weights(j.annotator_ids, j.item_ids), pa.float64()),
        "chosen_scores": score_sets.column(chosen_scores),
        "rejected_scores": score_sets.column(rejected_scores),
        "annotator": per_row([ctx.pseudonym(a) for a in j.annotator_ids], pa.string()),
        "judgment_id": per_row(j.uuids, pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=SCHEMAS["pairwise"])


def _mean_scores(per_judgment: list[Scores], rubric: Rubric) -> Scores:
    out = []
    for c in rubric.criteria:
        values = [score for scores in per_judgment for key, score in scores if key == c.key]
        if values:
            out.append((c.key, sum(values) / len(values)))
    return out


def pairwise_consensus_table(batch: Batch, ctx: Context) -> pa.Table:
    """One row per (item, candidate pair) over all of the item's judgments. The direction is the
    reliability-weighted majority (no majority = tie); `agreement` is the fraction of judgments
    with that direction; `margin` and scores are means; `weight` = agreement × mean reliability."""
    item_ids: list[int] = []
    labels: list[str] = []
    chosen_ids: list[str] = []
    rejected_ids: list[str] = []
    margins: list[float] = []
    ties: list[bool] = []
    weights: list[float] = []
    agreements: list[float] = []
    counts: list[int] = []
    chosen_scores: list[Scores] = []
    rejected_scores: list[Scores] = []
    for item_id, group in itertools.groupby(batch.judgments.rows(), key=lambda j: j.item_id):
        judgments = list(group)
        rubric = ctx.rubrics[judgments[0].rubric_version_id]
        candidates = batch.item_candidates[item_id]
        scores = [{c: rubric.scores(j.scores.get(c, {})) for c in candidates} for j in judgments]
        reliabilities = [ctx.reliability.get(j.annotator_id, 1.0) for j in judgments]
        tiers = [{c: t for t, members in enumerate(j.ranking) for c in members} for j in judgments]
        for a, b in itertools.combinations(candidates, 2):
            directions = [(t[a] < t[b]) - (t[a] > t[b]) for t in tiers]  # +1: a preferred, -1: b, 0: tie
            vote = sum(r * d for r, d in zip(reliabilities, directions, strict=True))
            direction = (vote > 0) - (vote < 0)
            chosen, rejected = (b, a) if direction < 0 else (a, b)
            sign = -1.0 if direction < 0 else 1.0
            agreement = sum(d == direction for d in directions) / len(judgments)
            item_ids.append(item_id)
            labels.append(rubric.label)
            chosen_ids.append(chosen)
            rejected_ids.append(rejected)
            margins.append(sign * sum(margin(s[a], s[b], rubric) for s in scores) / len(judgments))
            ties.append(direction == 0)
            agreements.append(agreement)
            weights.append(agreement * sum(reliabilities) / len(judgments))
            counts.append(len(judgments))
            chosen_scores.append(_mean_scores([s[chosen] for s in scores], rubric))
            rejected_scores.append(_mean_scores([s[rejected] for s in scores], rubric))
    columns = {
        **batch.common_columns(item_ids, labels),
        **_pair_columns(batch.candidate_columns(chosen_ids), batch.candidate_columns(rejected_ids)),
        "margin": pa.array(margins, pa.float64()),
        "tie": pa.array(ties, pa.bool_()),
        "weight": pa.array(weights, pa.float64()),
        "chosen_scores": pa.array(chosen_scores, SCORES),  # (criterion, score) tuples: Arrow converts them fast
        "rejected_scores": pa.array(rejected_scores, SCORES),
        "agreement": pa.array(agreements, pa.float64()),
        "n_judgments": pa.array(counts, pa.int32()),
    }
    return pa.Table.from_pydict(columns, schema=SCHEMAS["pairwise_consensus"])


def listwise_table(batch: Batch, ctx: Context) -> pa.Table:
    """One row per judgment with all its candidates (position order), tiers and scores."""
    candidates_col, tiers, weights, annotators, judgment_ids, labels = [], [], [], [], [], []
    for j in batch.judgments.rows():
        rubric = ctx.rubrics[j.rubric_version_id]
        entries = []
        for uuid in batch.item_candidates[j.item_id]:
            c = batch.candidates[uuid]
            entries.append(  # tuples in LISTWISE_CANDIDATE's field order (Arrow converts tuples much faster than dicts)
                (uuid, c.policy_id, c.reply_text, c.reasoning, c.audio_key, rubric.scores(j.scores.get(uuid, {})),
                 list(j.flags.get(uuid, [])), j.listened.get(uuid))
            )
        candidates_col.append(entries)
        tiers.append(j.ranking)
        weights.append(ctx.weight(j.annotator_id, j.item_id))
        annotators.append(ctx.pseudonym(j.annotator_id))
        judgment_ids.append(j.uuid)
        labels.append(rubric.label)
    schema = SCHEMAS["listwise"]
    columns = {
        **batch.common_columns(batch.judgments.item_ids, labels),
        "candidates": pa.array(candidates_col, schema.field("candidates").type),
        "tiers": pa.array(tiers, schema.field("tiers").type),
        "weight": pa.array(weights, pa.float64()),
        "annotator": pa.array(annotators, pa.string()),
        "judgment_id": pa.array(judgment_ids, pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=schema)


def pointwise_table(batch: Batch, ctx: Context) -> pa.Table:
    """One row per candidate × scored criterion × judgment."""
    item_ids, labels, candidate_ids, criteria, scores, lows, highs, annotators, judgment_ids = ([] for _ in range(9))
    for j in batch.judgments.rows():
        rubric = ctx.rubrics[j.rubric_version_id]
        annotator = ctx.pseudonym(j.annotator_id)
        for uuid in batch.item_candidates[j.item_id]:
            given = j.scores.get(uuid, {})
            for c in rubric.criteria:
                if c.key not in given:
                    continue
                item_ids.append(j.item_id)
                labels.append(rubric.label)
                candidate_ids.append(uuid)
                criteria.append(c.key)
                scores.append(float(given[c.key]))
                lows.append(c.scale_min)
                highs.append(c.scale_max)
                annotators.append(annotator)
                judgment_ids.append(j.uuid)
    cands = batch.candidate_columns(candidate_ids)
    columns = {
        **batch.common_columns(item_ids, labels),
        **{name: cands[name] for name in ("candidate_id", "policy_id", "reply_text", "reasoning", "audio_key")},
        "criterion": pa.array(criteria, pa.string()),
        "score": pa.array(scores, pa.float64()),
        "scale_min": pa.array(lows, pa.int32()),
        "scale_max": pa.array(highs, pa.int32()),
        "annotator": pa.array(annotators, pa.string()),
        "judgment_id": pa.array(judgment_ids, pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=SCHEMAS["pointwise"])


BUILDERS: dict[str, Callable[[Batch, Context], pa.Table]] = {
    "pairwise": pairwise_table,
    "pairwise_consensus": pairwise_consensus_table,
    "listwise": listwise_table,
    "pointwise": pointwise_table,
}
