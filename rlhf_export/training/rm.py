"""Train the rubric-guided reward model on an export snapshot.

One judgment is one batch element (InstructGPT): its K candidates go through the model once and
the loss averages over all pairs of its ranking. Each head has its own pairs: ``overall`` from the
ranking (ties from shared tiers, margins from rubric score differences), each criterion from that
criterion's scores (equal scores tie). Per-example weights come from the export.
"""

import dataclasses
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from accelerate.utils import DistributedDataParallelKwargs, send_to_device, set_seed
from torch.utils.data import DataLoader

from .common import (
    ConfigError,
    RunLog,
    TrainConfig,
    fit,
    make_accelerator,
    make_optimizer,
    opt,
    required,
    write_json,
)
from .data import Judgment, load_judgments, open_snapshot, score_pairs
from .losses import decisive_win_prob, ranking_loss
from .reward_model import POOLINGS, RewardModel, build_reward_model


@dataclass(kw_only=True)
class RMConfig(TrainConfig):
    base_model: str = required("text backbone: any Hugging Face checkpoint folder (AutoModel)")
    gguf_file: str = opt("", "GGUF file name inside base_model, when the backbone is a GGUF")
    audio_encoder: str = opt(
        "", "Whisper- or wav2vec2-family checkpoint to encode the reply audio (empty: text only)"
    )
    audio_dim: int = opt(128, "size of the pooled audio embedding fused with the text one")
    pooling: str = opt("last", "text pooling: last (last real token) or mean")
    freeze_backbone: bool = opt(
        False, "train only the heads (and audio encoder): fast, low memory; text vectors computed once"
    )
    freeze_audio_encoder: bool = opt(False, "keep the audio encoder's weights fixed")
    criteria_weight: float = opt(1.0, "weight of the mean per-criterion loss next to the overall loss")
    lr: float = opt(2e-5, "peak learning rate (AdamW)")

    RANGES = {**TrainConfig.RANGES, "audio_dim": (1, 1 << 16, True), "criteria_weight": (0.0, 100.0, True)}

    def validate(self):
        super().validate()
        if self.pooling not in POOLINGS:
            raise ConfigError("pooling", f"must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")


# ---- data -------------------------------------------------------------------------------------


def tokenized(model: RewardModel, judgments: list[Judgment]) -> list[tuple[Judgment, list[list[int]]]]:
    """Each judgment with its candidates' token ids, rendered and tokenized once before training."""
    conversations = [
        j.prompt + [{"role": "assistant", "content": c.text}] for j in judgments for c in j.candidates
    ]
    ids = iter(model.tokenize(conversations))
    return [(j, [next(ids) for _ in j.candidates]) for j in judgments]


@torch.no_grad()
def with_cached_text(model: RewardModel, examples: list, batch_size: int, device) -> list:
    """Frozen backbone: replace each judgment's token ids by its candidates' pooled text vectors,
    computed once here (eval mode) instead of in every epoch."""
    model.backbone.eval()
    cached = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        batch = model.inputs([ids for _, candidate_ids in chunk for ids in candidate_ids], [])
        vectors = (
            model.embed_text(batch["input_ids"].to(device), batch["attention_mask"].to(device)).float().cpu()
        )
        sizes = [len(judgment.candidates) for judgment, _ in chunk]
        cached += [(judgment, v) for (judgment, _), v in zip(chunk, vectors.split(sizes), strict=True)]
    return cached


def collate(examples: list, model: RewardModel, audio_path, ties: str) -> dict:
    """Judgments -> all their candidates as one flat batch, plus the pairs of every head.

    ``examples`` are (judgment, token ids per candidate) from :func:`tokenized`, or (judgment,
    text vectors) from :func:`with_cached_text`."""
    texts, audio, weights = [], [], []
    pairs = {"win": [], "lose": [], "tie": [], "margin": [], "group": [], "head": []}
    offset = 0
    for g, (judgment, text) in enumerate(examples):
        texts += list(text)
        for c in judgment.candidates:
            audio.append(audio_path(c.audio_key) if c.audio_key and model.audio_encoder is not None else None)
        head_pairs = [judgment.pairs] + [score_pairs(judgment.candidates, key) for key in model.heads[1:]]
        for head, head_pair_list in enumerate(head_pairs):
            for p in head_pair_list:
                if p.tie and ties == "drop":
                    continue
                for column, value in zip(
                    ("win", "lose", "tie", "margin", "group", "head"),
                    (offset + p.win, offset + p.lose, p.tie, p.margin, g, head),
                    strict=True,
                ):
                    pairs[column].append(value)
        offset += len(judgment.candidates)
        weights.append(judgment.weight)
    return {
        "inputs": model.inputs(torch.stack(texts) if isinstance(texts[0], torch.Tensor) else texts, audio),
        "pairs": {
            k: torch.tensor(
                v, dtype=torch.bool if k == "tie" else torch.float if k == "margin" else torch.long
            )
            for k, v in pairs.items()
        },
        "weight": torch.tensor(weights, dtype=torch.float),
    }


