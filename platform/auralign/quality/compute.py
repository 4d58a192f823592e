"""One campaign's judgments as arrays (load_campaign, the only database access here) and every
quality figure computed from them (compute_quality, pure numpy). docs/quality.md defines them."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from django.db.models import Max

from auralign.annotation.models import Item, ItemCandidate, Judgment
from auralign.campaigns.models import Campaign
from auralign.generation.models import Candidate
from auralign.quality import gold, stats

RELIABILITY_THRESHOLDS = (0.0, 0.5, 0.75)
CONTENT_FLAGS = ("broken_audio", "unsafe")
_GOLD_PRIOR = 2.0  # virtual perfect gold answers
_HONEYPOT_PRIOR = 1.0  # virtual caught honeypots
_AGREEMENT_PRIOR = 10.0  # virtual pair comparisons at the campaign's typical agreement


@dataclass
class Params:
    rounds: int = 200
    thresholds: tuple[float, ...] = RELIABILITY_THRESHOLDS
    gate_items: int = 0
    gate_accuracy: float = 0.0
    min_listened: float = 0.0
    seed: int = 0
    now: float = field(default_factory=lambda: datetime.now(UTC).timestamp())


@dataclass
class CampaignData:
    criteria: list[dict]  # key, label, scale_min, scale_max, weight
    policies: list[tuple[str, str]]  # (uuid, name), index = policy code
    item_ids: np.ndarray  # (I,)
    item_gold: np.ndarray  # (I,) bool
    item_honeypot: np.ndarray  # (I,) bool
    item_overlap: np.ndarray  # (I,)
    item_dialogue: list[str]  # external ids
    item_uuid: list[str]
    item_cands: list[list[str]]  # candidate uuids by position
    item_policy: np.ndarray  # (I, K) policy code, -1 = no candidate
    item_degraded: np.ndarray  # (I, K) bool: a honeypot's degraded copy
    judgment_ids: np.ndarray  # (J,), ascending
    j_item: np.ndarray  # (J,) item index
    j_user: np.ndarray  # (J,) user id
    j_ranks: np.ndarray  # (J, K) tier index, NaN = absent
    j_scores: np.ndarray  # (J, K, C) raw scores, NaN = absent
    j_listened: np.ndarray  # (J,) mean listened fraction over the item's candidates
    j_time_ms: np.ndarray  # (J,)
    j_created: np.ndarray  # (J,) epoch seconds
    j_first: np.ndarray  # (J,) position shown first, -1 unknown
    j_gold_accuracy: np.ndarray  # (J,) NaN unless a gold item
    j_caught: np.ndarray  # (J,) 1/0 on honeypot items, NaN elsewhere
    flag_counts: Counter  # (item index, position or -1 for the item, flag) -> judgments

    @property
    def k(self) -> int:
        return self.item_policy.shape[1]


def load_campaign(campaign: Campaign) -> CampaignData:
    criteria = [
        {"key": c.key, "label": c.label, "scale_min": c.scale_min, "scale_max": c.scale_max, "weight": c.weight}
        for c in campaign.rubric_version.criteria.all()
    ]
    policy_rows = list(campaign.campaign_policies.select_related("policy").order_by("policy__name"))
    policy_code = {cp.policy_id: i for i, cp in enumerate(policy_rows)}
    cand_rows = Candidate.objects.filter(campaign=campaign).values_list("id", "uuid", "policy_id", "honeypot_of_id")
    cand = {cid: (str(u), policy_code.get(pid, -1), hp is not None) for cid, u, pid, hp in cand_rows}

    items = list(
        Item.objects.filter(campaign=campaign).order_by("id").values_list(
            "id", "uuid", "is_gold", "gold_ranking", "gold_pairs", "is_honeypot", "overlap", "dialogue__external_id"
        )
    )
    index = {row[0]: i for i, row in enumerate(items)}
    links: dict[int, list[tuple[int, int]]] = {}
    for item_id, cand_id, pos in ItemCandidate.objects.filter(item__campaign=campaign).values_list("item_id", "candidate_id", "position"):
        links.setdefault(item_id, []).append((pos, cand_id))
    k = max((len(v) for v in links.values()), default=2)
    n_items = len(items)
    item_policy = np.full((n_items, k), -1, dtype=np.int64)
    item_degraded = np.zeros((n_items, k), dtype=bool)
    item_cands: list[list[str]] = []
    position: list[dict[str, int]] = []
    constraints: dict[int, list[tuple[str, str]]] = {}
    degraded_uuids: dict[int, set[str]] = {}
    for i, (item_id, _, is_gold, gold_ranking, gold_pairs, is_honeypot, *_rest) in enumerate(items):
        uuids = []
        for p, (_, cand_id) in enumerate(sorted(links.get(item_id, []))):
            u, code, degraded = cand[cand_id]
            uuids.append(u)
            item_policy[i, p] = code
            item_degraded[i, p] = degraded
        item_cands.append(uuids)
        position.append({u: p for p, u in enumerate(uuids)})
        if is_gold:
            constraints[i] = gold.gold_constraints(gold_ranking, gold_pairs)
        if is_honeypot:
            degraded_uuids[i] = {u for p, u in enumerate(uuids) if item_degraded[i, p]}

    keys = [c["key"] for c in criteria]
    # Everything up to the newest judgment now; later ones belong to the next run.
    judgments = Judgment.objects.filter(campaign=campaign)
    newest = judgments.aggregate(m=Max("id"))["m"] or 0
    judgments = judgments.filter(id__lte=newest)
    n = judgments.count()
    ids, j_item, j_user, times, first = (np.zeros(n, dtype=np.int64) for _ in range(5))
    listened, gold_acc, caught = np.zeros(n), np.full(n, np.nan), np.full(n, np.nan)
    ranks, scores = np.full((n, k), np.nan), np.full((n, k, len(keys)), np.nan)
    created = np.zeros(n)
    flag_counts: Counter = Counter()
    rows = judgments.order_by("id").values_list(
        "id", "item_id", "annotator_id", "ranking", "scores", "listened", "time_spent_ms", "created_at",
        "assignment__display_order", "flags",
    )
    for j, (jid, item_id, user_id, ranking, given, heard, time_ms, at, order, flags) in enumerate(rows.iterator(chunk_size=2000)):
        i = index[item_id]
        pos = position[i]
        for t, tier in enumerate(ranking or []):
            for u in tier:
                if u in pos:
                    ranks[j, pos[u]] = t
        for u, per in (given or {}).items():
            if u in pos and isinstance(per, dict):
                for c, key in enumerate(keys):
                    v = per.get(key)
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        scores[j, pos[u], c] = v
        ids[j], j_item[j], j_user[j], times[j], created[j] = jid, i, user_id, time_ms, at.timestamp()
        heard = heard or {}
        listened[j] = sum(min(1.0, max(0.0, float(heard.get(u, 0.0)))) for u in pos) / len(pos) if pos else 0.0
        first[j] = pos.get(order[0], -1) if order else -1
        if i in constraints:
            accuracy = gold.gold_accuracy(ranking, constraints[i])
            gold_acc[j] = np.nan if accuracy is None else accuracy
        if i in degraded_uuids:
            caught[j] = float(gold.honeypot_caught(ranking, degraded_uuids[i]))
        for u, marks in (flags or {}).items():
            p = -1 if u == "_item" else pos.get(u)
            if p is not None and isinstance(marks, list):
                for mark in set(marks) & {*CONTENT_FLAGS, "none_acceptable"}:
                    flag_counts[(i, p, mark)] += 1
    return CampaignData(
        criteria=criteria,
        policies=[(str(cp.policy.uuid), cp.policy.name) for cp in policy_rows],
        item_ids=np.array([row[0] for row in items], dtype=np.int64),
        item_gold=np.array([row[2] for row in items], dtype=bool),
        item_honeypot=np.array([row[5] for row in items], dtype=bool),
        item_overlap=np.array([row[6] for row in items], dtype=np.int64),
        item_dialogue=[row[7] for row in items],
        item_uuid=[str(row[1]) for row in items],
        item_cands=item_cands,
        item_policy=item_policy,
        item_degraded=item_degraded,
        judgment_ids=ids,
        j_item=j_item,
        j_user=j_user,
        j_ranks=ranks,
        j_scores=scores,
        j_listened=listened,
        j_time_ms=times.astype(float),
        j_created=created,
        j_first=first,
        j_gold_accuracy=gold_acc,
        j_caught=caught,
        flag_counts=flag_counts,
    )


# --- computation ---------------------------------------------------------------------------------


@dataclass
class QualityResult:
    annotators: list[dict]  # AnnotatorStats fields, one per annotator
    items: list[dict]  # ItemConsensus fields, one per item with a counted judgment
    progress: dict
    agreement: dict
    leaderboard: dict
    flags: dict


def _none(x) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def _by_user(data: CampaignData) -> list[tuple[int, np.ndarray]]:
    """(user id, that user's judgment indices in submission order) for every annotator."""
    if not len(data.j_user):
        return []
    order = np.argsort(data.j_user, kind="stable")
    users, starts = np.unique(data.j_user[order], return_index=True)
    return [(int(u), rows) for u, rows in zip(users.tolist(), np.split(order, starts[1:]), strict=True)]


def _qualified(data: CampaignData, params: Params) -> dict[int, bool]:
    out = {}
    for user, rows in _by_user(data):
        acc = data.j_gold_accuracy[rows]
        acc = acc[~np.isnan(acc)].tolist()
        out[user] = gold.qualification_passed(acc, gold_items=params.gate_items, min_accuracy=params.gate_accuracy)
    return out


def _weighted_scores(data: CampaignData) -> np.ndarray:
    """(J, K) rubric-weighted mean of each candidate's scores, each criterion scaled to 0..1."""
    if not data.criteria:
        return np.full(data.j_ranks.shape, np.nan)
    lo = np.array([c["scale_min"] for c in data.criteria], dtype=float)
    hi = np.array([c["scale_max"] for c in data.criteria], dtype=float)
    w = np.array([c["weight"] for c in data.criteria], dtype=float)
    scaled = (data.j_scores - lo) / (hi - lo)
    present = ~np.isnan(scaled)
    weight = (present * w).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, np.nansum(scaled * w, axis=2) / weight, np.nan)


