"""Export snapshots (docs/formats.md, schema_version 1) -> judgments the trainers consume.

Every supported kind becomes a list of :class:`Judgment`: the candidates shown together and
the preference pairs between them. A ``listwise`` row (one judgment) gives all pairs of its
ranking, ties from shared tiers; a ``pairwise`` / ``pairwise_consensus`` row gives one pair.
"""

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from . import storage

KINDS = ("listwise", "pairwise", "pairwise_consensus")


@dataclass
class Candidate:
    text: str
    audio_key: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    id: str = ""


@dataclass
class Pair:
    win: int  # candidate index of the preferred one (either one for a tie)
    lose: int
    tie: bool
    margin: float  # >= 0: how much the winner should win by (0 for ties)


@dataclass
class Judgment:
    prompt: list[dict]  # [{"role", "content"}], the conversation before the reply
    prompt_audio: list[str | None]  # audio key per prompt message
    candidates: list[Candidate]
    pairs: list[Pair]
    weight: float = 1.0
    item_id: str = ""


def weighted_score_diff(a: Candidate, b: Candidate, weights: dict[str, float]) -> float:
    """Rubric-weighted mean score difference a - b over the criteria both were scored on (0 if none)."""
    keys = [k for k in a.scores if k in b.scores]
    total = sum(weights.get(k, 1.0) for k in keys)
    if not total:
        return 0.0
    return sum(weights.get(k, 1.0) * (a.scores[k] - b.scores[k]) for k in keys) / total


def score_pairs(candidates: list[Candidate], key: str) -> list[Pair]:
    """Pairs implied by one criterion's scores: higher score wins, equal scores tie."""
    pairs = []
    for i, j in combinations(range(len(candidates)), 2):
        si, sj = candidates[i].scores.get(key), candidates[j].scores.get(key)
        if si is None or sj is None:
            continue
        if si < sj:
            i, j, si, sj = j, i, sj, si
        pairs.append(Pair(i, j, si == sj, si - sj))
    return pairs


def _scores(value) -> dict[str, float]:
    return {s["criterion"]: float(s["score"]) for s in value or [] if s.get("score") is not None}


def judgment_from_listwise(row: dict, weights: dict[str, float]) -> Judgment:
    by_id = {c["candidate_id"]: c for c in row["candidates"]}
    ranked = [cid for tier in row["tiers"] for cid in tier]
    unknown = [cid for cid in ranked if cid not in by_id]
    if unknown:
        raise ValueError(f"judgment {row.get('judgment_id')}: tiers name unknown candidates {unknown}")
    index = {cid: n for n, cid in enumerate(ranked)}
    tier_of = {cid: t for t, tier in enumerate(row["tiers"]) for cid in tier}
    candidates = [
        Candidate(
            by_id[cid]["reply_text"] or "",
            by_id[cid].get("audio_key"),
            _scores(by_id[cid].get("scores")),
            cid,
        )
        for cid in ranked
    ]
    pairs = []
    for a, b in combinations(ranked, 2):  # ranked is in tier order, so a's tier <= b's tier
        i, j = index[a], index[b]
        tie = tier_of[a] == tier_of[b]
        margin = 0.0 if tie else max(0.0, weighted_score_diff(candidates[i], candidates[j], weights))
        pairs.append(Pair(i, j, tie, margin))
    return Judgment(
        row["prompt"], _prompt_audio(row), candidates, pairs, _weight(row), str(row.get("item_id", ""))
    )


def judgment_from_pairwise(row: dict) -> Judgment:
    chosen, rejected = (
        Candidate(
            row[side][-1]["content"],
            row.get(f"{side}_audio"),
            _scores(row.get(f"{side}_scores")),
            str(row.get(f"{side}_candidate") or ""),
        )
        for side in ("chosen", "rejected")
    )
    tie = bool(row.get("tie") or False)
    margin = 0.0 if tie else max(0.0, float(row.get("margin") or 0.0))
    return Judgment(
        row["prompt"],
        _prompt_audio(row),
        [chosen, rejected],
        [Pair(0, 1, tie, margin)],
        _weight(row),
        str(row.get("item_id", "")),
    )


def _weight(row: dict) -> float:
    weight = row.get("weight")
    return 1.0 if weight is None else float(weight)


def _prompt_audio(row: dict) -> list[str | None]:
    return list(row.get("prompt_audio") or [None] * len(row["prompt"]))


REQUIRED = {
    "listwise": ("prompt", "candidates", "tiers"),
    "pairwise": ("prompt", "chosen", "rejected"),
    "pairwise_consensus": ("prompt", "chosen", "rejected"),
}