def head_pairs(pairs: dict, head: int) -> dict:
    keep = pairs["head"] == head
    return {k: v[keep] for k, v in pairs.items()}


# ---- loss -------------------------------------------------------------------------------------


def rm_loss(scores, tie_logit, batch, cfg: RMConfig):
    """Overall ranking loss + criteria_weight * mean of the per-criterion losses (heads with pairs)."""
    n_groups = len(batch["weight"])
    weight = batch["weight"] if cfg.use_weights else torch.ones_like(batch["weight"])
    losses = []
    for head in range(scores.shape[1]):
        pairs = head_pairs(batch["pairs"], head)
        if head == 0 or len(pairs["win"]):
            losses.append(
                ranking_loss(
                    scores[:, head], pairs, n_groups, weight, tie_logit[head], cfg.ties, cfg.margin_scale
                )
            )
    criteria = torch.stack(losses[1:]).mean() if len(losses) > 1 else torch.zeros((), device=scores.device)
    return losses[0] + cfg.criteria_weight * criteria


def strict_correct(scores, pairs) -> tuple[int, int]:
    """How many strict (non-tie) overall pairs the model orders right, out of how many."""
    overall = head_pairs(pairs, 0)
    strict = ~overall["tie"]
    d = scores[overall["win"][strict], 0] - scores[overall["lose"][strict], 0]
    return int((d > 0).sum()), len(d)


# ---- evaluation -------------------------------------------------------------------------------


