"""The ASR behind the text (issue 16 §1): what a run records about its hypothesis cache, its
warnings, the ``asr_model`` of the corpus files and ``m4ser-asr --hparams`` on them.

The real Whisper tiny.en cache: ``tests/unit/text/test_faster_whisper.py``; the ``asr`` entry
of a trained run's ``configuration.json``: ``tests/integration/test_asr_in_inference.py``.
"""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from m4ser_lobes.corpora.iemocap import IEMOCAP
from m4ser_lobes.corpora.meld import MELD
from m4ser_lobes.text import asr
from m4ser_lobes.text.hypotheses import load_cache, transcribe_manifest
from m4ser_lobes.text.provenance import MOSTLY_EMPTY, asr_of_run, cache_summary, same_whisper

REPO = Path(__file__).resolve().parents[3]


def write_cache(path, hypotheses, **fields):
    path.write_text(json.dumps({**fields, "hypotheses": hypotheses}))
    return path


def write_manifest(path, hypotheses):
    """A training manifest whose ``hypothesis`` fields are ``hypotheses`` (id -> text or None)."""
    path.write_text(json.dumps({u: {"wav": f"{u}.wav", "emo": "neu", "hypothesis": h}
                                for u, h in hypotheses.items()}))
    return path


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# ------------------------------------------------------------------------------ what is recorded
def test_the_cache_records_the_backend_that_made_it(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(4000, "float32"), 16000)
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"a": {"wav": str(wav), "transcript": "yes"}}))
    cache = tmp_path / "h.json"
    transcribe_manifest([manifest], cache, "some/whisper", backend="faster-whisper",
                        transcriber=lambda wavs: ["yes"] * len(wavs), progress=False, verbose=False)
    assert load_cache(cache)["backend"] == "faster-whisper"
    summary = cache_summary(cache)
    assert (summary["model"], summary["backend"], summary["wer"]) == ("some/whisper",
                                                                      "faster-whisper", 0.0)
    # completing it with the other backend says so in the cache
    second = json.loads(manifest.read_text())
    second["b"] = {"wav": str(wav), "transcript": "no"}
    manifest.write_text(json.dumps(second))
    transcribe_manifest([manifest], cache, "some/whisper", backend="transformers",
                        transcriber=lambda wavs: [""] * len(wavs), progress=False, verbose=False)
    summary = cache_summary(cache)
    assert summary["backend"] == "faster-whisper+transformers"
    assert (summary["num_empty"], summary["empty_share"]) == (1, 0.5)


def test_empty_means_nothing_left_after_normalisation(tmp_path):
    cache = write_cache(tmp_path / "h.json", {"a": "[LAUGHTER]", "b": " ... ", "c": "Oh!", "d": ""})
    summary = cache_summary(cache)
    assert (summary["num_utterances"], summary["num_empty"], summary["empty_share"]) == (4, 3, 0.75)
    assert summary["model"] is None and summary["backend"] is None and summary["wer"] is None
    assert cache_summary(cache, ids=["c", "absent"])["empty_share"] == 0.5


@pytest.mark.parametrize("model, paper, same", [
    ("openai/whisper-medium.en", "openai/whisper-medium.en", True),
    ("medium.en", "openai/whisper-medium.en", True),
    ("/models/faster-whisper-large-v2/", "openai/whisper-large-v2", True),
    ("Systran/faster-whisper-large-v2", "openai/whisper-large-v2", True),
    ("openai/whisper-medium", "openai/whisper-medium.en", False),
    ("openai/whisper-large-v3", "openai/whisper-large-v2", False),
    ("distil-whisper/distil-large-v2", "openai/whisper-large-v2", False),
    ("synthetic (m4ser_lobes.testing.mini_iemocap)", "openai/whisper-medium.en", False),
    (None, "openai/whisper-medium.en", False),
])
def test_same_whisper(model, paper, same):
    assert same_whisper(model, paper) is same


# ------------------------------------------------------------------------------ warnings
def test_a_run_on_the_papers_asr_records_it_without_warning(tmp_path, caplog):
    cache = write_cache(tmp_path / "h.json", {"a": "excuse me", "b": "", "c": "yes"},
                        model="openai/whisper-medium.en", backend="transformers", wer=0.2048)
    train = write_manifest(tmp_path / "train.json", {"a": "excuse me", "b": ""})
    values = {"hypotheses_file": str(cache), "text_source": "hypothesis", "modalities": "both"}
    with caplog.at_level(logging.INFO):
        record = asr_of_run(values, train, IEMOCAP)
    assert warnings_of(caplog) == []
    assert record["model"] == "openai/whisper-medium.en" and record["backend"] == "transformers"
    assert record["wer"] == 0.2048 and record["paper_model"] == "openai/whisper-medium.en"
    assert record["summary"] == ("openai/whisper-medium.en (transformers), WER 20.48 %, "
                                 "1 of 3 hypotheses empty")
    assert any(record["summary"] in r.getMessage() for r in caplog.records), "logged"
    json.dumps(record)  # configuration.json holds it


def test_another_asr_than_the_papers_warns_in_one_line(tmp_path, caplog):
    cache = write_cache(tmp_path / "h.json", {"a": "hi"}, model="openai/whisper-tiny.en")
    train = write_manifest(tmp_path / "train.json", {"a": "hi"})
    values = {"hypotheses_file": str(cache), "text_source": "hypothesis"}
    record = asr_of_run(values, train, MELD)
    (warning,) = warnings_of(caplog)
    assert "\n" not in warning
    for words in ("MELD", "'openai/whisper-tiny.en'", str(cache), "openai/whisper-large-v2",
                  "m4ser-asr --hparams hparams/meld.yaml"):
        assert words in warning, (words, warning)
    assert record["summary"].endswith("not the paper's openai/whisper-large-v2")
    caplog.clear()
    write_cache(cache, {"a": "hi"})  # a cache that names no model (only hypotheses is required)
    asr_of_run(values, train, IEMOCAP)
    (warning,) = warnings_of(caplog)
    assert "an unnamed ASR" in warning and "openai/whisper-medium.en" in warning


