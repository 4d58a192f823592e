import json

import numpy as np
import pytest

from rlhf_export.training.data import Pair, holdout, load_audio, open_snapshot, score_pairs

from . import factory


def listwise_snapshot(tmp_path, rows, **kwargs):
    return open_snapshot(str(factory.write_snapshot(tmp_path, "listwise", {"train": rows}, **kwargs)))


def test_listwise_judgment_gives_all_pairs_of_its_ranking_with_ties_from_shared_tiers(tmp_path):
    replies = [{"text": t} for t in ("a", "b", "c")]
    row = factory.listwise_row(1, "hi", replies, tiers=[[1], [0, 2]])
    (judgment,) = listwise_snapshot(tmp_path, [row]).judgments("train")
    assert [c.text for c in judgment.candidates] == ["b", "a", "c"]  # tier order
    assert judgment.pairs == [Pair(0, 1, False, 0.0), Pair(0, 2, False, 0.0), Pair(1, 2, True, 0.0)]


def test_listwise_margin_is_the_rubric_weighted_score_difference(tmp_path):
    replies = [
        {"text": "a", "scores": factory.scores(politeness=5, fluency=1)},
        {"text": "b", "scores": factory.scores(politeness=2, fluency=4)},
    ]
    (judgment,) = listwise_snapshot(tmp_path, [factory.listwise_row(1, "hi", replies, [[0], [1]])]).judgments(
        "train"
    )
    # weights politeness 1.0, fluency 0.5: (1.0 * 3 + 0.5 * -3) / 1.5 = 1.0
    assert judgment.pairs[0].margin == pytest.approx(1.0)


def test_a_ranking_against_the_scores_gets_no_negative_margin(tmp_path):
    replies = [
        {"text": "a", "scores": factory.scores(politeness=1)},
        {"text": "b", "scores": factory.scores(politeness=5)},
    ]
    (judgment,) = listwise_snapshot(tmp_path, [factory.listwise_row(1, "hi", replies, [[0], [1]])]).judgments(
        "train"
    )
    assert judgment.pairs[0].margin == 0.0


def test_criterion_pairs_follow_scores_and_equal_scores_tie(tmp_path):
    replies = [{"text": t, "scores": factory.scores(politeness=s)} for t, s in (("a", 2), ("b", 4), ("c", 2))]
    (judgment,) = listwise_snapshot(
        tmp_path, [factory.listwise_row(1, "hi", replies, [[0, 1, 2]])]
    ).judgments("train")
    pairs = score_pairs(judgment.candidates, "politeness")
    assert sorted(
        (judgment.candidates[p.win].text, judgment.candidates[p.lose].text, p.tie) for p in pairs
    ) == [
        ("a", "c", True),
        ("b", "a", False),
        ("b", "c", False),
    ]


def test_pairwise_row_is_one_pair_with_its_tie_margin_and_weight(tmp_path):
    rows = factory.pairwise_rows(
        [factory.listwise_row(1, "hi", [{"text": "a"}, {"text": "b"}], [[0, 1]], weight=0.25)]
    )
    rows[0]["margin"] = 0.7
    snapshot = open_snapshot(str(factory.write_snapshot(tmp_path, "pairwise", {"train": rows})))
    (judgment,) = snapshot.judgments("train")
    assert judgment.pairs == [Pair(0, 1, True, 0.0)]  # a tie carries no margin
    assert judgment.weight == 0.25
    assert [c.id for c in judgment.candidates] == ["c1-0", "c1-1"]


def test_jsonl_files_are_read_like_parquet(tmp_path):
    rows = factory.polite_judgments(3, seed=5)
    a = open_snapshot(str(factory.write_snapshot(tmp_path / "a", "listwise", {"train": rows}))).judgments(
        "train"
    )
    b = open_snapshot(
        str(factory.write_snapshot(tmp_path / "b", "listwise", {"train": rows}, fmt="jsonl"))
    ).judgments("train")
    assert a == b


def test_parquet_is_preferred_when_a_split_has_both_formats(tmp_path):
    rows = factory.polite_judgments(4, seed=5)
    factory.write_snapshot(tmp_path, "listwise", {"train": rows}, fmt="jsonl")
    jsonl_files = json.loads((tmp_path / "manifest.json").read_text())["files"]
    factory.write_snapshot(tmp_path, "listwise", {"train": rows})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"] += jsonl_files
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert len(open_snapshot(str(tmp_path)).judgments("train")) == 4


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        open_snapshot(str(tmp_path))


def test_pointwise_snapshot_is_refused_by_name(tmp_path):
    factory.write_snapshot(tmp_path, "pointwise", {"train": [{"x": 1}]})
    with pytest.raises(ValueError, match="'pointwise' cannot be trained on"):
        open_snapshot(str(tmp_path))


def test_tiers_naming_an_unknown_candidate_are_refused(tmp_path):
    row = factory.listwise_row(1, "hi", [{"text": "a"}], [[0]])
    row["tiers"] = [["c1-0"], ["ghost"]]
    with pytest.raises(ValueError, match="unknown candidates"):
        listwise_snapshot(tmp_path, [row]).judgments("train")


def test_missing_split_is_named(tmp_path):
    with pytest.raises(ValueError, match="no 'test' split"):
        listwise_snapshot(tmp_path, factory.polite_judgments(2, seed=1)).judgments("test")


def test_holdout_is_deterministic_and_keeps_items_apart(tmp_path):
    judgments = listwise_snapshot(tmp_path, factory.polite_judgments(200, seed=1)).judgments("train")
    train, held = holdout(judgments, 0.2)
    assert holdout(judgments, 0.2) == (train, held)
    assert {j.item_id for j in train}.isdisjoint({j.item_id for j in held})
    assert 20 <= len(held) <= 60


def test_missing_audio_is_named(tmp_path):
    snapshot = listwise_snapshot(tmp_path, factory.polite_judgments(1, seed=1))
    with pytest.raises(FileNotFoundError, match="audio/ab/ab.wav is not in the snapshot"):
        snapshot.audio_path("audio/ab/ab.wav")


def test_audio_is_loaded_mono_and_resampled(tmp_path):
    wav = factory.tone(0.5, 440.0, seconds=0.5, rate=24000)
    key = factory.audio_key(wav)
    snapshot = listwise_snapshot(tmp_path, factory.polite_judgments(1, seed=1), audio={key: wav})
    samples = load_audio(snapshot.audio_path(key), 16000, max_seconds=30)
    assert samples.shape == (8000,)
    assert np.abs(samples).max() == pytest.approx(0.5, abs=0.02)
    assert load_audio(snapshot.audio_path(key), 16000, max_seconds=0.25).shape == (4000,)


def test_a_snapshot_read_in_place_from_a_local_store_finds_the_store_audio(tmp_path):
    """The platform's embedded default hands the trainer <media>/exports/<uuid>/ itself; the audio
    it references lives beside it under <media>/audio/, as in the S3 bucket."""
    audio = {}
    rows = factory.loud_judgments(1, 1, audio)
    root = factory.write_snapshot(tmp_path / "media" / "exports" / "0000", "listwise", {"train": rows})
    key, wav = next(iter(audio.items()))
    (tmp_path / "media" / key).parent.mkdir(parents=True)
    (tmp_path / "media" / key).write_bytes(wav)
    assert open_snapshot(str(root)).audio_path(key).read_bytes() == wav