def _alpha_units(data: CampaignData, values: np.ndarray, n_values: int, mask: np.ndarray) -> float | None:
    """Units are (item, position); `values` (J, K) integer codes or NaN."""
    k = data.k
    units = (data.j_item[:, None] * k + np.arange(k)[None, :])[mask].reshape(-1)
    return stats.krippendorff_alpha(stats.value_counts(units, values[mask].reshape(-1), len(data.item_ids) * k, n_values))


def criterion_view(key: str) -> str:
    """The leaderboard view of one criterion (the dot keeps it apart from 'ranking' and 'score',
    since criterion keys are slugs)."""
    return f"criterion.{key}"


def _agreement(data: CampaignData, counted: np.ndarray, relations: dict[str, np.ndarray]) -> tuple[dict, np.ndarray]:
    """α and pairwise agreement for the ranking and for each criterion, and the per-item agreement."""
    n_items = len(data.item_ids)

    def figures(rel: np.ndarray, codes: np.ndarray, n_values: int) -> tuple[dict, np.ndarray]:
        ra = stats.relation_agreement(data.j_item[counted], rel[counted], n_items)
        alpha = _alpha_units(data, codes, n_values, counted)
        return {"alpha": _none(alpha), "pairwise": _none(ra.pooled), "items": int((~np.isnan(ra.per_item)).sum())}, ra.per_item

    ranking, item_agreement = figures(relations["ranking"], data.j_ranks, data.k)
    criteria = []
    for c, cr in enumerate(data.criteria):
        span = cr["scale_max"] - cr["scale_min"]
        codes = data.j_scores[:, :, c] - cr["scale_min"]
        codes = np.where((codes >= 0) & (codes <= span), codes, np.nan)
        found, _ = figures(relations[criterion_view(cr["key"])], codes, span + 1)
        criteria.append({"key": cr["key"], "label": cr["label"], **found})
    agreement = {
        "ranking": ranking,
        "criteria": criteria,
        "mean_item_agreement": _none(np.nanmean(item_agreement)) if np.isfinite(item_agreement).any() else None,
    }
    return agreement, item_agreement


