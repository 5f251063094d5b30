"""``m4ser-classify`` on the tiny exported model of ``tiny_m4ser`` (``tests/integration/conftest.py``).

What every m4ser command shares (options, help): ``tests/unit/inference/test_commands.py``.
"""

import csv
import json
from pathlib import Path

import pytest
import soundfile as sf
import torch

from m4ser_lobes.inference import classify
from m4ser_lobes.text import transcribers


# ------------------------------------------------------------------------------ m4ser-classify
def _clips(tiny, folder, count=3):
    """``count`` test utterances copied to ``folder`` as <id>.wav; returns {id: hypothesis}."""
    folder.mkdir()
    entries = list(json.loads(Path(tiny.test_manifest).read_text()).items())[:count]
    for utt_id, entry in entries:
        audio, rate = sf.read(entry["wav"], dtype="float32")
        sf.write(folder / f"{utt_id}.wav", audio, rate)
    return {utt_id: entry["hypothesis"] for utt_id, entry in entries}


def test_asr_model_is_loaded_once_per_run(tiny_m4ser, tmp_path, monkeypatch):
    texts = _clips(tiny_m4ser, tmp_path / "clips")
    built = []
    real = transcribers.make_transcriber

    def counting(*args, **kwargs):
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(transcribers, "make_transcriber", counting)
    out = tmp_path / "out.csv"
    argv = ["--model", str(tiny_m4ser.export), str(tmp_path / "clips"), "--output", str(out)]
    argv += ["--asr-model", str(tiny_m4ser.whisper), "--asr-backend", "transformers"]
    assert classify.main(argv + ["--no-progress"]) == 0
    assert built == [("transformers", str(tiny_m4ser.whisper))]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted(r["id"] for r in rows) == sorted(texts)
    assert {(r["status"], r["transcript_source"]) for r in rows} == {("ok", "asr")}


@pytest.mark.parametrize("where", ["missing_folder", "empty_folder"])
def test_an_asr_model_that_cannot_load_stops_the_run_and_says_what_to_do(
    tiny_m4ser, tmp_path, capsys, where
):
    _clips(tiny_m4ser, tmp_path / "clips", count=2)
    whisper = tmp_path / "no-whisper"
    if where == "empty_folder":
        whisper.mkdir()
    out = tmp_path / "out.json"
    argv = ["--model", str(tiny_m4ser.export), str(tmp_path / "clips"), "--output", str(out)]
    assert classify.main(argv + ["--asr-model", str(whisper), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1, err
    for words in (str(whisper), "2 of 2 inputs have no transcript", "--transcripts", "--asr-model"):
        assert words in err, (words, err)
    assert "skipped" not in err and not out.exists()


def test_a_hub_asr_model_offline_says_what_to_do(tiny_m4ser, tmp_path, monkeypatch):
    """The issue's case: no network, no transcript, an ASR id that is not cached."""
    from huggingface_hub import constants

    from m4ser_lobes.inference.classifier import ASRUnavailableError, M4SERClassifier

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    classifier = M4SERClassifier.from_hparams(
        source=str(tiny_m4ser.export),
        overrides={"asr_model": "m4ser-tests/whisper-not-cached"},
        run_opts={"device": "cpu"},
    )
    wav = next(iter(json.loads(Path(tiny_m4ser.test_manifest).read_text()).values()))["wav"]
    with pytest.raises(ASRUnavailableError) as err:
        classifier.classify_file(wav)
    message = str(err.value)
    assert "m4ser-tests/whisper-not-cached" in message and "\n" in message
    for fix in ('transcript="..."', "--transcripts", "--asr-model", 'overrides={"asr_model"'):
        assert fix in message, (fix, message)
    assert classifier.classify_file(wav, transcript="fine")[3][0] in tiny_m4ser.classes


def test_an_empty_transcript_means_the_same_from_python_and_from_the_csv(tiny_m4ser, tmp_path):
    """Both read ``""`` as a given, empty transcript: same probabilities, and no ASR."""
    from m4ser_lobes.inference.classifier import M4SERClassifier

    texts = _clips(tiny_m4ser, tmp_path / "clips", count=2)
    (empty_id, _), (full_id, full_text) = texts.items()
    csv_path = tmp_path / "texts.csv"
    csv_path.write_text(f"id,transcript\n{empty_id},\n{full_id},{full_text}\n")
    out = tmp_path / "out.json"
    argv = ["--model", str(tiny_m4ser.export), str(tmp_path / "clips"), "--output", str(out)]
    # an ASR that cannot load proves that it is not needed
    argv += ["--transcripts", str(csv_path), "--asr-model", str(tmp_path / "none"), "--no-progress"]
    assert classify.main(argv) == 0
    records = {r["id"]: r for r in json.loads(out.read_text())["results"]}
    assert records[empty_id]["transcript"] == "" and records[full_id]["transcript"] == full_text
    assert {r["transcript_source"] for r in records.values()} == {"given"}

    classifier = M4SERClassifier.from_hparams(
        source=str(tiny_m4ser.export), run_opts={"device": "cpu"}
    )
    for utt_id, text in ((empty_id, ""), (full_id, full_text)):
        path = tmp_path / "clips" / f"{utt_id}.wav"
        probs = classifier.classify_file(path, transcript=text)[0]
        info = classifier.transcribe_file(path, transcript=text)
        assert info.source == "given" and info.text == text
        want = torch.tensor([records[utt_id]["probabilities"][c] for c in classifier.classes])
        assert torch.allclose(probs[0], want, atol=1e-6)
    assert classifier.asr is None
