"""DPO on an export snapshot, for text causal LMs and for audio-in LLMs.

A policy and a frozen reference both come from a checkpoint (a folder, or a folder + GGUF file).
For an audio-in LLM (its processor has a feature extractor, e.g. Qwen2-Audio) the prompt messages
that carry audio get an audio part in the chat template and the waveforms go through the model's
processor, so the policy hears the conversation. Tokenization follows TRL's conversational
recipe (the completion is what the chat template adds after the prompt), so on text-only data the
loss equals TRL's DPO loss.

The result is a plain Hugging Face folder (LoRA merged), loadable by ``AutoModelForCausalLM`` /
``AutoModelForMultimodalLM`` and the worker's ``hf`` sampler.
"""

import contextlib
import dataclasses
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from accelerate.utils import send_to_device, set_seed
from peft import LoraConfig, PeftModel, get_peft_model
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, AutoModelForMultimodalLM, AutoProcessor, AutoTokenizer

from .common import (
    RunLog,
    TrainConfig,
    fit,
    load_kwargs,
    make_accelerator,
    make_optimizer,
    opt,
    required,
    write_json,
)
from .data import Judgment, load_audio, load_judgments, open_snapshot, render
from .losses import dpo_loss, dpo_rewards


@dataclass(kw_only=True)
class DPOConfig(TrainConfig):
    policy: str = required("policy checkpoint folder: a text causal LM or an audio-in LLM")
    gguf_file: str = opt("", "GGUF file name inside the policy folder")
    reference: str = opt("", "reference checkpoint folder (default: the policy's starting weights)")
    reference_gguf_file: str = opt("", "GGUF file name inside the reference folder")
    beta: float = opt(0.1, "DPO beta: strength of the KL tie to the reference")
    tie_logit: float = opt(
        0.0, "fixed tie parameter: log(nu) for davidson, softplus^-1(log theta) for rao_kupper"
    )
    lora: bool = opt(False, "train a LoRA adapter (peft) instead of all weights; merged before saving")
    lora_r: int = opt(16, "LoRA rank")
    lora_alpha: int = opt(32, "LoRA alpha")
    lora_dropout: float = opt(0.0, "LoRA dropout")
    lora_target: str = opt("all-linear", "LoRA target modules: all-linear, or comma-separated module names")
    lr: float = opt(5e-6, "peak learning rate (AdamW)")
    batch_size: int = opt(4, "preference pairs per device per micro-batch")

    RANGES = {
        **TrainConfig.RANGES, "beta": (0.0, 100.0, False), "lora_r": (1, 4096, True),
        "lora_alpha": (1, 1 << 16, True), "lora_dropout": (0.0, 1.0, True),
    }


@dataclass
class PreferencePair:
    prompt: list[dict]
    prompt_audio: list[str | None]  # local audio file per prompt message (audio-in policies only)
    chosen: str
    rejected: str
    tie: bool
    margin: float
    weight: float


def preference_pairs(judgments: list[Judgment], ties: str, audio_path=None) -> list[PreferencePair]:
    """Every pair of every judgment as one DPO example (tied pairs dropped when ties == "drop")."""
    pairs = []
    for j in judgments:
        prompt_audio = [audio_path(key) if key and audio_path else None for key in j.prompt_audio]
        for p in j.pairs:
            if p.tie and ties == "drop":
                continue
            chosen, rejected = j.candidates[p.win].text, j.candidates[p.lose].text
            pairs.append(PreferencePair(j.prompt, prompt_audio, chosen, rejected, p.tie, p.margin, j.weight))
    return pairs


# ---- model ------------------------------------------------------------------------------------


def load_policy(path: str, gguf_file: str = ""):
    """(model, processor): a text causal LM with its tokenizer, or an audio-in LLM with its processor."""
    if gguf_file:
        processor = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
    else:
        processor = AutoProcessor.from_pretrained(path)
    model_class = AutoModelForMultimodalLM if is_audio_processor(processor) else AutoModelForCausalLM
    model = model_class.from_pretrained(path, **load_kwargs(gguf_file))
    tokenizer = getattr(processor, "tokenizer", processor)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, processor


def is_audio_processor(processor) -> bool:
    return getattr(processor, "feature_extractor", None) is not None


# ---- data -------------------------------------------------------------------------------------


