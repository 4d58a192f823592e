"""`openai` backend: any OpenAI-compatible chat-completions server (vLLM, SGLang, hosted APIs).

One request per dialogue asks for all its samples with `n` and the first sample's seed (servers
such as vLLM derive each choice's randomness from the request seed, so the same request
reproduces every choice). Turn audio goes as base64 `input_audio` parts; `reasoning_content`
(or `reasoning`) is read when the server returns it. The client retries connection errors,
429 and 5xx with exponential backoff; at most `concurrency` requests are in flight."""

from __future__ import annotations

import base64
import os
import time
from concurrent.futures import ThreadPoolExecutor

import openai

from worker import audio as dsp
from worker.samplers.base import (
    Generation,
    GenerationParams,
    PolicyError,
    Prompt,
    SampleFailed,
    SampleSpec,
    system_text,
)


def _wav(data: bytes) -> bytes:
    """input_audio takes wav or mp3: stored FLAC/OGG turns are re-encoded as WAV."""
    if dsp.sniff_format(data) == "wav":
        return data
    decoded = dsp.decode(data)
    return dsp.encode_wav(decoded.samples, decoded.sample_rate)


class OpenAISampler:
    """Config keys: base_url, model (required); api_key_env (OPENAI_API_KEY), system_prompt,
    concurrency (4), timeout_s (60), max_retries (3), send_audio (true), use_n (true),
    voice ("alloy", when tts.backend is "model"), extra_body (passed through, e.g. vLLM options)."""

    def __init__(self, config: dict):
        for key in ("base_url", "model"):
            if not isinstance(config.get(key), str) or not config[key].strip():
                raise PolicyError(f"openai policy needs config.{key}")
        self.base_url = config["base_url"].rstrip("/")
        self.model = config["model"]
        self.persona = config.get("system_prompt")
        self.concurrency = max(1, int(config.get("concurrency", 4)))
        self.max_retries = int(config.get("max_retries", 3))
        self.listens = bool(config.get("send_audio", True))
        self.use_n = bool(config.get("use_n", True))
        self.voice = config.get("voice", "alloy")
        self.extra_body = dict(config.get("extra_body") or {})
        api_key = os.environ.get(config.get("api_key_env") or "OPENAI_API_KEY") or "EMPTY"
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key,
            timeout=float(config.get("timeout_s", 60)),
            max_retries=self.max_retries,
        )

    def describe(self) -> dict:
        return {"device": f"remote:{self.base_url}", "dtype": "remote"}

    def messages(self, prompt: Prompt) -> list[dict]:
        system = system_text(prompt, self.persona)
        messages = [{"role": "system", "content": system}] if system else []
        for n, turn in enumerate(prompt.turns, start=1):
            if turn.role == "system":
                continue
            if self.listens and turn.role == "user" and turn.audio is not None:
                data = base64.b64encode(_wav(turn.audio)).decode("ascii")
                messages.append({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}]})
            elif turn.text.strip():
                messages.append({"role": turn.role, "content": turn.text})
            else:
                raise SampleFailed(f"turn {n} has audio but no transcript, and send_audio is off")
        return messages

    def generate(
        self, prompts: list[Prompt], specs: list[SampleSpec], params: GenerationParams, *, speak: bool = False
    ) -> list[Generation | SampleFailed]:
        groups: dict[int, list[int]] = {}
        for row, spec in enumerate(specs):
            groups.setdefault(spec.prompt, []).append(row)
        requests = []  # (rows, seed) — one request per dialogue with n, or one per sample
        for prompt_index, rows in groups.items():
            if self.use_n:
                requests.append((prompt_index, rows))
            else:
                requests += [(prompt_index, [row]) for row in rows]
        out: list[Generation | SampleFailed | None] = [None] * len(specs)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [
                (rows, pool.submit(self._request, prompts[p], [specs[r] for r in rows], params, speak)) for p, rows in requests
            ]
            for rows, future in futures:
                try:
                    generations = future.result()
                except SampleFailed as exc:
                    generations = [exc] * len(rows)
                for row, generation in zip(rows, generations, strict=True):
                    out[row] = generation
        return out

    def _request(self, prompt: Prompt, specs: list[SampleSpec], params: GenerationParams, speak: bool) -> list[Generation]:
        kwargs: dict = {
            "model": self.model,
            "messages": self.messages(prompt),
            "n": len(specs),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": specs[0].seed,
        }
        extra = dict(self.extra_body)
        if params.top_k:
            extra["top_k"] = params.top_k
        if params.min_new_tokens:
            extra["min_tokens"] = params.min_new_tokens  # vLLM / SGLang sampling parameter
        if extra:
            kwargs["extra_body"] = extra
        if speak:
            kwargs["modalities"] = ["text", "audio"]
            kwargs["audio"] = {"voice": self.voice, "format": "wav"}
        started = time.perf_counter()
        try:
            response = self.client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise SampleFailed(f"{self.base_url} did not answer within the timeout ({self.max_retries} retries)") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise SampleFailed(f"cannot reach {self.base_url} ({cause}) after {self.max_retries} retries") from None
        except openai.APIStatusError as exc:
            raise SampleFailed(f"{self.base_url} answered HTTP {exc.status_code}: {str(exc.message)[:300]}") from None
        latency = time.perf_counter() - started
        choices = sorted(response.choices or [], key=lambda c: c.index)
        if len(choices) != len(specs):
            raise SampleFailed(f"{self.base_url} returned {len(choices)} choices for n={len(specs)} (does it support n?)")
        usage = getattr(response, "usage", None)
        generations = []
        for choice in choices:
            message = choice.message
            extra_fields = message.model_extra or {}
            reasoning = extra_fields.get("reasoning_content") or extra_fields.get("reasoning") or ""
            spoken = getattr(message, "audio", None)
            text = message.content or (spoken.transcript if spoken is not None else "") or ""
            generations.append(
                Generation(
                    text=text,
                    reasoning=reasoning,
                    finish_reason=choice.finish_reason or "stop",
                    latency_s=round(latency, 3),
                    new_tokens=usage.completion_tokens if usage is not None and len(specs) == 1 else None,
                    audio=base64.b64decode(spoken.data) if spoken is not None and spoken.data else None,
                    stats={"request_seed": specs[0].seed, "choice": choice.index, "model": response.model},
                )
            )
        return generations
