"""The command lines (issue 8 §5): ``m4ser-classify`` and what every m4ser command shares.

``m4ser-classify`` runs on the tiny exported model of ``tiny_m4ser`` (``tests/unit/conftest.py``).
"""

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from m4ser_lobes.text import asr, transcribers

#: console script -> (module, its parser builder); the scripts of setup.py's entry points.

from m4ser_lobes.inference import classify

#: console script -> (module, its parser builder); the scripts of setup.py's entry points.

from m4ser_lobes.inference import export

#: console script -> (module, its parser builder); the scripts of setup.py's entry points.

from m4ser_lobes.corpora import mini_iemocap as mini_corpus

#: console script -> (module, its parser builder); the scripts of setup.py's entry points.
COMMANDS = {
    "m4ser-asr": ("m4ser_lobes.text.asr", asr.build_parser),
    "m4ser-mini-corpus": ("m4ser_lobes.corpora.mini_iemocap", mini_corpus.build_parser),
    "m4ser-export": ("m4ser_lobes.inference.export", export.build_parser),
    "m4ser-classify": ("m4ser_lobes.inference.classify", classify.build_parser),
}


def test_entry_points_are_the_commands_tested_here():
    setup = (Path(__file__).resolve().parents[2] / "setup.py").read_text()
    for script, (module, _) in COMMANDS.items():
        assert f'"{script}={module}:main"' in setup


def _parsers(parser):
    """The parser and its sub-command parsers."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_every_option_is_documented_with_its_default_in_one_style(script):
    _, build = COMMANDS[script]
    for parser in _parsers(build()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help, f"{script}: {name} has no help"
            for option in action.option_strings:
                assert option.startswith("--") and "_" not in option, f"{script}: {option}"
            flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
            if action.option_strings and not action.required and not flag:
                text = formatter._expand_help(action)
                assert "default" in text, f"{script} {name}: no default in {text!r}"
                if action.default not in (None, [], False):
                    assert f"(default: {action.default})" in text, (script, name, text)


@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_help_names_the_command_as_it_was_run(script, monkeypatch):
    module, build = COMMANDS[script]
    monkeypatch.setattr(sys, "argv", [str(Path(sys.executable).parent / script), "--help"])
    assert build().format_usage().startswith(f"usage: {script} ")
    monkeypatch.setattr(sys, "argv", [f"/somewhere/{module.replace('.', '/')}.py", "--help"])
    assert build().format_usage().startswith(f"usage: python -m {module} ")


def test_help_of_the_module_and_of_the_console_script():
    """Real processes: ``python -m`` names the module, the installed script its own name."""
    run = subprocess.run(
        [sys.executable, "-m", "m4ser_lobes.inference.classify", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.startswith("usage: python -m m4ser_lobes.inference.classify ")
    assert "--asr-model" in run.stdout and "--asr-backend" in run.stdout
    script = Path(sys.executable).parent / "m4ser-classify"
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e .)")
    run = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert run.stdout.startswith("usage: m4ser-classify ")


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
