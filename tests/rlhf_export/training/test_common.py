import pytest

from rlhf_export.training.common import ConfigError
from rlhf_export.training.dpo import DPOConfig
from rlhf_export.training.rm import RMConfig


def rm_config(**options) -> RMConfig:
    return RMConfig(snapshot="snap", out="out", base_model="model", device="cpu", **options)


def test_an_option_out_of_its_range_is_refused_naming_the_option():
    with pytest.raises(ConfigError) as refused:
        rm_config(lr=-1.0).validate()
    assert refused.value.option == "lr" and str(refused.value) == "lr must be in (0.0, 1.0], not -1.0"


@pytest.mark.parametrize(("option", "value", "ok"), [
    ("lr", 0.0, False), ("lr", 1.0, True), ("eval_fraction", 0.0, True), ("eval_fraction", 1.5, False),
    ("batch_size", 0, False), ("max_length", 4, False), ("num_workers", 65, False),
])
def test_a_range_includes_its_upper_bound_and_its_lower_one_only_where_said(option, value, ok):
    config = rm_config(**{option: value})
    if ok:
        config.validate()
    else:
        with pytest.raises(ConfigError, match=f"^{option} must be in"):
            config.validate()


def test_a_trainer_checks_the_ranges_of_its_own_options():
    with pytest.raises(ConfigError) as refused:
        DPOConfig(snapshot="snap", out="out", policy="policy", device="cpu", beta=0.0).validate()
    assert refused.value.option == "beta"


def test_a_reward_model_refuses_an_unknown_pooling():
    with pytest.raises(ConfigError) as refused:
        rm_config(pooling="max").validate()
    assert refused.value.option == "pooling"


def test_a_non_number_where_a_number_belongs_is_refused():
    with pytest.raises(ConfigError, match="^epochs must be a number"):
        rm_config(epochs="three").validate()
