"""Django-free reward-model and DPO training on export snapshots (see docs/training.md)."""

from .dpo import DPOConfig, train_dpo
from .reward_model import item_uncertainty, load_reward_model, score_candidates
from .rm import RMConfig, train_reward_model

__all__ = [
    "DPOConfig",
    "RMConfig",
    "item_uncertainty",
    "load_reward_model",
    "score_candidates",
    "train_dpo",
    "train_reward_model",
]
