"""Factories for sampling tests: people, a rubric, dialogue sets with turn audio, policies on
tiny checkpoints, campaigns; and helpers that run dispatched jobs through the real worker."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from django.conf import settings

from auralign.accounts.models import User
from auralign.campaigns.models import Membership
from auralign.campaigns.services import campaign_create, membership_add
from auralign.dialogues.services import dialogue_set_import
from auralign.dialogues.sources import UploadedSource
from auralign.generation.models import GenerationTask
from auralign.generation.services import build_job, ingest_result
from auralign.policies.services import policy_create
from auralign.rubrics.services import rubric_create
from tests.worker.conftest import audio_lm, causal_lm, mute_lm, tone_wav  # noqa: F401 (fixtures)
from worker.runner import run_job
from worker.storage import LocalStore


@pytest.fixture
def people(db):
    return {
        "lead": User.objects.create_user("lead", password="pw-lead-123", is_lead=True),
        "annotator": User.objects.create_user("ann", password="pw-ann-123"),
        "trainer": User.objects.create_user("trainer", password="pw-trainer-123"),
        "outsider": User.objects.create_user("outsider", password="pw-out-123"),
    }


@pytest.fixture
def rubric_version(people):
    return rubric_create(slug="tone", name="Tone", criteria=[{"key": "naturalness", "label": "Naturalness"}], user=people["lead"])


def import_dialogues(name: str, count: int, user=None):
    """`count` dialogues whose last user turn has audio (stored in the platform's storage)."""
    lines = [
        {"id": f"d{i}", "turns": [
            {"role": "system", "text": "Be brief."},
            {"role": "user", "text": f"hello there, question {i}?", "audio": f"q{i}.wav"},
        ]}
        for i in range(count)
    ]
    manifest = "\n".join(json.dumps(line) for line in lines).encode()
    files = {f"q{i}.wav": tone_wav(200.0 + 50 * i) for i in range(count)}
    return dialogue_set_import(name=name, manifest=manifest, source=UploadedSource(files=files), user=user).dialogue_set


@pytest.fixture
def dialogue_set(people):
    return import_dialogues("set-3", 3, people["lead"])


def make_policy(name: str, checkpoint, *, user=None, min_new_tokens: int = 3, **config):
    """An hf policy; min_new_tokens keeps tiny random models from an (otherwise rare) empty reply."""
    generation = {"temperature": 0.9, "top_p": 0.95, "max_new_tokens": 6, "min_new_tokens": min_new_tokens}
    return policy_create(
        name=name, backend="hf", config={"checkpoint": str(checkpoint), **config},
        generation=generation, tts={"backend": "espeak"}, user=user,
    )


@pytest.fixture
def make_campaign(people, rubric_version, dialogue_set):
    def make(policies, *, name="camp", k=2, overlap=2, dialogues=None):
        campaign = campaign_create(
            name=name, rubric_version=rubric_version, dialogue_set=dialogues or dialogue_set, policies=policies,
            user=people["lead"], candidates_per_item=k, judgments_per_item=overlap, sample_rate=16000,
        )
        membership_add(campaign=campaign, user=people["annotator"], role=Membership.Role.ANNOTATOR)
        membership_add(campaign=campaign, user=people["trainer"], role=Membership.Role.TRAINER)
        return campaign

    return make


def dispatched_jobs(campaign) -> list[dict]:
    """The jobs the last dispatch put on the queue, rebuilt from the database by the same code."""
    by_job = defaultdict(list)
    for task in GenerationTask.objects.filter(campaign=campaign, status="dispatched").select_related("policy", "dialogue").order_by("id"):
        by_job[task.job_id].append(task)
    return [build_job(job_id=job_id, campaign=campaign, policy=tasks[0].policy, tasks=tasks) for job_id, tasks in by_job.items()]


def worker_store() -> LocalStore:
    """The worker's view of the platform's local storage (same folder, as in the embedded default)."""
    return LocalStore(settings.MEDIA_ROOT)


def sample_and_ingest(campaign) -> list[dict]:
    """Run every dispatched job through the real worker and ingest its result; returns the results."""
    results = [run_job(job, store=worker_store()) for job in dispatched_jobs(campaign)]
    for result in results:
        ingest_result(result=result)
    return results
