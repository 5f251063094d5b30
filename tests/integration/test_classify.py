"""``m4ser-classify`` on the tiny exported model of ``tiny_m4ser`` (``tests/integration/conftest.py``):
inputs, transcripts and the ASR, skipped files, and an output written as it goes and resumed.

What every m4ser command shares (options, help): ``tests/unit/inference/test_commands.py``.
"""

import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_inference import make_bad_inputs, manifest_entries, utterance, write  # noqa: F401

from m4ser_lobes.inference import classify
from m4ser_lobes.inference.classifier import M4SERClassifier
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


def test_asr_model_is_loaded_once_per_run(tiny_m4ser, tmp_path, monkeypatch, caplog):
    texts = _clips(tiny_m4ser, tmp_path / "clips")
    first = min(texts)
    (tmp_path / "texts.csv").write_text(f"id,transcript\n{first},oh no\n")
    built = []
    real = transcribers.make_transcriber

    def counting(*args, **kwargs):
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(transcribers, "make_transcriber", counting)
    out = tmp_path / "out.csv"
    argv = ["--model", str(tiny_m4ser.export), str(tmp_path / "clips"), "--output", str(out)]
    argv += ["--asr-model", str(tiny_m4ser.whisper), "--asr-backend", "transformers"]
    argv += ["--transcripts", str(tmp_path / "texts.csv")]
    with caplog.at_level(logging.INFO, logger="m4ser_lobes.inference.classify"):
        assert classify.main(argv + ["--no-progress"]) == 0
    assert built == [("transformers", str(tiny_m4ser.whisper))]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted(r["id"] for r in rows) == sorted(texts)
    assert {r["id"]: r["transcript_source"] for r in rows} == {
        u: "given" if u == first else "asr" for u in texts}
    # the log names the inputs that the ASR transcribes
    (line,) = [r.getMessage() for r in caplog.records if "have no transcript" in r.getMessage()]
    named = line.split("no transcript (", 1)[1].split(")", 1)[0]
    assert line.startswith(f"{len(texts) - 1} of {len(texts)} inputs")
    assert sorted(named.split(", ")) == sorted(u for u in texts if u != first)


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
    named = err.split("no transcript (", 1)[1].split(")", 1)[0]
    assert sorted(named.split(", ")) == sorted(p.stem for p in (tmp_path / "clips").iterdir())
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


