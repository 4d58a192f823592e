import json

from rlhf_export.training.__main__ import main


def test_rm_command_trains_and_prints_where_the_checkpoint_is(tiny_lm, pairwise_snapshot, tmp_path, capsys):
    code = main(
        [
            "rm",
            "--snapshot",
            str(pairwise_snapshot),
            "--base-model",
            str(tiny_lm),
            "--out",
            str(tmp_path),
            "--max-steps",
            "2",
            "--batch-size",
            "8",
            "--lr",
            "1e-3",
            "--device",
            "cpu",
            "--no-use-weights",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["checkpoint"] == str(tmp_path / "checkpoint")
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["use_weights"] is False


def test_score_command_scores_every_candidate_of_a_snapshot_split(trained_rm, polite_snapshot, tmp_path):
    out = tmp_path / "scores.jsonl"
    code = main(
        [
            "score",
            "--model",
            trained_rm["checkpoint"],
            "--snapshot",
            str(polite_snapshot),
            "--split",
            "validation",
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 60 * 3  # 60 judgments of 3 distinct candidates
    assert set(records[0]) == {"candidate_id", "item_id", "overall", "criteria", "item_uncertainty"}
    assert 0 <= records[0]["item_uncertainty"] <= 1


def test_score_command_reads_candidate_rows_from_jsonl(trained_rm, tmp_path):
    rows = [
        {
            "candidate_id": f"c{i}",
            "item_id": "i1",
            "prompt": [{"role": "user", "content": "hi"}],
            "reply_text": text,
        }
        for i, text in enumerate(["the cat please", "the cat"])
    ]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert (
        main(
            [
                "score",
                "--model",
                trained_rm["checkpoint"],
                "--candidates",
                str(tmp_path / "rows.jsonl"),
                "--out",
                str(tmp_path / "scores.jsonl"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    scores = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert [s["candidate_id"] for s in scores] == ["c0", "c1"]
    assert scores[0]["overall"] > scores[1]["overall"]


def test_bad_input_exits_non_zero_with_one_line(tiny_lm, tmp_path, capsys):
    code = main(
        ["dpo", "--snapshot", str(tmp_path / "missing"), "--policy", str(tiny_lm), "--out", str(tmp_path)]
    )
    captured = capsys.readouterr()
    assert code != 0
    assert captured.err.strip().splitlines() == [
        f"error: no manifest.json in snapshot folder {tmp_path / 'missing'}"
    ]


def test_candidate_rows_without_reply_text_are_named(trained_rm, tmp_path, capsys):
    (tmp_path / "rows.jsonl").write_text(json.dumps({"prompt": []}) + "\n")
    assert (
        main(["score", "--model", trained_rm["checkpoint"], "--candidates", str(tmp_path / "rows.jsonl")])
        != 0
    )
    assert capsys.readouterr().err.strip() == "error: candidate line(s) [1] lack prompt or reply_text"


def test_an_option_out_of_range_exits_non_zero_with_one_line_before_reading_anything(tmp_path, capsys):
    code = main(["rm", "--snapshot", str(tmp_path / "missing"), "--base-model", str(tmp_path / "none"),
                 "--out", str(tmp_path / "out"), "--lr", "-0.5"])
    err = capsys.readouterr().err
    assert code == 1 and err == "error: lr must be in (0.0, 1.0], not -0.5\n"
    assert not (tmp_path / "out").exists()
