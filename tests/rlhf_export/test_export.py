"""Export runs against the database and local storage: rows match judgments, filters, splits,
reproducibility, idempotence."""

import collections
import hashlib
import io
import json
from datetime import timedelta

import pyarrow.parquet as pq
import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from auralign.annotation.models import Item
from auralign.core import storage
from auralign.quality.models import AnnotatorStats, ItemConsensus
from config.celery_app import app
from rlhf_export.models import ExportSnapshot
from rlhf_export.selectors import annotator_pseudonym
from rlhf_export.services import snapshot_create, snapshot_run, snapshot_verify, snapshots_reconcile
from tests.factories import make_campaign, make_items, make_judgment, make_rubric, make_user
from tests.rlhf_export.conftest import candidate_ids, export, judged_campaign, read_rows

pytestmark = pytest.mark.django_db
ONE_SPLIT = {"train": 1.0}


def by_judgment(rows):
    return collections.Counter(r["judgment_id"] for r in rows)


def test_pairwise_has_one_row_per_candidate_pair_of_every_judgment(judged):
    rows = read_rows(export(judged))
    assert by_judgment(rows) == {str(j.uuid): 3 for j in judged.judgments}  # K=3: none lost, none duplicated
    assert len({(r["judgment_id"], r["chosen_candidate"], r["rejected_candidate"]) for r in rows}) == len(rows)


def test_ties_get_their_own_rows_flagged_tie(judged):
    rows = read_rows(export(judged))
    tied = [j for j in judged.judgments if len(j.ranking[0]) == 2]
    assert tied
    for j in tied:
        ties = [r for r in rows if r["judgment_id"] == str(j.uuid) and r["tie"]]
        assert [(r["chosen_candidate"], r["rejected_candidate"]) for r in ties] == [tuple(j.ranking[0])]


def test_strict_rows_put_the_better_ranked_candidate_first_with_a_positive_margin(judged):
    rows = read_rows(export(judged))
    strict = [r for r in rows if not r["tie"]]
    assert strict
    for r in strict:
        ranking = next(j.ranking for j in judged.judgments if str(j.uuid) == r["judgment_id"])
        tier = {c: t for t, members in enumerate(ranking) for c in members}
        assert tier[r["chosen_candidate"]] < tier[r["rejected_candidate"]]
        assert r["margin"] > 0  # the factory scores better tiers higher on every criterion


def test_rows_carry_prompt_replies_reasoning_audio_scores_and_policies(db):
    judged = judged_campaign(dialogues=1, k=2, annotators=1, with_audio=True)
    row = read_rows(export(judged))[0]
    item = judged.items[0]
    chosen = item.candidates.get(uuid=row["chosen_candidate"])
    turns = list(item.dialogue.turns.order_by("index"))
    assert row["prompt"] == [{"role": t.role, "content": t.text} for t in turns]
    assert len(row["prompt_audio"]) == len(row["prompt"])
    assert row["chosen"] == [{"role": "assistant", "content": chosen.reply_text}]
    assert row["chosen_reasoning"] == chosen.reasoning
    assert row["chosen_audio"] == chosen.audio.key
    assert row["chosen_policy"] == str(chosen.policy.uuid)
    criteria = [c.key for c in judged.campaign.rubric_version.criteria.all()]
    assert [s["criterion"] for s in row["chosen_scores"]] == criteria
    assert row["rubric"] == judged.campaign.rubric_version.label
    assert (row["dialogue_id"], row["item_id"], row["campaign_id"]) == (str(item.dialogue.uuid), str(item.uuid), str(judged.campaign.uuid))


def test_annotators_appear_as_stable_pseudonyms_never_usernames(judged):
    rows = read_rows(export(judged))
    names = {r["annotator"] for r in rows}
    assert names == {annotator_pseudonym(u.pk) for u in judged.annotators}
    assert all(n.startswith("ann-") and len(n) == 14 for n in names)
    assert not names & {u.username for u in judged.annotators}


def test_gold_items_are_excluded_only_when_asked(db):
    judged = judged_campaign(gold=1)
    gold = str(judged.items[0].uuid)
    assert gold in {r["item_id"] for r in read_rows(export(judged))}
    assert gold not in {r["item_id"] for r in read_rows(export(judged, filters={"exclude_gold": True}))}


