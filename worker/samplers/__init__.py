"""Samplers by policy backend (docs/formats.md, "Sampling job")."""

from __future__ import annotations

from worker.samplers.base import PolicyError, Sampler


def sampler_for(backend: str, config: dict) -> Sampler:
    """A sampler for the policy; heavy state (model weights) is cached per process inside the
    backend, so building a sampler per job is cheap. Raises PolicyError naming the problem."""
    if backend == "hf":
        from worker.samplers.hf import HFSampler

        return HFSampler(config)
    if backend == "openai":
        from worker.samplers.openai_compat import OpenAISampler

        return OpenAISampler(config)
    raise PolicyError(f"unknown policy backend '{backend}' (expected 'hf' or 'openai')")
