"""The rubric-guided reward model: a text backbone, optionally fused with an audio encoder over the
reply audio, and one linear head per score (``overall`` first, then one per rubric criterion).

Checkpoint folder (self-describing, loadable with :func:`load_reward_model`)::

    reward_model.json        schema, heads, rubric criteria, settings, training config
    backbone/                Hugging Face model + tokenizer (AutoModel / AutoTokenizer)
    audio_encoder/           Hugging Face audio model + feature extractor (only if audio-aware)
    heads.safetensors        head.weight, tie_logit
"""

import json
import tempfile
from pathlib import Path

import torch
from accelerate.utils import send_to_device
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm
from transformers import (
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoTokenizer,
)

from . import storage
from .common import load_kwargs, write_json
from .data import load_audio, render
from .losses import decisive_win_prob

SCHEMA = "auralign.reward_model/1"
POOLINGS = ("last", "mean")  # how a reply's token vectors become one text vector


def audio_features(feature_extractor, waves: list) -> dict:
    """Batch of waveforms -> encoder inputs. Whisper-style extractors pad to their fixed window."""
    padding = "max_length" if hasattr(feature_extractor, "nb_max_frames") else "longest"
    inputs = feature_extractor(
        waves, sampling_rate=feature_extractor.sampling_rate, padding=padding, return_tensors="pt"
    )
    return dict(inputs)


