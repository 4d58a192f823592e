"""The export part of the demo: create, pull through the API with the CLI code, load with datasets."""

import io

import pytest

from rlhf_export.demo import demo_export
from tests.rlhf_export.conftest import judged_campaign


@pytest.mark.django_db
def test_demo_export_pulls_and_loads_the_demo_judgments(tmp_path, settings, in_process_api):  # keeps the connection open
    settings.ALLOWED_HOSTS = ["localhost"]
    judged = judged_campaign(dialogues=3, k=2, annotators=2, with_audio=True)
    out = io.StringIO()
    snapshot = demo_export(trainer=judged.trainer, campaign=judged.campaign, out_dir=tmp_path, stdout=out)
    assert snapshot.status == "succeeded" and snapshot.rows == len(judged.judgments)
    assert (tmp_path / "pairwise" / "manifest.json").exists() and (tmp_path / "listwise" / "manifest.json").exists()
    assert list((tmp_path / "pairwise" / "audio").rglob("*.wav"))
    assert "loaded with datasets" in out.getvalue()
