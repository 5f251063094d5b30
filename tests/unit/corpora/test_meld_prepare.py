"""MELD data prep (recipes/MELD/meld_prepare.py) on the generated MELD.Raw look-alike.

The look-alike (m4ser_lobes.testing.mini_meld) states which rows must be kept, skipped (and why),
flagged and ignored; these tests hold the prep to exactly that.
"""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import m4ser_lobes.corpora.meld as _MELD_PREP
import pytest
import soundfile as sf

from m4ser_lobes.testing.mini_meld import EMOTIONS as GENERATED_EMOTIONS
from m4ser_lobes.testing.mini_meld import MISCUT_EXTRA_SECONDS, generate_meld

REPO = Path(__file__).resolve().parents[3]
prep = _MELD_PREP

MANIFEST = {"train": "train", "dev": "valid", "test": "test"}
FIELDS = {"wav", "duration", "emo", "speaker", "gender", "session", "transcript", "hypothesis",
          "dialogue", "utterance", "start", "end", "flags"}
DURATION_TOLERANCE = 0.05  # AAC priming and frame padding add up to ~40 ms


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_meld(tmp_path_factory.mktemp("meld") / "data", seed=0, per_split=7)


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
    """One prep of the look-alike with 2 decoding processes; returns (summary, save_folder)."""
    save = tmp_path_factory.mktemp("meld_prep")
    summary = prep.prepare_meld(corpus.root, save, hypotheses=corpus.hypotheses,
                                expected_counts=corpus.expected_counts, num_workers=2)
    return summary, save


def _manifests(save):
    return {s: json.loads((save / f"{m}.json").read_text(encoding="utf-8"))
            for s, m in MANIFEST.items()}


def _quick(corpus, save, **kwargs):
    """Prep into ``save`` reusing the audio cache of the module's prep (nothing to decode)."""
    kwargs.setdefault("expected_counts", corpus.expected_counts)
    return prep.prepare_meld(corpus.root, save, num_workers=1, **kwargs)


def test_kept_skipped_flagged_ignored_exactly(corpus, prepared):
    summary, save = prepared
    manifests = _manifests(save)
    for split in prep.SPLITS:
        expected = {u for u, x in corpus.utterances.items()
                    if x.session == split and u not in corpus.skipped}
        assert set(manifests[split]) == expected
        assert summary["kept"][split] == len(expected) == corpus.expected_counts["kept"][split]
    assert {u: r.split(":")[0] for u, r in summary["skipped_ids"].items()} == corpus.skipped
    assert summary["skipped"] == {"missing": 1, "undecodable": 1}
    flags = {u: tuple(e["flags"]) for m in manifests.values() for u, e in m.items() if e["flags"]}
    assert flags == corpus.flags
    assert summary["flagged"] == {"miscut": 2, "prefixed": 1, "quiet": 1, "trimmed": 1}
    assert summary["ignored_clip_names"] == corpus.ignored_clips
    assert summary["ignored_clips"] == {s: len(n) for s, n in corpus.ignored_clips.items()}
    assert summary["csv_encoding"] == {"train": "utf-8", "dev": "cp1252", "test": "utf-8"}
    assert summary["audio"] == {"decoded": 19, "reused": 0, "failed": 1}
    assert json.loads((save / "summary.json").read_text()) == summary


def test_entries_match_the_ground_truth(corpus, prepared):
    _, save = prepared
    hyps = json.loads(corpus.hypotheses.read_text())["hypotheses"]
    for split, manifest in _manifests(save).items():
        for utt_id, entry in manifest.items():
            truth = corpus.utterances[utt_id]
            assert set(entry) == FIELDS
            assert entry["emo"] == truth.emotion and entry["speaker"] == truth.speaker
            assert entry["transcript"] == truth.transcript  # typography normalised
            assert entry["transcript"].isascii()
            assert entry["hypothesis"] == hyps[utt_id]
            assert entry["gender"] is None and entry["session"] == split
            assert (entry["dialogue"], entry["utterance"]) == (truth.dialogue, truth.utterance)
            assert (entry["start"], entry["end"]) == (truth.start, truth.end)
            assert Path(entry["wav"]).is_absolute()
    # Dialogue ids restart in every split; the ids tell the splits apart.
    assert {"train_dia0_utt0", "dev_dia0_utt0", "test_dia0_utt0"} <= set(corpus.utterances)
    assert set(prep.EMOTIONS) == set(GENERATED_EMOTIONS)


