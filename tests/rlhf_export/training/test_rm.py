import json
from functools import partial
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from rlhf_export.training.data import open_snapshot
from rlhf_export.training.reward_model import (
    build_reward_model,
    item_uncertainty,
    load_reward_model,
    score_candidates,
)
from rlhf_export.training.rm import collate, evaluate, rm_loss, tokenized, train_reward_model

from . import factory
from .conftest import fast_rm_config


def test_reward_model_learns_a_hidden_property_of_the_text(trained_rm):
    evaluation = trained_rm["metrics"]["eval"]
    assert evaluation["pairs"] > 50
    assert evaluation["accuracy"] >= 0.9


def test_criterion_head_learns_its_criterion_and_not_noise(trained_rm):
    criteria = trained_rm["metrics"]["eval"]["criteria"]
    assert criteria["politeness"]["accuracy"] >= 0.9
    assert criteria["fluency"]["accuracy"] < 0.75  # fluency scores are random in the data


def test_run_writes_metrics_live_log_plot_and_checkpoint(trained_rm):
    out = Path(trained_rm["out"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval"]["accuracy"] == trained_rm["metrics"]["eval"]["accuracy"]
    assert {"ece", "brier", "bins"} <= set(metrics["eval"]["calibration"])
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in records} == {"train", "eval"}
    assert all("loss" in r and "step" in r for r in records)
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checkpoint = Path(trained_rm["checkpoint"])
    meta = json.loads((checkpoint / "reward_model.json").read_text())
    assert meta["heads"] == ["overall", "politeness", "fluency"]
    assert [c["key"] for c in meta["criteria"]] == ["politeness", "fluency"]
    assert (checkpoint / "backbone" / "tokenizer.json").is_file()
    assert (checkpoint / "heads.safetensors").is_file()


def test_reloaded_checkpoint_scores_like_the_trained_model(trained_rm, polite_snapshot):
    model = load_reward_model(trained_rm["checkpoint"])
    cfg = fast_rm_config(snapshot="", base_model="", out="")
    held_out = open_snapshot(str(polite_snapshot)).judgments("validation")
    make_batch = partial(collate, model=model, audio_path=None, ties=cfg.ties)
    evaluation = evaluate(model, tokenized(model, held_out), make_batch, cfg, "cpu")
    # the loss the in-memory model had at the end of training, recomputed by the reloaded one
    assert evaluation["loss"] == pytest.approx(trained_rm["metrics"]["eval"]["loss"], abs=1e-5)


def test_checkpoint_round_trip_keeps_scores(trained_rm, tmp_path):
    rows = [
        {"prompt": [{"role": "user", "content": "hi"}], "reply_text": text}
        for text in ("the cat please", "the dog")
    ]
    model = load_reward_model(trained_rm["checkpoint"])
    first = score_candidates(model, rows)
    model.save(tmp_path / "again", {})
    assert score_candidates(load_reward_model(str(tmp_path / "again")), rows) == first


def test_scores_rank_the_hidden_property(trained_rm):
    model = load_reward_model(trained_rm["checkpoint"])
    prompt = [{"role": "user", "content": "describe the city"}]
    texts = ["the city road house", "the city please road house", "please the city kindly road thanks house"]
    scores = score_candidates(model, [{"prompt": prompt, "reply_text": t} for t in texts])
    overall = [s["overall"] for s in scores]
    assert overall == sorted(overall)
    assert set(scores[0]["criteria"]) == {"politeness", "fluency"}


def test_item_uncertainty_puts_the_closest_call_first(trained_rm):
    model = load_reward_model(trained_rm["checkpoint"])
    ranked = item_uncertainty(["sure", "sure", "close", "close", "alone"], [0.0, 6.0, 1.0, 1.05, 3.0], model)
    assert [item for item, _ in ranked] == ["close", "sure"]  # an item with one candidate has no ranking
    assert 0 <= ranked[1][1] < ranked[0][1] <= 1


def test_reward_model_trains_from_pairwise_rows(tiny_lm, pairwise_snapshot, tmp_path):
    result = train_reward_model(
        fast_rm_config(snapshot=str(pairwise_snapshot), base_model=str(tiny_lm), out=str(tmp_path))
    )
    assert result["metrics"]["eval"]["accuracy"] >= 0.8


def test_audio_aware_reward_model_beats_text_only_when_preference_is_in_the_audio(
    tiny_lm, loud_snapshot, trained_audio_rm, tmp_path
):
    cfg = fast_rm_config(snapshot=str(loud_snapshot), base_model=str(tiny_lm), out=str(tmp_path), epochs=4)
    text_only = train_reward_model(cfg)["metrics"]["eval"]["accuracy"]
    with_audio = trained_audio_rm["metrics"]["eval"]["accuracy"]
    assert with_audio >= 0.8
    assert with_audio >= text_only + 0.2


def test_every_trainable_parameter_changes_after_one_step(
    tiny_lm, tiny_whisper, loud_snapshot, polite_snapshot
):
    snapshot = open_snapshot(str(loud_snapshot))
    model = build_reward_model(
        str(tiny_lm),
        open_snapshot(str(polite_snapshot)).criteria,
        audio_encoder=str(tiny_whisper),
        audio_dim=16,
    )
    # judgments with reply audio and with rubric scores, so every head and both encoders get a gradient,
    # and one comparing a reply with audio to one without (else the audio embedding's offset cancels)
    judgments = snapshot.judgments("train")[:4] + open_snapshot(str(polite_snapshot)).judgments("train")[:4]
    judgments[0].candidates[1].audio_key = None
    batch = collate(tokenized(model, judgments), model, snapshot.audio_path, "davidson")
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    rm_loss(*model(**batch["inputs"]), batch, fast_rm_config(snapshot="", base_model="", out="")).backward()
    optimizer.step()
    unchanged = [
        name for name, p in model.named_parameters() if p.requires_grad and torch.equal(p, before[name])
    ]
    assert len(before) > 30
    assert unchanged == []


def test_audio_reward_model_scores_the_louder_reply_higher(trained_audio_rm, tmp_path):
    model = load_reward_model(trained_audio_rm["checkpoint"])
    rows = []
    for level in (0.05, 0.8):
        path = tmp_path / f"{level}.wav"
        path.write_bytes(factory.tone(level, 440.0))
        rows.append(
            {"prompt": [{"role": "user", "content": "hi"}], "reply_text": "the cat", "reply_audio": str(path)}
        )
    quiet, loud = score_candidates(model, rows)
    assert loud["overall"] > quiet["overall"]


def test_reward_model_backbone_can_be_a_gguf_file(tiny_gguf, pairwise_snapshot, tmp_path):
    cfg = fast_rm_config(
        snapshot=str(pairwise_snapshot),
        base_model=str(tiny_gguf),
        gguf_file="tiny.gguf",
        out=str(tmp_path),
        max_steps=2,
    )
    model = load_reward_model(train_reward_model(cfg)["checkpoint"])
    assert type(model.backbone).__name__ == "LlamaModel"
    rows = [{"prompt": [{"role": "user", "content": "hi"}], "reply_text": "the cat"}]
    assert set(score_candidates(model, rows)[0]) == {"overall", "criteria"}


def test_frozen_backbone_run_caches_text_vectors_that_match_the_saved_model(
    tiny_lm, polite_snapshot, tmp_path
):
    cfg = fast_rm_config(
        snapshot=str(polite_snapshot), base_model=str(tiny_lm), out=str(tmp_path), freeze_backbone=True
    )
    result = train_reward_model(cfg)
    model = load_reward_model(result["checkpoint"])
    held_out = open_snapshot(str(polite_snapshot)).judgments("validation")
    make_batch = partial(collate, model=model, audio_path=None, ties=cfg.ties)
    evaluation = evaluate(model, tokenized(model, held_out), make_batch, cfg, "cpu")  # full forward, no cache
    assert evaluation["loss"] == pytest.approx(result["metrics"]["eval"]["loss"], abs=1e-5)
    base = AutoModel.from_pretrained(tiny_lm)
    assert all(torch.equal(p, base.state_dict()[k]) for k, p in model.backbone.state_dict().items())


def test_wav2vec2_encoder_hears_the_reply_audio(tiny_lm, loud_snapshot, tmp_path):
    encoder = factory.tiny_wav2vec2(tmp_path / "wav2vec2")
    cfg = fast_rm_config(
        snapshot=str(loud_snapshot),
        base_model=str(tiny_lm),
        out=str(tmp_path / "run"),
        audio_encoder=str(encoder),
        audio_dim=8,
        max_steps=2,
    )
    model = load_reward_model(train_reward_model(cfg)["checkpoint"])
    assert type(model.audio_encoder).__name__ == "Wav2Vec2ForSequenceClassification"
    rows = []
    for level in (0.05, 0.8):
        path = tmp_path / f"{level}.wav"
        path.write_bytes(factory.tone(level, 440.0))
        rows.append(
            {"prompt": [{"role": "user", "content": "hi"}], "reply_text": "the cat", "reply_audio": str(path)}
        )
    quiet, loud = score_candidates(model, rows)
    assert quiet["overall"] != loud["overall"]  # same text: only the audio differs
