"""Accepting audio: decode and check it, measure it, store it content-addressed."""

from __future__ import annotations

from pathlib import PurePosixPath

from django.conf import settings
from django.db import IntegrityError, transaction

from auralign.core import storage
from auralign.core.errors import ServiceError
from auralign.media.models import AudioAsset
from worker import audio as dsp

ALLOWED_EXTENSIONS = {".wav": "wav", ".flac": "flac", ".ogg": "ogg", ".oga": "ogg"}


class AudioRejected(ServiceError):
    """The bytes are not audio we accept; the message says why."""


def audio_check(*, data: bytes, name: str) -> tuple[dsp.DecodedAudio, dsp.AudioInfo]:
    """Decode and validate untrusted audio. Raises AudioRejected naming the problem."""
    ext = PurePosixPath(name).suffix.lower()
    if ext not in ALLOWED_EXTENSIONS:
        raise AudioRejected(f"audio '{name}' has extension '{ext or '(none)'}'; allowed: .wav, .flac, .ogg")
    if len(data) == 0:
        raise AudioRejected(f"audio '{name}' is empty (0 bytes)")
    if len(data) > settings.AUDIO_MAX_BYTES:
        raise AudioRejected(f"audio '{name}' is {len(data)} bytes; the limit is {settings.AUDIO_MAX_BYTES}")
    sniffed = dsp.sniff_format(data)
    if sniffed is None:
        raise AudioRejected(f"audio '{name}' is not a decodable audio file")
    if sniffed != ALLOWED_EXTENSIONS[ext]:
        raise AudioRejected(f"audio '{name}' has extension '{ext}' but contains {sniffed.upper()} data")
    try:
        header = dsp.probe(data)
    except dsp.AudioDecodeError:
        raise AudioRejected(f"audio '{name}' is not a decodable audio file") from None
    if not settings.AUDIO_MIN_SAMPLE_RATE <= header.samplerate <= settings.AUDIO_MAX_SAMPLE_RATE:
        raise AudioRejected(
            f"audio '{name}' has sample rate {header.samplerate} Hz; allowed "
            f"{settings.AUDIO_MIN_SAMPLE_RATE}-{settings.AUDIO_MAX_SAMPLE_RATE} Hz"
        )
    if header.channels > settings.AUDIO_MAX_CHANNELS:
        raise AudioRejected(f"audio '{name}' has {header.channels} channels; at most {settings.AUDIO_MAX_CHANNELS} allowed")
    if header.frames / header.samplerate > settings.AUDIO_MAX_SECONDS:
        raise AudioRejected(
            f"audio '{name}' lasts {header.frames / header.samplerate:.1f} s; the limit is {settings.AUDIO_MAX_SECONDS:.0f} s"
        )
    try:
        decoded = dsp.decode(data)
    except dsp.AudioDecodeError as exc:
        raise AudioRejected(f"audio '{name}' is not a decodable audio file ({exc})") from None
    return decoded, dsp.describe(data, decoded)


def audio_asset_from_info(*, info: dsp.AudioInfo | dict) -> AudioAsset:
    """Register (or find) the row for an object already in storage; idempotent by sha256."""
    fields = info.as_dict() if isinstance(info, dsp.AudioInfo) else dict(info)
    existing = AudioAsset.objects.filter(sha256=fields["sha256"]).first()
    if existing:
        return existing
    allowed = {f.name for f in AudioAsset._meta.fields} - {"id", "created_at"}
    try:
        with transaction.atomic():
            return AudioAsset.objects.create(**{k: v for k, v in fields.items() if k in allowed})
    except IntegrityError:  # a concurrent writer registered the same content first
        return AudioAsset.objects.get(sha256=fields["sha256"])


def audio_asset_store(*, data: bytes, info: dsp.AudioInfo) -> AudioAsset:
    """Upload checked bytes under their content-addressed key and register the row.
    The object is written before the row, so a row never points to a missing object; an object
    whose row was rolled back is an unreferenced blob that a later import of the same audio reuses."""
    storage.put(info.key, data)
    return audio_asset_from_info(info=info)