def common_prefix_length(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def with_audio_parts(messages: list[dict], audio: list) -> list[dict]:
    """Messages that carry audio get content [audio part, text part] for the processor's chat template."""
    return [
        {"role": m["role"], "content": [{"type": "audio"}, {"type": "text", "text": m["content"]}]}
        if a is not None
        else m
        for m, a in zip(messages, audio, strict=True)
    ]


def tokenize_pair(processor, pair: PreferencePair, audio_max_seconds: float) -> dict:
    """prompt / chosen / rejected token ids (TRL's split) and, for audio-in policies, the audio inputs."""
    tokenizer = getattr(processor, "tokenizer", processor)
    audio_kwargs, audio_inputs = {}, {}
    prompt = pair.prompt
    if is_audio_processor(processor):
        if not getattr(processor, "chat_template", None):
            raise ValueError("an audio-in policy needs a chat template on its processor to place the audio")
        rate = processor.feature_extractor.sampling_rate
        waves = [load_audio(Path(a), rate, audio_max_seconds) for a in pair.prompt_audio if a is not None]
        prompt = with_audio_parts(pair.prompt, pair.prompt_audio)
        if waves:
            audio_kwargs = {"audio": waves, "sampling_rate": rate}
    if getattr(processor, "chat_template", None):
        texts = [render(processor, prompt, add_generation_prompt=True)] + [
            render(processor, prompt + [{"role": "assistant", "content": reply}])
            for reply in (pair.chosen, pair.rejected)
        ]
    else:  # plain text rendering; completions end with EOS as in TRL's non-conversational format
        prompt_text = render(processor, prompt, add_generation_prompt=True)
        texts = [
            prompt_text,
            prompt_text + pair.chosen + tokenizer.eos_token,
            prompt_text + pair.rejected + tokenizer.eos_token,
        ]
    ids = []
    for text in texts:
        encoded = processor(text=text, add_special_tokens=False, return_tensors="pt", **audio_kwargs)
        ids.append(encoded["input_ids"][0].tolist())
        audio_inputs = {k: v for k, v in encoded.items() if k not in ("input_ids", "attention_mask")}
    prompt_len = min(common_prefix_length(ids[0], ids[1]), common_prefix_length(ids[0], ids[2]))
    return {
        "prompt": ids[0][:prompt_len],
        "chosen": ids[1][prompt_len:],
        "rejected": ids[2][prompt_len:],
        "audio": audio_inputs,
    }


def collate(pairs: list[PreferencePair], processor, max_length: int, audio_max_seconds: float) -> dict:
    """A batch of pairs -> one padded batch [all chosen, then all rejected] with a completion mask."""
    tokenized = [tokenize_pair(processor, p, audio_max_seconds) for p in pairs]
    if any(t["audio"] and len(t["prompt"]) >= max_length for t in tokenized):
        raise ValueError(f"a prompt with audio is longer than max_length={max_length}; raise max_length")
    sequences, masks = [], []
    for side in ("chosen", "rejected"):
        for t in tokenized:
            ids = (t["prompt"] + t[side])[:max_length]
            sequences.append(torch.tensor(ids))
            masks.append(torch.tensor(([0] * len(t["prompt"]) + [1] * len(t[side]))[:max_length]))
    pad_id = getattr(processor, "tokenizer", processor).pad_token_id
    input_ids = pad_sequence(sequences, batch_first=True, padding_value=pad_id)
    batch = {
        "input_ids": input_ids,
        "attention_mask": pad_sequence([torch.ones_like(s) for s in sequences], batch_first=True),
        "completion_mask": pad_sequence(masks, batch_first=True),
        "audio": {},
        "tie": torch.tensor([p.tie for p in pairs]),
        "margin": torch.tensor([p.margin for p in pairs], dtype=torch.float),
        "weight": torch.tensor([p.weight for p in pairs], dtype=torch.float),
    }
    audio = [t["audio"] for t in tokenized if t["audio"]]
    if audio:  # audio inputs in the same order as the sequences: all chosen, then all rejected
        batch["audio"] = {k: torch.cat([a[k] for a in audio] * 2) for k in audio[0]}
    return batch


# ---- loss -------------------------------------------------------------------------------------


def sequence_logps(model, batch) -> torch.Tensor:
    """Sum of the log-probabilities of each sequence's completion tokens."""
    logits = (
        model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            use_cache=False,
            **batch["audio"],
        )
        .logits[:, :-1]
        .float()
    )
    labels, mask = batch["input_ids"][:, 1:], batch["completion_mask"][:, 1:]
    token_logps = torch.gather(logits.log_softmax(-1), 2, labels.unsqueeze(-1)).squeeze(-1)
    return (token_logps * mask).sum(-1)


def pair_rewards(model, reference, batch, beta: float):
    """DPO implicit rewards (chosen, rejected) of the batch. ``reference`` is a frozen model, or for a
    LoRA policy the PeftModel itself, which is then evaluated with its adapter disabled."""
    logps = sequence_logps(model, batch)
    adapter_off = (
        reference.disable_adapter() if isinstance(reference, PeftModel) else contextlib.nullcontext()
    )
    with torch.no_grad(), adapter_off:
        ref_logps = sequence_logps(reference, batch)
    return dpo_rewards(logps, ref_logps, beta).chunk(2)


def batch_loss(chosen, rejected, batch, cfg: DPOConfig):
    weight = batch["weight"] if cfg.use_weights else torch.ones_like(batch["weight"])
    tie_logit = torch.tensor(cfg.tie_logit, device=chosen.device)
    return dpo_loss(
        chosen, rejected, batch["tie"], batch["margin"], weight, tie_logit, cfg.ties, cfg.margin_scale
    )


def step_stats(chosen, rejected, tie) -> dict:
    """Reward accuracy counts on strict pairs and the mean reward margin, for the logs."""
    strict = ~tie
    d = (chosen - rejected).detach()
    return {
        "correct": int((d[strict] > 0).sum()),
        "pairs": int(strict.sum()),
        "reward_margin": d.mean().item(),
    }