# ------------------------------------------------------------------------------ batch command
def test_batch_command_skips_bad_inputs_and_records_why(tiny_m4ser, tmp_path):
    import torchaudio

    entries = manifest_entries(tiny_m4ser)
    clips = tmp_path / "clips"
    clips.mkdir()
    (utt_a, a), (utt_b, b), (utt_c, c) = entries[:3]
    shutil.copy(a["wav"], clips / f"{utt_a}.wav")
    mono, rate = sf.read(b["wav"], dtype="float32")
    stereo = torchaudio.functional.resample(torch.from_numpy(mono), rate, 44100).numpy()
    (clips / "sub").mkdir()
    write(clips / "sub" / f"{utt_b}.flac", np.stack([stereo, stereo], 1), 44100)  # stereo 44.1 kHz
    bad = make_bad_inputs(clips / "bad")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({utt_c: {"wav": c["wav"], "hypothesis": c["hypothesis"]}}))
    transcripts = tmp_path / "transcripts.csv"
    transcripts.write_text(f"id,transcript\n{utt_a},{a['hypothesis']}\n")
    out_csv = tmp_path / "out.csv"
    argv = [
        "--model",
        str(tiny_m4ser.export),
        str(clips),
        str(bad["missing"][0]),
        "--manifest",
        str(manifest),
        "--transcripts",
        str(transcripts),
        "--no-progress",
    ]
    assert classify.main(argv + ["--output", str(out_csv), "--correct"]) == 0
    rows = {r["id"]: r for r in csv.DictReader(out_csv.open(encoding="utf-8"))}
    assert {rows[k]["status"] for k in (utt_a, f"sub/{utt_b}", utt_c)} == {"ok"}
    assert (
        rows[utt_a]["transcript"] == a["hypothesis"] and rows[utt_a]["transcript_source"] == "given"
    )
    assert rows[utt_c]["transcript_source"] == "given"
    assert rows[f"sub/{utt_b}"]["transcript_source"] == "asr"
    assert "corrected" in rows[utt_a]
    for row in (rows[k] for k in (utt_a, utt_c)):
        probs = [float(row[f"p_{c}"]) for c in tiny_m4ser.classes]
        assert sum(probs) == pytest.approx(1, abs=1e-5)
        assert row["label"] == tiny_m4ser.classes[int(np.argmax(probs))]
    for kind, (path, problem) in bad.items():
        row = rows[f"bad/{path.stem}" if kind != "missing" else "missing"]
        assert row["status"] == "skipped" and problem in row["error"] and row["label"] == ""
    # JSON output, same inputs, without correction
    out_json = tmp_path / "out.json"
    assert classify.main(argv + ["--output", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    assert result["classes"] == tiny_m4ser.classes
    by_id = {r["id"]: r for r in result["results"]}
    assert by_id[utt_c]["label"] == rows[utt_c]["label"]
    assert by_id[utt_c]["probabilities"][rows[utt_c]["label"]] == pytest.approx(
        float(rows[utt_c]["score"]), abs=1e-6
    )
    assert by_id["missing"]["status"] == "skipped"


def test_the_batch_command_runs_the_asr_once_per_file(tiny_m4ser, utterance, monkeypatch):
    """classify_items: the prediction and the transcript of a file come from one ASR pass."""
    classifier = M4SERClassifier.from_hparams(
        source=str(tiny_m4ser.export), run_opts={"device": "cpu"}
    )
    asr_calls = []
    original = classifier.transcribe
    monkeypatch.setattr(
        classifier, "transcribe", lambda wavs: asr_calls.append(len(wavs)) or original(wavs)
    )
    path, _ = utterance
    (record,) = classify.classify_items(
        classifier, [classify.Item("u", str(path))], correct=True, progress=False
    )
    assert asr_calls == [1]
    assert record["transcript_source"] == "asr" and isinstance(record["corrected"], str)
    probs = classifier.classify_file(path, transcript=record["transcript"])[0][0]
    want = [record["probabilities"][c] for c in classifier.classes]
    assert probs.tolist() == pytest.approx(want, abs=1e-6)


def test_batch_command_fails_when_nothing_was_classified(tiny_m4ser, tmp_path):
    bad = make_bad_inputs(tmp_path / "bad")
    out = tmp_path / "out.json"
    argv = [
        "--model",
        str(tiny_m4ser.export),
        *(str(p) for p, _ in bad.values()),
        "--output",
        str(out),
        "--no-progress",
    ]
    assert classify.main(argv) == 1
    assert {r["status"] for r in json.loads(out.read_text())["results"]} == {"skipped"}
    with pytest.raises(SystemExit):  # usage error: no inputs at all
        classify.main(["--model", str(tiny_m4ser.export), "--output", str(out)])
    missing_model = ["--model", str(tmp_path / "no-such-export"), str(bad["nan"][0])]
    assert classify.main(missing_model + ["--output", str(out)]) == 2


# ------------------------------------------------------------------------ output, as it goes
def _copies(tiny, folder, count):
    """``count`` copies of the test utterances in ``folder`` (``NNN_<utt>.wav``); their ids."""
    folder.mkdir()
    entries = manifest_entries(tiny)
    ids = []
    for i in range(count):
        utt_id, entry = entries[i % len(entries)]
        shutil.copy(entry["wav"], folder / f"{i:03d}_{utt_id}.wav")
        ids.append(f"{i:03d}_{utt_id}")
    return ids


def _records(path):
    """The records of an output file (csv, jsonl or json), in file order."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        return list(csv.DictReader(text.splitlines()))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines()]
    return json.loads(text)["results"]


def _save_records(path, records):
    """Write ``records`` back in ``path``'s format (a test editing an output by hand)."""
    if path.suffix == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as fout:
            writer = csv.DictWriter(fout, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        document = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**document, "results": records}), encoding="utf-8")


