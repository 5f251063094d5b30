"""Emotion classification with the faster-whisper ASR in the loop, on the trained tiny model.

The exported model of ``tiny_m4ser`` (``tests/integration/conftest.py``) classifies real speech
transcribed by a real Whisper tiny.en (``tests/real_asr.py``; skipped without faster-whisper).
"""

import json
import shutil

import numpy as np
import pytest
from real_asr import MAX_WER, SPEECH, TINY_EN, WORDS  # skips without faster-whisper

from m4ser_lobes.inference import classify
from m4ser_lobes.text.statistics import word_error_rate
from m4ser_lobes.text.transcribers import FasterWhisperTranscriber


def test_classification_with_faster_whisper_in_the_loop(tiny_m4ser, tmp_path):
    from m4ser_lobes.inference.classifier import M4SERClassifier

    classifier = M4SERClassifier.from_hparams(
        source=str(tiny_m4ser.export),
        overrides={"asr_backend": "faster-whisper", "asr_model": str(TINY_EN)},
        run_opts={"device": "cpu"},
    )
    assert classifier.asr_backend == "faster-whisper"
    utt_id = "door"
    probs, _, _, labels = classifier.classify_file(SPEECH / f"{utt_id}.wav")
    info = classifier.transcribe_file(SPEECH / f"{utt_id}.wav")  # the ASR runs again (deterministic)
    assert isinstance(classifier.asr, FasterWhisperTranscriber)
    assert info.source == "asr" and word_error_rate([(info.text, WORDS[utt_id])]) < MAX_WER
    assert labels[0] in tiny_m4ser.classes and float(probs.sum()) == pytest.approx(1, abs=1e-5)
    given = classifier.classify_file(SPEECH / f"{utt_id}.wav", transcript=info.text)[0]
    assert np.allclose(given.numpy(), probs.numpy(), atol=1e-6)

    # the same through m4ser-classify, the ASR chosen on the command line
    clips = tmp_path / "clips"
    clips.mkdir()
    chosen = [utt_id, "thanks"]
    for name in chosen:
        shutil.copy(SPEECH / f"{name}.wav", clips)
    out = tmp_path / "out.json"
    argv = ["--model", str(tiny_m4ser.export), str(clips), "--output", str(out), "--no-progress"]
    argv += ["--asr-backend", "faster-whisper", "--asr-model", str(TINY_EN), "--device", "cpu"]
    assert classify.main(argv) == 0
    records = {r["id"]: r for r in json.loads(out.read_text())["results"]}
    assert sorted(records) == sorted(chosen)
    assert {r["status"] for r in records.values()} == {"ok"}
    assert {r["transcript_source"] for r in records.values()} == {"asr"}
    pairs = [(records[u]["transcript"], WORDS[u]) for u in chosen]
    assert word_error_rate(pairs) < MAX_WER
    assert records[utt_id]["transcript"] == info.text
