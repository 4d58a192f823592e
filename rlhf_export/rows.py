"""Judgments → Arrow tables, one builder per kind (docs/formats.md "Export snapshot").

Builders are pure: they get one item-aligned `Batch` (judgments plus the items, candidates and
dialogues they reference, already loaded) and the export-wide `Context` (rubrics, pseudonyms,
weights) and return a table in the kind's schema. Row order is canonical: judgments by
(item, judgment id), candidate pairs by the item's candidate positions, criteria in rubric order.

Columns shared by many rows (prompt, reply text, ...) are built once per batch and gathered with
Arrow's `take`; nested values are handed to Arrow as tuples (much faster than dicts).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

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


@dataclass(slots=True)
class JudgmentRecord:
    """The columns of one stored judgment an export reads, with its item's identity."""

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
    item_uuid: str  # the item's identity as the database gives it (see selectors.load_batch)
    campaign_uuid: str
    dialogue_pk: int
    dialogue_uuid: str

    @property
    def is_flagged(self) -> bool:
        return any(self.flags.values())


@dataclass(frozen=True)
class CandidateInfo:
    uuid: str
    policy_id: str
    reply_text: str
    reasoning: str
    audio_key: str | None


@dataclass(frozen=True)
class ItemInfo:
    uuid: str
    campaign_id: str
    dialogue_id: str
    split: str
    prompt: list[tuple[str, str]]  # (role, content) messages
    prompt_audio: list[str | None]
    candidates: list[str]  # candidate uuids in the item's position order


@dataclass
class Batch:
    """Judgments of whole items (never an item split across batches) and what their rows need."""

    judgments: list[JudgmentRecord]
    items: dict[int, ItemInfo]
    candidates: dict[str, CandidateInfo]
    _item_row: dict[int, int] = field(init=False)
    _item_table: pa.Table = field(init=False)
    _cand_row: dict[str, int] = field(init=False)
    _cand_table: pa.Table = field(init=False)

    def __post_init__(self) -> None:
        items = list(self.items.items())
        self._item_row = {pk: n for n, (pk, _) in enumerate(items)}
        self._item_table = pa.table(
            {
                "dialogue_id": pa.array([i.dialogue_id for _, i in items], pa.string()),
                "item_id": pa.array([i.uuid for _, i in items], pa.string()),
                "campaign_id": pa.array([i.campaign_id for _, i in items], pa.string()),
                "split": pa.array([i.split for _, i in items], pa.string()),
                "prompt": pa.array([i.prompt for _, i in items], MESSAGES),
                "prompt_audio": pa.array([i.prompt_audio for _, i in items], pa.list_(pa.string())),
            }
        )
        cands = list(self.candidates.values())
        self._cand_row = {c.uuid: n for n, c in enumerate(cands)}
        replies = pa.array([c.reply_text for c in cands], pa.string())
        messages = pa.ListArray.from_arrays(  # [{"role": "assistant", "content": reply}] per candidate
            pa.array(range(len(cands) + 1), pa.int32()),
            pa.StructArray.from_arrays([pa.array(["assistant"] * len(cands), pa.string()), replies], fields=list(MESSAGES.value_type)),
            type=MESSAGES,
        )
        self._cand_table = pa.table(
            {
                "candidate_id": pa.array([c.uuid for c in cands], pa.string()),
                "policy_id": pa.array([c.policy_id for c in cands], pa.string()),
                "reply_text": replies,
                "reasoning": pa.array([c.reasoning for c in cands], pa.string()),
                "audio_key": pa.array([c.audio_key for c in cands], pa.string()),
                "message": messages,
            }
        )

    def common_columns(self, item_ids: list[int], rubric_labels: list[str]) -> dict[str, pa.ChunkedArray | pa.Array]:
        """The columns every kind has, for rows belonging to these items (one entry per row)."""
        taken = self._item_table.take(pa.array([self._item_row[i] for i in item_ids], pa.int32()))
        columns = {name: taken[name] for name in taken.column_names}
        columns["rubric"] = pa.array(rubric_labels, pa.string())
        return columns

    def candidate_columns(self, candidate_ids: list[str]) -> pa.Table:
        """candidate_id, policy_id, reply_text, reasoning, audio_key, message: one row per entry."""
        return self._cand_table.take(pa.array([self._cand_row[c] for c in candidate_ids], pa.int32()))


