"""Dialogue import: all or nothing, every rejection names the line and the field."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from auralign.dialogues.models import Dialogue, DialogueSet, Turn
from auralign.dialogues.services import ImportRejected, dialogue_set_import
from auralign.dialogues.sources import LocalSource
from auralign.media.models import AudioAsset
from tests.factories import make_wav

pytestmark = pytest.mark.django_db


def write_set(tmp_path: Path, lines: list, files: dict[str, bytes] | None = None) -> Path:
    for name, data in (files or {}).items():
        (tmp_path / name).write_bytes(data)
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return manifest


def dialogue(did: str, audio: str | None = "q.wav", **extra) -> dict:
    turns = [
        {"role": "system", "text": "You are a kind tutor."},
        {"role": "user", "text": "Hello there", "audio": audio},
        {"role": "assistant", "text": "Hi! How can I help?"},
        {"role": "user", "text": "Tell me about <b>tides</b>."},
    ]
    if audio is None:
        del turns[1]["audio"]
    return {"id": did, "metadata": {"topic": "tides"}, "turns": turns, **extra}


def run_import(manifest: Path, name: str = "set-a"):
    return dialogue_set_import(name=name, manifest=manifest.read_bytes(), source=LocalSource(base_dir=manifest.parent))


def assert_nothing_stored():
    assert DialogueSet.objects.count() == 0
    assert Dialogue.objects.count() == 0
    assert Turn.objects.count() == 0
    assert AudioAsset.objects.count() == 0


def rejected(manifest: Path) -> str:
    with pytest.raises(ImportRejected) as exc:
        run_import(manifest)
    assert_nothing_stored()
    return exc.value.errors[0]


def test_import_stores_dialogues_turns_and_measured_audio(tmp_path):
    manifest = write_set(tmp_path, [dialogue("d1"), dialogue("d2", audio="r.flac")],
                         {"q.wav": make_wav(1.5, sr=22050), "r.flac": make_wav(0.7, fmt="FLAC", subtype="PCM_16")})
    report = run_import(manifest)
    assert (report.created, report.unchanged, report.audio_files) == (2, 0, 2)
    d1 = Dialogue.objects.get(external_id="d1")
    assert [t.role for t in d1.turns.all()] == ["system", "user", "assistant", "user"]
    asset = d1.turns.get(index=1).audio
    assert asset.sample_rate == 22050 and asset.channels == 1
    assert asset.duration_s == pytest.approx(1.5, abs=1e-3)
    assert -30 < asset.lufs < -5
    assert len(asset.peaks) == 75
    assert asset.key == f"audio/{asset.sha256[:2]}/{asset.sha256}.wav"


def test_reimporting_the_same_manifest_changes_nothing(tmp_path):
    manifest = write_set(tmp_path, [dialogue("d1"), dialogue("d2")], {"q.wav": make_wav()})
    run_import(manifest)
    report = run_import(manifest)
    assert (report.created, report.unchanged) == (0, 2)
    assert Dialogue.objects.count() == 2 and Turn.objects.count() == 8 and AudioAsset.objects.count() == 1


def test_reimport_with_new_dialogues_adds_only_those(tmp_path):
    run_import(write_set(tmp_path, [dialogue("d1")], {"q.wav": make_wav()}))
    report = run_import(write_set(tmp_path, [dialogue("d1"), dialogue("d3")]))
    assert (report.created, report.unchanged) == (1, 1)


def test_reimport_with_changed_content_is_rejected_and_stores_nothing_new(tmp_path):
    run_import(write_set(tmp_path, [dialogue("d1")], {"q.wav": make_wav()}))
    changed = dialogue("d1")
    changed["turns"][-1]["text"] = "Something else"
    with pytest.raises(ImportRejected) as exc:
        run_import(write_set(tmp_path, [dialogue("d2"), changed]))
    assert exc.value.errors[0] == "line 2: id: dialogue 'd1' already exists in 'set-a' with different content"
    assert list(Dialogue.objects.values_list("external_id", flat=True)) == ["d1"]


# --- the rejections: each names the line and field, and nothing is stored ---------------------


def test_truncated_wav_is_rejected(tmp_path):
    wav = make_wav(1.0)
    msg = rejected(write_set(tmp_path, [dialogue("d1")], {"q.wav": wav[: len(wav) // 2]}))
    assert msg.startswith("line 1: turn 2: audio 'q.wav' is not a decodable audio file (truncated")


def test_zero_byte_audio_is_rejected(tmp_path):
    msg = rejected(write_set(tmp_path, [dialogue("d1")], {"q.wav": b""}))
    assert msg == "line 1: turn 2: audio 'q.wav' is empty (0 bytes)"


def test_wrong_extension_is_rejected(tmp_path):
    msg = rejected(write_set(tmp_path, [dialogue("d1", audio="q.mp4")], {"q.mp4": make_wav()}))
    assert msg == "line 1: turn 2: audio 'q.mp4' has extension '.mp4'; allowed: .wav, .flac, .ogg"


def test_extension_that_lies_about_the_content_is_rejected(tmp_path):
    msg = rejected(write_set(tmp_path, [dialogue("d1")], {"q.wav": make_wav(fmt="FLAC", subtype="PCM_16")}))
    assert msg == "line 1: turn 2: audio 'q.wav' has extension '.wav' but contains FLAC data"


def test_text_file_named_wav_is_rejected(tmp_path):
    msg = rejected(write_set(tmp_path, [dialogue("d1")], {"q.wav": b"this is not audio at all"}))
    assert msg == "line 1: turn 2: audio 'q.wav' is not a decodable audio file"


def test_absurd_sample_rate_is_rejected(tmp_path):
    wav = bytearray(make_wav())
    struct.pack_into("<II", wav, 24, 1_000_000, 2_000_000)  # fmt chunk: sample rate, byte rate
    msg = rejected(write_set(tmp_path, [dialogue("d1")], {"q.wav": bytes(wav)}))
    assert msg == "line 1: turn 2: audio 'q.wav' has sample rate 1000000 Hz; allowed 8000-96000 Hz"


def test_too_long_audio_is_rejected(tmp_path, settings):
    settings.AUDIO_MAX_SECONDS = 2
    msg = rejected(write_set(tmp_path, [dialogue("d1")], {"q.wav": make_wav(3.0, sr=8000)}))
    assert msg == "line 1: turn 2: audio 'q.wav' lasts 3.0 s; the limit is 2 s"


def test_too_large_audio_file_is_rejected(tmp_path, settings):
    settings.AUDIO_MAX_BYTES = 1000
    msg = rejected(write_set(tmp_path, [dialogue("d1")], {"q.wav": make_wav(1.0)}))
    assert msg == "line 1: turn 2: audio 'q.wav' is larger than 1000 bytes"


def test_too_many_channels_is_rejected(tmp_path):
    msg = rejected(write_set(tmp_path, [dialogue("d1")], {"q.wav": make_wav(channels=3)}))
    assert msg == "line 1: turn 2: audio 'q.wav' has 3 channels; at most 2 allowed"


def test_missing_audio_file_is_rejected(tmp_path):
    msg = rejected(write_set(tmp_path, [dialogue("d1", audio="nowhere.wav")]))
    assert msg == "line 1: turn 2: audio 'nowhere.wav' does not exist"


def test_duplicate_dialogue_id_is_rejected(tmp_path):
    msg = rejected(write_set(tmp_path, [dialogue("d1", audio=None), dialogue("d2", audio=None), dialogue("d1", audio=None)]))
    assert msg == "line 3: id: duplicate dialogue id 'd1' (first on line 1)"


def test_unknown_role_is_rejected(tmp_path):
    bad = dialogue("d1", audio=None)
    bad["turns"][2]["role"] = "narrator"
    msg = rejected(write_set(tmp_path, [bad]))
    assert msg == "line 1: turn 3: role: unknown role 'narrator'; expected one of assistant, system, user"


def test_invalid_json_is_rejected(tmp_path):
    msg = rejected(write_set(tmp_path, [dialogue("d1", audio=None), '{"id": "d2", "turns": [']))
    assert msg.startswith("line 2: invalid JSON")


def test_last_turn_must_be_a_user_turn(tmp_path):
    bad = dialogue("d1", audio=None)
    bad["turns"].append({"role": "assistant", "text": "trailing"})
    msg = rejected(write_set(tmp_path, [bad]))
    assert msg == "line 1: turns: the last turn must be a user turn (candidates answer it)"


def test_unknown_field_is_rejected(tmp_path):
    msg = rejected(write_set(tmp_path, [dialogue("d1", audio=None, speaker="x")]))
    assert msg == "line 1: unknown field(s) speaker (put extra data in 'metadata')"


def test_turn_without_text_or_audio_is_rejected(tmp_path):
    bad = dialogue("d1", audio=None)
    bad["turns"][1] = {"role": "user"}
    msg = rejected(write_set(tmp_path, [bad]))
    assert msg == "line 1: turn 2: needs text, audio, or both"


def test_missing_id_is_rejected(tmp_path):
    bad = dialogue("d1", audio=None)
    del bad["id"]
    msg = rejected(write_set(tmp_path, [bad]))
    assert msg == "line 1: id: required, a non-empty string of at most 200 characters"


def test_empty_manifest_is_rejected(tmp_path):
    msg = rejected(write_set(tmp_path, ["", "  "]))
    assert msg == "line 1: the manifest holds no dialogues"


def test_every_problem_is_reported_not_only_the_first(tmp_path):
    with pytest.raises(ImportRejected) as exc:
        run_import(write_set(tmp_path, ["[1]", dialogue("d2", audio=None), "not json"]))
    assert [e.split(":")[0] for e in exc.value.errors] == ["line 1", "line 3"]


def test_one_bad_audio_file_among_good_ones_stores_nothing(tmp_path):
    files = {"q.wav": make_wav(), "bad.wav": b"RIFF....WAVEjunk"}
    manifest = write_set(tmp_path, [dialogue("d1"), dialogue("d2", audio="bad.wav")], files)
    with pytest.raises(ImportRejected):
        run_import(manifest)
    assert_nothing_stored()


# --- the CLI --------------------------------------------------------------------------------


def test_cli_imports_and_reports(tmp_path, capsys):
    manifest = write_set(tmp_path, [dialogue("d1"), dialogue("d2")], {"q.wav": make_wav()})
    call_command("import_dialogues", str(manifest), "--set", "cli-set", verbosity=0)
    assert "dialogue set 'cli-set': 2 created, 0 unchanged, 1 audio files" in capsys.readouterr().out
    assert DialogueSet.objects.get().dialogues.count() == 2


def test_cli_rejection_raises_command_error_with_one_line(tmp_path):
    manifest = write_set(tmp_path, [dialogue("d1", audio="gone.wav")])
    with pytest.raises(CommandError) as exc:
        call_command("import_dialogues", str(manifest), verbosity=0)
    assert str(exc.value) == "import rejected, nothing stored: line 1: turn 2: audio 'gone.wav' does not exist"
    assert_nothing_stored()


def test_cli_missing_manifest_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_dialogues", str(tmp_path / "nope.jsonl"), verbosity=0)