def test_cached_wavs_are_16k_mono_with_the_clip_duration(corpus, prepared):
    _, save = prepared
    for manifest in _manifests(save).values():
        for utt_id, entry in manifest.items():
            info = sf.info(entry["wav"])
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert entry["duration"] == pytest.approx(info.frames / 16000, abs=1e-4)
            truth = corpus.utterances[utt_id]
            span = truth.end - truth.start
            if "trimmed" in entry["flags"]:
                assert info.frames == round(span * 16000)
                assert Path(entry["wav"]).parent.name == "trimmed"
            else:
                assert info.duration == pytest.approx(truth.clip_seconds, abs=DURATION_TOLERANCE)
    # The plain test clip was used, not its garbage final_videos_test twin.
    assert "test_dia0_utt1" in _manifests(save)["test"]


def test_miscut_trimmed_in_train_kept_whole_in_test_unless_asked(corpus, prepared, tmp_path):
    _, save = prepared
    manifests = _manifests(save)
    test_clip = manifests["test"]["test_dia0_utt2"]
    truth = corpus.utterances["test_dia0_utt2"]
    assert test_clip["flags"] == ["miscut"]
    assert test_clip["duration"] == pytest.approx(
        truth.end - truth.start + MISCUT_EXTRA_SECONDS, abs=DURATION_TOLERANCE)
    train_clip = manifests["train"]["train_dia0_utt2"]
    truth = corpus.utterances["train_dia0_utt2"]
    assert train_clip["duration"] == pytest.approx(truth.end - truth.start, abs=1e-3)
    # The trimmed audio is the start of the clip (the utterance), not the scene after it.
    whole, _ = sf.read(save / "audio16k" / "train" / "dia0_utt2.wav", dtype="float32")
    trimmed, _ = sf.read(train_clip["wav"], dtype="float32")
    np.testing.assert_array_equal(trimmed, whole[: len(trimmed)])

    summary = _quick(corpus, tmp_path, audio_cache=save / "audio16k",
                     trim_miscut=("train", "dev", "test"))
    entry = _manifests(tmp_path)["test"]["test_dia0_utt2"]
    assert entry["flags"] == ["miscut", "trimmed"]
    assert entry["duration"] == pytest.approx(corpus.utterances["test_dia0_utt2"].end
                                              - corpus.utterances["test_dia0_utt2"].start, abs=1e-3)
    assert summary["flagged"]["trimmed"] == 2
    # Stricter thresholds flag nothing as mis-cut: the rule, not a list, decides.
    summary = _quick(corpus, tmp_path / "lenient", audio_cache=save / "audio16k",
                     miscut_min_seconds=60.0)
    assert "miscut" not in summary["flagged"]


def test_audio_cache_is_resumable(corpus, prepared, tmp_path):
    _, save = prepared
    cache = tmp_path / "cache"
    shutil.copytree(save / "audio16k", cache)
    summary = _quick(corpus, tmp_path / "again", audio_cache=cache)
    assert summary["audio"] == {"decoded": 0, "reused": 19, "failed": 1}
    assert _manifests(tmp_path / "again")["dev"] == {
        u: {**e, "wav": e["wav"].replace(str(save / "audio16k"), str(cache)), "hypothesis": None}
        for u, e in _manifests(save)["dev"].items()}
    (cache / "dev" / "dia0_utt0.wav").unlink()
    summary = _quick(corpus, tmp_path / "resumed", audio_cache=cache)
    assert summary["audio"]["decoded"] == 1
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]


def test_already_done_is_skipped_and_a_changed_option_redoes(corpus, prepared, monkeypatch):
    summary, save = prepared
    before = (save / "train.json").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("the corpus was read again")

    with monkeypatch.context() as patch:
        patch.setattr(prep, "find_files", fail)
        again = prep.prepare_meld(corpus.root, save, hypotheses=corpus.hypotheses,
                                  expected_counts=corpus.expected_counts, num_workers=2)
    assert again == summary and (save / "train.json").stat().st_mtime_ns == before
    redone = prep.prepare_meld(corpus.root, save, hypotheses=corpus.hypotheses,
                               expected_counts=corpus.expected_counts, num_workers=1,
                               quiet_dbfs=-100.0)
    assert redone["options"]["quiet_dbfs"] == -100.0 and "quiet" not in redone["flagged"]
    assert json.loads((save / "identity.json").read_text())["identity"]["quiet_dbfs"] == -100.0
    # Back to the module's options (later tests read this folder).
    prep.prepare_meld(corpus.root, save, hypotheses=corpus.hypotheses,
                      expected_counts=corpus.expected_counts, num_workers=1)
    assert json.loads((save / "summary.json").read_text())["flagged"]["quiet"] == 1


