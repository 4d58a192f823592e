"""manage.py train {rm,dpo} --snapshot UUID [--base-policy NAME|UUID | --base-model PATH [--gguf-file F]]
    [--audio-encoder PATH] [--set KEY=VALUE ...] [--config JSON] [--policy-name NAME] [--user NAME] [--wait]

Creates a TrainingRun on an export snapshot; its job goes to the `train` queue when the run is
stored (docs/training.md). --wait follows it (a progress bar over the steps, then the held-out
figures; a DPO run prints the policy it registered). Bad input: one line, exit status 1.
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from auralign.core.errors import ServiceError
from auralign.core.ids import is_uuid
from auralign.policies.models import Policy
from rlhf_export.models import ExportSnapshot, TrainingRun
from rlhf_export.progress import follow, summary
from rlhf_export.services import training_run_create

KINDS = {"rm": TrainingRun.Kind.REWARD_MODEL, "dpo": TrainingRun.Kind.DPO}


def _value(text: str):
    """A --set value: JSON when it parses (numbers, true/false), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class Command(BaseCommand):
    help = "Start a reward-model (rm) or DPO training run on an export snapshot."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=sorted(KINDS))
        parser.add_argument("--snapshot", required=True, help="export snapshot uuid")
        parser.add_argument("--base-policy", help="policy name or uuid (DPO: required; rm: the backbone)")
        parser.add_argument("--base-model", help="rm: backbone folder or s3:// prefix (instead of --base-policy)")
        parser.add_argument("--gguf-file", help="rm: GGUF file inside --base-model")
        parser.add_argument("--audio-encoder", default="", help="rm: Whisper / wav2vec2 checkpoint for the reply audio")
        parser.add_argument("--config", default="{}", help="training options as a JSON object")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="one training option (repeatable)")
        parser.add_argument("--policy-name", default="", help="DPO: name of the policy it registers")
        parser.add_argument("--user", help="record this user as the run's creator")
        parser.add_argument("--wait", action="store_true", help="follow the run until it is done")

    def handle(self, *args, **o):
        snapshot = ExportSnapshot.objects.filter(uuid=o["snapshot"]).first() if is_uuid(o["snapshot"]) else None
        if snapshot is None:
            raise CommandError(f"no snapshot '{o['snapshot']}' (give its uuid)")
        try:
            config = json.loads(o["config"])
        except ValueError as exc:
            raise CommandError(f"--config is not JSON: {exc}") from None
        if not isinstance(config, dict):
            raise CommandError("--config must be a JSON object")
        for item in o["set"]:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"--set '{item}' is not KEY=VALUE")
            config[key.strip()] = _value(value)
        user = None
        if o["user"]:
            user = get_user_model().objects.filter(username=o["user"]).first()
            if user is None:
                raise CommandError(f"no user '{o['user']}'")
        policy = None
        if o["base_policy"]:
            query = {"uuid": o["base_policy"]} if is_uuid(o["base_policy"]) else {"name": o["base_policy"]}
            policy = Policy.objects.filter(**query).first()
            if policy is None:
                raise CommandError(f"no policy '{o['base_policy']}'")
        base_model = {"path": o["base_model"], "gguf_file": o["gguf_file"]} if o["base_model"] else None
        try:
            run = training_run_create(
                user=user, snapshot=snapshot, kind=KINDS[o["kind"]], base_policy=policy, base_model=base_model,
                audio_encoder=o["audio_encoder"], config=config, policy_name=o["policy_name"],
            )
        except ServiceError as exc:
            raise CommandError(exc.describe()) from None
        self.stdout.write(f"training run {run.uuid} ({run.get_kind_display()}) queued; see /training/{run.uuid}/")
        if o["wait"]:
            run = follow(run, quiet=o["verbosity"] == 0)
            if run.status == TrainingRun.Status.FAILED:
                raise CommandError(f"training run {run.uuid} failed: {run.error}")
            self.stdout.write(self.style.SUCCESS(summary(run)))