def _position_bias(data: CampaignData, rows: np.ndarray) -> dict:
    """How often the candidate shown first wins (a tie for first shares the win), against chance
    1/K, over the judgments `rows`."""
    rows = rows[data.j_first[rows] >= 0]
    if not len(rows):
        return {"judgments": 0, "first_shown_win_rate": None, "chance": None, "z": None}
    ranks = data.j_ranks[rows]
    first_rank = ranks[np.arange(len(rows)), data.j_first[rows]]
    top = ranks == np.nanmin(ranks, axis=1, keepdims=True)
    wins = np.where(first_rank == np.nanmin(ranks, axis=1), 1.0 / top.sum(axis=1), 0.0)
    chance = 1.0 / (~np.isnan(ranks)).sum(axis=1)
    var = (chance * (1 - chance)).sum()
    z = (wins.sum() - chance.sum()) / np.sqrt(var) if var > 0 else np.nan
    return {
        "judgments": int(len(rows)),
        "first_shown_win_rate": _none(wins.mean()),
        "chance": _none(chance.mean()),
        "z": _none(z),
    }


def _weights(per_user: dict[int, dict], params: Params) -> None:
    """Reliability weight per annotator (docs/quality.md): gold × honeypot × agreement × listening."""
    chance_corrected = {}
    for u in per_user:
        s = per_user[u]
        if s["loo_pairs"]:
            chance_corrected[u] = min(1.0, max(0.0, 2.0 * s["loo_agreement"] - 1.0))
    established = [v for u, v in chance_corrected.items() if per_user[u]["loo_pairs"] >= _AGREEMENT_PRIOR]
    typical = float(np.median(established)) if established else 1.0
    for u in per_user:
        s = per_user[u]
        g = (s["_gold_sum"] + _GOLD_PRIOR) / (s["gold_answered"] + _GOLD_PRIOR)
        h = (s["honeypots_caught"] + _HONEYPOT_PRIOR) / (s["honeypots_seen"] + _HONEYPOT_PRIOR)
        pairs = s["loo_pairs"]
        a = (pairs * chance_corrected.get(u, 0.0) + _AGREEMENT_PRIOR * typical) / (pairs + _AGREEMENT_PRIOR)
        listen = 1.0
        if params.min_listened > 0 and s["listened_mean"] is not None:
            listen = min(1.0, s["listened_mean"] / params.min_listened)
        s["weight"] = round(min(1.0, max(0.0, g * h * a * listen)), 4)