def test_cp1252_and_utf8_csvs_read_identically(corpus, tmp_path):
    cp1252 = corpus.root / "dev_sent_emo.csv"
    with pytest.raises(UnicodeDecodeError):
        cp1252.read_bytes().decode("utf-8")
    utf8 = tmp_path / "dev_sent_emo.csv"
    utf8.write_text(cp1252.read_bytes().decode("cp1252"), encoding="utf-8")
    rows_cp, encoding_cp = prep.read_csv(cp1252, "dev")
    rows_u8, encoding_u8 = prep.read_csv(utf8, "dev")
    assert (encoding_cp, encoding_u8) == ("cp1252", "utf-8")
    assert rows_cp == rows_u8
    assert [r.transcript for r in rows_cp] == [
        corpus.utterances[r.utt_id].transcript for r in rows_cp]
    assert any("\u2026" in corpus.utterances[r.utt_id].csv_text for r in rows_cp)


def test_counts_are_asserted(corpus, prepared, tmp_path):
    _, save = prepared
    wrong_kept = {"rows": corpus.expected_counts["rows"],
                  "kept": {**corpus.expected_counts["kept"], "dev": 7}}
    with pytest.raises(prep.MeldPrepError, match=r"kept utterances.*dev: 6, expected 7"):
        _quick(corpus, tmp_path / "a", audio_cache=save / "audio16k", expected_counts=wrong_kept)
    assert not (tmp_path / "a" / "valid.json").exists()
    # Row counts fail before any decoding (nothing written to the cache).
    with pytest.raises(prep.MeldPrepError, match=r"CSV rows.*test: 7, expected 2610.*--subset"):
        _quick(corpus, tmp_path / "b", expected_counts=prep.FULL_RELEASE)
    assert not (tmp_path / "b").exists()
    assert _quick(corpus, tmp_path / "c", audio_cache=save / "audio16k",
                  expected_counts=None)["kept"] == corpus.expected_counts["kept"]


def _tree_without(corpus, tmp_path, drop):
    """A copy of the CSVs and clip folders of the look-alike, without the paths in ``drop``."""
    root = tmp_path / "MELD.Raw"
    shutil.copytree(corpus.root, root, ignore=lambda d, names: [n for n in names if n in drop])
    return root


def test_missing_csv_and_missing_folder_say_what_to_do(corpus, tmp_path):
    root = _tree_without(corpus, tmp_path, {"dev_sent_emo.csv", "output_repeated_splits_test"})
    with pytest.raises(prep.MeldPrepError) as error:
        prep.prepare_meld(root, tmp_path / "prep", expected_counts=None)
    message = str(error.value)
    assert "dev_sent_emo.csv: not found below" in message and "MELD.Raw.tar.gz" in message
    assert "output_repeated_splits_test/: no such folder" in message
    assert "tar -xzf test.tar.gz" in message
    assert not (tmp_path / "prep").exists()
    with pytest.raises(prep.MeldPrepError, match="no such folder"):
        prep.prepare_meld(tmp_path / "nowhere", tmp_path / "prep", expected_counts=None)


def test_bad_csv_rows_are_named_with_file_and_line(corpus, tmp_path):
    root = _tree_without(corpus, tmp_path, set())
    path = root / "train_sent_emo.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace(",joy,", ",happy,").replace(",surprise,", ",happy,") \
        .replace(",anger,", ",happy,")
    lines.append(lines[1])  # a repeated utterance
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(prep.MeldPrepError) as error:
        prep.read_csv(path, "train")
    message = str(error.value)
    assert f"{path}:3: unknown Emotion 'happy'" in message
    assert f"{path}:{len(lines)}: dia0_utt0 repeats line 2" in message
    path.write_text("Utterance,Speaker\nhi,Joey\n", encoding="utf-8")
    with pytest.raises(prep.MeldPrepError, match=r"missing column\(s\) \['Sr No.'"):
        prep.read_csv(path, "train")


def test_converted_wavs_are_used_in_place(corpus, prepared, tmp_path):
    """Users who converted to 16 kHz wav keep the names; a 48 kHz stereo wav is converted."""
    _, save = prepared
    root = tmp_path / "MELD.Raw"
    for split in prep.SPLITS.values():
        (root / split.folder).mkdir(parents=True)
        shutil.copy(corpus.root / split.csv, root / split.csv)
        for wav in (save / "audio16k" / split.name).glob("*.wav"):
            shutil.copy(wav, root / split.folder / wav.name)
    audio, _ = sf.read(root / "dev_splits_complete" / "dia0_utt1.wav", dtype="float32")
    stereo = np.repeat(np.stack([audio, audio], axis=1), 3, axis=0)  # 48 kHz, 2 channels
    (root / "dev_splits_complete" / "dia0_utt1.wav").unlink()
    sf.write(root / "dev_splits_complete" / "dia0_utt1.flac", stereo, 48000)
    summary = prep.prepare_meld(root, tmp_path / "prep", expected_counts=None, num_workers=1)
    assert summary["audio"]["decoded"] == 1
    # The undecodable clip has no converted copy: it is missing now.
    assert summary["skipped_ids"].keys() == {"train_dia0_utt1", "dev_dia1_utt0"}
    assert summary["skipped"] == {"missing": 2}
    dev = _manifests(tmp_path / "prep")["dev"]
    assert dev["dev_dia0_utt0"]["wav"] == str(root / "dev_splits_complete" / "dia0_utt0.wav")
    converted = dev["dev_dia0_utt1"]
    assert Path(converted["wav"]).parent == tmp_path / "prep" / "audio16k" / "dev"
    assert converted["duration"] == pytest.approx(len(audio) / 16000, abs=0.01)


