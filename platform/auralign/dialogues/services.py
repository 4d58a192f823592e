"""Dialogue import: a JSONL manifest (one dialogue per line) plus audio, all or nothing.

    {"id": "d1", "metadata": {...}, "turns": [{"role": "user", "text": "...", "audio": "a.wav"}, ...]}

Three phases: parse every line; fetch, decode, check and upload every audio file (objects are
content addressed, so an upload whose import is later rejected is an invisible, reusable blob);
then, only if nothing failed, write all rows in one transaction. Every error names the line
and the field. Re-importing the same manifest is a no-op.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from auralign.accounts.models import User
from auralign.core import storage
from auralign.core.errors import ServiceError
from auralign.dialogues.models import Dialogue, DialogueImport, DialogueSet, Turn
from auralign.dialogues.sources import SourceError
from auralign.media.models import AudioAsset
from auralign.media.services import AudioRejected, audio_asset_from_info, audio_check
from worker.audio import AudioInfo

MAX_TURNS = 200
MAX_TEXT = 20_000
MAX_ERRORS = 50
_TOP_FIELDS = {"id", "metadata", "turns"}
_TURN_FIELDS = {"role", "text", "audio"}
_ROLES = {r.value for r in Turn.Role}


class AudioSource(Protocol):
    def fetch(self, ref: str) -> bytes: ...


class ImportRejected(ServiceError):
    """The manifest or its audio is bad; `errors` lists every problem found ("line N: ...")."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(errors[0] + more, field="manifest", code="import_rejected")

    def as_detail(self) -> dict:
        return {"manifest": self.errors}


@dataclass
class ParsedTurn:
    role: str
    text: str
    audio: str | None


@dataclass
class ParsedDialogue:
    line: int
    external_id: str
    metadata: dict
    turns: list[ParsedTurn]


@dataclass
class ImportReport:
    dialogue_set: DialogueSet
    created: int = 0
    unchanged: int = 0
    audio_files: int = 0
    dialogue_ids: list[str] = field(default_factory=list)


def _parse_line(lineno: int, raw: bytes) -> ParsedDialogue:
    where = f"line {lineno}"
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ServiceError(f"{where}: invalid JSON ({exc.msg if hasattr(exc, 'msg') else exc})") from None
    if not isinstance(obj, dict):
        raise ServiceError(f"{where}: must be a JSON object, not {type(obj).__name__}")
    unknown = set(obj) - _TOP_FIELDS
    if unknown:
        raise ServiceError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (put extra data in 'metadata')")
    ext_id = obj.get("id")
    if isinstance(ext_id, int) and not isinstance(ext_id, bool):
        ext_id = str(ext_id)
    if not isinstance(ext_id, str) or not ext_id.strip() or len(ext_id) > 200:
        raise ServiceError(f"{where}: id: required, a non-empty string of at most 200 characters")
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ServiceError(f"{where}: metadata: must be an object")
    turns = obj.get("turns")
    if not isinstance(turns, list) or not turns:
        raise ServiceError(f"{where}: turns: required, a non-empty list")
    if len(turns) > MAX_TURNS:
        raise ServiceError(f"{where}: turns: {len(turns)} turns; at most {MAX_TURNS}")
    parsed = []
    for t_index, turn in enumerate(turns, start=1):
        tw = f"{where}: turn {t_index}"
        if not isinstance(turn, dict):
            raise ServiceError(f"{tw}: must be an object")
        unknown = set(turn) - _TURN_FIELDS
        if unknown:
            raise ServiceError(f"{tw}: unknown field(s) {', '.join(sorted(unknown))}")
        role = turn.get("role")
        if role not in _ROLES:
            raise ServiceError(f"{tw}: role: unknown role {role!r}; expected one of {', '.join(sorted(_ROLES))}")
        text = turn.get("text", "")
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise ServiceError(f"{tw}: text: must be a string of at most {MAX_TEXT} characters")
        audio = turn.get("audio")
        if audio is not None and (not isinstance(audio, str) or not audio.strip()):
            raise ServiceError(f"{tw}: audio: must be a path, URL or s3:// URI")
        if not text.strip() and audio is None:
            raise ServiceError(f"{tw}: needs text, audio, or both")
        parsed.append(ParsedTurn(role=role, text=text, audio=audio))
    if parsed[-1].role != "user":
        raise ServiceError(f"{where}: turns: the last turn must be a user turn (candidates answer it)")
    return ParsedDialogue(line=lineno, external_id=ext_id.strip(), metadata=metadata, turns=parsed)