def test_honeypot_items_are_excluded_by_default(judged):
    Item.objects.filter(pk=judged.items[0].pk).update(is_honeypot=True)
    honeypot = str(judged.items[0].uuid)
    assert honeypot not in {r["item_id"] for r in read_rows(export(judged))}
    assert honeypot in {r["item_id"] for r in read_rows(export(judged, filters={"exclude_honeypots": False}))}


def test_flagged_judgments_are_excluded_when_asked(judged):
    item = judged.items[0]
    extra = make_user()
    flagged = make_judgment(item, extra, flags={candidate_ids(item)[1]: ["broken_audio"]})
    assert str(flagged.uuid) in by_judgment(read_rows(export(judged)))
    assert str(flagged.uuid) not in by_judgment(read_rows(export(judged, filters={"exclude_flagged": True})))


def test_judged_after_and_before_select_by_submission_time(judged):
    ordered = sorted(judged.judgments, key=lambda j: j.created_at)
    middle = ordered[len(ordered) // 2].created_at
    after = by_judgment(read_rows(export(judged, filters={"judged_after": middle.isoformat()})))
    before = by_judgment(read_rows(export(judged, filters={"judged_before": middle.isoformat()})))
    assert set(after) == {str(j.uuid) for j in ordered if j.created_at >= middle}
    assert set(before) == {str(j.uuid) for j in ordered if j.created_at < middle}


def test_rubric_version_filter_keeps_only_that_version(db):
    first, second = judged_campaign(dialogues=2), judged_campaign(dialogues=2)
    label = first.campaign.rubric_version.label
    snapshot = snapshot_create(
        user=None, campaigns=[first.campaign, second.campaign], kind="pairwise", enqueue=False,
        filters={"rubric_versions": [label]},
    )
    rows = read_rows(snapshot_run(snapshot_id=snapshot.pk))
    assert {r["rubric"] for r in rows} == {label}
    assert {r["campaign_id"] for r in rows} == {str(first.campaign.uuid)}


def test_min_reliability_drops_unreliable_annotators_and_weights_the_rest(judged):
    good, bad = judged.annotators
    AnnotatorStats.objects.create(campaign=judged.campaign, annotator=good, judgments=4, weight=0.9)
    AnnotatorStats.objects.create(campaign=judged.campaign, annotator=bad, judgments=4, weight=0.2)
    rows = read_rows(export(judged, filters={"min_reliability": 0.5}))
    assert {r["annotator"] for r in rows} == {annotator_pseudonym(good.pk)}
    assert {r["weight"] for r in rows} == {0.9}


def test_weight_is_reliability_times_item_agreement(judged):
    annotator = judged.annotators[0]
    AnnotatorStats.objects.create(campaign=judged.campaign, annotator=annotator, judgments=4, weight=0.5)
    item = judged.items[0]
    ItemConsensus.objects.create(item=item, campaign=judged.campaign, judgments=2, agreement=0.6)
    rows = read_rows(export(judged))
    weights = {(r["annotator"], r["item_id"]): r["weight"] for r in rows}
    assert weights[(annotator_pseudonym(annotator.pk), str(item.uuid))] == pytest.approx(0.3)
    assert weights[(annotator_pseudonym(judged.annotators[1].pk), str(item.uuid))] == pytest.approx(0.6)
    assert weights[(annotator_pseudonym(annotator.pk), str(judged.items[1].uuid))] == pytest.approx(0.5)


def test_min_agreement_drops_low_agreement_and_unknown_items(judged):
    agreed, split, unknown = judged.items[0], judged.items[1], judged.items[2]
    ItemConsensus.objects.create(item=agreed, campaign=judged.campaign, judgments=2, agreement=0.9)
    ItemConsensus.objects.create(item=split, campaign=judged.campaign, judgments=2, agreement=0.3)
    rows = read_rows(export(judged, filters={"min_agreement": 0.5}))
    assert {r["item_id"] for r in rows} == {str(agreed.uuid)}
    assert str(unknown.uuid) not in {r["item_id"] for r in rows}


def test_qualified_only_keeps_annotators_who_passed_the_gold_gate(db):
    judged = judged_campaign(gold=2)  # gold ranking = position order: annotator 0 matches it, annotator 1 ties
    judged.campaign.qualification_gold_items = 2
    judged.campaign.qualification_min_accuracy = 1.0
    judged.campaign.save()
    rows = read_rows(export(judged, filters={"qualified_only": True}))
    assert {r["annotator"] for r in rows} == {annotator_pseudonym(judged.annotators[0].pk)}
    assert len(by_judgment(rows)) == len(judged.items)


def test_splits_never_share_a_dialogue(db):
    judged = judged_campaign(dialogues=30, k=2, annotators=1)
    snapshot = export(judged, splits={"train": 0.5, "validation": 0.25, "test": 0.25})
    dialogues = {split: {r["dialogue_id"] for r in read_rows(snapshot, split=split)} for split in ("train", "validation", "test")}
    assert not dialogues["train"] & dialogues["validation"]
    assert not dialogues["train"] & dialogues["test"]
    assert not dialogues["validation"] & dialogues["test"]
    assert set().union(*dialogues.values()) == {str(i.dialogue.uuid) for i in judged.items}
    assert sum(1 for d in dialogues.values() if d) >= 2
    assert all(r["split"] == split for split in dialogues for r in read_rows(snapshot, split=split))


def test_the_same_spec_gives_byte_identical_files(judged):
    first, second = export(judged), export(judged)
    assert first.uuid != second.uuid
    assert [(f["path"], f["sha256"]) for f in first.files] == [(f["path"], f["sha256"]) for f in second.files]
    assert first.watermark == second.watermark


def test_verify_rebuilds_an_old_snapshot_at_its_watermark_after_new_judgments(judged):
    old = export(judged)
    make_judgment(judged.items[0], make_user())
    assert snapshot_verify(snapshot=old) == {"reproducible": True, "judgments_match": True, "mismatched_files": []}
    new = export(judged)
    assert new.watermark["judgment_count"] == old.watermark["judgment_count"] + 1
    assert [f["sha256"] for f in new.files] != [f["sha256"] for f in old.files]


def test_files_are_cut_into_shards_of_rows_per_shard(judged):
    snapshot = export(judged, splits=ONE_SPLIT, rows_per_shard=10)
    parquet = [f for f in snapshot.files if f["format"] == "parquet"]
    assert [(f["path"], f["rows"]) for f in parquet] == [
        ("pairwise/train-00000.parquet", 10), ("pairwise/train-00001.parquet", 10), ("pairwise/train-00002.parquet", 4),
    ]
    assert [f["rows"] for f in snapshot.files if f["format"] == "jsonl"] == [10, 10, 4]


def test_parquet_and_jsonl_hold_the_same_rows_in_the_same_order(judged):
    snapshot = export(judged)
    assert read_rows(snapshot, "parquet") == read_rows(snapshot, "jsonl")


def test_manifest_lists_files_with_sizes_and_checksums(judged):
    snapshot = export(judged)
    manifest = json.loads(storage.read(snapshot.prefix + "manifest.json"))
    assert manifest == snapshot.manifest
    assert manifest["schema_version"] == 1 and manifest["kind"] == "pairwise"
    assert list(manifest["rubrics"]) == [judged.campaign.rubric_version.label]
    for f in manifest["files"]:
        data = storage.read(snapshot.prefix + f["path"])
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f["bytes"], f["sha256"])


