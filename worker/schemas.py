"""The sampling job and result (docs/formats.md) as JSON Schemas, checked on both sides of the
queue: the worker checks every job it receives, the platform checks every result it ingests."""

from __future__ import annotations

from jsonschema import Draft202012Validator

JOB_SCHEMA_ID = "auralign.sample_job/1"
RESULT_SCHEMA_ID = "auralign.sample_result/1"

_STR = {"type": "string"}
_NONEMPTY = {"type": "string", "minLength": 1}
_NUM = {"type": "number"}
_INT = {"type": "integer"}

AUDIO_INFO = {
    "type": "object",
    "required": ["key", "sha256", "format", "sample_rate", "channels", "num_frames", "duration_s", "size_bytes", "lufs", "peaks"],
    "properties": {
        "key": {"type": "string", "pattern": r"^audio/[0-9a-f]{2}/[0-9a-f]{64}\.(wav|flac|ogg)$"},
        "sha256": {"type": "string", "pattern": r"^[0-9a-f]{64}$"},
        "format": {"enum": ["wav", "flac", "ogg"]},
        "sample_rate": {"type": "integer", "minimum": 8000, "maximum": 192000},
        "channels": {"type": "integer", "minimum": 1},
        "num_frames": {"type": "integer", "minimum": 1},
        "duration_s": {"type": "number", "exclusiveMinimum": 0},
        "size_bytes": {"type": "integer", "minimum": 1},
        "lufs": _NUM,
        "peaks": {"type": "array", "items": _NUM},
    },
}

GENERATION = {
    "type": "object",
    "properties": {
        "temperature": {"type": "number", "minimum": 0, "maximum": 5},
        "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "top_k": {"type": "integer", "minimum": 0},
        "max_new_tokens": {"type": "integer", "minimum": 1},
        "min_new_tokens": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}

SAMPLE_JOB = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": JOB_SCHEMA_ID,
    "type": "object",
    "required": ["schema", "job_id", "policy", "audio", "tasks"],
    "properties": {
        "schema": {"const": JOB_SCHEMA_ID},
        "job_id": _NONEMPTY,
        "policy": {
            "type": "object",
            "required": ["id", "backend", "config"],
            "properties": {
                "id": _NONEMPTY,
                "backend": {"enum": ["hf", "openai"]},
                "config": {"type": "object"},
                "generation": GENERATION,
                "tts": {
                    "type": "object",
                    "properties": {"backend": {"enum": ["piper", "vits", "espeak", "model", "none"]}},
                },
            },
        },
        "audio": {
            "type": "object",
            "required": ["sample_rate", "target_lufs"],
            "properties": {
                "sample_rate": {"type": "integer", "minimum": 8000, "maximum": 96000},
                "target_lufs": {"type": "number", "minimum": -70, "maximum": 0},
            },
        },
        "tasks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["task_id", "dialogue_id", "turns", "samples"],
                "properties": {
                    "task_id": _INT,
                    "dialogue_id": _NONEMPTY,
                    "turns": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["role", "text"],
                            "properties": {
                                "role": {"enum": ["system", "user", "assistant"]},
                                "text": _STR,
                                "audio_key": {"type": ["string", "null"]},
                            },
                        },
                    },
                    "samples": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["index", "seed"],
                            "properties": {"index": {"type": "integer", "minimum": 0}, "seed": {"type": "integer", "minimum": 0}},
                        },
                    },
                },
            },
        },
    },
}

CANDIDATE = {
    "type": "object",
    "required": ["sample_index", "seed", "params", "reasoning", "reply_text", "stats", "audio", "raw_audio"],
    "properties": {
        "sample_index": {"type": "integer", "minimum": 0},
        "seed": {"type": ["integer", "null"]},
        "params": {"type": "object"},
        "reasoning": _STR,
        "reply_text": _NONEMPTY,
        "stats": {"type": "object"},
        "audio": {"oneOf": [AUDIO_INFO, {"type": "null"}]},
        "raw_audio": {"oneOf": [AUDIO_INFO, {"type": "null"}]},
    },
}

SAMPLE_RESULT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": RESULT_SCHEMA_ID,
    "type": "object",
    "required": ["schema", "job_id", "policy_id", "worker", "tasks"],
    "properties": {
        "schema": {"const": RESULT_SCHEMA_ID},
        "job_id": _NONEMPTY,
        "policy_id": _NONEMPTY,
        "worker": {"type": "object"},
        "tasks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["task_id", "dialogue_id", "status", "error", "candidates"],
                "properties": {
                    "task_id": _INT,
                    "dialogue_id": _NONEMPTY,
                    "status": {"enum": ["ok", "failed"]},
                    "error": {"type": ["string", "null"]},
                    "candidates": {"type": "array", "items": CANDIDATE},
                },
                "if": {"properties": {"status": {"const": "failed"}}},
                "then": {"properties": {"error": _NONEMPTY, "candidates": {"maxItems": 0}}},
            },
        },
    },
}


class SchemaError(ValueError):
    """A job or result that does not follow docs/formats.md; the message names the field."""


def _check(validator: Draft202012Validator, doc: object, what: str) -> None:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise SchemaError(f"invalid {what} at {where}: {first.message}{more}")


_JOB = Draft202012Validator(SAMPLE_JOB)
_RESULT = Draft202012Validator(SAMPLE_RESULT)


def check_job(job: object) -> None:
    _check(_JOB, job, JOB_SCHEMA_ID)


def check_result(result: object) -> None:
    _check(_RESULT, result, RESULT_SCHEMA_ID)