def test_hypotheses_missing_error_or_null(corpus, prepared, tmp_path):
    _, save = prepared
    cache = json.loads(corpus.hypotheses.read_text())
    del cache["hypotheses"]["test_dia2_utt0"]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(cache))
    with pytest.raises(prep.MeldPrepError, match=r"no hypothesis for 1 kept.*test_dia2_utt0"):
        _quick(corpus, tmp_path / "a", audio_cache=save / "audio16k", hypotheses=partial)
    _quick(corpus, tmp_path / "b", audio_cache=save / "audio16k", hypotheses=partial,
           missing_hypothesis="null")
    test = _manifests(tmp_path / "b")["test"]
    assert test["test_dia2_utt0"]["hypothesis"] is None
    assert test["test_dia1_utt1"]["hypothesis"] == cache["hypotheses"]["test_dia1_utt1"]
    partial.write_text('{"test_dia2_utt0": "x"}')
    with pytest.raises(prep.MeldPrepError, match="flat id -> text mapping"):
        _quick(corpus, tmp_path / "c", audio_cache=save / "audio16k", hypotheses=partial)


def test_cli_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        prep.main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--audio-cache" in text and "--trim-miscut" in text
    assert "(default: -50.0)" in text and "(default: ['train', 'dev'])" in text


def test_generator_rejects_too_few_rows(tmp_path):
    with pytest.raises(ValueError, match="per_split must be >= 7"):
        generate_meld(tmp_path, per_split=6)


def test_bad_span_is_flagged_and_never_trimmed(corpus, prepared, tmp_path):
    _, save = prepared
    root = _tree_without(corpus, tmp_path, set())
    path = root / "train_sent_emo.csv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    for row in rows[1:]:  # the mis-cut clip's row: EndTime := StartTime
        if row[header.index("Dialogue_ID")] == "0" and row[header.index("Utterance_ID")] == "2":
            row[header.index("EndTime")] = row[header.index("StartTime")]
        if row[header.index("Dialogue_ID")] == "1" and row[header.index("Utterance_ID")] == "0":
            row[header.index("StartTime")] = "n/a"
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    truth = corpus.utterances["train_dia0_utt2"]
    prep.prepare_meld(root, tmp_path / "prep", audio_cache=save / "audio16k", num_workers=1,
                      expected_counts=corpus.expected_counts)
    entry = _manifests(tmp_path / "prep")["train"]["train_dia0_utt2"]
    assert entry["flags"] == ["bad_span", "miscut"]
    assert entry["duration"] == pytest.approx(truth.clip_seconds, abs=DURATION_TOLERANCE)
    entry = _manifests(tmp_path / "prep")["train"]["train_dia1_utt0"]
    assert (entry["flags"], entry["start"]) == (["bad_span"], None)


def test_loud_downmix_is_scaled_not_clipped(tmp_path):
    from m4ser_lobes.testing.mini_meld import write_clip

    t = np.arange(16000, dtype=np.float32) / 16000
    write_clip(tmp_path / "loud.mp4", 1.3 * np.sin(2 * np.pi * 300 * t), sample_rate=16000)
    audio = prep.decode_audio(tmp_path / "loud.mp4")
    assert np.abs(audio).max() == pytest.approx(1.0)
    # Sine shape kept: a clipped sine would have an RMS well above peak / sqrt(2).
    assert float(np.sqrt(np.mean(audio[1600:-1600] ** 2))) == pytest.approx(2 ** -0.5, abs=0.02)


def test_cached_wavs_are_readable_as_the_umask_says(tmp_path):
    """The shared 16 kHz cache follows the umask (mkstemp alone gives 0600)."""
    import os

    import numpy as np

    from m4ser_lobes.corpora.meld_audio import write_wav

    old = os.umask(0o022)
    try:
        write_wav(tmp_path / "a.wav", np.zeros(160, dtype=np.float32))
    finally:
        os.umask(old)
    assert (tmp_path / "a.wav").stat().st_mode & 0o777 == 0o644
