"""What both trainers share: the base config, the accelerator, the metrics log, the outputs."""

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import GgufConfig, get_linear_schedule_with_warmup

from .losses import TIE_MODELS


def opt(default, help: str):
    """A config field with its help text (shown by the CLI and in docs/training.md)."""
    return field(default=default, metadata={"help": help})


def required(help: str):
    return field(metadata={"help": help})


class ConfigError(ValueError):
    """A config option with a bad value; `option` names it (the platform answers a field-level 400)."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option} {message}")
        self.option = option


@dataclass(kw_only=True)
class TrainConfig:
    snapshot: str = required("export snapshot: local folder or s3://bucket/exports/<uuid>/")
    out: str = required("output folder (metrics, plot, checkpoint/)")
    split: str = opt("train", "snapshot split to train on")
    eval_split: str = opt(
        "validation", "held-out split; if the snapshot lacks it, eval_fraction of items is held out"
    )
    eval_fraction: float = opt(0.1, "fraction of items held out when the snapshot has no eval_split")
    ties: str = opt(
        "davidson", f"tie model: {' | '.join(TIE_MODELS)} (drop = plain Bradley-Terry, ties skipped)"
    )
    margin_scale: float = opt(
        0.0, "preferred reply must win by margin_scale * margin (rubric score difference)"
    )
    use_weights: bool = opt(
        True, "weight examples by the export's per-example weight (annotator reliability x agreement)"
    )
    lr: float = opt(1e-5, "peak learning rate (AdamW)")
    weight_decay: float = opt(0.0, "AdamW weight decay")
    max_grad_norm: float = opt(1.0, "clip the gradient norm to this (0: no clipping)")
    warmup_ratio: float = opt(0.1, "fraction of steps with linear warm-up, then linear decay to 0")
    batch_size: int = opt(8, "examples per device per micro-batch")
    grad_accum: int = opt(1, "micro-batches per optimizer step")
    epochs: float = opt(1.0, "passes over the training data")
    max_steps: int = opt(0, "stop after this many optimizer steps (0: no limit)")
    max_length: int = opt(1024, "max tokens per sequence")
    num_workers: int = opt(0, "DataLoader worker processes (tokenizing, decoding audio) per training process")
    audio_max_seconds: float = opt(30.0, "audio is cut to this length")
    log_every: int = opt(10, "log train metrics every N optimizer steps")
    eval_every: int = opt(0, "evaluate every N optimizer steps (0: only at the end)")
    seed: int = opt(0, "random seed")
    device: str = opt("auto", "auto, cpu or cuda (auto: cuda if available; bf16 autocast on cuda)")
    cache_dir: str = opt("", "where s3:// snapshots are downloaded (default: the temp folder)")

    # option: (low, high, low included); high is always included. Subclasses add their own.
    RANGES: ClassVar[dict[str, tuple[float, float, bool]]] = {
        "lr": (0.0, 1.0, False), "epochs": (0.0, 1000.0, False), "eval_fraction": (0.0, 1.0, True),
        "warmup_ratio": (0.0, 1.0, True), "max_steps": (0, 10**9, True), "max_length": (8, 1 << 20, True),
        "audio_max_seconds": (0.0, 3600.0, False), "eval_every": (0, 10**9, True), "num_workers": (0, 64, True),
        "batch_size": (1, 1 << 16, True), "grad_accum": (1, 1 << 16, True), "log_every": (1, 10**9, True),
        "weight_decay": (0.0, 10.0, True), "max_grad_norm": (0.0, 1e6, True), "margin_scale": (0.0, 100.0, True),
    }

    def validate(self):
        if self.ties not in TIE_MODELS:
            raise ConfigError("ties", f"must be one of {TIE_MODELS}, got {self.ties!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("device", f"must be auto, cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device", "is cuda but no CUDA device is available")
        for name, (low, high, low_included) in self.RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(name, f"must be a number, not {value!r}")
            if not (low <= value <= high if low_included else low < value <= high):
                raise ConfigError(name, f"must be in {'[' if low_included else '('}{low}, {high}], not {value!r}")

    @classmethod
    def from_dict(cls, values: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}")
        return cls(**values)


def load_kwargs(gguf_file: str = "") -> dict:
    """from_pretrained arguments for training: float32 master weights; a GGUF file is unpacked into a
    plain dense model (trainable, and saved as a normal safetensors folder)."""
    if not gguf_file:
        return {"dtype": torch.float32}
    return {
        "dtype": torch.float32,
        "gguf_file": gguf_file,
        "quantization_config": GgufConfig(dequantize=True),
    }


def make_accelerator(cfg: TrainConfig, kwargs_handlers=()) -> Accelerator:
    """One process per device under `accelerate launch`; bf16 autocast on CUDA, float32 on CPU."""
    cpu = cfg.device == "cpu" or not torch.cuda.is_available()
    bf16 = not cpu and torch.cuda.is_bf16_supported()
    return Accelerator(
        cpu=cpu,
        mixed_precision="bf16" if bf16 else "no",
        gradient_accumulation_steps=cfg.grad_accum,
        kwargs_handlers=list(kwargs_handlers),
    )


def make_optimizer(cfg: TrainConfig, params, n_examples: int, num_processes: int):
    """AdamW with linear warm-up and decay over the run; returns (optimizer, scheduler, total steps)."""
    batches_per_epoch = math.ceil(n_examples / (cfg.batch_size * num_processes))
    steps = max(1, int(cfg.epochs * batches_per_epoch / cfg.grad_accum))
    steps = min(steps, cfg.max_steps) if cfg.max_steps else steps
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * steps), steps)
    return optimizer, scheduler, steps


def fit(
    cfg: TrainConfig,
    accelerator,
    model,
    loader,
    optimizer,
    scheduler,
    steps: int,
    step_fn,
    log,
    run_eval,
    desc: str,
):
    """The training loop both trainers share.

    ``step_fn(model, batch) -> (loss, stats)``; stats may hold ``correct`` / ``pairs`` counts (summed
    into an accuracy) and other floats (averaged) for the train log. ``run_eval(step)`` is called on
    the main process every ``eval_every`` steps. Returns {"steps", "seconds", "examples_per_s"}.
    """
    step, seen, window = 0, 0, []
    started = time.perf_counter()
    bar = tqdm(total=steps, desc=desc, disable=not accelerator.is_local_main_process)
    model.train()
    while step < steps:
        for batch in loader:
            with accelerator.accumulate(model):
                loss, stats = step_fn(model, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            window.append({"loss": loss.item(), **stats})
            seen += len(batch["weight"]) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            step += 1
            bar.update()
            if step % cfg.log_every == 0 or step == steps:
                elapsed = time.perf_counter() - started
                log.log(
                    {
                        "split": "train",
                        "step": step,
                        "total_steps": steps,
                        **summarize(window),
                        "lr": scheduler.get_last_lr()[0],
                        "examples_per_s": seen / elapsed,
                    }
                )
                window = []
            if cfg.eval_every and step % cfg.eval_every == 0 and step < steps and accelerator.is_main_process:
                run_eval(step)
            if step >= steps:
                break
    bar.close()
    seconds = time.perf_counter() - started
    return {"steps": step, "seconds": seconds, "examples_per_s": seen / seconds}


def summarize(window: list[dict]) -> dict:
    """Mean of each logged value over a window of micro-batches; accuracy = sum(correct) / sum(pairs)."""
    keys = {k for record in window for k in record} - {"correct", "pairs"}
    summary = {k: sum(r[k] for r in window) / len(window) for k in sorted(keys)}
    pairs = sum(r.get("pairs", 0) for r in window)
    if pairs:
        summary["accuracy"] = sum(r["correct"] for r in window) / pairs
    return summary


class RunLog:
    """metrics.jsonl (one JSON per logged step, for live curves) plus a callback and a PNG at the end."""

    def __init__(self, out: Path, on_metrics=None, enabled: bool = True):
        self.path, self.on_metrics, self.enabled = out / "metrics.jsonl", on_metrics, enabled
        self.history: list[dict] = []
        if enabled:
            out.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")

    def log(self, record: dict):
        if not self.enabled:
            return
        record = {"time": round(time.time(), 3), **record}
        self.history.append(record)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.on_metrics:
            self.on_metrics(record)

    def plot(self, path: Path):
        """Loss and pairwise accuracy against the optimizer step, train and held-out."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 4), tight_layout=True)
        for ax, key in zip(fig.subplots(1, 2), ("loss", "accuracy"), strict=True):
            for split, style in (("train", "-"), ("eval", "o-")):
                points = [(r["step"], r[key]) for r in self.history if r.get("split") == split and key in r]
                if points:
                    ax.plot(*zip(*points, strict=True), style, label=split)
            ax.set(xlabel="step", ylabel=key, title=key)
            ax.legend()
        fig.savefig(path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