def manifest_parse(manifest: bytes) -> list[ParsedDialogue]:
    """Parse and validate every line; raises ImportRejected listing the problems."""
    errors: list[str] = []
    dialogues: list[ParsedDialogue] = []
    first_line: dict[str, int] = {}
    for lineno, raw in enumerate(manifest.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            d = _parse_line(lineno, raw)
        except ServiceError as exc:
            errors.append(exc.message)
        else:
            if d.external_id in first_line:
                errors.append(
                    f"line {lineno}: id: duplicate dialogue id '{d.external_id}' (first on line {first_line[d.external_id]})"
                )
            else:
                first_line[d.external_id] = lineno
                dialogues.append(d)
        if len(errors) >= MAX_ERRORS:
            break
    if not errors and not dialogues:
        errors.append("line 1: the manifest holds no dialogues")
    if errors:
        raise ImportRejected(errors)
    return dialogues


def _content_sha256(d: ParsedDialogue, audio_sha: dict[str, str]) -> str:
    canon = {
        "metadata": d.metadata,
        "turns": [[t.role, t.text, audio_sha.get(t.audio) if t.audio else None] for t in d.turns],
    }
    return hashlib.sha256(json.dumps(canon, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _check_and_upload_audio(
    dialogues: list[ParsedDialogue], source: AudioSource, progress: Callable[[int, int], None] | None
) -> dict[str, AudioInfo]:
    """Fetch, decode, check and upload each distinct audio ref once; raises ImportRejected."""
    refs: dict[str, tuple[int, int]] = {}
    for d in dialogues:
        for t_index, t in enumerate(d.turns, start=1):
            if t.audio and t.audio not in refs:
                refs[t.audio] = (d.line, t_index)
    infos: dict[str, AudioInfo] = {}
    errors: list[str] = []
    for done, (ref, (line, t_index)) in enumerate(refs.items(), start=1):
        where = f"line {line}: turn {t_index}"
        try:
            data = source.fetch(ref)
            _, info = audio_check(data=data, name=ref)
            storage.put(info.key, data)
            infos[ref] = info
        except (SourceError, AudioRejected) as exc:
            errors.append(f"{where}: {exc}" if isinstance(exc, SourceError) else f"{where}: {exc.message}")
            if len(errors) >= MAX_ERRORS:
                break
        if progress:
            progress(done, len(refs))
    if errors:
        raise ImportRejected(errors)
    return infos


def dialogue_set_import(
    *,
    name: str,
    manifest: bytes,
    source: AudioSource,
    user: User | None = None,
    description: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import (or re-import) a dialogue set. All or nothing; raises ImportRejected naming the
    line and field of each problem. Dialogues already present with the same content are left
    alone; a dialogue id already present with different content is an error."""
    if not (name or "").strip() or len(name) > 120:
        raise ServiceError("a dialogue set needs a name of at most 120 characters", field="name")
    dialogues = manifest_parse(manifest)
    infos = _check_and_upload_audio(dialogues, source, progress)
    audio_sha = {ref: info.sha256 for ref, info in infos.items()}
    with transaction.atomic():
        dialogue_set, _ = DialogueSet.objects.get_or_create(
            name=name.strip(), defaults={"created_by": user, "description": description}
        )
        existing = {
            d.external_id: d.content_sha256
            for d in Dialogue.objects.filter(dialogue_set=dialogue_set, external_id__in=[p.external_id for p in dialogues])
        }
        report = ImportReport(dialogue_set=dialogue_set, audio_files=len(infos))
        conflicts, to_create = [], []
        for d in dialogues:
            digest = _content_sha256(d, audio_sha)
            if d.external_id in existing:
                if existing[d.external_id] != digest:
                    conflicts.append(
                        f"line {d.line}: id: dialogue '{d.external_id}' already exists in '{dialogue_set.name}' with different content"
                    )
                else:
                    report.unchanged += 1
                continue
            to_create.append((d, digest))
        if conflicts:
            raise ImportRejected(conflicts)
        assets: dict[str, AudioAsset] = {ref: audio_asset_from_info(info=info) for ref, info in infos.items()}
        created = Dialogue.objects.bulk_create(
            [
                Dialogue(dialogue_set=dialogue_set, external_id=d.external_id, metadata=d.metadata, content_sha256=h)
                for d, h in to_create
            ]
        )
        if created and created[0].pk is None:  # backends without RETURNING ids
            by_ext = dict(
                Dialogue.objects.filter(dialogue_set=dialogue_set, external_id__in=[d.external_id for d, _ in to_create])
                .values_list("external_id", "pk")
            )
            for row in created:
                row.pk = by_ext[row.external_id]
        Turn.objects.bulk_create(
            [
                Turn(dialogue_id=row.pk, index=i, role=t.role, text=t.text, audio=assets.get(t.audio) if t.audio else None)
                for row, (d, _) in zip(created, to_create, strict=True)
                for i, t in enumerate(d.turns)
            ]
        )
        report.created = len(created)
        report.dialogue_ids = [d.external_id for d in dialogues]
    return report


@transaction.atomic
def dialogue_import_start(*, dialogue_set_name: str, source_uri: str, user: User) -> DialogueImport:
    """Record a background import (S3 prefix) and queue it after commit; the row reports progress."""
    from auralign.dialogues.tasks import run_dialogue_import  # noqa: PLC0415 (tasks import services)

    if not source_uri.startswith("s3://"):
        raise ServiceError("must be an s3://bucket/prefix URI", field="s3_prefix")
    dialogue_set, _ = DialogueSet.objects.get_or_create(name=dialogue_set_name.strip(), defaults={"created_by": user})
    job = DialogueImport.objects.create(dialogue_set=dialogue_set, source=source_uri, created_by=user)
    transaction.on_commit(lambda: run_dialogue_import.delay(job.pk))
    return job


def dialogue_import_run(*, job_id: int) -> DialogueImport:
    """Carry out a recorded S3-prefix import; failures are stored on the row, never raised."""
    from auralign.dialogues.sources import S3PrefixSource  # noqa: PLC0415

    job = DialogueImport.objects.select_related("dialogue_set").get(pk=job_id)
    if job.status in (DialogueImport.Status.SUCCEEDED, DialogueImport.Status.FAILED):
        return job
    DialogueImport.objects.filter(pk=job.pk).update(status=DialogueImport.Status.RUNNING)

    def progress(done: int, total: int) -> None:
        DialogueImport.objects.filter(pk=job.pk).update(progress=round(done / max(total, 1), 3))

    fields: dict[str, Any] = {"finished_at": timezone.now()}
    try:
        source, manifest_key = S3PrefixSource.from_uri(job.source)
        manifest = source.read_manifest(manifest_key)
        report = dialogue_set_import(name=job.dialogue_set.name, manifest=manifest, source=source, progress=progress)
        fields.update(status=DialogueImport.Status.SUCCEEDED, created=report.created, unchanged=report.unchanged, progress=1.0)
    except ImportRejected as exc:
        fields.update(status=DialogueImport.Status.FAILED, errors=exc.errors)
    except (ServiceError, SourceError) as exc:
        fields.update(status=DialogueImport.Status.FAILED, errors=[str(exc)])
    DialogueImport.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job
