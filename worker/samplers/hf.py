"""`hf` backend: a Hugging Face checkpoint (folder, GGUF file, or either under s3://), loaded once
per worker process and cached. Text causal LMs get the dialogue as a chat-templated prompt;
audio-in LMs (Qwen2-Audio style: a processor with a feature extractor) also hear the turn audio.

Generation is batched across dialogues and samples. Each row draws its tokens from its own
seeded generator, so a sample depends on its seed and prompt only, not on its batch neighbours:
rerunning one sample alone with its recorded seed reproduces it."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMultimodalLM,
    AutoProcessor,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from worker import audio as dsp
from worker.celery_conf import var_dir
from worker.device import select_device, select_dtype
from worker.samplers.base import (
    Generation,
    GenerationParams,
    PolicyError,
    Prompt,
    SampleFailed,
    SampleSpec,
    system_text,
)
from worker.storage import ObjectMissing, download_s3

log = logging.getLogger(__name__)
MODEL_CACHE_SIZE = int(os.environ.get("AURALIGN_MODEL_CACHE_SIZE", "2"))  # models kept loaded per process


@dataclass(frozen=True)
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    processor: object | None  # set for audio-in models
    device: torch.device
    dtype: torch.dtype

    @property
    def audio_rate(self) -> int | None:
        return self.processor.feature_extractor.sampling_rate if self.processor is not None else None


def model_dir() -> Path:
    return Path(os.environ.get("AURALIGN_MODEL_DIR", var_dir() / "models"))


def resolve_checkpoint(checkpoint: str, gguf_file: str | None) -> tuple[Path, str | None]:
    """(folder, gguf file name or None) for a local path or an s3:// URI."""
    if checkpoint.startswith("s3://"):
        try:
            path = download_s3(checkpoint, model_dir() / hashlib.sha256(checkpoint.encode()).hexdigest()[:24])
        except (ObjectMissing, ValueError) as exc:
            raise PolicyError(f"checkpoint {checkpoint}: {exc}") from None
    else:
        path = Path(checkpoint).expanduser()
        if not path.exists():
            raise PolicyError(f"checkpoint '{checkpoint}' does not exist on this worker")
    if path.is_file():
        if path.suffix != ".gguf":
            raise PolicyError(f"checkpoint '{checkpoint}' is a file but not a .gguf file")
        return path.parent, path.name
    if gguf_file:
        if not (path / gguf_file).is_file():
            raise PolicyError(f"gguf_file '{gguf_file}' is not in checkpoint '{checkpoint}'")
        return path, gguf_file
    if not (path / "config.json").is_file():
        raise PolicyError(f"checkpoint '{checkpoint}' is not a Hugging Face model folder (no config.json) and names no gguf_file")
    return path, None


_LOAD_LOCK = threading.Lock()


def load_model(checkpoint: str, gguf_file: str | None, device_name: str) -> LoadedModel:
    """Load (once per process) the model, its tokenizer and, for audio-in models, its processor.
    Loads are serialised: transformers' loading patches process globals (meta-device init), so two
    threads of a threaded worker loading at once corrupt each other."""
    with _LOAD_LOCK:
        return _load_model(checkpoint, gguf_file, device_name)


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def _load_model(checkpoint: str, gguf_file: str | None, device_name: str) -> LoadedModel:
    folder, gguf = resolve_checkpoint(checkpoint, gguf_file)
    device = torch.device(device_name)
    dtype = select_dtype(device)
    started = time.perf_counter()
    extra = {"gguf_file": gguf} if gguf else {}
    try:
        processor = None
        if not gguf and any((folder / f).is_file() for f in ("processor_config.json", "preprocessor_config.json")):
            processor = AutoProcessor.from_pretrained(folder)
            if getattr(processor, "feature_extractor", None) is None:
                processor = None
        tokenizer = processor.tokenizer if processor is not None else AutoTokenizer.from_pretrained(folder, **extra)
        model_class = AutoModelForMultimodalLM if processor is not None else AutoModelForCausalLM
        model = model_class.from_pretrained(folder, dtype=dtype, **extra).to(device).eval()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise PolicyError(f"cannot load checkpoint '{checkpoint}': {exc.__class__.__name__}: {first_line}") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    log.info("loaded %s on %s (%s) in %.1fs", checkpoint, device, dtype, time.perf_counter() - started)
    return LoadedModel(model=model, tokenizer=tokenizer, processor=processor, device=device, dtype=dtype)


class SeededSampling(LogitsProcessor):
    """Draw each row's next token from the row's own generator; the drawn token becomes the only
    finite logit, so greedy decoding picks it. Temperature / top-k / top-p run before this."""

    def __init__(self, seeds: list[int], device: torch.device):
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.float(), dim=-1)
        drawn = torch.cat([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, self.generators, strict=True)])
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, drawn[:, None], 0.0)


def _eos_ids(loaded: LoadedModel) -> list[int]:
    ids = loaded.model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if loaded.tokenizer.eos_token_id is not None:
        ids.append(loaded.tokenizer.eos_token_id)
    return sorted(set(ids))


