"""Policy writes, with backend configuration checked up front (a typo here would otherwise
surface hours later as a failed GPU job)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from auralign.accounts.models import User
from auralign.core.errors import ServiceError
from auralign.policies.models import Policy

_GEN_LIMITS = {"temperature": (0.0, 5.0), "top_p": (0.0, 1.0), "max_new_tokens": (1, 32768), "min_new_tokens": (0, 32768), "top_k": (0, 100000)}
_TTS_BACKENDS = {"piper", "vits", "espeak", "model", "none"}


def _require_str(cfg: dict, key: str, field: str) -> None:
    if not isinstance(cfg.get(key), str) or not cfg[key].strip():
        raise ServiceError(f"'{key}' is required and must be a non-empty string", field=f"{field}.{key}")


def policy_config_validate(*, backend: str, config: Any, generation: Any, tts: Any) -> None:
    if backend not in Policy.Backend.values:
        raise ServiceError(f"unknown backend '{backend}'; choose one of: {', '.join(Policy.Backend.values)}", field="backend")
    for name, value in (("config", config), ("generation", generation), ("tts", tts)):
        if not isinstance(value, dict):
            raise ServiceError("must be an object", field=name)
    if backend == "hf":
        _require_str(config, "checkpoint", "config")
    else:
        _require_str(config, "base_url", "config")
        _require_str(config, "model", "config")
        if not config["base_url"].startswith(("http://", "https://")):
            raise ServiceError("must start with http:// or https://", field="config.base_url")
    for key, value in generation.items():
        if key not in _GEN_LIMITS:
            raise ServiceError(f"unknown generation parameter '{key}'", field=f"generation.{key}")
        lo, hi = _GEN_LIMITS[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise ServiceError(f"must be a number in [{lo}, {hi}]", field=f"generation.{key}")
        if key in ("max_new_tokens", "min_new_tokens", "top_k") and not isinstance(value, int):
            raise ServiceError("must be an integer", field=f"generation.{key}")
    if generation.get("min_new_tokens", 0) > generation.get("max_new_tokens", 256):
        raise ServiceError("must not exceed max_new_tokens", field="generation.min_new_tokens")
    tts_backend = tts.get("backend", "piper")
    if tts_backend not in _TTS_BACKENDS:
        raise ServiceError(f"unknown TTS backend '{tts_backend}'; choose one of: {', '.join(sorted(_TTS_BACKENDS))}", field="tts.backend")
    if tts_backend == "vits":
        _require_str(tts, "checkpoint", "tts")


@transaction.atomic
def policy_create(
    *,
    name: str,
    backend: str,
    config: dict,
    generation: dict | None = None,
    tts: dict | None = None,
    description: str = "",
    parent: Policy | None = None,
    user: User | None = None,
    produced_by_run=None,
) -> Policy:
    """`produced_by_run`: the rlhf_export TrainingRun whose checkpoint this is (lineage, with `parent`)."""
    generation = generation or {}
    tts = tts or {"backend": "piper"}
    if not (name or "").strip() or len(name) > 120:
        raise ServiceError("a policy needs a name of at most 120 characters", field="name")
    if Policy.objects.filter(name=name.strip()).exists():
        raise ServiceError(f"a policy named '{name.strip()}' already exists", field="name")
    policy_config_validate(backend=backend, config=config, generation=generation, tts=tts)
    return Policy.objects.create(
        name=name.strip(),
        backend=backend,
        config=config,
        generation=generation,
        tts=tts,
        description=description,
        parent=parent,
        produced_by_run=produced_by_run,
        created_by=user,
    )


@transaction.atomic
def policy_update(*, policy: Policy, **fields) -> Policy:
    allowed = {"name", "description", "config", "generation", "tts", "archived"}
    unknown = set(fields) - allowed
    if unknown:
        raise ServiceError(f"cannot change {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    merged = {k: fields.get(k, getattr(policy, k)) for k in allowed}
    policy_config_validate(backend=policy.backend, config=merged["config"], generation=merged["generation"], tts=merged["tts"])
    if "name" in fields and Policy.objects.exclude(pk=policy.pk).filter(name=fields["name"]).exists():
        raise ServiceError(f"a policy named '{fields['name']}' already exists", field="name")
    for k, v in fields.items():
        setattr(policy, k, v)
    policy.save()
    return policy
