"""`python -m tests.rlhf_export.dpo_one_step SNAPSHOT_DIR OUT_DIR`: what a trainer's script does with
a pulled pairwise export — load it with `datasets`, train TRL's DPOTrainer for one step on a tiny
random Qwen2 (built from a config, nothing downloaded) — in its own process, without Django.
Prints one JSON line. Run by test_trl.py."""

import json
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from trl import DPOConfig, DPOTrainer

from rlhf_export.client import load_snapshot

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_chat_model():
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(
        ["user says hello assistant reply from sample thinking about"] * 50,
        trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHATML)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return Qwen2ForCausalLM(config), Qwen2ForCausalLM(config), tokenizer


def main(snapshot_dir: str, out_dir: str) -> None:
    train = load_snapshot(snapshot_dir)["train"]
    strict = train.filter(lambda row: not row["tie"])  # DPO wants strict preferences; every column kept as exported
    model, reference, tokenizer = tiny_chat_model()
    args = DPOConfig(output_dir=out_dir, max_steps=1, per_device_train_batch_size=2, learning_rate=1e-3,
                     report_to=[], use_cpu=True, logging_steps=1, save_strategy="no")
    trainer = DPOTrainer(model=model, ref_model=reference, args=args, train_dataset=strict, processing_class=tokenizer)
    before = next(model.parameters()).detach().clone()
    result = trainer.train()
    changed = not next(model.parameters()).detach().equal(before)
    print(json.dumps({"rows": len(train), "steps": result.global_step, "loss": result.training_loss, "changed": changed}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
