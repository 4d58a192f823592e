"""Command line: ``python -m rlhf_export.training {rm,dpo,score} ...`` (``--help`` on each).

Many GPUs: ``accelerate launch -m rlhf_export.training rm ...`` (or dpo); one process per GPU.
"""

import argparse
import dataclasses
import json
import os
import sys

from .dpo import DPOConfig
from .rm import RMConfig


def add_config_arguments(parser: argparse.ArgumentParser, config_class) -> None:
    """One --flag per config field, typed and documented from the dataclass."""
    for f in dataclasses.fields(config_class):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if f.type is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text
            )
        elif f.default is dataclasses.MISSING:
            parser.add_argument(flag, type=f.type, required=True, help=help_text)
        else:
            parser.add_argument(
                flag, type=f.type, default=f.default, help=f"{help_text} (default: {f.default})"
            )


def config_from_args(config_class, args: argparse.Namespace):
    return config_class(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rlhf_export.training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_config_arguments(commands.add_parser("rm", help="train a rubric-guided reward model"), RMConfig)
    add_config_arguments(commands.add_parser("dpo", help="DPO a policy (text or audio-in LLM)"), DPOConfig)
    score = commands.add_parser("score", help="score candidates with a reward-model checkpoint")
    score.add_argument("--model", required=True, help="reward-model checkpoint folder or s3:// prefix")
    source = score.add_mutually_exclusive_group(required=True)
    source.add_argument("--snapshot", help="score every candidate of a snapshot split")
    source.add_argument(
        "--candidates", help="JSONL rows: prompt, reply_text, optional reply_audio, candidate_id, item_id"
    )
    score.add_argument("--split", default="test", help="snapshot split to score (default: test)")
    score.add_argument("--out", default="-", help="output JSONL (default: stdout)")
    score.add_argument("--batch-size", type=int, default=16)
    score.add_argument("--device", default="auto", help="auto | cpu | cuda")
    return parser


def score_command(args) -> None:
    import torch

    from .data import candidate_rows, open_snapshot
    from .reward_model import item_uncertainty, load_reward_model, score_candidates

    device = (
        "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device.replace("auto", "cpu")
    )
    if args.candidates:  # check the input before the (slow) model load
        with open(args.candidates) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        missing = [n for n, r in enumerate(rows, 1) if "prompt" not in r or "reply_text" not in r]
        if missing:
            raise ValueError(f"candidate line(s) {missing[:5]} lack prompt or reply_text")
    else:
        snapshot = open_snapshot(args.snapshot)
    model = load_reward_model(args.model, device)
    if args.snapshot:
        rows = candidate_rows(snapshot, args.split, with_audio=model.audio_encoder is not None)
    scores = score_candidates(model, rows, args.batch_size, progress=True)
    ranked = item_uncertainty([r.get("item_id", "") for r in rows], [s["overall"] for s in scores], model)
    uncertainty = dict(ranked)
    out = sys.stdout if args.out == "-" else open(args.out, "w")
    for row, score in zip(rows, scores, strict=True):
        item = row.get("item_id", "")
        record = {
            "candidate_id": row.get("candidate_id", ""),
            "item_id": item,
            **score,
            "item_uncertainty": uncertainty.get(item),
        }
        out.write(json.dumps(record) + "\n")
    if out is not sys.stdout:
        out.close()
    print(f"scored {len(rows)} candidates; least certain items: {ranked[:5]}", file=sys.stderr)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "rm":
            from .rm import train_reward_model

            result = train_reward_model(config_from_args(RMConfig, args))
        elif args.command == "dpo":
            from .dpo import train_dpo

            result = train_dpo(config_from_args(DPOConfig, args))
        else:
            score_command(args)
            return 0
    except Exception as error:  # CLI boundary: one line, non-zero exit (AURALIGN_DEBUG=1 for the traceback)
        if os.environ.get("AURALIGN_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1
    if result["metrics"]:  # the main process prints where things are and the held-out figures
        evaluation = {
            k: v for k, v in result["metrics"]["eval"].items() if k in ("loss", "accuracy", "pairs")
        }
        print(json.dumps({"checkpoint": result["checkpoint"], "eval": evaluation}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
