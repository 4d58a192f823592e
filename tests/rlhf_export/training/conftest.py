"""Tiny models and synthetic snapshots, built once per test package run into temporary folders."""

import pytest
import torch

from rlhf_export.training.rm import RMConfig, train_reward_model

from . import factory


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """The tiny models gain nothing from intra-op threads, and on a busy 2-core machine
    oversubscribed threads make them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def tmp_models(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="package")
def tiny_lm(tmp_models):
    return factory.tiny_causal_lm(tmp_models / "lm", seed=0)


@pytest.fixture(scope="package")
def tiny_lm_other(tmp_models):
    """Same architecture and tokenizer, other random weights (a reference unlike the policy)."""
    return factory.tiny_causal_lm(tmp_models / "lm-other", seed=1)


@pytest.fixture(scope="package")
def tiny_gguf(tmp_models):
    """A folder holding tiny.gguf (a llama model with its tokenizer), like the demo's GGUF policy."""
    return factory.tiny_gguf(tmp_models / "gguf")


@pytest.fixture(scope="package")
def tiny_whisper(tmp_models):
    return factory.tiny_whisper(tmp_models / "whisper")


@pytest.fixture(scope="package")
def tiny_audio_lm(tmp_models):
    return factory.tiny_qwen2_audio(tmp_models / "qwen2-audio")


@pytest.fixture(scope="package")
def polite_snapshot(tmp_path_factory):
    """Listwise: the ranking follows how many kind words a reply has (a hidden text property)."""
    splits = {
        "train": factory.polite_judgments(120, seed=1),
        "validation": factory.polite_judgments(60, seed=2),
    }
    return factory.write_snapshot(tmp_path_factory.mktemp("polite"), "listwise", splits)


@pytest.fixture(scope="package")
def loud_snapshot(tmp_path_factory):
    """Listwise with reply audio: the louder reply wins, the texts are random."""
    audio = {}
    splits = {
        "train": factory.loud_judgments(120, 1, audio),
        "validation": factory.loud_judgments(60, 2, audio),
    }
    return factory.write_snapshot(tmp_path_factory.mktemp("loud"), "listwise", splits, audio)


@pytest.fixture(scope="package")
def pairwise_snapshot(tmp_path_factory):
    """Pairwise rows (with ties) of the polite task, as the export writes them."""
    splits = {
        "train": factory.pairwise_rows(factory.polite_judgments(40, seed=3)),
        "validation": factory.pairwise_rows(factory.polite_judgments(20, seed=4)),
    }
    return factory.write_snapshot(tmp_path_factory.mktemp("pairwise"), "pairwise", splits)


@pytest.fixture(scope="package")
def spoken_snapshot(tmp_path_factory):
    """Pairwise rows whose user turn carries audio (for audio-in DPO)."""
    audio = {}
    splits = {
        "train": factory.spoken_prompt_rows(24, 1, audio),
        "validation": factory.spoken_prompt_rows(8, 2, audio),
    }
    return factory.write_snapshot(tmp_path_factory.mktemp("spoken"), "pairwise", splits, audio)


def fast_rm_config(**overrides) -> RMConfig:
    """Settings that let the tiny models learn in seconds on CPU."""
    values = dict(lr=3e-3, epochs=3, batch_size=16, log_every=5, device="cpu")
    return RMConfig(**{**values, **overrides})


@pytest.fixture(scope="package")
def trained_rm(tiny_lm, polite_snapshot, tmp_path_factory):
    """A reward model trained on the polite snapshot: its result dict."""
    out = tmp_path_factory.mktemp("rm-run")
    return train_reward_model(
        fast_rm_config(snapshot=str(polite_snapshot), base_model=str(tiny_lm), out=str(out))
    )


@pytest.fixture(scope="package")
def trained_audio_rm(tiny_lm, tiny_whisper, loud_snapshot, tmp_path_factory):
    """An audio-aware reward model trained on the loud snapshot: its result dict."""
    out = tmp_path_factory.mktemp("audio-rm-run")
    cfg = fast_rm_config(
        snapshot=str(loud_snapshot),
        base_model=str(tiny_lm),
        out=str(out),
        audio_encoder=str(tiny_whisper),
        audio_dim=16,
        epochs=4,
    )
    return train_reward_model(cfg)
