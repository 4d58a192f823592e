"""Tiny random models from configs and synthetic export snapshots in the docs/formats.md contract.

Used by the training tests and by bench/train_rm.py. Nothing is downloaded: tokenizers are
byte-level BPE trained in-process, models are built from small configs and saved to folders, so
the code under test loads them the real way (from_pretrained).
"""

import hashlib
import io
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
NEUTRAL = "the a cat dog sun moon tree river stone cloud city road house bird fish lamp door table".split()
KIND = ["please", "thanks", "kindly"]
PROMPTS = ["tell me about the cat", "where is the river", "describe the city", "what about the moon"]


def train_tokenizer(extra_special: tuple[str, ...] = ()):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [" ".join(random.Random(i).choices(NEUTRAL + KIND + PROMPTS, k=30)) for i in range(300)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *extra_special]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHATML
    )


def text_config(tokenizer, seed: int = 0) -> dict:
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def tiny_causal_lm(folder: Path, seed: int = 0) -> Path:
    """A Qwen2 causal LM (hidden 64, 2 layers) + ChatML tokenizer: a policy, or an RM backbone."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = train_tokenizer()
    torch.manual_seed(seed)
    Qwen2ForCausalLM(Qwen2Config(**text_config(tokenizer), tie_word_embeddings=True)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_whisper(folder: Path, seed: int = 0) -> Path:
    """A Whisper checkpoint with a 1-second window (100 mel frames) and its feature extractor."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=64,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        max_source_positions=50,
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80, chunk_length=1).save_pretrained(folder)
    return folder


def tiny_wav2vec2(folder: Path, seed: int = 0) -> Path:
    """A wav2vec2 encoder (raw 16 kHz waveform in) and its feature extractor."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(seed)
    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 4),
        conv_kernel=(10, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=10,
    )
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=False, return_attention_mask=True).save_pretrained(folder)
    return folder


def tiny_qwen2_audio(folder: Path, seed: int = 0) -> Path:
    """A Qwen2-Audio-style audio-in LLM with its processor (Whisper features + <|AUDIO|> tokenizer)."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    tokenizer = train_tokenizer(("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"))
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=80, chunk_length=1), tokenizer=tokenizer
    )
    torch.manual_seed(seed)
    config = Qwen2AudioConfig(
        audio_config=dict(
            model_type="qwen2_audio_encoder",
            d_model=32,
            encoder_layers=1,
            encoder_attention_heads=2,
            encoder_ffn_dim=64,
            num_mel_bins=80,
            max_source_positions=50,
        ),
        text_config=dict(model_type="qwen2", **text_config(tokenizer)),
        audio_token_id=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    Qwen2AudioForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


# ---- snapshots --------------------------------------------------------------------------------

CRITERIA = [
    {"key": "politeness", "label": "Politeness", "min": 1, "max": 5, "weight": 1.0},
    {"key": "fluency", "label": "Fluency", "min": 1, "max": 5, "weight": 0.5},
]


def tone(amplitude: float, pitch: float, seconds: float = 0.5, rate: int = 24000) -> bytes:
    """WAV bytes of a sine tone (24 kHz, so the trainers have to resample)."""
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (amplitude * np.sin(2 * np.pi * pitch * t)).astype("float32"), rate, format="WAV")
    return buffer.getvalue()


def audio_key(wav: bytes) -> str:
    digest = hashlib.sha256(wav).hexdigest()
    return f"audio/{digest[:2]}/{digest}.wav"


