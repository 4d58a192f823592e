"""A whole job through worker.runner.run_job with real tiny models, real TTS and a local store."""

import pytest

from tests.services import free_port
from tests.worker.conftest import make_job, tone_wav
from tests.worker.openai_server import ChatServer
from worker import audio as dsp
from worker.postprocess import store_wav
from worker.runner import run_job
from worker.schemas import check_result


def test_a_job_returns_voiced_candidates_for_every_sample(causal_lm, store):
    result = run_job(make_job({"checkpoint": str(causal_lm)}, dialogues=2, samples=2), store=store)
    check_result(result)
    assert result["worker"]["device"] == "cpu" and result["worker"]["dtype"] == "float32"
    assert [t["status"] for t in result["tasks"]] == ["ok", "ok"]
    candidate = result["tasks"][1]["candidates"][1]
    assert (candidate["sample_index"], candidate["seed"]) == (1, 1001)
    assert candidate["params"] == {"temperature": 0.9, "top_p": 0.95, "top_k": 0, "max_new_tokens": 8, "min_new_tokens": 0}
    audio = dsp.decode(store.get(candidate["audio"]["key"]))
    assert audio.sample_rate == 24000 and audio.channels == 1
    assert store.exists(candidate["raw_audio"]["key"])
    # at the target loudness, unless the -1 dBFS peak limit had to hold it below
    assert abs(candidate["audio"]["lufs"] + 20.0) < 0.5 or max(candidate["audio"]["peaks"]) > 0.88


def test_the_same_job_twice_gives_the_same_replies(causal_lm, store):
    job = make_job({"checkpoint": str(causal_lm)}, dialogues=2, samples=2)
    first, second = run_job(job, store=store), run_job(job, store=store)
    texts = [[c["reply_text"] for c in t["candidates"]] for t in first["tasks"]]
    assert texts == [[c["reply_text"] for c in t["candidates"]] for t in second["tasks"]]


def test_audio_in_policy_reads_turn_audio_from_the_store(audio_lm, store):
    key = store_wav(dsp.decode(tone_wav()).samples, 16000, store)["key"]
    result = run_job(make_job({"checkpoint": str(audio_lm)}, audio_key=key, dialogues=1, samples=1), store=store)
    assert result["tasks"][0]["status"] == "ok"


def test_missing_turn_audio_fails_only_that_task(audio_lm, store):
    job = make_job({"checkpoint": str(audio_lm)}, dialogues=2, samples=1)
    job["tasks"][0]["turns"][1]["audio_key"] = "audio/00/" + "0" * 64 + ".wav"
    result = run_job(job, store=store)
    assert [t["status"] for t in result["tasks"]] == ["failed", "ok"]
    assert "is missing from object storage" in result["tasks"][0]["error"]


def test_vits_voice_and_campaign_rate(causal_lm, vits_voice, store):
    job = make_job({"checkpoint": str(causal_lm)}, tts={"backend": "vits", "checkpoint": str(vits_voice)}, sample_rate=16000)
    result = run_job(job, store=store)
    assert {c["audio"]["sample_rate"] for t in result["tasks"] for c in t["candidates"]} == {16000}


def test_tts_none_gives_text_only_candidates(causal_lm, store):
    result = run_job(make_job({"checkpoint": str(causal_lm)}, tts={"backend": "none"}, dialogues=1), store=store)
    assert all(c["audio"] is None and c["raw_audio"] is None for c in result["tasks"][0]["candidates"])


def test_missing_checkpoint_fails_every_task_with_the_reason(tmp_path, store):
    result = run_job(make_job({"checkpoint": str(tmp_path / "gone")}), store=store)
    check_result(result)
    assert {t["status"] for t in result["tasks"]} == {"failed"}
    assert result["tasks"][0]["error"] == f"checkpoint '{tmp_path / 'gone'}' does not exist on this worker"


def test_a_model_that_returns_empty_text_fails_the_task(mute_lm, store):
    result = run_job(make_job({"checkpoint": str(mute_lm)}, dialogues=1), store=store)
    assert result["tasks"][0]["status"] == "failed"
    assert result["tasks"][0]["error"] == "sample 0 (seed 0): the model returned an empty reply (finish_reason=stop, 0 new tokens)"


def test_unreachable_endpoint_fails_every_task(store):
    config = {"base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "m", "max_retries": 0}
    result = run_job(make_job(config, backend="openai"), store=store)
    assert {t["status"] for t in result["tasks"]} == {"failed"}
    assert "cannot reach" in result["tasks"][0]["error"]


def test_an_invalid_job_fails_its_tasks_naming_the_field(store):
    job = make_job({"checkpoint": "/x"})
    job["audio"]["sample_rate"] = 4
    result = run_job(job, store=store)
    assert "invalid auralign.sample_job/1 at audio/sample_rate" in result["tasks"][0]["error"]


def test_model_voice_comes_from_the_openai_server(causal_lm, store):
    server = ChatServer(causal_lm, speak=True)
    try:
        config = {"base_url": server.base_url, "model": "tiny"}
        result = run_job(make_job(config, backend="openai", tts={"backend": "model"}, dialogues=1, samples=2), store=store)
    finally:
        server.close()
    candidates = result["tasks"][0]["candidates"]
    assert len(candidates) == 2 and all(store.exists(c["audio"]["key"]) for c in candidates)


def test_model_voice_without_model_audio_fails_the_task(causal_lm, store):
    server = ChatServer(causal_lm, speak=False)
    try:
        config = {"base_url": server.base_url, "model": "tiny"}
        result = run_job(make_job(config, backend="openai", tts={"backend": "model"}, dialogues=1), store=store)
    finally:
        server.close()
    assert "the model returned no audio" in result["tasks"][0]["error"]


def test_control_characters_never_reach_the_reply(causal_lm, store):
    server = ChatServer(causal_lm, suffix=" ok\x00\x07\x1b")
    try:
        config = {"base_url": server.base_url, "model": "tiny"}
        result = run_job(make_job(config, backend="openai", dialogues=1, samples=1), store=store)
    finally:
        server.close()
    assert result["tasks"][0]["candidates"][0]["reply_text"].endswith(" ok")


def test_a_job_too_broken_to_name_its_tasks_raises(store):
    from worker.schemas import SchemaError

    with pytest.raises(SchemaError, match="without task ids"):
        run_job({"schema": "nonsense"}, store=store)
