"""Audio degradations for honeypots: a candidate's reply made clearly worse, so that anyone who
listens ranks it last. Plain numpy on (frames, channels) float32 arrays; the result is brought
back to the original loudness so that volume alone does not give it away."""

from __future__ import annotations

import numpy as np

from worker import audio as dsp

DEGRADATIONS = {
    "noise": {"snr_db": 0.0},  # white noise as loud as the speech
    "clipping": {"gain_db": 20.0, "ceiling": 0.25},  # overdriven, then hard-clipped
    "truncation": {"keep": 0.35},  # cut off mid-sentence
}


def degrade(samples: np.ndarray, sample_rate: int, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Returns the degraded samples and a description of what was done (Candidate.degradation)."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation '{kind}'; choose one of: {', '.join(DEGRADATIONS)}")
    params = DEGRADATIONS[kind]
    x = samples.astype(np.float32)
    if kind == "noise":
        rms = float(np.sqrt(np.mean(x**2))) or 1e-3
        noise_rms = rms / (10 ** (params["snr_db"] / 20))
        out = x + rng.normal(0.0, noise_rms, size=x.shape).astype(np.float32)
    elif kind == "clipping":
        ceiling = params["ceiling"]
        out = np.clip(x * 10 ** (params["gain_db"] / 20), -ceiling, ceiling)
    else:
        keep = max(int(len(x) * params["keep"]), min(len(x), int(0.3 * sample_rate)))
        out = x[:keep]
    lufs = dsp.measure_lufs(x, sample_rate)
    out = dsp.normalize_loudness(out, sample_rate, lufs) if lufs > dsp.SILENCE_LUFS else out
    peak = float(np.abs(out).max()) if out.size else 0.0
    if peak > 1.0:
        out = out / peak
    return out.astype(np.float32), {"kind": kind, **params}