def write_snapshot(
    root: Path,
    kind: str,
    splits: dict[str, list[dict]],
    audio: dict[str, bytes] | None = None,
    criteria=CRITERIA,
    fmt: str = "parquet",
) -> Path:
    """A snapshot folder: manifest.json, one data file per split, audio/ files under their keys."""
    files = []
    for split, rows in splits.items():
        relative = f"{kind}/{split}-00000.{fmt}"
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            pq.write_table(pa.Table.from_pylist(rows), path)
        else:
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        files.append(
            {
                "path": relative,
                "split": split,
                "format": fmt,
                "rows": len(rows),
                "bytes": path.stat().st_size,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
        )
    for key, wav in (audio or {}).items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(wav)
    manifest = {
        "schema_version": 1,
        "snapshot_id": "00000000-0000-0000-0000-000000000001",
        "kind": kind,
        "spec": {"campaigns": ["c1"], "filters": {}, "splits": {}},
        "watermark": {
            "max_judgment_id": 1,
            "judgment_count": sum(len(r) for r in splits.values()),
            "judgments_sha256": "",
        },
        "rubrics": {"synthetic@1": {"criteria": criteria}},
        "files": files,
        "audio": {"key_field_suffix": "_audio", "resolve": "relative path under the snapshot"},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def scores(**values) -> list[dict]:
    return [{"criterion": k, "score": float(v)} for k, v in values.items()]


def listwise_row(
    n: int, prompt: str, replies: list[dict], tiers: list[list[int]], weight: float = 1.0
) -> dict:
    """One judgment; replies are dicts with text, audio (key or None) and scores."""
    candidates = [
        {
            "candidate_id": f"c{n}-{i}",
            "policy_id": f"p{i}",
            "reply_text": r["text"],
            "reasoning": "",
            "audio_key": r.get("audio"),
            "scores": r.get("scores", []),
            "flags": [],
            "listened": 1.0,
        }
        for i, r in enumerate(replies)
    ]
    messages = [{"role": "user", "content": prompt}]
    return {
        "dialogue_id": f"d{n}",
        "item_id": f"i{n}",
        "split": "",
        "rubric": "synthetic@1",
        "campaign_id": "c1",
        "prompt": messages,
        "prompt_audio": [None],
        "candidates": candidates,
        "tiers": [[f"c{n}-{i}" for i in tier] for tier in tiers],
        "weight": weight,
        "annotator": "ann-1",
        "judgment_id": f"j{n}",
    }


def tiers_by(values: list[float]) -> list[list[int]]:
    """Indices grouped into tiers, highest value first; equal values share a tier."""
    return [[i for i, v in enumerate(values) if v == level] for level in sorted(set(values), reverse=True)]


def polite_judgments(n: int, seed: int, k: int = 3) -> list[dict]:
    """Listwise judgments whose ranking depends on a hidden property of the text: how many kind
    words the reply contains. The politeness score follows it; fluency is noise."""
    rng = random.Random(seed)
    rows = []
    for j in range(n):
        kinds = [rng.randint(0, 3) for _ in range(k)]
        replies = []
        for count in kinds:
            words = rng.choices(NEUTRAL, k=rng.randint(5, 9)) + rng.choices(KIND, k=count)
            rng.shuffle(words)
            replies.append(
                {"text": " ".join(words), "scores": scores(politeness=1 + count, fluency=rng.randint(1, 5))}
            )
        rows.append(listwise_row(seed * 100000 + j, rng.choice(PROMPTS), replies, tiers_by(kinds)))
    return rows


def loud_judgments(n: int, seed: int, audio: dict[str, bytes]) -> list[dict]:
    """Pairwise-ranked listwise judgments whose preference depends only on the reply audio's
    loudness; the reply texts are random. Fills ``audio`` with the WAV files by key."""
    rng = random.Random(seed)
    rows = []
    for j in range(n):
        levels = [rng.uniform(0.02, 0.9) for _ in range(2)]
        replies = []
        for level in levels:
            wav = tone(level, rng.uniform(200, 800))
            audio[audio_key(wav)] = wav
            replies.append({"text": " ".join(rng.choices(NEUTRAL, k=6)), "audio": audio_key(wav)})
        rows.append(listwise_row(seed * 100000 + j, rng.choice(PROMPTS), replies, tiers_by(levels)))
    return rows


def pairwise_rows(listwise: list[dict]) -> list[dict]:
    """The pairwise rows an export would produce from listwise judgments (one per ranked pair)."""
    rows = []
    for row in listwise:
        by_id = {c["candidate_id"]: c for c in row["candidates"]}
        tier_of = {cid: t for t, tier in enumerate(row["tiers"]) for cid in tier}
        ranked = [cid for tier in row["tiers"] for cid in tier]
        for a_index, a in enumerate(ranked):
            for b in ranked[a_index + 1 :]:
                ca, cb = by_id[a], by_id[b]
                rows.append(
                    {
                        "dialogue_id": row["dialogue_id"],
                        "item_id": row["item_id"],
                        "split": row["split"],
                        "rubric": row["rubric"],
                        "campaign_id": row["campaign_id"],
                        "prompt": row["prompt"],
                        "prompt_audio": row["prompt_audio"],
                        "chosen": [{"role": "assistant", "content": ca["reply_text"]}],
                        "rejected": [{"role": "assistant", "content": cb["reply_text"]}],
                        "margin": 0.0,
                        "tie": tier_of[a] == tier_of[b],
                        "weight": row["weight"],
                        "chosen_reasoning": "",
                        "rejected_reasoning": "",
                        "chosen_audio": ca["audio_key"],
                        "rejected_audio": cb["audio_key"],
                        "chosen_scores": ca["scores"],
                        "rejected_scores": cb["scores"],
                        "chosen_policy": ca["policy_id"],
                        "rejected_policy": cb["policy_id"],
                        "chosen_candidate": a,
                        "rejected_candidate": b,
                        "annotator": row["annotator"],
                        "judgment_id": row["judgment_id"],
                    }
                )
    return rows


def spoken_prompt_rows(n: int, seed: int, audio: dict[str, bytes]) -> list[dict]:
    """Pairwise rows whose user turn is spoken (audio key on the prompt message); the preferred
    reply is the polite one. Fills ``audio`` with the WAV files by key."""
    rng = random.Random(seed)
    rows = []
    for row in pairwise_rows(polite_judgments(n, seed, k=2)):
        wav = tone(rng.uniform(0.1, 0.9), rng.uniform(200, 800))
        audio[audio_key(wav)] = wav
        rows.append({**row, "prompt_audio": [audio_key(wav)]})
    return rows


def tiny_gguf(folder: Path, file_name: str = "tiny.gguf") -> Path:
    """A llama-architecture GGUF file (float32 weights, BPE tokenizer and chat template inside),
    like the demo's SmolLM2 GGUF but tiny: for the folder + gguf_file loading path."""
    import gguf

    tokenizer = train_tokenizer()
    bpe = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    tokens = [token for token, _ in sorted(bpe["vocab"].items(), key=lambda item: item[1])]
    hidden, layers, heads, kv_heads, ffn = 64, 2, 4, 2, 128
    folder.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(folder / file_name), "llama")
    writer.add_context_length(512)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * len(tokens))
    writer.add_token_merges([" ".join(merge) for merge in bpe["merges"]])
    writer.add_bos_token_id(tokenizer.convert_tokens_to_ids("<|im_start|>"))
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(CHATML)
    rng = np.random.default_rng(0)

    def add(name: str, *shape: int, ones: bool = False):
        values = np.ones(shape) if ones else rng.standard_normal(shape) * 0.02
        writer.add_tensor(name, values.astype(np.float32))

    add("token_embd.weight", len(tokens), hidden)
    for i in range(layers):
        add(f"blk.{i}.attn_q.weight", hidden, hidden)
        add(f"blk.{i}.attn_k.weight", kv_heads * hidden // heads, hidden)
        add(f"blk.{i}.attn_v.weight", kv_heads * hidden // heads, hidden)
        add(f"blk.{i}.attn_output.weight", hidden, hidden)
        add(f"blk.{i}.ffn_gate.weight", ffn, hidden)
        add(f"blk.{i}.ffn_up.weight", ffn, hidden)
        add(f"blk.{i}.ffn_down.weight", hidden, ffn)
        add(f"blk.{i}.attn_norm.weight", hidden, ones=True)
        add(f"blk.{i}.ffn_norm.weight", hidden, ones=True)
    add("output_norm.weight", hidden, ones=True)
    add("output.weight", len(tokens), hidden)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return folder