def test_parquet_files_carry_the_kind_and_schema_version_but_no_timestamp(judged):
    snapshot = export(judged)
    data = storage.read(snapshot.prefix + snapshot.files[0]["path"])
    metadata = pq.read_metadata(io.BytesIO(data)).metadata
    assert metadata[b"auralign.kind"] == b"pairwise" and metadata[b"auralign.schema_version"] == b"1"
    assert snapshot.created_at.isoformat().encode() not in data


def test_an_empty_selection_still_writes_every_split_with_its_schema(judged):
    snapshot = export(judged, filters={"judged_after": "2999-01-01T00:00:00Z"})
    assert snapshot.rows == 0 and snapshot.watermark["judgment_count"] == 0
    assert {f["split"] for f in snapshot.files} == {"train", "validation", "test"}
    table = pq.read_table(io.BytesIO(storage.read(snapshot.prefix + snapshot.files[0]["path"])))
    assert table.num_rows == 0 and "chosen" in table.column_names


def test_listwise_has_one_row_per_judgment_with_all_candidates_and_tiers(judged):
    rows = read_rows(export(judged, "listwise"))
    assert by_judgment(rows) == {str(j.uuid): 1 for j in judged.judgments}
    for r in rows:
        j = next(j for j in judged.judgments if str(j.uuid) == r["judgment_id"])
        assert r["tiers"] == j.ranking
        assert [c["candidate_id"] for c in r["candidates"]] == candidate_ids(j.item)
        assert all(c["listened"] == 1.0 and len(c["scores"]) == 4 for c in r["candidates"])