def calibration(p_win, bins: int = 10) -> dict:
    """Expected calibration error and Brier score of P(winner beats loser) on strict pairs.

    Each pair is counted in both orientations (p, 1) and (1 - p, 0), so the result does not depend
    on which candidate is listed first.
    """
    p = torch.cat([p_win, 1 - p_win])
    y = torch.cat([torch.ones_like(p_win), torch.zeros_like(p_win)])
    index = (p * bins).long().clamp(max=bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            gap = (p[mask].mean() - y[mask].mean()).abs().item()
            ece += gap * mask.float().mean().item()
            table.append(
                {"p_mean": p[mask].mean().item(), "win_rate": y[mask].mean().item(), "count": int(mask.sum())}
            )
    return {"ece": ece, "brier": ((p - y) ** 2).mean().item(), "bins": table}


@torch.no_grad()
def evaluate(model: RewardModel, examples: list, make_batch, cfg: RMConfig, device) -> dict:
    """Held-out loss, pairwise accuracy (overall and per criterion) and calibration of the overall head.

    ``examples`` are (judgment, token ids) as from :func:`tokenized`."""
    model.eval()
    diffs = {head: [] for head in range(len(model.heads))}
    p_win, losses, sizes = [], [], []
    for start in range(0, len(examples), cfg.batch_size):
        batch = send_to_device(make_batch(examples[start : start + cfg.batch_size]), device)
        scores, tie_logit = (x.float() for x in model(**batch["inputs"]))
        losses.append(rm_loss(scores, tie_logit, batch, cfg).item())
        sizes.append(len(batch["weight"]))
        for head in diffs:
            pairs = head_pairs(batch["pairs"], head)
            strict = ~pairs["tie"]
            d = scores[pairs["win"][strict], head] - scores[pairs["lose"][strict], head]
            diffs[head].append(d.cpu())
            if head == 0:
                p_win.append(decisive_win_prob(d, tie_logit[0], cfg.ties).cpu())
    model.train()
    d = {head: torch.cat(v) for head, v in diffs.items()}
    result = {
        "loss": sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / max(1, sum(sizes)),
        "accuracy": (d[0] > 0).float().mean().item() if len(d[0]) else float("nan"),
        "pairs": len(d[0]),
        "criteria": {
            model.heads[head]: {
                "accuracy": (v > 0).float().mean().item() if len(v) else float("nan"),
                "pairs": len(v),
            }
            for head, v in d.items()
            if head > 0
        },
        "calibration": calibration(torch.cat(p_win)),
    }
    return result


def flat_eval(step: int, result: dict) -> dict:
    """One metrics.jsonl record of an evaluation."""
    record = {"split": "eval", "step": step, "loss": result["loss"], "accuracy": result["accuracy"]}
    record.update({f"accuracy/{k}": v["accuracy"] for k, v in result["criteria"].items()})
    record.update(ece=result["calibration"]["ece"], brier=result["calibration"]["brier"])
    return record


# ---- training ---------------------------------------------------------------------------------


def train_reward_model(cfg: RMConfig, on_metrics=None) -> dict:
    """Train, evaluate and save a reward model. Returns {"metrics", "checkpoint", "out"}.

    ``on_metrics(record)`` is called with every metrics.jsonl record (train and eval steps).
    """
    cfg.validate()
    set_seed(cfg.seed)
    out = Path(cfg.out)
    snapshot = open_snapshot(cfg.snapshot, cfg.cache_dir or None)
    train, held_out = load_judgments(snapshot, cfg.split, cfg.eval_split, cfg.eval_fraction)
    criteria = snapshot.criteria
    model = build_reward_model(
        cfg.base_model,
        criteria,
        cfg.gguf_file,
        cfg.audio_encoder,
        cfg.audio_dim,
        pooling=cfg.pooling,
        max_length=cfg.max_length,
        audio_max_seconds=cfg.audio_max_seconds,
        ties=cfg.ties,
    )
    if model.audio_encoder is not None:  # resolve (and fetch) every reply audio before training starts
        for judgment in train + held_out:
            for c in judgment.candidates:
                if c.audio_key:
                    snapshot.audio_path(c.audio_key)
    model.backbone.requires_grad_(not cfg.freeze_backbone)
    model.tie_logit.requires_grad_(cfg.ties != "drop")  # plain Bradley-Terry has no tie parameter
    if model.audio_encoder is not None:
        model.audio_encoder.requires_grad_(not cfg.freeze_audio_encoder)

    accelerator = make_accelerator(
        cfg, [DistributedDataParallelKwargs(find_unused_parameters=model.audio_encoder is not None)]
    )
    make_batch = partial(collate, model=model, audio_path=snapshot.audio_path, ties=cfg.ties)
    train_examples, held_out_examples = tokenized(model, train), tokenized(model, held_out)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler, steps = make_optimizer(cfg, params, len(train), accelerator.num_processes)
    if cfg.freeze_backbone:
        with accelerator.autocast():
            train_examples = with_cached_text(
                model.to(accelerator.device), train_examples, cfg.batch_size, accelerator.device
            )
            held_out_examples = with_cached_text(model, held_out_examples, cfg.batch_size, accelerator.device)
    loader = DataLoader(
        train_examples,
        batch_size=cfg.batch_size,
        shuffle=True,
        collate_fn=make_batch,
        num_workers=cfg.num_workers,
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    raw = accelerator.unwrap_model(model)
    log = RunLog(out, on_metrics, enabled=accelerator.is_main_process)

    def run_eval(step: int) -> dict:
        if not held_out:
            return {}
        with accelerator.autocast():
            result = evaluate(raw, held_out_examples, make_batch, cfg, accelerator.device)
        log.log(flat_eval(step, result))
        return result

    def step_fn(model, batch):
        scores, tie_logit = (x.float() for x in model(**batch["inputs"]))
        correct, pairs = strict_correct(scores.detach(), batch["pairs"])
        return rm_loss(scores, tie_logit, batch, cfg), {"correct": correct, "pairs": pairs}

    run = fit(
        cfg, accelerator, model, loader, optimizer, scheduler, steps, step_fn, log, run_eval, "reward model"
    )

    result = {"out": str(out), "checkpoint": str(out / "checkpoint"), "metrics": {}}
    if accelerator.is_main_process:
        evaluation = run_eval(run["steps"])
        metrics = {
            "kind": "reward_model",
            "steps": run["steps"],
            "train_seconds": run["seconds"],
            "examples_per_s": run["examples_per_s"],
            "train_examples": len(train),
            "eval_examples": len(held_out),
            "heads": raw.heads,
            "eval": evaluation,
        }
        raw.save(
            out / "checkpoint",
            {"base_model": cfg.base_model, "train_config": dataclasses.asdict(cfg), "metrics": metrics},
        )
        write_json(out / "metrics.json", {**metrics, "config": dataclasses.asdict(cfg)})
        log.plot(out / "curves.png")
        result["metrics"] = metrics
    accelerator.wait_for_everyone()
    return result
