"""Reply audio, in order: mono; resample to the campaign rate (torchaudio); loudness-normalise to
the target LUFS, keeping the raw audio too; peaks; WAV encode; sha256 opaque key; upload."""

from __future__ import annotations

import numpy as np

from worker import audio as dsp
from worker.storage import ObjectStore


def store_wav(samples: np.ndarray, sample_rate: int, store: ObjectStore) -> dict:
    """Encode, describe (sha256 key, LUFS, peaks) and upload; returns the AudioInfo dict."""
    data = dsp.encode_wav(samples, sample_rate)
    info = dsp.describe(data)
    store.put(info.key, data)
    return info.as_dict()


def finish_reply_audio(
    samples: np.ndarray, sample_rate: int, *, target_rate: int, target_lufs: float, store: ObjectStore
) -> tuple[dict, dict]:
    """(normalised audio info, raw audio info), both uploaded."""
    mono = dsp.to_mono(samples)
    raw = dsp.resample(mono, sample_rate, target_rate)
    normalised = dsp.normalize_loudness(raw, target_rate, target_lufs)
    return store_wav(normalised, target_rate, store), store_wav(raw, target_rate, store)
