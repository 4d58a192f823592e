import json
import subprocess
import sys

from tests import services


def test_two_process_run_trains_one_model_and_saves_it_once(tiny_lm, tiny_whisper, loud_snapshot, tmp_path):
    # torchrun on CPU (gloo) exercises the same DDP path as `accelerate launch` on GPUs; the audio
    # model is the demanding case (an encoder that some batches skip, a tie parameter used in the loss)
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "rlhf_export.training",
        "rm",
        "--snapshot",
        str(loud_snapshot),
        "--base-model",
        str(tiny_lm),
        "--audio-encoder",
        str(tiny_whisper),
        "--audio-dim",
        "16",
        "--out",
        str(out),
        "--max-steps",
        "3",
        "--batch-size",
        "8",
        "--lr",
        "3e-3",
        "--log-every",
        "1",
        "--device",
        "cpu",
    ]
    env = services.django_free_env({"OMP_NUM_THREADS": "1"})
    done = subprocess.run(command, env=env, cwd=services.REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [
        1,
        2,
        3,
    ]  # one log, from the main process
    assert records[0]["total_steps"] == 3
    assert (out / "checkpoint" / "reward_model.json").is_file()