def _annotators(data: CampaignData, counted: np.ndarray, qualified: dict[int, bool], params: Params) -> list[dict]:
    n_items = len(data.item_ids)
    loo_sum, loo_pairs = stats.leave_one_out_agreement(data.j_item, stats.rank_relations(data.j_ranks), counted, n_items)
    per_user: dict[int, dict] = {}
    for u, m in _by_user(data):
        gold_acc = data.j_gold_accuracy[m]
        gold_acc = gold_acc[~np.isnan(gold_acc)]
        caught = data.j_caught[m]
        caught = caught[~np.isnan(caught)]
        pairs = loo_pairs[m].sum()
        time_ms = data.j_time_ms[m]
        bias = _position_bias(data, m)
        created = data.j_created[m]
        per_user[u] = {
            "annotator_id": u,
            "judgments": len(m),
            "qualified": qualified[u],
            "gold_answered": int(len(gold_acc)),
            "gold_accuracy": _none(gold_acc.mean()) if len(gold_acc) else None,
            "_gold_sum": float(gold_acc.sum()),
            "honeypots_seen": int(len(caught)),
            "honeypots_caught": int(caught.sum()),
            "loo_agreement": _none(loo_sum[m].sum() / pairs) if pairs else None,
            "loo_pairs": int(pairs),
            "first_shown_win_rate": bias["first_shown_win_rate"],
            "first_shown_chance": bias["chance"],
            "position_bias_z": bias["z"],
            "listened_mean": _none(data.j_listened[m].mean()),
            "median_time_ms": int(np.median(time_ms)),
            "judgments_per_hour": _none(len(time_ms) / (time_ms.sum() / 3.6e6)) if time_ms.sum() > 0 else None,
            "judgments_last_24h": int((created >= params.now - 86400).sum()),
            "first_at": datetime.fromtimestamp(created.min(), UTC),
            "last_at": datetime.fromtimestamp(created.max(), UTC),
        }
    _weights(per_user, params)
    for s in per_user.values():
        del s["_gold_sum"]
    return list(per_user.values())