def test_pointwise_has_one_row_per_candidate_criterion_and_judgment(judged):
    rows = read_rows(export(judged, "pointwise"))
    assert by_judgment(rows) == {str(j.uuid): 3 * 4 for j in judged.judgments}
    row = rows[0]
    j = next(j for j in judged.judgments if str(j.uuid) == row["judgment_id"])
    assert row["score"] == j.scores[row["candidate_id"]][row["criterion"]]
    assert (row["scale_min"], row["scale_max"]) == (1, 5)


def test_consensus_has_one_row_per_item_pair_with_majority_agreement_and_count(judged):
    rows = read_rows(export(judged, "pairwise_consensus"))
    assert collections.Counter(r["item_id"] for r in rows) == {str(i.uuid): 3 for i in judged.items}
    item = judged.items[0]
    first, second, third = candidate_ids(item)
    pairs = {(r["chosen_candidate"], r["rejected_candidate"]): r for r in rows if r["item_id"] == str(item.uuid)}
    # annotator 0: first > second; annotator 1: first = second. One strict vote decides.
    assert pairs[(first, second)]["agreement"] == 0.5 and not pairs[(first, second)]["tie"]
    assert pairs[(first, third)]["agreement"] == 1.0 and pairs[(first, third)]["n_judgments"] == 2
    assert pairs[(first, third)]["weight"] == 1.0


def test_running_a_done_snapshot_again_changes_nothing(judged):
    snapshot = export(judged)
    again = snapshot_run(snapshot_id=snapshot.pk)
    assert (again.attempt, again.files, again.finished_at) == (snapshot.attempt, snapshot.files, snapshot.finished_at)


def test_a_crashed_run_restarts_from_a_clean_prefix(judged):
    snapshot = snapshot_create(user=judged.trainer, campaigns=[judged.campaign], kind="pairwise", enqueue=False)
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(status="running", attempt=1)  # its worker died
    storage.put(snapshot.prefix + "pairwise/train-00009.parquet", b"half a file")
    done = snapshot_run(snapshot_id=snapshot.pk)
    assert (done.status, done.attempt) == ("succeeded", 2)
    assert not storage.exists(snapshot.prefix + "pairwise/train-00009.parquet")


def test_a_superseded_attempt_stops_and_leaves_the_snapshot_to_the_newer_one(judged):
    snapshot = snapshot_create(user=judged.trainer, campaigns=[judged.campaign], kind="pairwise", enqueue=False)

    def another_worker_takes_over(done, total, rows):
        ExportSnapshot.objects.filter(pk=snapshot.pk).update(attempt=5)

    result = snapshot_run(snapshot_id=snapshot.pk, on_progress=another_worker_takes_over)
    assert (result.status, result.attempt, result.files) == ("running", 5, [])


def test_a_done_snapshot_is_immutable_in_the_database(judged):
    snapshot = export(judged)
    with pytest.raises(DatabaseError), transaction.atomic():
        ExportSnapshot.objects.filter(pk=snapshot.pk).update(files=[])


def test_campaigns_with_another_rubric_scale_export_their_own_bounds(db):
    rubric = make_rubric(criteria=[{"key": "overall", "label": "Overall", "scale_min": 0, "scale_max": 10}], frozen=True)
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator], rubric_version=rubric, dialogues=1)
    item = make_items(campaign, with_audio=False)[0]
    make_judgment(item, annotator)
    snapshot = snapshot_run(snapshot_id=snapshot_create(user=None, campaigns=[campaign], kind="pointwise", enqueue=False).pk)
    assert {(r["criterion"], r["scale_min"], r["scale_max"]) for r in read_rows(snapshot)} == {("overall", 0, 10)}
    assert snapshot.manifest["rubrics"][rubric.label]["criteria"][0]["max"] == 10


def test_reconcile_re_enqueues_a_snapshot_whose_message_was_lost(judged):
    lost = snapshot_create(user=judged.trainer, campaigns=[judged.campaign], kind="pairwise", enqueue=False)
    fresh = snapshot_create(user=judged.trainer, campaigns=[judged.campaign], kind="pairwise", enqueue=False)
    ExportSnapshot.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=1))
    saved, app.conf.task_always_eager = app.conf.task_always_eager, True  # run what is enqueued, here
    try:
        assert snapshots_reconcile() == 1
    finally:
        app.conf.task_always_eager = saved
    assert ExportSnapshot.objects.get(pk=lost.pk).status == "succeeded"
    assert ExportSnapshot.objects.get(pk=fresh.pk).status == "pending"
