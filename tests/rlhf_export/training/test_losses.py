import math

import pytest
import torch
import torch.nn.functional as F

from rlhf_export.training.losses import (
    decisive_win_prob,
    dpo_loss,
    group_mean,
    pair_nll,
    ranking_loss,
    weighted_mean,
)

D = torch.linspace(-4, 4, 9)


def outcome_probs(d, tie_logit, ties):
    """P(i wins), P(j wins), P(tie) from the NLLs of the three outcomes."""
    no_tie, tie = torch.zeros_like(d, dtype=torch.bool), torch.ones_like(d, dtype=torch.bool)
    win = torch.exp(-pair_nll(d, no_tie, tie_logit, ties))
    lose = torch.exp(-pair_nll(-d, no_tie, tie_logit, ties))
    draw = torch.exp(-pair_nll(d, tie, tie_logit, ties))
    return win, lose, draw


@pytest.mark.parametrize("ties", ["rao_kupper", "davidson"])
@pytest.mark.parametrize("tie_logit", [-1.0, 0.0, 1.5])
def test_tie_models_give_a_distribution_over_win_lose_tie(ties, tie_logit):
    win, lose, draw = outcome_probs(D, torch.tensor(tie_logit), ties)
    assert torch.allclose(win + lose + draw, torch.ones_like(D), atol=1e-5)
    assert (draw > 0).all()


@pytest.mark.parametrize("ties", ["rao_kupper", "davidson"])
def test_a_tie_is_most_likely_between_equal_scores(ties):
    _, _, draw = outcome_probs(D, torch.tensor(0.5), ties)
    assert draw.argmax() == len(D) // 2


def test_davidson_matches_its_closed_form():
    ri, rj, nu = torch.tensor(1.3), torch.tensor(0.4), 0.7
    denominator = ri.exp() + rj.exp() + nu * ((ri + rj) / 2).exp()
    win, _, draw = outcome_probs((ri - rj).view(1), torch.tensor(math.log(nu)), "davidson")
    assert torch.allclose(win, ri.exp() / denominator)
    assert torch.allclose(draw, nu * ((ri + rj) / 2).exp() / denominator)


def test_rao_kupper_matches_its_closed_form():
    ri, rj, tie_logit = torch.tensor(0.2), torch.tensor(-0.9), torch.tensor(0.3)
    theta = F.softplus(tie_logit).exp()
    win, _, draw = outcome_probs((ri - rj).view(1), tie_logit, "rao_kupper")
    assert torch.allclose(win, ri.exp() / (ri.exp() + theta * rj.exp()))
    expected_tie = (
        (theta**2 - 1) * ri.exp() * rj.exp() / ((ri.exp() + theta * rj.exp()) * (rj.exp() + theta * ri.exp()))
    )
    assert torch.allclose(draw, expected_tie)


def test_drop_is_plain_bradley_terry():
    assert torch.allclose(
        pair_nll(D, torch.zeros(9, dtype=torch.bool), torch.tensor(0.0), "drop"), -F.logsigmoid(D)
    )


def test_unknown_tie_model_is_rejected():
    with pytest.raises(ValueError, match="unknown tie model"):
        pair_nll(D, torch.zeros(9, dtype=torch.bool), torch.tensor(0.0), "plackett")


@pytest.mark.parametrize("ties", ["drop", "rao_kupper", "davidson"])
def test_decisive_win_prob_is_win_given_no_tie(ties):
    win, lose, _ = outcome_probs(D, torch.tensor(0.4), ties)
    assert torch.allclose(decisive_win_prob(D, torch.tensor(0.4), ties), win / (win + lose), atol=1e-6)


def test_group_mean_averages_pairs_per_judgment():
    means, counts = group_mean(torch.tensor([1.0, 3.0, 10.0]), torch.tensor([0, 0, 2]), 3)
    assert means.tolist() == [2.0, 0.0, 10.0]
    assert counts.tolist() == [2.0, 0.0, 1.0]


def test_weighted_mean_ignores_zero_weights():
    assert weighted_mean(torch.tensor([1.0, 100.0, 3.0]), torch.tensor([1.0, 0.0, 1.0])).item() == 2.0


def pairs(win, lose, group, tie=None, margin=None):
    n = len(win)
    return {
        "win": torch.tensor(win),
        "lose": torch.tensor(lose),
        "group": torch.tensor(group),
        "tie": torch.tensor(tie or [False] * n),
        "margin": torch.tensor(margin or [0.0] * n),
    }


def test_ranking_loss_is_mean_over_pairs_of_each_judgment_then_over_judgments():
    # judgment 0 ranks candidates 0 > 1 > 2 (three pairs); judgment 1 ranks 3 > 4 (one pair)
    scores = torch.tensor([2.0, 1.0, -1.0, 0.5, 0.0])
    p = pairs([0, 0, 1, 3], [1, 2, 2, 4], [0, 0, 0, 1])
    loss = ranking_loss(scores, p, 2, torch.ones(2), torch.tensor(0.0), "drop", 0.0)
    nll = -F.logsigmoid(torch.tensor([1.0, 3.0, 2.0, 0.5]))
    assert torch.allclose(loss, (nll[:3].mean() + nll[3]) / 2)


def test_ranking_loss_weights_judgments():
    scores = torch.tensor([2.0, 1.0, 0.0, 1.0])
    p = pairs([0, 2], [1, 3], [0, 1])
    loss = ranking_loss(scores, p, 2, torch.tensor([3.0, 1.0]), torch.tensor(0.0), "drop", 0.0)
    nll = -F.logsigmoid(torch.tensor([1.0, -1.0]))
    assert torch.allclose(loss, (3 * nll[0] + nll[1]) / 4)


def test_margin_asks_the_winner_to_win_by_more():
    scores = torch.tensor([1.0, 0.0])
    without = ranking_loss(
        scores, pairs([0], [1], [0], margin=[2.0]), 1, torch.ones(1), torch.tensor(0.0), "drop", 0.0
    )
    with_margin = ranking_loss(
        scores, pairs([0], [1], [0], margin=[2.0]), 1, torch.ones(1), torch.tensor(0.0), "drop", 0.5
    )
    assert torch.allclose(with_margin, -F.logsigmoid(torch.tensor(1.0 - 0.5 * 2.0)))
    assert with_margin > without


def test_margin_does_not_apply_to_ties():
    scores = torch.tensor([0.3, 0.0])
    p = pairs([0], [1], [0], tie=[True], margin=[5.0])
    a = ranking_loss(scores, p, 1, torch.ones(1), torch.tensor(0.0), "davidson", 0.0)
    b = ranking_loss(scores, p, 1, torch.ones(1), torch.tensor(0.0), "davidson", 1.0)
    assert torch.allclose(a, b)


def test_dpo_loss_without_ties_margins_or_weights_is_the_sigmoid_dpo_loss():
    chosen, rejected = torch.tensor([0.3, -0.2, 0.05]), torch.tensor([0.1, 0.4, 0.0])
    n = len(chosen)
    loss = dpo_loss(
        chosen,
        rejected,
        torch.zeros(n, dtype=torch.bool),
        torch.zeros(n),
        torch.ones(n),
        torch.tensor(0.0),
        "drop",
        0.0,
    )
    assert torch.allclose(loss, -F.logsigmoid(chosen - rejected).mean())
