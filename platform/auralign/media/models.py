from django.db import models
from django.db.models import Q


class AudioAsset(models.Model):
    """Content-addressed audio in object storage. The key is derived from the sha256 of the bytes,
    so it reveals nothing about which model, policy or dialogue it belongs to."""

    class Format(models.TextChoices):
        WAV = "wav"
        FLAC = "flac"
        OGG = "ogg"

    sha256 = models.CharField(max_length=64, unique=True)
    key = models.CharField(max_length=200, unique=True)
    format = models.CharField(max_length=8, choices=Format.choices)
    sample_rate = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField()
    num_frames = models.PositiveBigIntegerField()
    duration_s = models.FloatField()
    size_bytes = models.PositiveBigIntegerField()
    lufs = models.FloatField(help_text="Integrated loudness, ITU-R BS.1770 (LUFS)")
    peaks = models.JSONField(default=list, help_text="Max-abs envelope for drawing the waveform")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(sample_rate__gte=8000, sample_rate__lte=192000), name="audio_sample_rate_sane"),
            models.CheckConstraint(condition=Q(channels__gte=1), name="audio_channels_positive"),
            models.CheckConstraint(condition=Q(duration_s__gt=0), name="audio_duration_positive"),
            models.CheckConstraint(condition=Q(size_bytes__gt=0), name="audio_size_positive"),
            models.CheckConstraint(condition=Q(format__in=["wav", "flac", "ogg"]), name="audio_format_known"),
        ]

    def __str__(self) -> str:
        return f"{self.sha256[:12]}… {self.duration_s:.1f}s {self.sample_rate}Hz"
