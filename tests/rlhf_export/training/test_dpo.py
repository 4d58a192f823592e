import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rlhf_export.training.data import open_snapshot
from rlhf_export.training.dpo import (
    DPOConfig,
    batch_loss,
    collate,
    load_policy,
    pair_rewards,
    preference_pairs,
    sequence_logps,
    train_dpo,
)

from . import factory


def dpo_config(**values) -> DPOConfig:
    defaults = dict(out="", lr=1e-3, batch_size=8, log_every=2, device="cpu")
    return DPOConfig(**{**defaults, **values})


def strict_pairs(snapshot: Path):
    return preference_pairs(open_snapshot(str(snapshot)).judgments("train"), ties="drop")


def test_dpo_loss_equals_trl_dpo_loss_on_a_text_batch(tiny_lm, tiny_lm_other, pairwise_snapshot, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig as TRLConfig
    from trl import DPOTrainer

    cfg = dpo_config(
        snapshot=str(pairwise_snapshot), policy=str(tiny_lm), reference=str(tiny_lm_other), ties="drop"
    )
    pairs = strict_pairs(pairwise_snapshot)[:12]
    policy, processor = load_policy(cfg.policy)
    reference, _ = load_policy(cfg.reference)
    batch = collate(pairs, processor, cfg.max_length, cfg.audio_max_seconds)
    with torch.no_grad():
        ours = batch_loss(*pair_rewards(policy, reference, batch, cfg.beta), batch, cfg)

    rows = [
        {
            "prompt": p.prompt,
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
        }
        for p in pairs
    ]
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_lm),
        ref_model=AutoModelForCausalLM.from_pretrained(
            tiny_lm_other
        ),  # explicit, or TRL tries to download one
        args=TRLConfig(
            output_dir=str(tmp_path),
            per_device_train_batch_size=len(rows),
            beta=cfg.beta,
            bf16=False,
            use_cpu=True,
            report_to="none",
        ),
        train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(tiny_lm),
    )
    with torch.no_grad():
        theirs = trainer.compute_loss(trainer.model, next(iter(trainer.get_train_dataloader())))
    assert (
        abs(ours.item() - math.log(2)) > 1e-3
    )  # policy and reference differ, so this is not the trivial ln 2
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-5)


def test_every_trainable_parameter_changes_after_one_dpo_step(tiny_lm, tiny_lm_other, pairwise_snapshot):
    cfg = dpo_config(snapshot=str(pairwise_snapshot), policy=str(tiny_lm))
    policy, processor = load_policy(str(tiny_lm))
    reference, _ = load_policy(str(tiny_lm_other))
    pairs = preference_pairs(open_snapshot(str(pairwise_snapshot)).judgments("train"), ties="davidson")[:8]
    batch = collate(pairs, processor, cfg.max_length, cfg.audio_max_seconds)
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3, weight_decay=0.0)
    batch_loss(*pair_rewards(policy, reference, batch, cfg.beta), batch, cfg).backward()
    optimizer.step()
    assert [name for name, p in policy.named_parameters() if torch.equal(p, before[name])] == []


def test_dpo_run_prefers_the_chosen_replies_on_held_out_pairs(tiny_lm, pairwise_snapshot, tmp_path):
    result = train_dpo(
        dpo_config(
            snapshot=str(pairwise_snapshot), policy=str(tiny_lm), out=str(tmp_path), ties="drop", epochs=2
        )
    )
    evaluation = result["metrics"]["eval"]
    assert evaluation["accuracy"] >= 0.7
    assert evaluation["loss"] < math.log(2)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["kind"] == "dpo"
    assert (tmp_path / "curves.png").is_file()
    assert any(
        json.loads(line)["split"] == "eval" for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
    )


def test_gradient_accumulation_takes_one_optimizer_step_per_group_of_batches(
    tiny_lm, pairwise_snapshot, tmp_path
):
    pairs = len(preference_pairs(open_snapshot(str(pairwise_snapshot)).judgments("train"), "davidson"))
    cfg = dpo_config(
        snapshot=str(pairwise_snapshot), policy=str(tiny_lm), out=str(tmp_path), batch_size=8, grad_accum=3
    )
    result = train_dpo(cfg)
    assert result["metrics"]["steps"] == math.ceil(pairs / 8) // 3
    assert result["metrics"]["train_pairs"] == pairs


def test_lora_dpo_saves_a_merged_plain_hugging_face_folder(tiny_lm, pairwise_snapshot, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = train_dpo(
        dpo_config(
            snapshot=str(pairwise_snapshot), policy=str(tiny_lm), out=str(tmp_path), lora=True, max_steps=3
        )
    )
    checkpoint = Path(result["checkpoint"])
    assert not (checkpoint / "adapter_config.json").exists()
    base, merged = load_file(tiny_lm / "model.safetensors"), load_file(checkpoint / "model.safetensors")
    assert set(base) == set(merged)
    assert any(not torch.equal(base[k], merged[k]) for k in base)
    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hello"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    assert model.generate(**prompt, max_new_tokens=3, do_sample=False).shape[1] > prompt["input_ids"].shape[1]
    assert json.loads((checkpoint / "auralign_training.json").read_text())["train_config"]["lora"] is True


def test_audio_in_policy_hears_the_prompt_audio(tiny_audio_lm, spoken_snapshot, tmp_path):
    snapshot = open_snapshot(str(spoken_snapshot))
    pairs = preference_pairs(snapshot.judgments("train")[:2], "drop", snapshot.audio_path)
    policy, processor = load_policy(str(tiny_audio_lm))
    batch = collate(pairs, processor, max_length=1024, audio_max_seconds=30)
    assert batch["audio"]["input_features"].shape[0] == 2 * len(pairs)  # chosen and rejected both hear it
    other = tmp_path / "other.wav"
    other.write_bytes(factory.tone(0.9, 1500.0))
    for pair in pairs:
        pair.prompt_audio = [str(other)]
    other_batch = collate(pairs, processor, max_length=1024, audio_max_seconds=30)
    assert torch.equal(batch["input_ids"], other_batch["input_ids"])
    with torch.no_grad():
        assert not torch.allclose(sequence_logps(policy, batch), sequence_logps(policy, other_batch))


def test_audio_in_dpo_run_saves_a_policy_its_processor_loads(tiny_audio_lm, spoken_snapshot, tmp_path):
    from transformers import AutoModelForMultimodalLM, AutoProcessor

    result = train_dpo(
        dpo_config(snapshot=str(spoken_snapshot), policy=str(tiny_audio_lm), out=str(tmp_path), max_steps=2)
    )
    assert result["metrics"]["eval"]["pairs"] > 0
    model = AutoModelForMultimodalLM.from_pretrained(result["checkpoint"])
    assert type(model).__name__ == "Qwen2AudioForConditionalGeneration"
    assert AutoProcessor.from_pretrained(result["checkpoint"]).feature_extractor is not None


def test_gguf_policy_trains_and_is_saved_as_a_plain_safetensors_folder(
    tiny_gguf, pairwise_snapshot, tmp_path
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = dpo_config(
        snapshot=str(pairwise_snapshot),
        policy=str(tiny_gguf),
        gguf_file="tiny.gguf",
        out=str(tmp_path),
        lora=True,
        max_steps=2,
    )
    checkpoint = Path(train_dpo(cfg)["checkpoint"])
    assert (checkpoint / "model.safetensors").is_file()
    assert not list(checkpoint.glob("*.gguf"))
    assert "quantization_config" not in json.loads((checkpoint / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(checkpoint)  # no gguf_file: a normal folder
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False).startswith(
        "<|im_start|>"
    )
