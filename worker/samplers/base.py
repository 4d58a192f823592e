"""What every sampler takes and returns. A sampler answers many dialogues at once (one job) and
several samples per dialogue, each with its own seed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol


class PolicyError(Exception):
    """The policy cannot be sampled (bad configuration, missing checkpoint, unreachable server):
    every task of the job fails with this message; retrying the same job would fail again."""


class SampleFailed(Exception):
    """One sample (or the samples of one dialogue) could not be generated; the message says why."""


@dataclass(frozen=True)
class Turn:
    role: str  # "system" | "user" | "assistant"
    text: str
    audio: bytes | None = None  # encoded audio file, fetched only for samplers that listen


@dataclass(frozen=True)
class Prompt:
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class SampleSpec:
    prompt: int  # index into the prompts list
    index: int  # sample index within the dialogue
    seed: int


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    max_new_tokens: int = 256
    min_new_tokens: int = 0  # end-of-turn is suppressed until this many new tokens (0 = off)

    @classmethod
    def from_policy(cls, generation: dict | None) -> GenerationParams:
        return cls(**(generation or {}))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Generation:
    text: str  # everything the model wrote (reasoning included, split later)
    finish_reason: str  # "stop" | "length" | the server's word
    latency_s: float
    new_tokens: int | None = None
    reasoning: str = ""  # reasoning the server returned in a separate field
    audio: bytes | None = None  # speech the model produced itself, as an encoded file
    stats: dict | None = None  # backend-specific extras (batch size, request seed, ...)


class Sampler(Protocol):
    listens: bool  # wants the dialogue's turn audio

    def generate(
        self, prompts: list[Prompt], specs: list[SampleSpec], params: GenerationParams, *, speak: bool = False
    ) -> list[Generation | SampleFailed]:
        """One entry per spec, in order. `speak`: ask the model for its own audio too."""
        ...

    def describe(self) -> dict:
        """Where it runs, for the result's `worker` field: {"device": ..., "dtype": ...}."""
        ...


def system_text(prompt: Prompt, persona: str | None) -> str:
    """The policy's persona followed by the dialogue's own system turns."""
    parts = [persona.strip()] if persona and persona.strip() else []
    parts += [t.text.strip() for t in prompt.turns if t.role == "system" and t.text.strip()]
    return "\n\n".join(parts)