class HFSampler:
    """Config keys: checkpoint (required), gguf_file, system_prompt, chat_template, batch_size (16)."""

    def __init__(self, config: dict):
        checkpoint = config.get("checkpoint")
        if not isinstance(checkpoint, str) or not checkpoint.strip():
            raise PolicyError("hf policy needs config.checkpoint (a folder, a .gguf file or an s3:// URI)")
        self.loaded = load_model(checkpoint.strip(), config.get("gguf_file") or None, str(select_device()))
        self.persona = config.get("system_prompt")
        self.chat_template = config.get("chat_template") or None
        self.batch_size = config.get("batch_size", 16)
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise PolicyError(f"config.batch_size must be a positive integer, not {self.batch_size!r}")
        self.listens = self.loaded.processor is not None
        if self.chat_template is None and not getattr(self.loaded.tokenizer, "chat_template", None):
            raise PolicyError(f"checkpoint '{checkpoint}' has no chat template; set config.chat_template")

    def describe(self) -> dict:
        return {"device": str(self.loaded.device), "dtype": str(self.loaded.dtype).removeprefix("torch.")}

    # --- prompts ---------------------------------------------------------------------------------
    def render(self, prompt: Prompt) -> tuple[str, list[np.ndarray]]:
        """The chat-templated prompt text and, for audio-in models, the audio it refers to (in order)."""
        system = system_text(prompt, self.persona)
        messages = [{"role": "system", "content": system}] if system else []
        audios: list[np.ndarray] = []
        for n, turn in enumerate(prompt.turns, start=1):
            if turn.role == "system":
                continue
            if self.listens and turn.role == "user" and turn.audio is not None:
                audios.append(self._listen(turn.audio, n))
                messages.append({"role": "user", "content": [{"type": "audio"}]})
            elif turn.text.strip():
                content = [{"type": "text", "text": turn.text}] if self.listens else turn.text
                messages.append({"role": turn.role, "content": content})
            else:
                raise SampleFailed(f"turn {n} has audio but no transcript, and this policy's model reads text only")
        template_owner = self.loaded.processor or self.loaded.tokenizer
        text = template_owner.apply_chat_template(
            messages, chat_template=self.chat_template, tokenize=False, add_generation_prompt=True
        )
        return text, audios

    def _listen(self, data: bytes, n: int) -> np.ndarray:
        try:
            decoded = dsp.decode(data)
        except dsp.AudioDecodeError as exc:
            raise SampleFailed(f"turn {n} audio cannot be decoded ({exc})") from None
        mono = dsp.to_mono(decoded.samples)
        return dsp.resample(mono, decoded.sample_rate, self.loaded.audio_rate)[:, 0]

    # --- generation ------------------------------------------------------------------------------
    def generate(
        self, prompts: list[Prompt], specs: list[SampleSpec], params: GenerationParams, *, speak: bool = False
    ) -> list[Generation | SampleFailed]:
        out: list[Generation | SampleFailed | None] = [None] * len(specs)
        rendered: dict[int, tuple[str, list[np.ndarray]] | SampleFailed] = {}
        for i in sorted({s.prompt for s in specs}):
            try:
                rendered[i] = self.render(prompts[i])
            except SampleFailed as exc:
                rendered[i] = exc
        rows = []
        for row, spec in enumerate(specs):
            r = rendered[spec.prompt]
            if isinstance(r, SampleFailed):
                out[row] = r
            else:
                rows.append((row, spec, r[0], r[1]))
        rows.sort(key=lambda r: len(r[2]))  # similar lengths share a batch: less padding
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            for (row, *_), generation in zip(chunk, self._generate_rows(chunk, params), strict=True):
                out[row] = generation
        return out

    def _generate_rows(self, rows: list, params: GenerationParams) -> list[Generation]:
        try:
            return self._generate_batch(rows, params)
        except torch.OutOfMemoryError:
            if len(rows) == 1:
                raise PolicyError("out of GPU memory generating a single sample; lower max_new_tokens") from None
            torch.cuda.empty_cache()
            half = len(rows) // 2
            log.warning("out of GPU memory at batch %d; splitting", len(rows))
            return self._generate_rows(rows[:half], params) + self._generate_rows(rows[half:], params)

    def _generate_batch(self, rows: list, params: GenerationParams) -> list[Generation]:
        lm = self.loaded
        texts = [r[2] for r in rows]
        if lm.processor is not None:
            audios = [a for r in rows for a in r[3]]
            inputs = lm.processor(
                text=texts, audio=audios or None, sampling_rate=lm.audio_rate, return_tensors="pt", padding=True
            )
        else:
            inputs = lm.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        inputs = {
            k: v.to(lm.device, dtype=lm.dtype if v.is_floating_point() else None) for k, v in inputs.items() if torch.is_tensor(v)
        }
        eos = _eos_ids(lm)
        processors = LogitsProcessorList()
        if params.temperature > 0:
            processors.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k:
                processors.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                processors.append(TopPLogitsWarper(params.top_p))
            processors.append(SeededSampling([r[1].seed for r in rows], lm.device))
        config = GenerationConfig(
            do_sample=False, max_new_tokens=params.max_new_tokens, min_new_tokens=params.min_new_tokens or None,
            pad_token_id=lm.tokenizer.pad_token_id, eos_token_id=eos
        )
        started = time.perf_counter()
        with torch.inference_mode():
            output = lm.model.generate(**inputs, generation_config=config, logits_processor=processors)
        latency = time.perf_counter() - started
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        generations = []
        for tokens in new_tokens:
            stop = next((i for i, t in enumerate(tokens) if t in eos), None)
            kept = tokens if stop is None else tokens[:stop]
            generations.append(
                Generation(
                    text=lm.tokenizer.decode(kept, skip_special_tokens=True),
                    finish_reason="length" if stop is None else "stop",
                    latency_s=round(latency, 3),
                    new_tokens=len(kept),
                    stats={"batch_size": len(rows)},
                )
            )
        return generations
