"""The openai sampler against a real local HTTP server that speaks the protocol (tests/worker/openai_server.py)."""

import base64

import pytest

from tests.services import free_port
from tests.worker.conftest import tone_wav
from tests.worker.openai_server import ChatServer
from worker import audio as dsp
from worker.samplers.base import GenerationParams, PolicyError, Prompt, SampleFailed, SampleSpec, Turn
from worker.samplers.openai_compat import OpenAISampler

PARAMS = GenerationParams(temperature=0.8, top_p=0.9, max_new_tokens=7)


@pytest.fixture
def server(causal_lm):
    s = ChatServer(causal_lm)
    yield s
    s.close()


def _sampler(server: ChatServer, **config) -> OpenAISampler:
    return OpenAISampler({"base_url": server.base_url, "model": "tiny", **config})


def _prompt(i: int = 0, audio: bytes | None = None) -> Prompt:
    return Prompt(turns=(Turn("system", "Be brief."), Turn("user", f"hello there {i}", audio=audio)))


def test_one_request_per_dialogue_asks_for_n_with_the_policy_parameters(server):
    specs = [SampleSpec(prompt=p, index=i, seed=50 + 10 * p + i) for p in range(2) for i in range(3)]
    out = _sampler(server, system_prompt="You are calm.").generate([_prompt(0), _prompt(1)], specs, PARAMS)
    assert len(out) == 6 and all(g.text for g in out)
    assert len(server.requests) == 2
    body = sorted(server.requests, key=lambda b: b["seed"])[0]
    assert (body["n"], body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (3, 0.8, 0.9, 7, 50)
    assert body["messages"][0] == {"role": "system", "content": "You are calm.\n\nBe brief."}
    assert [g.stats["choice"] for g in out[:3]] == [0, 1, 2]


def test_no_more_requests_in_flight_than_the_concurrency_limit(server):
    specs = [SampleSpec(prompt=p, index=0, seed=p) for p in range(6)]
    out = _sampler(server, concurrency=2).generate([_prompt(p) for p in range(6)], specs, PARAMS)
    assert all(g.text for g in out) and len(server.requests) == 6
    assert server.max_in_flight <= 2


def test_turn_audio_is_sent_as_base64_input_audio(server):
    wav = tone_wav()
    _sampler(server).generate([_prompt(audio=wav)], [SampleSpec(0, 0, 1)], PARAMS)
    part = server.requests[0]["messages"][-1]["content"][0]
    assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"
    assert base64.b64decode(part["input_audio"]["data"]) == wav


def test_flac_turn_audio_is_re_encoded_as_wav(server):
    import io

    import soundfile

    decoded = dsp.decode(tone_wav())
    buf = io.BytesIO()
    soundfile.write(buf, decoded.samples, decoded.sample_rate, format="FLAC")
    _sampler(server).generate([_prompt(audio=buf.getvalue())], [SampleSpec(0, 0, 1)], PARAMS)
    sent = base64.b64decode(server.requests[0]["messages"][-1]["content"][0]["input_audio"]["data"])
    assert dsp.sniff_format(sent) == "wav"


def test_send_audio_off_sends_the_transcript(server):
    _sampler(server, send_audio=False).generate([_prompt(audio=tone_wav())], [SampleSpec(0, 0, 1)], PARAMS)
    assert server.requests[0]["messages"][-1] == {"role": "user", "content": "hello there 0"}


def test_reasoning_content_is_kept_apart(server):
    server.reasoning = True
    out = _sampler(server).generate([_prompt()], [SampleSpec(0, 0, 1)], GenerationParams(max_new_tokens=10))
    assert out[0].reasoning and out[0].text
    assert out[0].reasoning != out[0].text


def test_server_errors_are_retried_with_backoff(server):
    server.fail_next = 2
    out = _sampler(server, max_retries=3).generate([_prompt()], [SampleSpec(0, 0, 1)], PARAMS)
    assert out[0].text and len(server.requests) == 3


def test_persistent_server_errors_fail_the_dialogue_with_the_status(server):
    server.fail_next = 10
    out = _sampler(server, max_retries=1).generate([_prompt()], [SampleSpec(0, 0, 1), SampleSpec(0, 1, 2)], PARAMS)
    assert all(isinstance(g, SampleFailed) for g in out)
    assert "answered HTTP 503" in str(out[0])


def test_unreachable_endpoint_fails_with_a_readable_reason():
    sampler = OpenAISampler({"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "m", "max_retries": 1, "timeout_s": 5})
    out = sampler.generate([_prompt()], [SampleSpec(0, 0, 1)], PARAMS)
    assert isinstance(out[0], SampleFailed)
    assert "cannot reach http://127.0.0.1" in str(out[0]) and "after 1 retries" in str(out[0])


def test_per_sample_requests_when_n_is_off(server):
    _sampler(server, use_n=False).generate([_prompt()], [SampleSpec(0, 0, 11), SampleSpec(0, 1, 12)], PARAMS)
    assert sorted((b["n"], b["seed"]) for b in server.requests) == [(1, 11), (1, 12)]


def test_model_audio_is_requested_and_returned(server):
    server.speak = True
    out = _sampler(server, voice="verse").generate([_prompt()], [SampleSpec(0, 0, 1)], PARAMS, speak=True)
    assert server.requests[0]["modalities"] == ["text", "audio"]
    assert server.requests[0]["audio"] == {"voice": "verse", "format": "wav"}
    assert dsp.decode(out[0].audio).sample_rate == 16000


def test_missing_model_name_is_a_policy_error():
    with pytest.raises(PolicyError, match="config.model"):
        OpenAISampler({"base_url": "http://127.0.0.1:1/v1"})


def test_min_new_tokens_is_sent_as_the_servers_min_tokens(server):
    params = GenerationParams(temperature=0.8, max_new_tokens=7, min_new_tokens=3)
    _sampler(server).generate([_prompt(0)], [SampleSpec(0, 0, seed=1)], params)
    assert server.requests[0]["min_tokens"] == 3
