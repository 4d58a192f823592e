"""Preference losses as small pure functions of score differences.

Notation: for a pair (i, j) where i was preferred (or tied with j), ``d = r_i - r_j`` is the
difference of the model's scores: reward-model head outputs, or DPO's implicit reward
``beta * (log pi/pi_ref (i) - log pi/pi_ref (j))``.

Tie models (one scalar ``tie_logit`` per head, unconstrained):
- ``"rao_kupper"`` (Rao & Kupper 1967): P(i > j) = sigmoid(d - a), a = log(theta) = softplus(tie_logit)
- ``"davidson"`` (Davidson 1970): P(i > j) = e^ri / (e^ri + e^rj + nu e^((ri+rj)/2)), log(nu) = tie_logit
- ``"drop"``: plain Bradley-Terry; tied pairs must be removed before calling.
"""

import torch
import torch.nn.functional as F

TIE_MODELS = ("rao_kupper", "davidson", "drop")


def pair_nll(d, tie, tie_logit, ties: str):
    """Negative log-likelihood of each pair's outcome: ``i`` beat ``j`` (tie=False) or they tied."""
    if ties == "drop":
        return -F.logsigmoid(d)
    if ties == "rao_kupper":
        a = F.softplus(tie_logit).clamp_min(1e-4)  # log(theta) > 0
        log_win = -F.softplus(a - d)
        log_tie = torch.log(torch.expm1(2 * a)) - F.softplus(a - d) - F.softplus(a + d)
    elif ties == "davidson":
        log_nu = tie_logit.expand_as(d)
        log_win = -torch.logsumexp(torch.stack([torch.zeros_like(d), -d, log_nu - d / 2]), dim=0)
        log_tie = log_nu - torch.logsumexp(torch.stack([d / 2, -d / 2, log_nu]), dim=0)
    else:
        raise ValueError(f"unknown tie model {ties!r}; expected one of {TIE_MODELS}")
    return -torch.where(tie, log_tie, log_win)


def decisive_win_prob(d, tie_logit, ties: str):
    """P(i beats j | the pair was not tied): the probability to calibrate against strict preferences."""
    if ties == "rao_kupper":
        a = F.softplus(tie_logit)
        win, loss = torch.sigmoid(d - a), torch.sigmoid(-d - a)
        return win / (win + loss)
    return torch.sigmoid(d)  # Bradley-Terry, and Davidson conditioned on a decisive outcome


def group_mean(values, group, n_groups: int):
    """Mean of ``values`` per group (InstructGPT: all pairs of one ranking are one batch element).

    Returns (means, counts); groups without values get mean 0 and count 0.
    """
    sums = torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add(0, group, values)
    counts = torch.zeros(n_groups, dtype=values.dtype, device=values.device).index_add(
        0, group, torch.ones_like(values)
    )
    return sums / counts.clamp_min(1), counts


def weighted_mean(values, weights):
    """Weighted mean; ``weights`` of 0 exclude an element. Returns 0 when all weights are 0."""
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


def ranking_loss(scores, pairs, n_groups: int, group_weight, tie_logit, ties: str, margin_scale: float):
    """Listwise loss of one head: mean pair NLL per judgment, then weighted mean over judgments.

    ``scores``: (N,) one score per candidate in the batch.
    ``pairs``: dict of (P,) tensors ``win``, ``lose`` (candidate indices), ``tie`` (bool),
    ``margin`` (>= 0, strict pairs must win by ``margin_scale * margin``), ``group`` (judgment index).
    """
    d = scores[pairs["win"]] - scores[pairs["lose"]]
    d = d - margin_scale * torch.where(pairs["tie"], 0.0, pairs["margin"])
    per_group, counts = group_mean(pair_nll(d, pairs["tie"], tie_logit, ties), pairs["group"], n_groups)
    return weighted_mean(per_group, group_weight * (counts > 0))


def dpo_rewards(policy_logps, ref_logps, beta: float):
    """DPO's implicit reward of each sequence: beta * log(pi / pi_ref)."""
    return beta * (policy_logps - ref_logps)


def dpo_loss(
    chosen_rewards, rejected_rewards, tie, margin, weight, tie_logit, ties: str, margin_scale: float
):
    """DPO loss over a batch of pairs, with ties (DPO-RK / DPO-D), margins and per-example weights.

    With no ties, margin_scale 0 and unit weights this is exactly DPO's sigmoid loss.
    """
    d = chosen_rewards - rejected_rewards - margin_scale * torch.where(tie, 0.0, margin)
    return weighted_mean(pair_nll(d, tie, tie_logit, ties), weight)