@dataclass
class Context:
    """Export-wide inputs: rubric versions, annotator pseudonyms and per-example weights."""

    rubrics: dict[int, Rubric]  # rubric version pk → Rubric
    pseudonym: Callable[[int], str]  # user pk → "ann-…"
    reliability: dict[int, float]  # user pk → reliability in [0, 1]; absent = unknown = 1.0
    agreement: dict[int, float]  # item pk → agreement in [0, 1]; absent = unknown = 1.0

    def weight(self, annotator_id: int, item_id: int) -> float:
        return self.reliability.get(annotator_id, 1.0) * self.agreement.get(item_id, 1.0)


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


def pairwise_table(batch: Batch, ctx: Context) -> pa.Table:
    """One row per candidate pair per judgment; pairs in the same tier are rows with tie = true."""
    item_ids: list[int] = []
    labels: list[str] = []
    chosen_ids: list[str] = []
    rejected_ids: list[str] = []
    margins: list[float] = []
    ties: list[bool] = []
    weights: list[float] = []
    annotators: list[str] = []
    judgment_ids: list[str] = []
    chosen_scores: list[Scores] = []
    rejected_scores: list[Scores] = []
    for j in batch.judgments:
        rubric = ctx.rubrics[j.rubric_version_id]
        candidates = batch.items[j.item_id].candidates
        scores = {c: rubric.scores(j.scores.get(c, {})) for c in candidates}
        weight, annotator = ctx.weight(j.annotator_id, j.item_id), ctx.pseudonym(j.annotator_id)
        for chosen, rejected, tie in pairs(candidates, j.ranking):
            item_ids.append(j.item_id)
            labels.append(rubric.label)
            chosen_ids.append(chosen)
            rejected_ids.append(rejected)
            margins.append(margin(scores[chosen], scores[rejected], rubric))
            ties.append(tie)
            weights.append(weight)
            annotators.append(annotator)
            judgment_ids.append(j.uuid)
            chosen_scores.append(scores[chosen])
            rejected_scores.append(scores[rejected])
    columns = {
        **batch.common_columns(item_ids, labels),
        **_pair_columns(batch.candidate_columns(chosen_ids), batch.candidate_columns(rejected_ids)),
        "margin": pa.array(margins, pa.float64()),
        "tie": pa.array(ties, pa.bool_()),
        "weight": pa.array(weights, pa.float64()),
        "chosen_scores": pa.array(chosen_scores, SCORES),  # (criterion, score) tuples: Arrow converts them fast
        "rejected_scores": pa.array(rejected_scores, SCORES),
        "annotator": pa.array(annotators, pa.string()),
        "judgment_id": pa.array(judgment_ids, pa.string()),
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
    for item_id, group in itertools.groupby(batch.judgments, key=lambda j: j.item_id):
        judgments = list(group)
        rubric = ctx.rubrics[judgments[0].rubric_version_id]
        candidates = batch.items[item_id].candidates
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
    for j in batch.judgments:
        rubric = ctx.rubrics[j.rubric_version_id]
        entries = []
        for uuid in batch.items[j.item_id].candidates:
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
        **batch.common_columns([j.item_id for j in batch.judgments], labels),
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
    for j in batch.judgments:
        rubric = ctx.rubrics[j.rubric_version_id]
        annotator = ctx.pseudonym(j.annotator_id)
        for uuid in batch.items[j.item_id].candidates:
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
