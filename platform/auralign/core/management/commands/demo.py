"""manage.py demo — the whole loop on the embedded default, for a newcomer (`make demo`).

Idempotent: run it again and it reuses what exists (passwords are reset and printed again).
Steps: migrate; demo users; seed rubric; a spoken dialogue set (Piper voice) imported through the
real importer; a local Celery worker process; sampling from two SmolLM2 policies; a demo
annotator's judgments; quality figures; then it serves the app until Ctrl+C.
`--train-only` (make demo-train) instead exports the judgments, trains a reward model and one DPO
round as training runs on the local worker, registers the DPO policy, scores the campaign with the
reward model and samples a round-2 campaign from the new policy (rlhf_export.demo.demo_train).
"""

from __future__ import annotations

import json
import secrets
import signal
import string
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from auralign.accounts.models import User
from auralign.core.demo_data import DEMO_DIALOGUES
from auralign.dialogues.services import ImportRejected, dialogue_set_import
from auralign.dialogues.sources import LocalSource
from auralign.rubrics.models import Rubric
from auralign.rubrics.seed import SEED_CRITERIA, SEED_INSTRUCTIONS
from auralign.rubrics.services import rubric_create
from worker import audio as dsp

DEMO_USERS = [("lead", True), ("annotator1", False), ("annotator2", False), ("trainer", False)]
DEMO_SET = "Demo: spoken support conversations"
DEMO_RUBRIC = "spoken-dialogue"


