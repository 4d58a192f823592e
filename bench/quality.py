"""Quality statistics speed: Bradley–Terry with bootstrap CIs, Krippendorff's α, and a full
recompute of a simulated campaign (everything after the database load).

    python bench/quality.py            # 1M comparisons x 1,000 rounds; α on 100k items; 300k-judgment recompute
    python bench/quality.py --quick    # small sizes, a few seconds

Targets (issue #5): BT + 1,000 bootstrap rounds on 1M comparisons < 10 s; α on 100k items < 5 s.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "platform"), str(REPO)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("AURALIGN_TESTING", "1")  # no SECRET_KEY needed; nothing touches a database


def simulate_comparisons(n: int, strengths: np.ndarray, rng: np.random.Generator):
    """n independent pairwise judgments between random distinct policies (BT outcomes)."""
    p = len(strengths)
    a = rng.integers(0, p, n)
    b = (a + rng.integers(1, p, n)) % p
    a_wins = rng.random(n) < 1.0 / (1.0 + np.exp(strengths[b] - strengths[a]))
    return np.where(a_wins, a, b), np.where(a_wins, b, a)


def bench_bradley_terry(n: int, rounds: int, rng: np.random.Generator) -> dict:
    from auralign.quality import stats

    true = np.linspace(-1.0, 1.0, 10)
    winner, loser = simulate_comparisons(n, true, rng)
    start = time.perf_counter()
    patterns = stats.comparison_patterns(np.arange(n), winner, loser, np.full(n, 2), len(true))
    grouped = time.perf_counter()
    board = stats.bt_leaderboard(patterns, rounds=rounds, rng=rng)
    done = time.perf_counter()
    covered = float(np.mean((board.ci_low <= true - true.mean()) & (true - true.mean() <= board.ci_high)))
    return {
        "bt_comparisons": n,
        "bt_rounds": rounds,
        "bt_group_s": round(grouped - start, 3),
        "bt_fit_bootstrap_s": round(done - grouped, 3),
        "bt_total_s": round(done - start, 3),
        "bt_max_abs_error": round(float(np.abs(board.theta - (true - true.mean())).max()), 4),
        "bt_ci_coverage": covered,
    }


def bench_alpha(items: int, rng: np.random.Generator) -> dict:
    """One criterion (scale 1-5) on `items` items x 3 candidates, 3 of 20 raters per item."""
    from auralign.quality import stats

    k, raters = 3, 3
    quality = rng.normal(size=items * k)
    units = np.repeat(np.arange(items * k), raters)
    scores = np.clip(np.round(3 + quality[units] + rng.normal(0, 0.8, len(units))), 1, 5) - 1
    start = time.perf_counter()
    alpha = stats.krippendorff_alpha(stats.value_counts(units, scores, items * k, 5))
    return {"alpha_items": items, "alpha_units": items * k, "alpha_s": round(time.perf_counter() - start, 3), "alpha": round(alpha, 4)}


def simulated_campaign(items: int, rng: np.random.Generator):
    """CampaignData for a campaign of `items` items x 3 candidates x 3 judgments (no database)."""
    from auralign.quality.compute import CampaignData

    k, per_item, n_policies, n_users = 3, 3, 6, 50
    criteria = [{"key": f"c{i}", "label": f"criterion {i}", "scale_min": 1, "scale_max": 5, "weight": 1.0} for i in range(4)]
    strengths = np.linspace(-0.8, 0.8, n_policies)
    item_policy = np.argsort(rng.random((items, n_policies)), axis=1)[:, :k]
    j_item = np.repeat(np.arange(items), per_item)
    n = len(j_item)
    utility = strengths[item_policy[j_item]] + rng.gumbel(size=(n, k))
    ranks = np.argsort(np.argsort(-utility, axis=1), axis=1).astype(float)
    scores = np.clip(np.round(3 + utility[:, :, None] + rng.normal(0, 0.7, (n, k, len(criteria)))), 1, 5)
    created = 1.7e9 + np.sort(rng.uniform(0, 5 * 86400, n))
    return CampaignData(
        criteria=criteria,
        policies=[(f"policy-{i}", f"policy {i}") for i in range(n_policies)],
        item_ids=np.arange(1, items + 1),
        item_gold=np.zeros(items, dtype=bool),
        item_honeypot=np.zeros(items, dtype=bool),
        item_overlap=np.full(items, per_item),
        item_dialogue=[f"d{i}" for i in range(items)],
        item_uuid=[f"item-{i}" for i in range(items)],
        item_cands=[[f"c{i}-{p}" for p in range(k)] for i in range(items)],
        item_policy=item_policy,
        item_degraded=np.zeros((items, k), dtype=bool),
        judgment_ids=np.arange(1, n + 1),
        j_item=j_item,
        j_user=rng.integers(1, n_users + 1, n),
        j_ranks=ranks,
        j_scores=scores,
        j_listened=rng.uniform(0.7, 1.0, n),
        j_time_ms=rng.uniform(10_000, 60_000, n),
        j_created=created,
        j_first=rng.integers(0, k, n),
        j_gold_accuracy=np.full(n, np.nan),
        j_caught=np.full(n, np.nan),
        flag_counts=Counter(),
    )


def bench_recompute(items: int, rounds: int, rng: np.random.Generator) -> dict:
    import django

    django.setup()
    from auralign.quality.compute import Params, compute_quality

    data = simulated_campaign(items, rng)
    start = time.perf_counter()
    result = compute_quality(data, Params(rounds=rounds, now=float(data.j_created.max())))
    seconds = time.perf_counter() - start
    return {
        "recompute_judgments": len(data.j_item),
        "recompute_boards": len(result.leaderboard["boards"]),
        "recompute_rounds": rounds,
        "recompute_s": round(seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    sizes = (
        {"comparisons": 100_000, "rounds": 200, "alpha_items": 10_000, "recompute_items": 5_000, "recompute_rounds": 50}
        if args.quick
        else {"comparisons": 1_000_000, "rounds": 1000, "alpha_items": 100_000, "recompute_items": 100_000, "recompute_rounds": 200}
    )
    figures = {"quick": args.quick}
    stages = [
        ("Bradley–Terry + bootstrap", lambda: bench_bradley_terry(sizes["comparisons"], sizes["rounds"], rng)),
        ("Krippendorff's α", lambda: bench_alpha(sizes["alpha_items"], rng)),
        ("full recompute (arrays)", lambda: bench_recompute(sizes["recompute_items"], sizes["recompute_rounds"], rng)),
    ]
    for name, run in tqdm(stages, desc="quality bench", unit="stage", file=sys.stderr):
        result = run()
        tqdm.write(f"{name}: {result}", file=sys.stderr)
        figures.update(result)
    sys.stderr.flush()
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
