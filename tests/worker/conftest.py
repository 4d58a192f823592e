"""Worker test fixtures: tiny checkpoints built once per session, and a local object store."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from tests.worker import tiny_models
from worker.storage import LocalStore


@pytest.fixture(scope="session")
def causal_lm(tmp_path_factory):
    return tiny_models.build_causal_lm(tmp_path_factory.mktemp("causal-lm"))


@pytest.fixture(scope="session")
def audio_lm(tmp_path_factory):
    return tiny_models.build_audio_lm(tmp_path_factory.mktemp("audio-lm"))


@pytest.fixture(scope="session")
def vits_voice(tmp_path_factory):
    return tiny_models.build_vits(tmp_path_factory.mktemp("vits"))


@pytest.fixture(scope="session")
def mute_lm(tmp_path_factory):
    return tiny_models.build_mute_lm(tmp_path_factory.mktemp("mute-lm"))


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "objects")


def tone_wav(freq: float = 220.0, seconds: float = 1.0, rate: int = 16000, channels: int = 1) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    buf = io.BytesIO()
    soundfile.write(buf, np.repeat(x[:, None], channels, axis=1), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def make_job(
    config: dict,
    *,
    backend: str = "hf",
    tts: dict | None = None,
    dialogues: int = 2,
    samples: int = 2,
    generation: dict | None = None,
    audio_key: str | None = None,
    sample_rate: int = 24000,
    target_lufs: float = -20.0,
) -> dict:
    """A sampling job (docs/formats.md) over `dialogues` two-turn dialogues."""
    return {
        "schema": "auralign.sample_job/1",
        "job_id": "00000000-0000-0000-0000-00000000000a",
        "policy": {
            "id": "00000000-0000-0000-0000-0000000000b0",
            "backend": backend,
            "config": config,
            "generation": generation or {"temperature": 0.9, "top_p": 0.95, "max_new_tokens": 8},
            "tts": tts or {"backend": "espeak"},
        },
        "audio": {"sample_rate": sample_rate, "target_lufs": target_lufs},
        "tasks": [
            {
                "task_id": 10 + d,
                "dialogue_id": f"dialogue-{d}",
                "turns": [
                    {"role": "system", "text": "Answer briefly.", "audio_key": None},
                    {"role": "user", "text": f"hello there, question {d}?", "audio_key": audio_key},
                ],
                "samples": [{"index": i, "seed": 1000 * d + i} for i in range(samples)],
            }
            for d in range(dialogues)
        ],
    }