class Command(BaseCommand):
    help = "Set up and serve the demo (users, rubric, spoken dialogues, sampling, annotation, quality)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-serve", action="store_true", help="set up, then exit instead of serving")
        parser.add_argument("--train-only", action="store_true", help="export, train a reward model and one DPO round")

    def handle(self, host: str, port: str, no_serve: bool, train_only: bool, **options):
        if not settings.DEBUG:
            raise CommandError("the demo runs with AURALIGN_DEMO=1 (make demo); never against production settings")
        call_command("migrate", interactive=False, verbosity=0)
        worker = self.start_worker()
        try:
            if train_only:
                self.train()
                return
            users = self.users()
            rubric_version = self.rubric()
            dialogue_set = self.dialogues()
            campaign = self.sampling(users, rubric_version, dialogue_set)
            self.annotation_and_quality(users, campaign)
            self.banner(users, host, port)
            if not no_serve:
                call_command("runserver", f"{host}:{port}", use_reloader=False)
        finally:
            self.stop_worker(worker)

    # --- steps ------------------------------------------------------------------------------

    def users(self) -> dict[str, tuple[User, str]]:
        out = {}
        for username, is_lead in DEMO_USERS:
            password = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
            user, _ = User.objects.get_or_create(username=username)
            user.is_lead = is_lead
            user.is_staff = user.is_superuser = username == "lead"
            user.set_password(password)
            user.save()
            out[username] = (user, password)
        self.stdout.write(self.style.SUCCESS("demo users ready"))
        return out

    def rubric(self):
        rubric = Rubric.objects.filter(slug=DEMO_RUBRIC).first()
        if rubric:
            return rubric.latest_version
        return rubric_create(slug=DEMO_RUBRIC, name="Spoken dialogue (seed)", criteria=SEED_CRITERIA, instructions=SEED_INSTRUCTIONS)

    def dialogues(self):
        """Speak the demo conversations with the Piper voice, write a manifest, import it."""
        from worker.tts import speech_for

        folder = settings.VAR_DIR / "demo" / "dialogues"
        folder.mkdir(parents=True, exist_ok=True)
        voice = speech_for({"backend": "piper"})
        lines = []
        for d in DEMO_DIALOGUES:
            turns = []
            for i, (role, text) in enumerate(d["turns"]):
                name = f"{d['id']}-{i}.wav"
                if not (folder / name).exists():
                    samples, sr = voice.synthesize(text, seed=i)
                    (folder / name).write_bytes(dsp.encode_wav(samples, sr))
                turns.append({"role": role, "text": text, "audio": name})
            lines.append(json.dumps({"id": d["id"], "metadata": d["metadata"], "turns": turns}))
        manifest = folder / "manifest.jsonl"
        manifest.write_text("\n".join(lines) + "\n")
        try:
            report = dialogue_set_import(name=DEMO_SET, manifest=manifest.read_bytes(), source=LocalSource(base_dir=folder))
        except ImportRejected as exc:
            raise CommandError("; ".join(exc.errors)) from None
        self.stdout.write(self.style.SUCCESS(f"dialogue set '{DEMO_SET}': {report.created} new, {report.unchanged} already there"))
        return report.dialogue_set

    def sampling(self, users, rubric_version, dialogue_set):
        from auralign.generation.demo import demo_sampling

        return demo_sampling(
            lead=users["lead"][0], annotators=[users["annotator1"][0], users["annotator2"][0]],
            trainer=users["trainer"][0], rubric_version=rubric_version, dialogue_set=dialogue_set, stdout=self.stdout,
        )

    def annotation_and_quality(self, users, campaign):
        """One gold item and one audio honeypot, annotator2's judgments (through the real
        submission service), then the quality figures, so the dashboards have something to show."""
        from auralign.annotation.demo import demo_simulated_judgments
        from auralign.annotation.models import Item
        from auralign.generation.demo import PERSONAS
        from auralign.quality.demo import demo_quality, demo_quality_setup

        if not Item.objects.filter(campaign=campaign).filter(is_gold=True).exists():
            planted = demo_quality_setup(campaign=campaign, gold_order=[name for name, _, _ in PERSONAS], gold=1, honeypots=1)
            self.stdout.write(f"quality controls: {planted['gold']} gold item, {planted['honeypots']} audio honeypot")
        judged = demo_simulated_judgments(campaign=campaign, annotator=users["annotator2"][0], n=campaign.items.count())
        self.stdout.write(f"annotator2 judged {judged} more items (simulated through the real services)")
        demo_quality(campaign=campaign, stdout=self.stdout)

    def train(self):
        from rlhf_export.demo import demo_train

        demo_train(out_dir=settings.VAR_DIR / "demo" / "train", stdout=self.stdout)

    def banner(self, users, host, port):
        base = f"http://{host}:{port}"
        w = self.stdout.write
        w("")
        w(self.style.SUCCESS("Auralign demo is ready."))
        w(f"  annotate:   {base}/            (annotator1 / {users['annotator1'][1]})")
        w(f"  lead pages: {base}/lead/       (lead / {users['lead'][1]}, also the admin)")
        w(f"  admin:      {base}/admin/")
        w(f"  API docs:   {base}/api/docs/")
        w(f"  trainer:    trainer / {users['trainer'][1]}   annotator2 / {users['annotator2'][1]}")
        w("  After annotating, `make demo-train` trains a reward model and one DPO round; follow them at " + base + "/training/")
        w("")

    # --- the local worker -------------------------------------------------------------------

    def start_worker(self) -> subprocess.Popen:
        """One local Celery worker for every queue (gpu, cpu, train) plus beat, on kombu's
        filesystem transport: long work never blocks a web request, and no server is needed."""
        log = settings.VAR_DIR / "demo-worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        repo = Path(settings.BASE_DIR)
        env = {**dict(__import__("os").environ), "PYTHONPATH": f"{repo / 'platform'}:{repo}"}
        cmd = [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker", "-B", "-Q", "gpu,cpu,train",
               "--pool=threads", "--concurrency=2", "--loglevel=INFO", f"--schedule={settings.VAR_DIR / 'celerybeat-schedule'}"]
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)  # noqa: SIM115
        self.stdout.write(f"local worker started (pid {proc.pid}, log {log})")
        return proc

    def stop_worker(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