class Snapshot:
    """An export snapshot folder: manifest, data files per split, and (after a pull) audio/."""

    def __init__(self, root: Path, remote: str | None = None):
        self.root, self.remote = Path(root), remote
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"no manifest.json in snapshot folder {self.root}")
        self.manifest = json.loads(manifest_path.read_text())
        if self.manifest.get("schema_version") != 1:
            raise ValueError(
                f"unsupported snapshot schema_version {self.manifest.get('schema_version')!r} (need 1)"
            )
        self.kind = self.manifest.get("kind")
        if self.kind not in KINDS:
            raise ValueError(f"snapshot kind {self.kind!r} cannot be trained on; use one of {KINDS}")

    @property
    def criteria(self) -> list[dict]:
        """Rubric criteria over all rubrics in the snapshot, first definition of each key wins."""
        merged = {}
        for rubric in self.manifest.get("rubrics", {}).values():
            for criterion in rubric.get("criteria", []):
                merged.setdefault(criterion["key"], criterion)
        return list(merged.values())

    @property
    def splits(self) -> list[str]:
        return sorted({f["split"] for f in self.manifest["files"]})

    def rows(self, split: str) -> list[dict]:
        """All rows of one split; Parquet files when present, else JSONL (never both)."""
        files = [f for f in self.manifest["files"] if f["split"] == split]
        if not files:
            raise ValueError(f"snapshot has no {split!r} split (it has {self.splits})")
        if any(f["format"] == "parquet" for f in files):
            files = [f for f in files if f["format"] == "parquet"]
        rows = []
        for f in files:
            path = self.root / f["path"]
            if not path.is_file():
                raise FileNotFoundError(f"snapshot file {f['path']} listed in manifest.json is missing")
            if f["format"] == "parquet":
                rows += pq.read_table(path).to_pylist()
            else:
                rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        missing = [c for c in REQUIRED[self.kind] if rows and c not in rows[0]]
        if missing:
            raise ValueError(f"{self.kind} rows of split {split!r} lack column(s) {missing}")
        return rows

    def judgments(self, split: str) -> list[Judgment]:
        weights = {c["key"]: float(c.get("weight", 1.0)) for c in self.criteria}
        if self.kind == "listwise":
            return [judgment_from_listwise(r, weights) for r in self.rows(split)]
        return [judgment_from_pairwise(r) for r in self.rows(split)]

    def audio_path(self, key: str) -> Path:
        """Local file of an audio key (``audio/<aa>/<sha256>.<ext>``), fetched from the bucket if needed."""
        relative = key if key.startswith("audio/") else f"audio/{key}"
        path = self.root / relative
        store = self.root.parent.parent
        if not path.is_file() and self.root.parent.name == "exports" and (store / relative).is_file():
            path = store / relative  # a snapshot read in place from a local store: <store>/exports/<uuid>/ beside <store>/audio/
        if not path.is_file() and self.remote:
            bucket, _ = storage.split_s3(self.remote)
            storage.download_file(f"s3://{bucket}/{relative}", path)
        if not path.is_file():
            raise FileNotFoundError(f"audio {key} is not in the snapshot (pull it with --with-audio)")
        return path


def open_snapshot(location: str, cache_dir: str | None = None) -> Snapshot:
    """A snapshot from a local folder or an ``s3://bucket/exports/<uuid>/`` prefix (downloaded once)."""
    if not storage.is_s3(location):
        return Snapshot(Path(location))
    base = Path(cache_dir or tempfile.gettempdir()) / "auralign-snapshots"
    dest = base / hashlib.sha256(location.rstrip("/").encode()).hexdigest()[:16]
    if not (dest / "manifest.json").is_file():
        storage.download_prefix(location, dest)
    return Snapshot(dest, remote=location)


def holdout(judgments: list[Judgment], fraction: float) -> tuple[list[Judgment], list[Judgment]]:
    """Deterministic train / held-out split by item (so no item is on both sides)."""

    def bucket(j: Judgment) -> float:
        digest = hashlib.sha256((j.item_id or repr(j.prompt)).encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return [j for j in judgments if bucket(j) >= fraction], [j for j in judgments if bucket(j) < fraction]


def load_judgments(snapshot: Snapshot, split: str, eval_split: str, eval_fraction: float):
    """(train, held-out) judgments: the snapshot's eval split, or a deterministic item hold-out."""
    train = snapshot.judgments(split)
    if eval_split in snapshot.splits:
        held_out = snapshot.judgments(eval_split)
    else:
        train, held_out = holdout(train, eval_fraction)
    if not train:
        raise ValueError(f"no training examples in split {split!r} of the snapshot")
    return train, held_out


def candidate_rows(snapshot: Snapshot, split: str, with_audio: bool) -> list[dict]:
    """Each distinct candidate of a split as a row to score: candidate_id, item_id, prompt,
    reply_text and reply_audio (a local file, when ``with_audio`` and the candidate has audio)."""
    rows = {}
    for j in snapshot.judgments(split):
        for c in j.candidates:
            key = c.id or f"{j.item_id}:{c.text}"
            if key not in rows:
                audio = str(snapshot.audio_path(c.audio_key)) if with_audio and c.audio_key else None
                rows[key] = {
                    "candidate_id": c.id,
                    "item_id": j.item_id,
                    "prompt": j.prompt,
                    "reply_text": c.text,
                    "reply_audio": audio,
                }
    return list(rows.values())


@lru_cache(maxsize=1024)  # decoded once per run for small sets; bounded for large ones
def load_audio(path: Path, sampling_rate: int, max_seconds: float) -> np.ndarray:
    """Mono float32 waveform at ``sampling_rate``, cut to ``max_seconds`` (treat as read-only)."""
    import soundfile as sf
    import torch
    import torchaudio

    wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    wav = torch.from_numpy(wav.mean(axis=1))
    if sr != sampling_rate:
        wav = torchaudio.functional.resample(wav, sr, sampling_rate)
    return wav[: int(max_seconds * sampling_rate)].numpy()


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    """Conversation as text: the tokenizer's chat template, or ``role: content`` lines without one."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return text + ("assistant: " if add_generation_prompt else "")
