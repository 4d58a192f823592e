"""Small factories for tests: real rows through real services where one exists, direct rows for
what later stages produce (candidates, items, judgments) so each stage can be tested alone."""

from __future__ import annotations

import io
import itertools
import uuid
from datetime import timedelta

import numpy as np
import soundfile
from django.db.models import F
from django.utils import timezone

from auralign.accounts.models import User
from auralign.annotation.models import Assignment, Item, ItemCandidate, Judgment
from auralign.campaigns.models import Campaign, CampaignPolicy, Membership
from auralign.dialogues.models import Dialogue, DialogueSet, Turn
from auralign.generation.models import Candidate
from auralign.media.models import AudioAsset
from auralign.media.services import audio_asset_store, audio_check
from auralign.policies.models import Policy
from auralign.rubrics.models import RubricVersion
from auralign.rubrics.seed import SEED_CRITERIA, SEED_INSTRUCTIONS
from auralign.rubrics.services import rubric_create, rubric_version_freeze

_seq = itertools.count(1)


def make_wav(seconds: float = 1.0, sr: int = 16000, freq: float = 440.0, channels: int = 1, amplitude: float = 0.3,
             fmt: str = "WAV", subtype: str | None = "PCM_16") -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    tone = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    data = np.stack([tone] * channels, axis=1)
    buf = io.BytesIO()
    soundfile.write(buf, data, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def make_audio_asset(seconds: float = 1.0, freq: float | None = None) -> AudioAsset:
    data = make_wav(seconds=seconds, freq=freq or 200.0 + next(_seq) * 7)
    _, info = audio_check(data=data, name="x.wav")
    return audio_asset_store(data=data, info=info)


def make_user(username: str | None = None, *, is_lead: bool = False, password: str = "pw-for-tests-1") -> User:
    user = User.objects.create_user(username=username or f"user{next(_seq)}", password=password, is_lead=is_lead)
    return user


def make_rubric(slug: str | None = None, criteria: list[dict] | None = None, frozen: bool = False) -> RubricVersion:
    version = rubric_create(
        slug=slug or f"rubric-{next(_seq)}", name="Test rubric", criteria=criteria or SEED_CRITERIA,
        instructions=SEED_INSTRUCTIONS,
    )
    return rubric_version_freeze(version=version) if frozen else version


def make_dialogue_set(n: int = 3, *, name: str | None = None, with_audio: bool = False, turns: int = 3) -> DialogueSet:
    ds = DialogueSet.objects.create(name=name or f"set-{next(_seq)}")
    for i in range(n):
        d = Dialogue.objects.create(dialogue_set=ds, external_id=f"d{i}", metadata={"i": i}, content_sha256=uuid.uuid4().hex)
        roles = ["user" if (turns - 1 - j) % 2 == 0 else "assistant" for j in range(turns)]  # ends with user
        for j, role in enumerate(roles):
            Turn.objects.create(
                dialogue=d, index=j, role=role, text=f"{role} says <b>hello</b> {i}.{j}",
                audio=make_audio_asset(0.5) if with_audio and role == "user" else None,
            )
    return ds


def make_policy(name: str | None = None, **config) -> Policy:
    return Policy.objects.create(
        name=name or f"policy-{next(_seq)}", backend="hf",
        config={"checkpoint": "/models/none", **config}, generation={"temperature": 0.7}, tts={"backend": "piper"},
    )


def make_campaign(
    *,
    lead: User | None = None,
    annotators: list[User] = (),
    trainers: list[User] = (),
    policies: int | list[Policy] = 2,
    dialogues: int = 3,
    k: int = 2,
    overlap: int = 2,
    status: str = Campaign.Status.ANNOTATING,
    rubric_version: RubricVersion | None = None,
    **settings,
) -> Campaign:
    lead = lead or make_user(is_lead=True)
    rubric_version = rubric_version or make_rubric(frozen=True)
    policies = policies if isinstance(policies, list) else [make_policy() for _ in range(policies)]
    campaign = Campaign.objects.create(
        name=f"campaign-{next(_seq)}", rubric_version=rubric_version, dialogue_set=make_dialogue_set(dialogues),
        candidates_per_item=k, judgments_per_item=overlap, status=status, created_by=lead, **settings,
    )
    for p in policies:
        CampaignPolicy.objects.create(campaign=campaign, policy=p, samples_per_dialogue=1)
    Membership.objects.create(campaign=campaign, user=lead, role=Membership.Role.LEAD)
    for u in annotators:
        Membership.objects.create(campaign=campaign, user=u, role=Membership.Role.ANNOTATOR)
    for u in trainers:
        Membership.objects.create(campaign=campaign, user=u, role=Membership.Role.TRAINER)
    return campaign


def make_candidates(campaign: Campaign, *, with_audio: bool = True, samples: int = 1) -> list[Candidate]:
    out = []
    for d in campaign.dialogue_set.dialogues.all():
        for cp in campaign.campaign_policies.select_related("policy"):
            for s in range(samples):
                out.append(
                    Candidate.objects.create(
                        campaign=campaign, dialogue=d, policy=cp.policy, sample_index=s, seed=1000 + s,
                        reasoning=f"<i>thinking</i> about {d.external_id}", reply_text=f"Reply from sample {s} <script>x</script>",
                        audio=make_audio_asset(0.8) if with_audio else None, params={"temperature": 0.7},
                    )
                )
    return out


def make_items(campaign: Campaign, *, with_audio: bool = True, gold: int = 0) -> list[Item]:
    """One item per dialogue holding its first K candidates (sampling normally does this)."""
    if not campaign.candidates.exists():
        make_candidates(campaign, with_audio=with_audio)
    items = []
    for n, d in enumerate(campaign.dialogue_set.dialogues.order_by("id")):
        cands = list(campaign.candidates.filter(dialogue=d).order_by("id")[: campaign.candidates_per_item])
        is_gold = n < gold
        item = Item.objects.create(
            campaign=campaign, dialogue=d, overlap=campaign.judgments_per_item, is_gold=is_gold,
            gold_ranking=[[str(c.uuid)] for c in cands] if is_gold else None,
        )
        ItemCandidate.objects.bulk_create([ItemCandidate(item=item, candidate=c, position=i) for i, c in enumerate(cands)])
        items.append(item)
    return items


def make_judgment(
    item: Item,
    annotator: User,
    *,
    ranking: list[list[str]] | None = None,
    scores: dict | None = None,
    flags: dict | None = None,
    listened: float = 1.0,
    time_spent_ms: int = 20000,
) -> Judgment:
    """A stored judgment as the submission service would leave it (tiers best first)."""
    cands = [str(c.uuid) for c in item.candidates.order_by("item_links__position")]
    ranking = ranking or [[c] for c in cands]
    criteria = list(item.campaign.rubric_version.criteria.all())
    if scores is None:
        scores = {}
        for tier_index, tier in enumerate(ranking):
            for c in tier:
                scores[c] = {cr.key: max(cr.scale_min, cr.scale_max - tier_index) for cr in criteria}
    now = timezone.now()
    assignment = Assignment.objects.create(
        item=item, campaign=item.campaign, annotator=annotator, display_order=cands,
        status=Assignment.Status.SUBMITTED, expires_at=now + timedelta(minutes=10), finished_at=now,
    )
    judgment = Judgment.objects.create(
        campaign=item.campaign, item=item, assignment=assignment, annotator=annotator,
        rubric_version=item.campaign.rubric_version, client_submission_id=uuid.uuid4(), ranking=ranking,
        scores=scores, flags=flags or {}, listened={c: listened for c in cands}, time_spent_ms=time_spent_ms,
    )
    Membership.objects.filter(campaign=item.campaign, user=annotator, role=Membership.Role.ANNOTATOR).update(
        items_leased=F("items_leased") + 1, gold_leased=F("gold_leased") + int(item.is_gold)
    )
    slots = item.slots_used + 1 if item.is_gold else min(item.slots_used + 1, item.overlap)
    Item.objects.filter(pk=item.pk).update(judgment_count=item.judgment_count + 1, slots_used=slots)
    item.refresh_from_db()
    return judgment


def judgment_payload(assignment: Assignment, *, listened: float = 1.0, **overrides) -> dict:
    """A valid submission for a lease, as the task page sends it: the annotator's order as the
    ranking (no ties), the top score for every criterion, everything listened."""
    order = list(assignment.display_order)
    criteria = list(assignment.campaign.rubric_version.criteria.all())
    payload = {
        "client_submission_id": str(uuid.uuid4()),
        "ranking": [[c] for c in order],
        "scores": {c: {cr.key: cr.scale_max for cr in criteria} for c in order},
        "flags": {},
        "rationale": "",
        "listened": {c: listened for c in order},
        "time_spent_ms": 12000,
    }
    payload.update(overrides)
    return payload
