"""Checks of a run's data before training (m4ser_lobes.data.checks), on real manifests and wavs."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from m4ser_lobes.data.checks import CACHE_FILE, DataCheckError, check_splits

SPLITS = ("train", "valid", "test")


def _wav(path, samples, subtype="FLOAT"):
    sf.write(path, np.asarray(samples, dtype="float32"), 16000, subtype=subtype)
    return str(path)


@pytest.fixture
def clean(tmp_path):
    """Manifests of 3 splits (2 labels, distinct ids), each utterance with its own clean wav."""
    rng = np.random.default_rng(0)
    manifests = {}
    for split in SPLITS:
        entries = {}
        for i, emo in enumerate(("neu", "ang", "neu")):
            wav = _wav(tmp_path / f"{split}_{i}.wav", 0.1 * rng.standard_normal(1600))
            entries[f"{split}_{i}"] = {"wav": wav, "duration": 0.1, "emo": emo,
                                       "transcript": "hi", "hypothesis": "hi"}
        manifests[split] = tmp_path / f"{split}.json"
        manifests[split].write_text(json.dumps(entries))
    return manifests


def _edit(path, change):
    entries = json.loads(path.read_text())
    change(entries)
    path.write_text(json.dumps(entries))
    return entries


def test_a_clean_set_passes_and_the_second_call_uses_the_cache(clean, tmp_path):
    cache = tmp_path / "cache"
    summary = check_splits(clean, cache)
    assert summary["utterances"] == {"train": 3, "valid": 3, "test": 3}
    assert summary["labels"] == ["ang", "neu"]
    assert summary["audio"] == {"files": 9, "decoded": 9, "cached": 0}
    assert (cache / CACHE_FILE).is_file()
    again = check_splits(clean, cache)
    assert again["audio"] == {"files": 9, "decoded": 0, "cached": 9}

    # The cache is keyed by (path, size, mtime): the same size and mtime are trusted...
    wav = json.loads(clean["test"].read_text())["test_1"]["wav"]
    stat = os.stat(wav)
    _wav(wav, [0.0, np.nan] + [0.0] * 1598)
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(wav).st_size == stat.st_size
    assert check_splits(clean, cache)["audio"]["decoded"] == 0
    # ... and a modified file is checked again.
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(DataCheckError, match="NaN or Inf samples"):
        check_splits(clean, cache)


def test_every_problem_in_one_error(clean, tmp_path):
    # A NaN sample in a test wav.
    test = json.loads(clean["test"].read_text())
    _wav(test["test_2"]["wav"], [0.0] * 800 + [np.inf] + [0.0] * 799)
    # A test label train never saw, and a test id that is also a train id.
    train = json.loads(clean["train"].read_text())
    _edit(clean["test"], lambda e: (e["test_0"].update(emo="fru"),
                                    e.update(train_1=train["train_1"])))
    # An empty valid manifest.
    clean["valid"].write_text("{}")
    with pytest.raises(DataCheckError) as excinfo:
        check_splits(clean, tmp_path / "cache")
    error = excinfo.value
    assert isinstance(error, ValueError)
    lines = str(error).splitlines()
    assert lines[0] == ("4 problems in the data of this run (1 empty manifest, 1 broken audio "
                        "file, 1 unseen label, 1 shared id); fix them before training:")
    assert lines[1:] == error.problems and len(error.problems) == 4
    empty, nan, label, shared = error.problems
    assert empty.startswith(f"{clean['valid']}: the valid manifest holds no utterances")
    assert nan.startswith(f"{test['test_2']['wav']}: NaN or Inf samples (the first at sample "
                          "800, 0.050 s) (test test_2); re-export it")
    assert label.startswith(f"{clean['test']}: label 'fru' of 1 utterance(s) (test_0) is not a "
                            "train label (ang, neu)")
    assert shared.startswith(f"{clean['test']}: 1 utterance id(s) also in train "
                             f"({clean['train']}): train_1;")


def test_unreadable_missing_and_incomplete_entries(clean, tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wav file")
    silent = _wav(tmp_path / "empty.wav", [])
    _edit(clean["train"], lambda e: (e["train_0"].update(wav=str(garbage)),
                                     e["train_1"].update(wav=str(tmp_path / "nope.wav")),
                                     e["train_2"].update(wav=silent),
                                     e.update(extra={"wav": None, "duration": 1.0})))
    with pytest.raises(DataCheckError) as excinfo:
        check_splits({**clean, "valid": tmp_path / "missing.json"}, tmp_path / "cache")
    problems = excinfo.value.problems
    assert f"{tmp_path / 'missing.json'}: valid manifest not found; prepare the data or fix " \
           "valid_annotation" in problems
    assert f"{clean['train']}: utterance extra has no wav / emo (docs/CONTRACTS.md); prepare " \
           "the data again" in problems
    assert any(p.startswith(f"{garbage}: not readable by soundfile (") for p in problems)
    assert any(p.startswith(f"{tmp_path / 'nope.wav'}: file not found (train train_1")
               for p in problems)
    assert any(p.startswith(f"{silent}: the signal is empty") for p in problems)
    assert len(problems) == 5
    assert str(excinfo.value).startswith("5 problems in the data of this run (1 bad manifest, "
                                         "1 missing manifest, 3 broken audio files);")


def test_a_missing_train_split_and_a_broken_cache(clean, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / CACHE_FILE).write_text("{not json")
    summary = check_splits({"train": clean["train"]}, cache)
    assert summary["audio"]["decoded"] == 3
    assert json.loads((cache / CACHE_FILE).read_text())  # rewritten, readable
    with pytest.raises(DataCheckError, match=r"no 'train' manifest among the splits \['test'\]"):
        check_splits({"test": clean["test"]}, cache)
