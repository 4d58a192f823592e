"""manage.py train: creates a run (job sent on commit), one-line errors with a non-zero exit."""

import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from rlhf_export.models import TrainingRun
from tests import services
from tests.factories import make_policy
from tests.rlhf_export.conftest import export

pytestmark = pytest.mark.django_db


def test_train_rm_creates_a_queued_run_with_the_options(judged, django_capture_on_commit_callbacks, capsys):
    snapshot = export(judged)
    with django_capture_on_commit_callbacks() as callbacks:
        call_command("train", "rm", "--snapshot", str(snapshot.uuid), "--base-model", "/models/b", "--set", "epochs=2",
                     "--set", "freeze_backbone=true", "--user", judged.trainer.username)
    run = TrainingRun.objects.get()
    assert (run.kind, run.config, run.created_by, len(callbacks)) == ("reward_model", {"epochs": 2, "freeze_backbone": True}, judged.trainer, 1)
    assert f"training run {run.uuid}" in capsys.readouterr().out


def test_train_dpo_takes_the_base_policy_by_name(judged, django_capture_on_commit_callbacks):
    snapshot = export(judged)
    make_policy(name="smol", checkpoint="/models/smol")
    with django_capture_on_commit_callbacks():
        call_command("train", "dpo", "--snapshot", str(snapshot.uuid), "--base-policy", "smol", "--set", "lora=true")
    assert TrainingRun.objects.get().base_policy.name == "smol"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "no_such=1"], "config.no_such: unknown RMConfig option 'no_such'"),
        (["--set", "lr"], "--set 'lr' is not KEY=VALUE"),
        (["--config", "[1]"], "--config must be a JSON object"),
        (["--base-policy", "missing"], "no policy 'missing'"),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(judged, extra, message):
    snapshot = export(judged)
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("(", r"\(")):
        call_command("train", "rm", "--snapshot", str(snapshot.uuid), "--base-model", "/m", *extra)
    assert not TrainingRun.objects.exists()


def test_an_unknown_snapshot_exits_non_zero_with_one_line(db):
    env = services.platform_env({})
    proc = subprocess.run(
        [sys.executable, "manage.py", "train", "rm", "--snapshot", "00000000-0000-0000-0000-000000000000", "--base-model", "/m"],
        cwd=services.REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["CommandError: no snapshot '00000000-0000-0000-0000-000000000000' (give its uuid)"]
