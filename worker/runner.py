"""One sampling job, start to finish: check the job, sample every dialogue's replies, split off
reasoning, voice the replies, post-process and upload the audio, and build the result
(docs/formats.md). Configuration and model problems never raise: they come back as tasks with
status "failed" and a readable error, so the platform always learns what happened. Only an
unreachable object store raises (StorageUnavailable), so the job is retried later."""

from __future__ import annotations

import logging
import re
import socket
import time
import traceback

from worker import audio as dsp
from worker import schemas
from worker.postprocess import finish_reply_audio
from worker.reasoning import split_reasoning
from worker.samplers import sampler_for
from worker.samplers.base import (
    Generation,
    GenerationParams,
    PolicyError,
    Prompt,
    SampleFailed,
    SampleSpec,
    Turn,
)
from worker.storage import ObjectMissing, ObjectStore, StorageUnavailable
from worker.tts import speakable, speech_for

log = logging.getLogger(__name__)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls but tab and newlines; DEL


def _printable(text: str) -> str:
    """Models can emit any byte; control characters are neither speakable nor storable (NUL)."""
    return _CONTROL.sub("", text)


def _result(job: dict, tasks: list[dict], worker: dict) -> dict:
    return {
        "schema": schemas.RESULT_SCHEMA_ID,
        "job_id": str(job.get("job_id")),
        "policy_id": str(job.get("policy", {}).get("id")),
        "worker": worker,
        "tasks": tasks,
    }


def _failed(task: dict, error: str) -> dict:
    return {"task_id": task["task_id"], "dialogue_id": task["dialogue_id"], "status": "failed", "error": error, "candidates": []}


def failed_result(job: dict, error: str, worker: dict | None = None) -> dict:
    """Every task of the job failed with `error`. Raises SchemaError when the job is too broken to
    name its tasks (then nobody can be told, and the message is logged by Celery)."""
    tasks = job.get("tasks") if isinstance(job, dict) else None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and "task_id" in t and "dialogue_id" in t for t in tasks):
        raise schemas.SchemaError(f"cannot report on a job without task ids: {error}")
    return _result(job, [_failed(t, error) for t in tasks], worker or {"hostname": socket.gethostname()})


def run_job(job: dict, *, store: ObjectStore) -> dict:
    worker = {"hostname": socket.gethostname()}
    try:
        schemas.check_job(job)
        return _run(job, store, worker)
    except StorageUnavailable:
        raise
    except (PolicyError, schemas.SchemaError) as exc:
        log.warning("job %s failed: %s", job.get("job_id") if isinstance(job, dict) else "?", exc)
        return failed_result(job, str(exc), worker)
    except Exception as exc:  # a bug or a model crash: report it, never loop on it
        log.error("job %s crashed:\n%s", job.get("job_id"), traceback.format_exc())
        return failed_result(job, f"worker error: {exc.__class__.__name__}: {exc}", worker)


def _run(job: dict, store: ObjectStore, worker: dict) -> dict:
    policy = job["policy"]
    params = GenerationParams.from_policy(policy.get("generation"))
    tts = policy.get("tts") or {"backend": "piper"}
    voice_backend = tts.get("backend", "piper")
    sampler = sampler_for(policy["backend"], policy["config"])
    speech = speech_for(tts) if voice_backend not in ("model", "none") else None
    worker.update(sampler.describe())
    started = time.perf_counter()

    errors: dict[int, str] = {}  # task position -> why it failed
    prompts, specs, owners = [], [], []  # owners[i]: task position of specs[i]
    for pos, task in enumerate(job["tasks"]):
        try:
            prompts.append(_prompt(task, store, listen=sampler.listens))
        except SampleFailed as exc:
            errors[pos] = str(exc)
            prompts.append(None)
            continue
        for sample in task["samples"]:
            specs.append(SampleSpec(prompt=pos, index=sample["index"], seed=sample["seed"]))
            owners.append(pos)
    generations = sampler.generate(prompts, specs, params, speak=voice_backend == "model") if specs else []

    candidates: dict[int, list[dict]] = {pos: [] for pos in range(len(job["tasks"]))}
    for spec, pos, generation in zip(specs, owners, generations, strict=True):
        if pos in errors:
            continue
        try:
            candidates[pos].append(_candidate(spec, generation, params, speech, voice_backend, job["audio"], store))
        except SampleFailed as exc:
            errors[pos] = f"sample {spec.index} (seed {spec.seed}): {exc}"
    tasks = [
        _failed(task, errors[pos]) if pos in errors else
        {"task_id": task["task_id"], "dialogue_id": task["dialogue_id"], "status": "ok", "error": None, "candidates": candidates[pos]}
        for pos, task in enumerate(job["tasks"])
    ]
    log.info(
        "job %s: %d tasks (%d failed), %d samples in %.1fs",
        job["job_id"], len(tasks), len(errors), len(specs), time.perf_counter() - started,
    )
    result = _result(job, tasks, worker)
    schemas.check_result(result)
    return result


def _prompt(task: dict, store: ObjectStore, *, listen: bool) -> Prompt:
    turns = []
    for n, turn in enumerate(task["turns"], start=1):
        audio = None
        if listen and turn.get("audio_key"):
            try:
                audio = store.get(turn["audio_key"])
            except ObjectMissing:
                raise SampleFailed(f"turn {n} audio '{turn['audio_key']}' is missing from object storage") from None
        turns.append(Turn(role=turn["role"], text=turn.get("text", ""), audio=audio))
    return Prompt(turns=tuple(turns))


def _candidate(
    spec: SampleSpec, generation: Generation | SampleFailed, params: GenerationParams, speech, voice_backend: str,
    audio: dict, store: ObjectStore,
) -> dict:
    if isinstance(generation, SampleFailed):
        raise generation
    reasoning, reply = split_reasoning(_printable(generation.text), _printable(generation.reasoning))
    if not reply:
        detail = f"finish_reason={generation.finish_reason}"
        if generation.new_tokens is not None:
            detail += f", {generation.new_tokens} new tokens"
        if reasoning:
            detail += ", all of it reasoning"
        raise SampleFailed(f"the model returned an empty reply ({detail})")
    stats = {
        "new_tokens": generation.new_tokens,
        "latency_s": generation.latency_s,
        "finish_reason": generation.finish_reason,
        **(generation.stats or {}),
    }
    normalised = raw = None
    if voice_backend != "none":
        tts_started = time.perf_counter()
        if voice_backend == "model":
            if generation.audio is None:
                raise SampleFailed("tts.backend is 'model' but the model returned no audio")
            try:
                decoded = dsp.decode(generation.audio)
            except dsp.AudioDecodeError as exc:
                raise SampleFailed(f"the model's audio cannot be decoded ({exc})") from None
            samples, rate = decoded.samples, decoded.sample_rate
        else:
            samples, rate = speech.synthesize(speakable(reply), spec.seed)
        if samples.shape[0] == 0:
            raise SampleFailed("speech synthesis produced no audio for the reply")
        normalised, raw = finish_reply_audio(
            samples, rate, target_rate=audio["sample_rate"], target_lufs=audio["target_lufs"], store=store
        )
        stats["tts_s"] = round(time.perf_counter() - tts_started, 3)
    return {
        "sample_index": spec.index,
        "seed": spec.seed,
        "params": params.as_dict(),
        "reasoning": reasoning,
        "reply_text": reply,
        "stats": stats,
        "audio": normalised,
        "raw_audio": raw,
    }