@torch.no_grad()
def evaluate(model, reference, pairs: list[PreferencePair], make_batch, cfg: DPOConfig, device) -> dict:
    model.eval()
    losses, sizes, correct, n_strict, margins = [], [], 0, 0, []
    for start in range(0, len(pairs), cfg.batch_size):
        batch = send_to_device(make_batch(pairs[start : start + cfg.batch_size]), device)
        chosen, rejected = pair_rewards(model, reference, batch, cfg.beta)
        losses.append(batch_loss(chosen, rejected, batch, cfg).item())
        sizes.append(len(chosen))
        stats = step_stats(chosen, rejected, batch["tie"])
        correct, n_strict = correct + stats["correct"], n_strict + stats["pairs"]
        margins.append((chosen - rejected).cpu())
    model.train()
    return {
        "loss": sum(loss * n for loss, n in zip(losses, sizes, strict=True)) / max(1, sum(sizes)),
        "accuracy": correct / n_strict if n_strict else float("nan"),
        "reward_margin": torch.cat(margins).mean().item(),
        "pairs": sum(sizes),
    }


# ---- training ---------------------------------------------------------------------------------


def train_dpo(cfg: DPOConfig, on_metrics=None) -> dict:
    """Run DPO and save the new policy as a plain HF folder. Returns {"metrics", "checkpoint", "out"}."""
    cfg.validate()
    set_seed(cfg.seed)
    out = Path(cfg.out)
    snapshot = open_snapshot(cfg.snapshot, cfg.cache_dir or None)
    train_judgments, held_out_judgments = load_judgments(
        snapshot, cfg.split, cfg.eval_split, cfg.eval_fraction
    )
    model, processor = load_policy(cfg.policy, cfg.gguf_file)
    audio_path = snapshot.audio_path if is_audio_processor(processor) else None
    train = preference_pairs(train_judgments, cfg.ties, audio_path)
    held_out = preference_pairs(held_out_judgments, cfg.ties, audio_path)
    if not train:
        raise ValueError("no preference pairs to train on (all tied and ties == 'drop'?)")

    reference = None  # LoRA without an explicit reference: the policy with its adapter disabled
    if cfg.reference or not cfg.lora:
        reference, _ = load_policy(
            cfg.reference or cfg.policy, cfg.reference_gguf_file if cfg.reference else cfg.gguf_file
        )
        reference.requires_grad_(False).eval()
    if cfg.lora:
        targets = (
            cfg.lora_target
            if cfg.lora_target == "all-linear"
            else [t.strip() for t in cfg.lora_target.split(",")]
        )
        model = get_peft_model(
            model,
            LoraConfig(
                r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=targets
            ),
        )

    accelerator = make_accelerator(cfg)
    make_batch = partial(
        collate, processor=processor, max_length=cfg.max_length, audio_max_seconds=cfg.audio_max_seconds
    )
    loader = DataLoader(
        train, batch_size=cfg.batch_size, shuffle=True, collate_fn=make_batch, num_workers=cfg.num_workers
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler, steps = make_optimizer(cfg, params, len(train), accelerator.num_processes)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    raw = accelerator.unwrap_model(model)
    if reference is None:
        reference = raw
    else:
        reference.to(accelerator.device)
    log = RunLog(out, on_metrics, enabled=accelerator.is_main_process)

    def run_eval(step: int) -> dict:
        if not held_out:
            return {}
        with accelerator.autocast():
            result = evaluate(raw, reference, held_out, make_batch, cfg, accelerator.device)
        log.log({"split": "eval", "step": step, **{k: v for k, v in result.items() if k != "pairs"}})
        return result

    def step_fn(model, batch):
        with accelerator.autocast():
            chosen, rejected = pair_rewards(model, reference, batch, cfg.beta)
        return batch_loss(chosen, rejected, batch, cfg), step_stats(chosen, rejected, batch["tie"])

    run = fit(cfg, accelerator, model, loader, optimizer, scheduler, steps, step_fn, log, run_eval, "dpo")

    result = {"out": str(out), "checkpoint": str(out / "checkpoint"), "metrics": {}}
    if accelerator.is_main_process:
        evaluation = run_eval(run["steps"])
        metrics = {
            "kind": "dpo",
            "steps": run["steps"],
            "train_seconds": run["seconds"],
            "examples_per_s": run["examples_per_s"],
            "train_pairs": len(train),
            "eval_pairs": len(held_out),
            "eval": evaluation,
        }
        save_policy(
            raw, processor, out / "checkpoint", {"train_config": dataclasses.asdict(cfg), "metrics": metrics}
        )
        write_json(out / "metrics.json", {**metrics, "config": dataclasses.asdict(cfg)})
        log.plot(out / "curves.png")
        result["metrics"] = metrics
    accelerator.wait_for_everyone()
    return result


def save_policy(model, processor, path: Path, provenance: dict) -> Path:
    """A plain HF folder (safetensors + config + tokenizer/processor); LoRA adapters merged first."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    write_json(path / "auralign_training.json", {"schema": "auralign.dpo_checkpoint/1", **provenance})
    return path
