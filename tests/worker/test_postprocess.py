import numpy as np

from worker import audio as dsp
from worker.postprocess import finish_reply_audio


def _stereo_tone(rate: int, gain: float) -> np.ndarray:
    t = np.arange(rate) / rate
    x = (gain * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1)


def test_reply_audio_is_mono_at_the_campaign_rate_and_target_loudness(store):
    normalised, _ = finish_reply_audio(_stereo_tone(22050, 0.05), 22050, target_rate=24000, target_lufs=-20.0, store=store)
    decoded = dsp.decode(store.get(normalised["key"]))
    assert decoded.sample_rate == 24000 and decoded.channels == 1
    assert abs(dsp.measure_lufs(decoded.samples, 24000) + 20.0) < 0.5
    assert normalised["lufs"] == round(dsp.measure_lufs(decoded.samples, 24000), 2)


def test_raw_audio_keeps_its_own_loudness(store):
    normalised, raw = finish_reply_audio(_stereo_tone(16000, 0.05), 16000, target_rate=16000, target_lufs=-16.0, store=store)
    assert raw["sha256"] != normalised["sha256"]
    assert raw["lufs"] < normalised["lufs"] - 6


def test_keys_are_content_addressed_and_opaque(store):
    normalised, raw = finish_reply_audio(_stereo_tone(16000, 0.2), 16000, target_rate=16000, target_lufs=-20.0, store=store)
    for info in (normalised, raw):
        data = store.get(info["key"])
        assert info["key"] == dsp.audio_key(dsp.sha256_hex(data), "wav")
        assert info["size_bytes"] == len(data)
        assert len(info["peaks"]) == 50 and max(info["peaks"]) <= 1.0
