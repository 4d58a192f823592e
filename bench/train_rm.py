"""Reward-model training throughput: Auralign's trainer against TRL's RewardTrainer.

Both train the same tiny random Qwen2 backbone (built from a config, saved, loaded the usual way)
on the same synthetic, text-only pairwise preferences, with the same optimiser settings, on CPU
(or CUDA with --device cuda). Ties are dropped on both sides, because TRL cannot train on them.

Figures: training samples (preference pairs) per second as each trainer reports it for its
training loop (median over --repeats alternating runs, which evens out a busy machine), their
ratio (Auralign / TRL; target >= 1.0) and both held-out pairwise accuracies (fraction of
held-out pairs where the chosen reply scores higher).

    python bench/train_rm.py [--quick] [--device cpu] [--repeats N] [--threads N]

The last line printed is one JSON object with the figures.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from rlhf_export.training.rm import RMConfig, train_reward_model  # noqa: E402
from tests.rlhf_export.training import factory  # noqa: E402


def strict_rows(n_judgments: int, seed: int) -> list[dict]:
    return [r for r in factory.pairwise_rows(factory.polite_judgments(n_judgments, seed)) if not r["tie"]]


def train_ours(snapshot: Path, model: Path, out: Path, args) -> dict:
    cfg = RMConfig(
        snapshot=str(snapshot),
        base_model=str(model),
        out=str(out),
        ties="drop",
        use_weights=False,
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        warmup_ratio=0.0,
        max_length=256,
        log_every=10_000,
        device=args.device,
    )
    metrics = train_reward_model(cfg)["metrics"]
    return {"samples_per_s": metrics["examples_per_s"], "accuracy": metrics["eval"]["accuracy"]}


def train_trl(train_rows: list[dict], eval_rows: list[dict], model_path: Path, out: Path, args) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    def conversations(rows):
        return Dataset.from_list(
            [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]
        )

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1, dtype=torch.float32)
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(
            output_dir=str(out),
            learning_rate=args.lr,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=args.batch_size,
            lr_scheduler_type="linear",
            warmup_steps=0,
            weight_decay=0.0,
            max_grad_norm=1.0,
            max_length=256,
            bf16=False,
            use_cpu=args.device == "cpu",
            report_to="none",
            save_strategy="no",
            eval_strategy="no",
            logging_steps=10_000,
            disable_tqdm=True,
            dataloader_num_workers=0,
        ),
        train_dataset=conversations(train_rows),
        eval_dataset=conversations(eval_rows),
        processing_class=tokenizer,
    )
    train = trainer.train()
    return {
        "samples_per_s": train.metrics["train_samples_per_second"],
        "accuracy": trl_accuracy(trainer, eval_rows),
    }


@torch.no_grad()
def trl_accuracy(trainer, rows: list[dict]) -> float:
    """Held-out pairwise accuracy of TRL's model, by the same definition as ours."""
    model, tokenizer = trainer.model.eval(), trainer.processing_class

    def reward(row, side):
        ids = tokenizer.apply_chat_template(row["prompt"] + row[side], return_tensors="pt", return_dict=True)
        return model(**{k: v.to(model.device) for k, v in ids.items()}).logits[0, 0].item()

    return sum(reward(r, "chosen") > reward(r, "rejected") for r in rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small data, one epoch (well under a minute)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument(
        "--repeats", type=int, default=2, help="alternating runs of each trainer (median is reported)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: tiny models gain nothing from more, and a shared machine's "
        "oversubscribed threads swamp the figures; 0 = torch's default)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n_train, n_eval = (120, 40) if args.quick else (400, 100)
    args.epochs, args.batch_size, args.lr = (1, 16, 3e-3) if args.quick else (2, 16, 3e-3)
    repeats = args.repeats

    with tempfile.TemporaryDirectory(prefix="bench-train-rm-") as tmp:
        tmp = Path(tmp)
        model = factory.tiny_causal_lm(tmp / "model")
        train_rows, eval_rows = strict_rows(n_train, seed=1), strict_rows(n_eval, seed=2)
        snapshot = factory.write_snapshot(
            tmp / "snapshot", "pairwise", {"train": train_rows, "validation": eval_rows}
        )
        runs = {"ours": [], "trl": []}
        for r in range(repeats):
            runs["ours"].append(train_ours(snapshot, model, tmp / f"ours-{r}", args))
            runs["trl"].append(train_trl(train_rows, eval_rows, model, tmp / f"trl-{r}", args))
        ours, trl = (
            {
                "samples_per_s": statistics.median(x["samples_per_s"] for x in runs[k]),
                "accuracy": runs[k][-1]["accuracy"],
            }
            for k in ("ours", "trl")
        )

    figures = {
        "quick": args.quick,
        "device": args.device,
        "train_pairs": len(train_rows),
        "eval_pairs": len(eval_rows),
        "epochs": args.epochs,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "ours_samples_per_s": round(ours["samples_per_s"], 2),
        "trl_samples_per_s": round(trl["samples_per_s"], 2),
        "throughput_ratio": round(ours["samples_per_s"] / trl["samples_per_s"], 3),
        "ours_accuracy": round(ours["accuracy"], 4),
        "trl_accuracy": round(trl["accuracy"], 4),
    }
    print(
        f"Auralign RM: {figures['ours_samples_per_s']} samples/s, held-out accuracy {figures['ours_accuracy']}"
    )
    print(
        f"TRL RewardTrainer: {figures['trl_samples_per_s']} samples/s, held-out accuracy {figures['trl_accuracy']}"
    )
    print(f"throughput ratio (Auralign / TRL): {figures['throughput_ratio']} (target >= 1.0)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
