"""The ASR behind the text, on the trained tiny model of ``tiny_m4ser``
(``tests/integration/conftest.py``; issue 16): what the run records about its hypotheses, and a
long recording without transcript transcribed whole, once, by a real Whisper.

The window policy itself (8 windows, one ASR call on the whole file with the tiny Whisper):
``tests/integration/test_inference.py``.
"""

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from m4ser_lobes.data.audio import load_audio
from m4ser_lobes.inference.classifier import M4SERClassifier


def write(path, data, rate, subtype="PCM_16"):
    sf.write(path, data, rate, subtype=subtype)
    return path


def test_the_run_records_the_asr_behind_its_text(tiny_m4ser):
    """configuration.json's ``asr``: the hypothesis cache's model and emptiness (issue 16 §1)."""
    configuration = json.loads((tiny_m4ser.run / "configuration.json").read_text())
    asr = configuration["asr"]
    cache = json.loads(Path(configuration["hypotheses_file"]).read_text())
    assert asr["model"] == cache["model"] and asr["num_utterances"] == len(cache["hypotheses"])
    assert asr["paper_model"] == "openai/whisper-medium.en"
    assert asr["summary"].endswith("not the paper's openai/whisper-medium.en")
    assert 0 <= asr["empty_share"] <= 0.5


def test_a_long_recording_is_transcribed_whole_by_a_real_whisper(tiny_m4ser, tmp_path):
    """Real speech through the real Whisper tiny.en (faster-whisper): the five clips one after
    the other (about 11 s) in 3 s windows. The ASR runs once, on the whole recording, so no word
    is cut at a window edge or repeated from an overlap ("laundry cording")."""
    from real_asr import MAX_WER, SPEECH, TINY_EN, WORDS  # skips without faster-whisper

    from m4ser_lobes.text.statistics import word_error_rate

    pause = np.zeros(4000, "float32")  # 0.25 s between the sentences
    clips = [sf.read(SPEECH / f"{u}.wav", dtype="float32")[0] for u in WORDS]
    path = write(tmp_path / "talk.wav", np.concatenate([c for x in clips for c in (x, pause)]),
                 16000, "FLOAT")
    classifier = M4SERClassifier.from_hparams(
        source=str(tiny_m4ser.export), run_opts={"device": "cpu"},
        overrides={"asr_backend": "faster-whisper", "asr_model": str(TINY_EN),
                   "window_seconds": 3.0, "max_windows": 8},
    )
    asr, heard = classifier.load_asr(), []
    classifier.asr = lambda wavs: heard.append([len(w) for w in wavs]) or asr(wavs)
    (probs, *_), info = classifier.classify_and_transcribe_file(path)
    audio = load_audio(path)
    assert heard == [[len(audio)]], "one ASR call, on the whole recording"
    assert audio.shape[0] > 3 * 16000 * 3, "several windows"
    reference = " ".join(WORDS.values())
    assert info.source == "asr" and word_error_rate([(info.text, reference)]) < MAX_WER, info.text
    given = classifier.classify_file(path, transcript=info.text)[0]
    assert torch.allclose(given, probs, atol=1e-6), "every window read that one transcript"