def _command(tiny, clips, out):
    return [sys.executable, "-m", "m4ser_lobes.inference.classify", "--model", str(tiny.export),
            str(clips), "--output", str(out), "--device", "cpu", "--no-progress"]


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_a_killed_run_is_resumed_by_the_same_command(tiny_m4ser, tmp_path, suffix):
    """SIGKILL mid-run, rerun: every file once; the rows on disk are kept, not recomputed."""
    ids = _copies(tiny_m4ser, tmp_path / "clips", 30)
    out = tmp_path / f"out{suffix}"
    command = _command(tiny_m4ser, tmp_path / "clips", out)  # no transcripts: Whisper runs
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None:
        try:
            if len(_records(out)) >= 4:
                break
        except (OSError, ValueError, KeyError):  # not written yet
            pass
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    kept = _records(out)
    assert 4 <= len(kept) < len(ids) and {r["status"] for r in kept} == {"ok"}
    # Mark what is on disk: a recomputed row would lose its mark.
    for record in kept:
        record["transcript"] = f"kept {record['id']}"
    _save_records(out, kept)

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert f"{len(kept)} of {len(ids)} inputs are already in {out}" in second.stderr
    records = _records(out)
    assert sorted(r["id"] for r in records) == sorted(ids), "every file exactly once"
    assert records[: len(kept)] == kept, "the kept rows are untouched"
    new = records[len(kept):]
    assert {r["status"] for r in new} == {"ok"} and {r["transcript_source"] for r in new} == {"asr"}
    assert not any(r["transcript"].startswith("kept ") for r in new)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_a_rerun_retries_skipped_files_and_keeps_the_others(tiny_m4ser, tmp_path, suffix):
    texts = _clips(tiny_m4ser, tmp_path / "clips", count=3)
    (first_id, _), (second_id, _), (third_id, _) = texts.items()
    transcripts = tmp_path / "texts.json"
    transcripts.write_text(json.dumps(texts))
    out = tmp_path / f"out{suffix}"
    files = [str(tmp_path / "clips" / f"{utt_id}.wav") for utt_id in texts]
    argv = ["--model", str(tiny_m4ser.export), *files, "--output", str(out),
            "--transcripts", str(transcripts), "--no-progress"]
    Path(files[2]).rename(tmp_path / "elsewhere.wav")  # missing for now
    assert classify.main(argv) == 0
    assert {r["id"]: r for r in _records(out)}[third_id]["status"] == "skipped"
    (tmp_path / "elsewhere.wav").rename(files[2])  # fixed; and the second row is edited by hand
    edited = [dict(r, label="hand-edited") if r["id"] == second_id else r for r in _records(out)]
    _save_records(out, edited)
    assert classify.main(argv) == 0
    records = _records(out)
    assert sorted(r["id"] for r in records) == sorted(texts)
    by_id = {r["id"]: r for r in records}
    assert by_id[second_id]["label"] == "hand-edited", "an ok row is kept as it is"
    assert by_id[third_id]["status"] == "ok", "a skipped file is tried again"
    # the same output with other columns (another --correct), or an id of the output that now
    # names another file: refused before classifying
    size = out.stat().st_size
    assert classify.main(argv + ["--correct"]) == 2
    other = tmp_path / "other" / Path(files[0]).name
    other.parent.mkdir()
    shutil.copy(files[0], other)
    assert classify.main([str(other) if f == files[0] else f for f in argv]) == 2
    assert out.stat().st_size == size


def test_the_output_is_checked_before_the_model_loads(tmp_path, capsys):
    """A folder, a path under a file, an unwritable folder: one line, exit 2, no model needed."""
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "file").write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    unwritable = locked / "out.csv" if os.geteuid() != 0 else Path("/sys/m4ser-out.csv")  # root
    missing_model = str(tmp_path / "no-such-export")  # would be "cannot load the model"
    for output, words in (
        (tmp_path, "a folder"),
        (tmp_path / "file" / "out.csv", "is a file, not a folder"),
        (unwritable, "cannot write"),
    ):
        argv = ["--model", missing_model, str(tmp_path / "a.wav"), "--output", str(output)]
        assert classify.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--output {output}" in err and words in err, err
        assert "cannot load" not in err
    locked.chmod(0o755)


def test_a_broken_model_or_option_stops_before_classifying(tiny_m4ser, tmp_path, capsys):
    _clips(tiny_m4ser, tmp_path / "clips", count=2)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_m4ser.export, broken)
    (broken / "label_encoder.txt").unlink()
    out = tmp_path / "out.csv"
    argv = [str(tmp_path / "clips"), "--output", str(out), "--no-progress"]
    assert classify.main(["--model", str(broken)] + argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "label_encoder.txt missing" in err and not out.exists()
    with pytest.raises(SystemExit) as stop:
        classify.main(["--model", str(tiny_m4ser.export), "--window-seconds", "0"] + argv)
    assert stop.value.code == 2 and "--window-seconds" in capsys.readouterr().err
    # a window of 0 in the model's own YAML is refused too, naming the file and the key
    (broken / "label_encoder.txt").write_text((tiny_m4ser.export / "label_encoder.txt").read_text())
    yaml_file = broken / "hyperparams.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("\nwindow_seconds: ", "\nwindow_seconds: 0 #"))
    assert classify.main(["--model", str(broken)] + argv) == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if " error: " in line]
    assert "hyperparams.yaml: window_seconds is 0" in error and not out.exists()