def test_mostly_empty_training_hypotheses_warn(tmp_path, caplog):
    """Training on 100 % empty hypotheses used to go on silently."""
    cache = write_cache(tmp_path / "h.json", {f"u{i}": "" for i in range(4)},
                        model="openai/whisper-medium.en")
    values = {"hypotheses_file": str(cache), "text_source": "hypothesis"}
    train = write_manifest(tmp_path / "train.json", {f"u{i}": "" for i in range(4)})
    record = asr_of_run(values, train, IEMOCAP)
    (warning,) = warnings_of(caplog)
    assert "4 of the 4 training hypotheses" in warning and str(train) in warning
    assert "--text_source=transcript" in warning and "\n" not in warning
    assert record["empty_share"] == 1.0
    caplog.clear()
    half = {"u0": "", "u1": None, "u2": "yes", "u3": "no"}  # null: the text branch reads nothing
    assert MOSTLY_EMPTY == 0.5
    asr_of_run(values, write_manifest(train, half), IEMOCAP)
    assert warnings_of(caplog) == [], "exactly half is not mostly"
    asr_of_run(values, write_manifest(train, {**half, "u3": " [NOISE] "}), IEMOCAP)
    assert len(warnings_of(caplog)) == 1


def test_no_asr_entry_when_no_asr_text_is_read(tmp_path, caplog):
    train = write_manifest(tmp_path / "train.json", {"a": ""})
    for values in ({"text_source": "transcript", "hypotheses_file": None},
                   {"text_source": "hypothesis", "modalities": "speech", "hypotheses_file": None}):
        assert asr_of_run(values, train, IEMOCAP) is None
    assert warnings_of(caplog) == []


def test_the_cv_report_header_names_the_asr(tmp_path):
    """cv_report.md's configuration line carries the ``asr`` summary of configuration.json."""
    from m4ser_lobes.experiment import report as rp
    from m4ser_lobes.metrics import emotion_metrics

    summary = "openai/whisper-tiny.en, WER 31.00 %, 0 of 2 hypotheses empty, not the paper's x"
    for fold in (1, 2):
        folder = tmp_path / f"fold{fold}" / "seed1"
        folder.mkdir(parents=True)
        metrics = emotion_metrics([0, 1], [0, 1], num_classes=2)
        (folder / "test_metrics.json").write_text(json.dumps({**metrics, "classes": ["a", "b"]}))
        (folder / "predictions.csv").write_text("id,true,predicted,p_a,p_b\n"
                                                f"{fold}x,a,a,0.9,0.1\n{fold}y,b,b,0.1,0.9\n")
        (folder / "configuration.json").write_text(json.dumps({"summary": "both modalities",
                                                               "asr": {"summary": summary}}))
    results = rp.collect_fold_results(rp.find_fold_dirs(tmp_path))
    markdown = rp.report_markdown(rp.cross_validation_report(results))
    header = next(line for line in markdown.splitlines() if line.startswith("Configuration:"))
    assert f"ASR {summary}" in header


# ------------------------------------------------------------------------------ asr_model
@pytest.mark.parametrize("corpus, model", [(IEMOCAP, "openai/whisper-medium.en"),
                                           (MELD, "openai/whisper-large-v2")])
def test_the_corpus_files_name_the_papers_asr(corpus, model):
    from m4ser_lobes.experiment.run import merged_overrides
    from m4ser_lobes.experiment.settings import load_values

    assert corpus.paper_asr_model == model
    assert asr.model_from_yaml(corpus.data_file) == model
    section = merged_overrides(corpus.data_file, {"data_folder": "/data"})
    values = load_values(REPO / "hparams" / "m4ser.yaml", section)
    assert values["asr_model"] == model
    settings = corpus.settings.model_validate(values)
    assert settings.asr_model == model
    assert corpus.settings.model_fields["asr_model"].json_schema_extra == {"fingerprint": False}


def test_m4ser_asr_reads_the_model_from_a_corpus_file(tmp_path, capsys):
    """``--hparams hparams/meld.yaml`` (a section with !PLACEHOLDER and !ref into m4ser.yaml)
    names large-v2; a complete cache made by it needs no model: its WER is computed."""
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(1600, "float32"), 16000)
    manifest = tmp_path / "valid.json"
    manifest.write_text(json.dumps({"dev_dia0_utt0": {"wav": str(wav), "transcript": "Oh my God!",
                                                      "session": "dev"}}))
    cache = write_cache(tmp_path / "h.json", {"dev_dia0_utt0": "oh my god"},
                        model="openai/whisper-large-v2")
    argv = ["--manifest", str(manifest), "--cache", str(cache), "--no-progress"]
    assert asr.main(argv + ["--hparams", str(REPO / "hparams" / "meld.yaml")]) == 0
    assert load_cache(cache)["wer"] == 0.0 and "large-v2" in capsys.readouterr().out
    # IEMOCAP's file names medium.en: the cache made by large-v2 is refused, as for --model
    with pytest.raises(ValueError, match="openai/whisper-medium.en"):
        asr.main(argv + ["--hparams", str(REPO / "hparams" / "iemocap.yaml")])
    with pytest.raises(SystemExit):  # no asr_model key: one line, what to add
        asr.main(argv + ["--hparams", str(REPO / "hparams" / "m4ser.yaml")])
    assert "no string key 'asr_model'" in capsys.readouterr().err