def _consensus(data: CampaignData, counted: np.ndarray, weights: np.ndarray, item_agreement: np.ndarray) -> list[dict]:
    """Per item: the counted judgments' reliability-weighted mean position (ties share their
    mean position); candidates with equal means share a consensus tier."""
    n_items, k = len(data.item_ids), data.k
    mid = stats.mid_ranks(data.j_ranks[counted])
    w = weights[counted][:, None] * ~np.isnan(mid)
    total = np.zeros((n_items, k))
    mass = np.zeros((n_items, k))
    np.add.at(total, data.j_item[counted], np.nan_to_num(mid) * w)
    np.add.at(mass, data.j_item[counted], w)
    n_judgments = np.bincount(data.j_item[counted], minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(mass > 0, total / mass, np.inf)  # candidates nobody ranked share the last tier
        order = np.argsort(mean, axis=1, kind="stable")
        ordered = np.take_along_axis(mean, order, axis=1)
        new_tier = np.concatenate([np.ones((n_items, 1), dtype=bool), np.diff(ordered, axis=1) > 1e-9], axis=1)
    agreement = [_none(a) for a in item_agreement.tolist()]
    out = []
    for i in np.nonzero(n_judgments)[0].tolist():
        uuids = data.item_cands[i]
        tiers: list[list[str]] = []
        for p, starts in zip(order[i].tolist(), new_tier[i].tolist(), strict=True):
            if p >= len(uuids):
                continue
            if starts or not tiers:
                tiers.append([])
            tiers[-1].append(uuids[p])
        out.append({"item_id": int(data.item_ids[i]), "judgments": int(n_judgments[i]), "agreement": agreement[i], "ranking": tiers})
    return out


@dataclass
class _PolicyPairs:
    """For every judgment and position pair: the two policies, and whether the pair compares two
    genuine replies of different policies (degraded honeypot copies and one policy's own samples
    are left out of the leaderboard)."""

    a: np.ndarray  # (J, P) policy code of the pair's first position
    b: np.ndarray
    usable: np.ndarray  # (J, P) bool

    @classmethod
    def of(cls, data: CampaignData) -> _PolicyPairs:
        first, second = stats.position_pairs(data.k)
        policy = data.item_policy[data.j_item]
        degraded = data.item_degraded[data.j_item]
        pa, pb = policy[:, first], policy[:, second]
        return cls(a=pa, b=pb, usable=(pa >= 0) & (pb >= 0) & (pa != pb) & ~(degraded[:, first] | degraded[:, second]))


def _comparisons(data: CampaignData, pairs: _PolicyPairs, rel: np.ndarray, mask: np.ndarray) -> stats.ComparisonPatterns:
    """Policy-vs-policy comparisons from the pair relations of the masked judgments; a tie is
    half a win each way."""
    j, p = np.nonzero(pairs.usable & mask[:, None] & ~np.isnan(rel))
    r, pa, pb = rel[j, p], pairs.a[j, p], pairs.b[j, p]
    tie = r == 0
    winner = np.concatenate([np.where(r > 0, pa, pb), pa[tie]])
    loser = np.concatenate([np.where(r > 0, pb, pa), pb[tie]])
    halves = np.concatenate([np.where(tie, 1, 2), np.ones(tie.sum(), dtype=np.int64)])
    return stats.comparison_patterns(np.concatenate([j, j[tie]]), winner, loser, halves, len(data.policies))


def _leaderboard(data: CampaignData, relations: dict[str, np.ndarray], counted: np.ndarray, weights: np.ndarray, params: Params) -> dict:
    rng = np.random.default_rng(params.seed)
    pairs = _PolicyPairs.of(data)
    out = {"views": [], "thresholds": list(params.thresholds), "boards": {}}
    labels = {"ranking": "Overall (rankings)", "score": "Overall (weighted rubric score)"}
    labels.update({criterion_view(c["key"]): c["label"] for c in data.criteria})
    for name, rel in relations.items():
        out["views"].append({"key": name, "label": labels[name]})
        for t in params.thresholds:
            patterns = _comparisons(data, pairs, rel, counted & (weights >= t))
            out["boards"][f"{name}@{t:g}"] = _board(data, patterns, params, rng)
    return out


def _board(data: CampaignData, patterns: stats.ComparisonPatterns, params: Params, rng: np.random.Generator) -> dict:
    total = patterns.total if len(patterns.counts) else np.zeros((len(data.policies),) * 2)
    n = total + total.T
    active = np.nonzero(n.sum(axis=1) > 0)[0]
    rows = [{"id": u, "name": name, "strength": None, "ci": None, "comparisons": 0, "win_rate": None} for u, name in data.policies]
    if len(active) >= 2:
        sub = stats.ComparisonPatterns(wins=patterns.wins[:, active][:, :, active], counts=patterns.counts)
        lb = stats.bt_leaderboard(sub, rounds=params.rounds, rng=rng)
        for x, i in enumerate(active):
            rows[i].update(
                strength=_none(lb.theta[x]), ci=[_none(lb.ci_low[x]), _none(lb.ci_high[x])],
                comparisons=int(round(n[i].sum())), win_rate=_none(total[i].sum() / n[i].sum()),
            )
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, total / n, np.nan)
    order = sorted(range(len(rows)), key=lambda i: -(rows[i]["strength"] if rows[i]["strength"] is not None else -1e9))
    return {
        "policies": [rows[i] for i in order],
        "matrix": {
            "policies": [rows[i]["id"] for i in order],
            "win_rate": [[_none(rate[i, j]) for j in order] for i in order],
            "comparisons": [[int(round(n[i, j])) for j in order] for i in order],
        },
        "judgments": int(patterns.counts.sum()),
        "comparisons": int(round(n.sum() / 2)),
        "rounds": params.rounds if len(active) >= 2 else 0,
    }


