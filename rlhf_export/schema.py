"""Arrow schemas of the export files (docs/formats.md "Export snapshot"), one per kind.

Column order is part of the format: the files of a kind always have exactly these columns."""

from __future__ import annotations

import pyarrow as pa

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
SCORE = pa.struct([("criterion", pa.string()), ("score", pa.float64())])
SCORES = pa.list_(SCORE)

COMMON = [
    ("dialogue_id", pa.string()),
    ("item_id", pa.string()),
    ("campaign_id", pa.string()),
    ("split", pa.string()),
    ("rubric", pa.string()),
    ("prompt", MESSAGES),
    ("prompt_audio", pa.list_(pa.string())),
]

_PAIR = [
    ("chosen", MESSAGES),
    ("rejected", MESSAGES),
    ("margin", pa.float64()),
    ("tie", pa.bool_()),
    ("weight", pa.float64()),
    ("chosen_reasoning", pa.string()),
    ("rejected_reasoning", pa.string()),
    ("chosen_audio", pa.string()),
    ("rejected_audio", pa.string()),
    ("chosen_scores", SCORES),
    ("rejected_scores", SCORES),
    ("chosen_policy", pa.string()),
    ("rejected_policy", pa.string()),
    ("chosen_candidate", pa.string()),
    ("rejected_candidate", pa.string()),
]

LISTWISE_CANDIDATE = pa.struct(
    [
        ("candidate_id", pa.string()),
        ("policy_id", pa.string()),
        ("reply_text", pa.string()),
        ("reasoning", pa.string()),
        ("audio_key", pa.string()),
        ("scores", SCORES),
        ("flags", pa.list_(pa.string())),
        ("listened", pa.float64()),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "pairwise": pa.schema([*COMMON, *_PAIR, ("annotator", pa.string()), ("judgment_id", pa.string())]),
    "pairwise_consensus": pa.schema([*COMMON, *_PAIR, ("agreement", pa.float64()), ("n_judgments", pa.int32())]),
    "listwise": pa.schema(
        [
            *COMMON,
            ("candidates", pa.list_(LISTWISE_CANDIDATE)),
            ("tiers", pa.list_(pa.list_(pa.string()))),
            ("weight", pa.float64()),
            ("annotator", pa.string()),
            ("judgment_id", pa.string()),
        ]
    ),
    "pointwise": pa.schema(
        [
            *COMMON,
            ("candidate_id", pa.string()),
            ("policy_id", pa.string()),
            ("reply_text", pa.string()),
            ("reasoning", pa.string()),
            ("audio_key", pa.string()),
            ("criterion", pa.string()),
            ("score", pa.float64()),
            ("scale_min", pa.int32()),
            ("scale_max", pa.int32()),
            ("annotator", pa.string()),
            ("judgment_id", pa.string()),
        ]
    ),
}

# Where the audio keys are, per kind ("a.b" = field b inside the list/struct column a): what
# `pull --with-audio` downloads and docs/formats.md's manifest "audio.key_fields" lists.
AUDIO_KEY_FIELDS: dict[str, list[str]] = {
    "pairwise": ["prompt_audio", "chosen_audio", "rejected_audio"],
    "pairwise_consensus": ["prompt_audio", "chosen_audio", "rejected_audio"],
    "listwise": ["prompt_audio", "candidates.audio_key"],
    "pointwise": ["prompt_audio", "audio_key"],
}
