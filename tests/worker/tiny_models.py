"""Tiny random models built from configs and saved like real checkpoints (no downloads), so the
worker's real loading code reads them: a chat causal LM, a Qwen2-Audio-style audio-in LM, a VITS
voice, and a causal LM that can only say end-of-turn (it "returns empty text")."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    Qwen2AudioConfig,
    Qwen2AudioForConditionalGeneration,
    Qwen2AudioProcessor,
    Qwen2Config,
    Qwen2ForCausalLM,
    VitsConfig,
    VitsModel,
    VitsTokenizer,
    WhisperFeatureExtractor,
)

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
CORPUS = [
    "hello there, how are you today?",
    "the sky is blue because air scatters blue light more than red light",
    "sure, I can help with that question about the weather",
    "tell me a story about a cat who wanted to fly",
    "thank you so much, that sounds wonderful and kind",
]


def chat_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained in-process, with ChatML and Qwen2-Audio special tokens."""
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(
        CORPUS * 20,
        trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE
    )


def _text_config(tok, **overrides) -> Qwen2Config:
    kw = dict(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    kw.update(overrides)
    return Qwen2Config(**kw)


def build_causal_lm(folder: Path, *, seed: int = 0, **overrides) -> Path:
    """A Qwen2 chat LM. Its generation_config asks for sampling with its own temperature and top_p,
    as many real checkpoints do, so the worker must override them with the policy's."""
    tok = chat_tokenizer()
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(_text_config(tok, **overrides))
    model.generation_config = GenerationConfig(
        do_sample=True, temperature=0.3, top_p=0.5, top_k=5, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def build_audio_lm(folder: Path, *, seed: int = 0) -> Path:
    """A Qwen2-Audio-style model: Whisper feature extractor + audio encoder + Qwen2 LM, with a
    processor that expands <|AUDIO|> to the clip's frame count."""
    tok = chat_tokenizer()
    tok.audio_token = "<|AUDIO|>"
    features = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, chunk_length=5)
    processor = Qwen2AudioProcessor(feature_extractor=features, tokenizer=tok, chat_template=CHAT_TEMPLATE)
    config = Qwen2AudioConfig(
        audio_config=dict(
            d_model=32, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, num_mel_bins=80,
            max_source_positions=250,
        ),
        text_config=_text_config(tok).to_dict(),
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    Qwen2AudioForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_vits(folder: Path, *, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {c: i for i, c in enumerate(["<pad>", *" abcdefghijklmnopqrstuvwxyz'.,!?"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    VitsTokenizer(folder / "vocab.json", pad_token="<pad>", unk_token="<pad>", add_blank=True, phonemize=False).save_pretrained(folder)
    config = VitsConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32, flow_size=16,
        spectrogram_bins=33, upsample_initial_channel=16, upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], prior_encoder_num_flows=1,
        prior_encoder_num_wavenet_layers=1, posterior_encoder_num_wavenet_layers=1, duration_predictor_num_flows=1,
        duration_predictor_filter_channels=16, depth_separable_num_layers=1, sampling_rate=16000,
    )
    torch.manual_seed(seed)
    VitsModel(config).save_pretrained(folder)
    return folder


def build_mute_lm(folder: Path) -> Path:
    """A GPT-2 chat LM whose every next token is end-of-turn: its replies are empty."""
    tok = chat_tokenizer()
    config = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=1024,
                        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)  # the final hidden state is all ones...
        model.transformer.wte.weight.zero_()
        model.transformer.wte.weight[tok.eos_token_id] = 1.0  # ...so only end-of-turn scores
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
