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


@pytest.fixture
def demo_worker(postgres, settings, tmp_path):
    """The embedded default's one local worker (every queue, threads), on a private filesystem broker."""
    from tests import services
    from worker import celery_conf

    with services.platform_broker("filesystem://", celery_conf.filesystem_options(tmp_path / "celery")):
        env = services.platform_env({
            "CELERY_BROKER_URL": "filesystem://", "AURALIGN_VAR_DIR": str(tmp_path), "AURALIGN_STORAGE": "local",
            "AURALIGN_MEDIA_ROOT": settings.STORAGES["default"]["OPTIONS"]["location"], "OMP_NUM_THREADS": "1",
        })
        proc = services.start_celery_worker(app="config.celery_app", queues="gpu,cpu,train", env=env, pool="threads",
                                            concurrency=2, logfile=tmp_path / "worker.log")
        yield tmp_path / "worker.log"
        services.stop_process(proc)


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_demo_train_closes_the_loop_through_the_local_worker(tmp_path, settings, demo_worker, tiny_lm):
    """make demo-train with a tiny model: export → reward model → DPO → new policy → scoring →
    prioritised items → a round-2 campaign sampled from the new policy by the same worker."""
    from rlhf_export.demo import demo_train
    from tests.factories import make_policy
    from tests.rlhf_export.conftest import FAST_DPO, FAST_RM, varied_replies

    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    judged = judged_campaign(dialogues=4, k=2, annotators=1, with_audio=True)
    judged.campaign.judgments_per_item = 2  # room for one more judgment per item: prioritising has open items
    judged.campaign.save(update_fields=["judgments_per_item"])
    judged.campaign.items.update(overlap=2)
    varied_replies(judged)
    backbone = make_policy(checkpoint=str(tiny_lm), system_prompt="Be kind.")
    out = io.StringIO()
    try:
        done = demo_train(out_dir=tmp_path / "demo", stdout=out, campaign=judged.campaign, trainer=judged.trainer,
                          lead=judged.lead, backbone=backbone, rm_config=FAST_RM, dpo_config={**FAST_DPO, "lora": True, "lora_r": 4},
                          timeout_s=300)
    except RuntimeError:
        raise AssertionError(out.getvalue()[-3000:] + demo_worker.read_text()[-5000:]) from None
    assert done["policy"].parent == backbone and done["policy"].produced_by_run == done["dpo"]
    assert done["scoring"].candidates_scored == 4 * 2
    assert done["round_two"].status == "annotating"
    assert set(done["round_two"].candidates.values_list("policy", flat=True)) == {done["policy"].pk}
    assert done["round_two"].items.count() == 4
    text = out.getvalue()
    assert "agreement with the annotators" in text and f"/training/{done['reward_model'].uuid}/" in text
