"""Audio analysis and post-processing, Django-free.

Shared by the GPU worker (reply audio) and the platform (imported dialogue audio), so both
measure loudness and draw peaks the same way. Arrays are float32, shape (frames, channels).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass

import numpy as np
import pyloudnorm
import soundfile

PEAKS_PER_SECOND = 50
MAX_PEAKS = 2000
SILENCE_LUFS = -70.0  # BS.1770 absolute gate; quieter audio reports this floor


class AudioDecodeError(ValueError):
    """The bytes are not audio we can decode."""


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32, (frames, channels)
    sample_rate: int
    format: str  # "wav" | "flac" | "ogg"
    subtype: str

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def num_frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.sample_rate


@dataclass(frozen=True)
class AudioInfo:
    """What the platform stores about an audio object (see docs/formats.md)."""

    key: str
    sha256: str
    format: str
    sample_rate: int
    channels: int
    num_frames: int
    duration_s: float
    size_bytes: int
    lufs: float
    peaks: list[float]

    def as_dict(self) -> dict:
        return asdict(self)


_FORMATS = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg"}


def sniff_format(data: bytes) -> str | None:
    """Container format from the magic bytes, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    return None


def wav_truncation(data: bytes) -> str | None:
    """libsndfile quietly reads what is there; a WAV whose data chunk promises more bytes than the
    file holds is truncated. Streaming writers (espeak-ng --stdout, pipes) put a placeholder
    size there: 0, 0xFFFFFFFF or 0x7FFFF000 and up mean "unknown length"."""
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk_id == b"data":
            available = len(data) - pos - 8
            if 0 < size < 0x7FFFF000 and size > available:
                return f"truncated: the data chunk declares {size} bytes but the file holds {available}"
            return None
        pos += 8 + size + (size & 1)
    return "truncated: no data chunk"


def probe(data: bytes) -> soundfile._SoundFileInfo:
    """Header information without decoding the samples (cheap limit checks)."""
    try:
        return soundfile.info(io.BytesIO(data))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError
        raise AudioDecodeError(str(exc)) from exc


def decode(data: bytes) -> DecodedAudio:
    """Decode WAV / FLAC / OGG bytes fully; a truncated or corrupt file raises AudioDecodeError."""
    if not data:
        raise AudioDecodeError("empty file")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as f:
            fmt = _FORMATS.get(f.format)
            subtype = f.subtype
            expected = f.frames
            samples = f.read(dtype="float32", always_2d=True)
            sr = f.samplerate
    except Exception as exc:
        raise AudioDecodeError(str(exc)) from exc
    if fmt is None:
        raise AudioDecodeError("unsupported container")
    if fmt == "wav" and (problem := wav_truncation(data)):
        raise AudioDecodeError(problem)
    if samples.shape[0] < expected:
        raise AudioDecodeError(f"truncated: header promises {expected} frames, file holds {samples.shape[0]}")
    if samples.shape[0] == 0:
        raise AudioDecodeError("no audio frames")
    if not np.isfinite(samples).all():
        raise AudioDecodeError("non-finite samples")
    return DecodedAudio(samples=samples, sample_rate=int(sr), format=fmt, subtype=subtype)


def to_mono(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1, keepdims=True).astype(np.float32) if samples.shape[1] > 1 else samples


def resample(samples: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling with torchaudio (imported lazily: the platform rarely needs torch)."""
    if sr_in == sr_out:
        return samples
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(np.ascontiguousarray(samples.T)), sr_in, sr_out)
    return out.T.contiguous().numpy().astype(np.float32)


def measure_lufs(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness per ITU-R BS.1770 (pyloudnorm); clips shorter than a 400 ms block
    are measured on a zero-padded copy; silence reports SILENCE_LUFS."""
    block = int(0.4 * sample_rate) + 1
    x = samples if samples.shape[0] >= block else np.pad(samples, ((0, block - samples.shape[0]), (0, 0)))
    meter = pyloudnorm.Meter(sample_rate)
    with np.errstate(divide="ignore"):
        lufs = meter.integrated_loudness(x)
    return float(lufs) if np.isfinite(lufs) and lufs > SILENCE_LUFS else SILENCE_LUFS


def normalize_loudness(samples: np.ndarray, sample_rate: int, target_lufs: float) -> np.ndarray:
    """Gain to target LUFS, then a peak limit at -1 dBFS so the gain never clips."""
    current = measure_lufs(samples, sample_rate)
    if current <= SILENCE_LUFS:
        return samples
    out = samples * (10.0 ** ((target_lufs - current) / 20.0))
    peak = float(np.abs(out).max())
    ceiling = 10 ** (-1 / 20)
    if peak > ceiling:
        out = out * (ceiling / peak)
    return out.astype(np.float32)


def compute_peaks(samples: np.ndarray, sample_rate: int) -> list[float]:
    """Max-abs envelope, PEAKS_PER_SECOND values per second (at most MAX_PEAKS), for drawing the
    waveform without downloading the audio (wavesurfer.js `peaks`)."""
    mono = np.abs(samples).max(axis=1)
    n = int(min(MAX_PEAKS, max(1, round(len(mono) / sample_rate * PEAKS_PER_SECOND))))
    edges = np.linspace(0, len(mono), n + 1).astype(int)
    peaks = [float(mono[a:b].max()) if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [round(min(p, 1.0), 4) for p in peaks]


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, np.clip(samples, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def audio_key(sha256: str, ext: str) -> str:
    """Opaque content-addressed object key (docs/formats.md)."""
    return f"audio/{sha256[:2]}/{sha256}.{ext}"


def describe(data: bytes, decoded: DecodedAudio | None = None) -> AudioInfo:
    """Everything the platform stores about an encoded audio file."""
    decoded = decoded or decode(data)
    digest = sha256_hex(data)
    return AudioInfo(
        key=audio_key(digest, decoded.format),
        sha256=digest,
        format=decoded.format,
        sample_rate=decoded.sample_rate,
        channels=decoded.channels,
        num_frames=decoded.num_frames,
        duration_s=round(decoded.duration_s, 4),
        size_bytes=len(data),
        lufs=round(measure_lufs(decoded.samples, decoded.sample_rate), 2),
        peaks=compute_peaks(decoded.samples, decoded.sample_rate),
    )
