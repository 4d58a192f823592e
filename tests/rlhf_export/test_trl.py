"""A real client of the format: a pulled pairwise export loads with `datasets` and trains TRL's
DPOTrainer for one step on a tiny random Qwen2 (built from a config, nothing downloaded)."""

import pytest

from auralign.accounts.services import api_token_create
from rlhf_export.client import AuralignClient, load_snapshot, pull
from tests.rlhf_export.conftest import SERVER, export, judged_campaign

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_chat_model():
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

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


@pytest.mark.slow
@pytest.mark.django_db
def test_a_pulled_pairwise_export_trains_trl_dpo_for_one_step(tmp_path, in_process_api):
    from trl import DPOConfig, DPOTrainer

    judged = judged_campaign(dialogues=4, k=2, annotators=2)
    snapshot = export(judged, splits={"train": 1.0})
    _, secret = api_token_create(user=judged.trainer, name="trl", read_only=True, campaigns=[judged.campaign])
    pull(AuralignClient(SERVER, secret, http=in_process_api), str(snapshot.uuid), tmp_path / "snap", progress=False)
    train = load_snapshot(tmp_path / "snap")["train"]
    assert len(train) == snapshot.rows
    strict = train.filter(lambda row: not row["tie"])
    model, reference, tokenizer = tiny_chat_model()
    args = DPOConfig(
        output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=2, learning_rate=1e-3,
        report_to=[], use_cpu=True, logging_steps=1, save_strategy="no",
    )
    trainer = DPOTrainer(model=model, ref_model=reference, args=args, train_dataset=strict, processing_class=tokenizer)
    before = next(model.parameters()).detach().clone()
    result = trainer.train()
    assert result.global_step == 1
    assert result.training_loss > 0
    assert not next(model.parameters()).detach().equal(before)