class RewardModel(nn.Module):
    def __init__(
        self,
        backbone,
        tokenizer,
        criteria: list[dict],
        audio_encoder=None,
        feature_extractor=None,
        pooling: str = "last",
        max_length: int = 1024,
        audio_max_seconds: float = 30.0,
        ties: str = "davidson",
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.backbone, self.tokenizer = backbone, tokenizer
        self.audio_encoder, self.feature_extractor = audio_encoder, feature_extractor
        self.criteria, self.heads = criteria, ["overall"] + [c["key"] for c in criteria]
        self.settings = {
            "pooling": pooling,
            "max_length": max_length,
            "audio_max_seconds": audio_max_seconds,
            "ties": ties,
        }
        tokenizer.padding_side, tokenizer.truncation_side = "right", "left"  # keep the reply, pool its end
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        text_dim = backbone.config.get_text_config().hidden_size
        self.audio_dim = audio_encoder.config.num_labels if audio_encoder is not None else 0
        # no bias: a shift shared by every reply cancels in every comparison, so it cannot be learned
        self.head = nn.Linear(text_dim + self.audio_dim, len(self.heads), bias=False)
        self.tie_logit = nn.Parameter(torch.zeros(len(self.heads)))

    # ---- inputs -------------------------------------------------------------------------------
    def tokenize(self, conversations: list[list[dict]]) -> list[list[int]]:
        """Conversations ending in the scored reply -> token ids (the start is cut if too long)."""
        texts = [render(self.tokenizer, conversation) for conversation in conversations]
        if not texts:  # e.g. a snapshot too small for a held-out split
            return []
        return self.tokenizer(
            texts,
            truncation=True,
            max_length=self.settings["max_length"],
            add_special_tokens=not getattr(self.tokenizer, "chat_template", None),
        )["input_ids"]

    def inputs(self, texts, audio: list[str | None]) -> dict:
        """Candidates' token ids (or, with a frozen backbone, their cached text vectors as one
        tensor) and each reply's audio file or None -> model inputs."""
        if isinstance(texts, torch.Tensor):
            batch = {"text_features": texts}
        else:
            padded = self.tokenizer.pad({"input_ids": texts}, return_tensors="pt")
            batch = {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"]}
        if self.audio_encoder is not None:
            rate, limit = self.feature_extractor.sampling_rate, self.settings["audio_max_seconds"]
            waves = [load_audio(Path(path), rate, limit) for path in audio if path is not None]
            batch["has_audio"] = torch.tensor([path is not None for path in audio])
            batch["audio_inputs"] = audio_features(self.feature_extractor, waves) if waves else {}
        return batch

    # ---- forward ------------------------------------------------------------------------------
    def embed_text(self, input_ids, attention_mask):
        """The pooled text vector of each row."""
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state
        if self.settings["pooling"] == "last":  # right padding: the last real token of each row
            return hidden[torch.arange(len(hidden), device=hidden.device), attention_mask.sum(1) - 1]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1)

    def forward(
        self, input_ids=None, attention_mask=None, text_features=None, has_audio=None, audio_inputs=None
    ):
        """(scores, tie_logit): (N, heads) scores, column 0 the overall reward, then one column per
        rubric criterion; and each head's tie parameter (returned here so that distributed training
        sees every parameter used inside forward)."""
        text = text_features if text_features is not None else self.embed_text(input_ids, attention_mask)
        features = [text]
        if self.audio_encoder is not None:
            audio = torch.zeros(len(text), self.audio_dim, device=text.device, dtype=text.dtype)
            if has_audio.any():
                audio[has_audio] = self.audio_encoder(**audio_inputs).logits.to(text.dtype)
            features.append(audio)
        return self.head(torch.cat(features, dim=-1)), self.tie_logit.clone()  # a graph node, not a bare leaf

    # ---- checkpoint ---------------------------------------------------------------------------
    def save(self, path: Path, extra: dict) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(path / "backbone")
        self.tokenizer.save_pretrained(path / "backbone")
        if self.audio_encoder is not None:
            self.audio_encoder.save_pretrained(path / "audio_encoder")
            self.feature_extractor.save_pretrained(path / "audio_encoder")
        tensors = {"head.weight": self.head.weight, "tie_logit": self.tie_logit}
        save_file(
            {k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}, path / "heads.safetensors"
        )
        write_json(
            path / "reward_model.json",
            {"schema": SCHEMA, "heads": self.heads, "criteria": self.criteria, **self.settings, **extra},
        )
        return path


def build_reward_model(
    base_model: str,
    criteria: list[dict],
    gguf_file: str = "",
    audio_encoder: str = "",
    audio_dim: int = 128,
    **settings,
) -> RewardModel:
    """A fresh reward model: backbone from any HF checkpoint (or a GGUF file in a folder), optional audio encoder."""
    backbone = AutoModel.from_pretrained(base_model, **load_kwargs(gguf_file))
    tokenizer = AutoTokenizer.from_pretrained(base_model, **({"gguf_file": gguf_file} if gguf_file else {}))
    encoder = extractor = None
    if audio_encoder:
        encoder = AutoModelForAudioClassification.from_pretrained(
            audio_encoder, num_labels=audio_dim, dtype=torch.float32
        )
        extractor = AutoFeatureExtractor.from_pretrained(audio_encoder)
    return RewardModel(backbone, tokenizer, criteria, encoder, extractor, **settings)


def load_reward_model(path: str, device: str = "cpu") -> RewardModel:
    """Reload a checkpoint written by ``RewardModel.save`` (local folder or s3:// prefix), in eval mode."""
    if storage.is_s3(path):
        path = storage.download_prefix(path, Path(tempfile.mkdtemp(prefix="auralign-rm-")))
    path = Path(path)
    meta_path = path / "reward_model.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} is not a reward-model checkpoint (no reward_model.json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("schema") != SCHEMA:
        raise ValueError(f"unsupported reward-model checkpoint schema {meta.get('schema')!r} (need {SCHEMA})")
    encoder = extractor = None
    if (path / "audio_encoder").is_dir():
        encoder = AutoModelForAudioClassification.from_pretrained(path / "audio_encoder", dtype=torch.float32)
        extractor = AutoFeatureExtractor.from_pretrained(path / "audio_encoder")
    model = RewardModel(
        AutoModel.from_pretrained(path / "backbone", dtype=torch.float32),
        AutoTokenizer.from_pretrained(path / "backbone"),
        meta["criteria"],
        encoder,
        extractor,
        **{k: meta[k] for k in ("pooling", "max_length", "audio_max_seconds", "ties")},
    )
    heads = load_file(path / "heads.safetensors")
    with torch.no_grad():
        model.head.weight.copy_(heads["head.weight"])
        model.tie_logit.copy_(heads["tie_logit"])
    return model.to(device).eval()


@torch.no_grad()
def score_candidates(
    model: RewardModel, rows: list[dict], batch_size: int = 16, progress: bool = False
) -> list[dict]:
    """Score candidate replies. Each row: ``prompt`` (list of {role, content}), ``reply_text``, and
    optionally ``reply_audio`` (path to the reply's audio file). Returns, per row,
    ``{"overall": float, "criteria": {criterion key: float}}``; higher is better."""
    model.eval()
    device = next(model.parameters()).device
    results = []
    for start in tqdm(range(0, len(rows), batch_size), desc="scoring", disable=not progress):
        chunk = rows[start : start + batch_size]
        batch = model.inputs(
            model.tokenize(
                [r["prompt"] + [{"role": "assistant", "content": r["reply_text"]}] for r in chunk]
            ),
            [r.get("reply_audio") for r in chunk],
        )
        scores = model(**send_to_device(batch, device))[0].float().cpu()
        for row_scores in scores.tolist():
            results.append(
                {
                    "overall": row_scores[0],
                    "criteria": dict(zip(model.heads[1:], row_scores[1:], strict=True)),
                }
            )
    return results


def item_uncertainty(
    item_ids: list[str], overall: list[float], model: RewardModel
) -> list[tuple[str, float]]:
    """Items by how unsure the RM is of their ranking, least certain first.

    Uncertainty of an item = 1 - |2p - 1| for its closest pair of candidates, where p is the model's
    probability that the better-scored one wins: 1 means a coin flip, 0 a sure call.
    """
    by_item: dict[str, list[float]] = {}
    for item, score in zip(item_ids, overall, strict=True):
        by_item.setdefault(item, []).append(score)
    result = []
    for item, scores in by_item.items():
        if len(scores) < 2:
            continue
        ordered = sorted(scores)
        gap = min(b - a for a, b in zip(ordered, ordered[1:], strict=False))
        p = decisive_win_prob(
            torch.tensor(gap), model.tie_logit[0].detach().cpu(), model.settings["ties"]
        ).item()
        result.append((item, 1 - abs(2 * p - 1)))
    return sorted(result, key=lambda pair: -pair[1])
