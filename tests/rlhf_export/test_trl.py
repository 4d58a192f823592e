"""A real client of the format: a pulled pairwise export loads with `datasets` and trains TRL's
DPOTrainer for one step, in a separate Django-free process (as on a training machine; TRL also
configures process-wide accelerate state that must not leak into other tests)."""

import json
import subprocess
import sys

import pytest

from auralign.accounts.services import api_token_create
from rlhf_export.client import AuralignClient, pull
from tests import services
from tests.rlhf_export.conftest import SERVER, export, judged_campaign


@pytest.mark.slow
@pytest.mark.django_db
def test_a_pulled_pairwise_export_trains_trl_dpo_for_one_step(tmp_path, in_process_api):
    judged = judged_campaign(dialogues=4, k=2, annotators=2)
    snapshot = export(judged, splits={"train": 1.0})
    _, secret = api_token_create(user=judged.trainer, name="trl", read_only=True, campaigns=[judged.campaign])
    pull(AuralignClient(SERVER, secret, http=in_process_api), str(snapshot.uuid), tmp_path / "snap", progress=False)
    result = subprocess.run(
        [sys.executable, "-m", "tests.rlhf_export.dpo_one_step", str(tmp_path / "snap"), str(tmp_path / "out")],
        env=services.django_free_env({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}), cwd=services.REPO,
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trained = json.loads(result.stdout.strip().splitlines()[-1])
    assert trained["rows"] == snapshot.rows
    assert trained["steps"] == 1 and trained["loss"] > 0 and trained["changed"]