def _progress(data: CampaignData, counted: np.ndarray, qualified: dict[int, bool]) -> dict:
    regular = ~data.item_gold
    times = data.j_created
    series, bucket = [], "hour"
    complete_at = np.full(len(data.item_ids), np.nan)
    order = np.lexsort((times, data.j_item))
    items_sorted = data.j_item[order]
    start = np.searchsorted(items_sorted, np.arange(len(data.item_ids)))
    counts = np.bincount(data.j_item, minlength=len(data.item_ids))
    done = regular & (counts >= data.item_overlap)
    complete_at[done] = times[order][start[done] + data.item_overlap[done] - 1]
    if len(times):
        span = times.max() - times.min()
        size = 3600.0 if span <= 3 * 86400 else 86400.0
        bucket = "hour" if size == 3600.0 else "day"
        t0 = np.floor(times.min() / size) * size
        n_buckets = int((times.max() - t0) // size) + 1
        per = np.bincount(((times - t0) // size).astype(np.int64), minlength=n_buckets)
        finished = complete_at[done]
        per_done = np.bincount(((finished - t0) // size).astype(np.int64), minlength=n_buckets)
        cum, cum_done = np.cumsum(per), np.cumsum(per_done)
        series = [
            {"t": datetime.fromtimestamp(t0 + b * size, UTC).isoformat(), "judgments": int(per[b]),
             "cumulative": int(cum[b]), "items_complete": int(cum_done[b])}
            for b in range(n_buckets)
        ]
    return {
        "items": int(regular.sum()),
        "items_complete": int(done.sum()),
        "gold_items": int(data.item_gold.sum()),
        "honeypot_items": int(data.item_honeypot.sum()),
        "judgments": int(len(times)),
        "counted_judgments": int(counted.sum()),
        "annotators": len(qualified),
        "qualified_annotators": sum(qualified.values()),
        "bucket": bucket,
        "series": series,
    }


def _flags(data: CampaignData) -> dict:
    shown = np.bincount(data.j_item, minlength=len(data.item_ids))
    by_policy = {code: {"id": u, "name": name, "shown": 0, **dict.fromkeys(CONTENT_FLAGS, 0)} for code, (u, name) in enumerate(data.policies)}
    for i, p in zip(*np.nonzero(data.item_policy >= 0), strict=True):
        by_policy[data.item_policy[i, p]]["shown"] += int(shown[i])
    candidates: dict[tuple[int, int], dict] = {}
    items = []
    for (i, p, mark), n in data.flag_counts.items():
        if p < 0:
            items.append({"item": data.item_uuid[i], "dialogue": data.item_dialogue[i], "none_acceptable": n, "judgments": int(shown[i])})
            continue
        code = int(data.item_policy[i, p])
        if code >= 0:
            by_policy[code][mark] += n
        row = candidates.setdefault((i, p), {
            "candidate": data.item_cands[i][p], "item": data.item_uuid[i], "dialogue": data.item_dialogue[i],
            "policy": data.policies[code][1] if code >= 0 else None, "degraded": bool(data.item_degraded[i, p]),
            "judgments": int(shown[i]), **dict.fromkeys(CONTENT_FLAGS, 0),
        })
        row[mark] += n
    flagged = sorted(candidates.values(), key=lambda r: -(r["broken_audio"] + r["unsafe"]))
    return {
        "by_policy": list(by_policy.values()),
        "candidates": flagged[:100],
        "none_acceptable": sorted(items, key=lambda r: -r["none_acceptable"])[:100],
    }


def compute_quality(data: CampaignData, params: Params) -> QualityResult:
    qualified = _qualified(data, params)
    counted = np.array([qualified[int(u)] for u in data.j_user], dtype=bool)
    relations = {"ranking": stats.rank_relations(data.j_ranks), "score": stats.score_relations(_weighted_scores(data))}
    for c, cr in enumerate(data.criteria):
        relations[criterion_view(cr["key"])] = stats.score_relations(data.j_scores[:, :, c])
    agreement, item_agreement = _agreement(data, counted, relations)
    agreement["position_bias"] = _position_bias(data, np.nonzero(counted)[0])
    annotators = _annotators(data, counted, qualified, params)
    weight_of = {a["annotator_id"]: a["weight"] for a in annotators}
    weights = np.array([weight_of[int(u)] for u in data.j_user], dtype=float)
    return QualityResult(
        annotators=annotators,
        items=_consensus(data, counted, weights, item_agreement),
        progress=_progress(data, counted, qualified),
        agreement=agreement,
        leaderboard=_leaderboard(data, relations, counted, weights, params),
        flags=_flags(data),
    )
