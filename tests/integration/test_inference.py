"""Inference and sharing: export, ``M4SERClassifier``, ``m4ser-classify`` (issue #5).

Everything runs on the tiny model of ``tiny_m4ser`` (trained and exported once per session,
see ``tests/integration/conftest.py``).
"""

import csv
import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from m4ser_lobes.inference import card, export
from m4ser_lobes.inference import hparams as config
from m4ser_lobes.data.audio import AudioError, load_audio
from m4ser_lobes.inference.classifier import M4SERClassifier, TranscriptInfo
from m4ser_lobes.inference.folder import BACKBONE_PREFIXES
from m4ser_lobes.inference.windows import split_windows

REPO = Path(__file__).resolve().parents[2]


def manifest_entries(tiny):
    """(id, entry) pairs of the fold-1 test manifest, in order."""
    with open(tiny.test_manifest, encoding="utf-8") as fin:
        return list(json.load(fin).items())


def padded_batches(entries, batch_size, max_seconds):
    """The Brain's test batches: manifest order, zero-padded, relative lengths."""
    for start in range(0, len(entries), batch_size):
        chunk = entries[start : start + batch_size]
        wavs = [load_audio(e["wav"], max_seconds=max_seconds) for _, e in chunk]
        longest = max(len(w) for w in wavs)
        batch = torch.zeros(len(wavs), longest)
        for row, wav in enumerate(wavs):
            batch[row, : len(wav)] = wav
        lens = torch.tensor([len(w) / longest for w in wavs])
        yield [i for i, _ in chunk], batch, lens, [e["hypothesis"] for _, e in chunk]


@pytest.fixture
def utterance(tiny_m4ser):
    """(path, hypothesis) of the first test utterance (16 kHz mono, < window)."""
    _utt_id, entry = manifest_entries(tiny_m4ser)[0]
    return entry["wav"], entry["hypothesis"]


# ------------------------------------------------------------------------------ the export
def test_fresh_process_reproduces_the_brains_test_predictions(tiny_m4ser, tmp_path):
    """Export -> load in a new Python process -> same probabilities as the Brain's test stage."""
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from test_inference import padded_batches
        from m4ser_lobes.inference.classifier import M4SERClassifier

        classifier = M4SERClassifier.from_hparams(source={str(tiny_m4ser.export)!r},
                                                  run_opts={{"device": "cpu"}})
        entries = list(json.load(open({str(tiny_m4ser.test_manifest)!r})).items())
        out = {{}}
        for ids, wavs, lens, texts in padded_batches(entries, {tiny_m4ser.test_batch_size},
                                                     {tiny_m4ser.max_audio_seconds}):
            probs, score, index, labels = classifier.classify_batch(wavs, lens, texts)
            for i, p, lab in zip(ids, probs.tolist(), labels):
                out[i] = {{"p": p, "label": lab}}
        json.dump({{"classes": classifier.classes, "out": out}}, open(sys.argv[1], "w"))
        """
    )
    result_file = tmp_path / "result.json"
    subprocess.run(
        [sys.executable, "-c", script, str(result_file)],
        check=True,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    result = json.loads(result_file.read_text())
    assert result["classes"] == tiny_m4ser.classes
    assert sorted(result["out"]) == sorted(tiny_m4ser.brain_probabilities)
    for utt_id, want in tiny_m4ser.brain_probabilities.items():
        got = result["out"][utt_id]
        np.testing.assert_allclose(got["p"], want, atol=1e-5, rtol=0, err_msg=utt_id)
        assert got["label"] == tiny_m4ser.classes[int(np.argmax(want))]
    # the Brain's own CSV agrees too (6 decimals)
    with open(tiny_m4ser.run / "predictions.csv", encoding="utf-8") as fin:
        for row in csv.DictReader(fin):
            got = result["out"][row["id"]]["p"]
            assert got == pytest.approx([float(row[f"p_{c}"]) for c in result["classes"]], abs=1e-5)


def test_export_holds_only_the_inference_parts(tiny_m4ser, tiny_classifier):
    folder = tiny_m4ser.export
    for name in (
        "hyperparams.yaml",
        "model.ckpt",
        "label_encoder.txt",
        "corrector.ckpt",
        "README.md",
        "test_metrics.json",
        "speech_encoder/config.json",
        "speech_encoder/preprocessor_config.json",
        "text_encoder/tokenizer.json",
        "text_encoder/config.json",
        "asr/config.json",
    ):
        assert (folder / name).is_file(), name
    assert not list(folder.parent.glob(".export.*")), "temporary folders left behind"
    model_keys = torch.load(folder / "model.ckpt", weights_only=True).keys()
    assert model_keys and not any(
        k.startswith(("aed_head.", "aec_decoder.", "discriminator", *BACKBONE_PREFIXES))
        for k in model_keys
    )
    corrector_keys = torch.load(folder / "corrector.ckpt", weights_only=True).keys()
    assert {k.split(".")[0] for k in corrector_keys} == {"aed_head", "aec_decoder"}
    # Paper §III-I: neither AED/AEC nor the discriminator is built for emotion inference.
    model = tiny_classifier.model
    assert model.aed_head is None and model.aec_decoder is None
    assert list(tiny_classifier.mods) == ["model"]
    assert isinstance(tiny_classifier.hparams.aed_head, functools.partial)
    assert not any(p.requires_grad for p in tiny_classifier.parameters())
    card = (folder / "README.md").read_text()
    metrics = json.loads((tiny_m4ser.run / "test_metrics.json").read_text())
    for needle in (
        "IEMOCAP",
        "fold 1",
        "M4SERClassifier.from_hparams",
        "m4ser/tiny-test",
        "upload_folder",
        f"| {metrics['UA']} |",
        "m4ser-classify",
    ):
        assert needle in card, needle


def test_model_card_states_the_training_data_without_local_paths(tiny_m4ser):
    """README.md, export_info.json and hyperparams.yaml: the data trained on, no absolute paths."""
    folder = tiny_m4ser.export
    hparams_text = (tiny_m4ser.run / "hyperparams.yaml").read_text()
    train_manifest = Path(tiny_m4ser.test_manifest).with_name("train.json")
    num_train = len(json.loads(train_manifest.read_text()))
    num_test = len(json.loads(Path(tiny_m4ser.test_manifest).read_text()))
    card = (folder / "README.md").read_text()
    for needle in (
        "IEMOCAP",
        "Session1",
        f"{num_train} training,",
        f"{num_test} test.",
        "synthetic (m4ser_lobes.testing.mini_iemocap)",  # the hypotheses' ASR model
        "`text_source: hypothesis`",
        "`tiny-hubert`",  # the speech encoder, named without its folder
        "asr/",
    ):
        assert needle in card, needle
    info = json.loads((folder / "export_info.json").read_text())
    data = info["training_data"]
    assert (data["corpus"], data["fold"], data["test_split"]) == ("IEMOCAP", 1, "Session1")
    assert data["num_train_utterances"] == num_train and data["text_source"] == "hypothesis"
    assert info["asr_model"] == "asr" and info["asr_backend"] == "transformers"
    root = tiny_m4ser.export.parent  # the fixture's tmp folder: every local path starts there
    assert str(root) in hparams_text, "the training YAML does hold local paths"
    for name in ("README.md", "export_info.json", "hyperparams.yaml"):
        text = (folder / name).read_text()
        for local in {str(root), str(root.resolve()), str(REPO)}:
            assert local not in text, f"{name} holds the local path {local}"
    yaml_text = (folder / "hyperparams.yaml").read_text()
    assert "asr_model: !ref <pretrained_path>/asr" in yaml_text
    assert "asr_backend: transformers" in yaml_text


def test_export_refuses_to_overwrite(tiny_m4ser, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):
        export.export_model(tiny_m4ser.run, tmp_path / "out")
    assert export.main(["--checkpoint", str(tiny_m4ser.run), "--out", str(tmp_path / "out")]) == 2


def test_locate_run_names_what_is_missing(tiny_m4ser, tmp_path):
    run = export.locate_run(tiny_m4ser.run)
    assert run.is_best and run.checkpoint.name.startswith("CKPT+")
    assert export.locate_run(run.checkpoint).checkpoint == run.checkpoint  # a CKPT folder works
    with pytest.raises(FileNotFoundError, match="--hparams"):
        export.locate_run(tiny_m4ser.run, hparams_file=tmp_path / "nope.yaml")
    with pytest.raises(FileNotFoundError, match="not a training output folder"):
        export.locate_run(tmp_path / "missing")


# ------------------------------------------------------------------------------ packaged files
def _top_level(path):
    """Top-level key -> value of a YAML file, tags kept (ruamel round-trip)."""
    import ruamel.yaml

    with open(path, encoding="utf-8") as fin:
        return ruamel.yaml.YAML().load(fin)


def test_the_export_writes_the_packaged_yaml_with_the_trained_values(tiny_m4ser):
    """hyperparams.yaml = m4ser_lobes/inference/inference.yaml + overrides from the training run."""
    from hyperpyyaml.core import resolve_references

    hparams, model = export.load_trained_model(export.locate_run(tiny_m4ser.run))
    overrides = config.export_overrides(
        hparams, model, config.BUNDLED_ASR, None, 8, 8, corrector=True
    )
    written = tiny_m4ser.export / "hyperparams.yaml"
    assert written.read_text() == config.render_inference_yaml(overrides)
    assert overrides["d_model"] == hparams["d_model"] != 768, "the tiny sizes, not the paper's"
    # the architecture comes from the packaged file: every line that is not a value set by the
    # export is copied unchanged
    packaged_lines = config.INFERENCE_YAML.read_text().splitlines()
    kept = [line for line in packaged_lines if line.split(":")[0] not in overrides]
    assert all(line in written.read_text().splitlines() for line in kept)
    assert "fusion: !new:m4ser_lobes.fusion.MultimodalFusion" in kept
    # loading the written file = loading the packaged one with the overrides
    where = {"pretrained_path": str(tiny_m4ser.export)}
    with open(written, encoding="utf-8") as fin:
        got = resolve_references(fin, where).getvalue()
    with open(config.INFERENCE_YAML, encoding="utf-8") as fin:
        want = resolve_references(
            fin, {**config.hyperpyyaml_overrides(overrides), **where}
        ).getvalue()
    assert got == want


def test_the_packaged_yaml_holds_the_papers_configuration():
    """Its defaults are the paper's IEMOCAP values (hparams/m4ser.yaml with hparams/iemocap.yaml);
    hparams/ holds no second inference YAML."""
    packaged = _top_level(config.INFERENCE_YAML)
    training = {**_top_level(REPO / "hparams" / "m4ser.yaml")}
    training.update(_top_level(REPO / "hparams" / "iemocap.yaml"))
    for key in config.TRAINING_KEYS + ("aec_max_len", "aec_layers", "aec_ffn"):
        assert packaged[key] == training[key], key
    assert packaged["window_seconds"] == training["max_audio_seconds"]
    assert set(config.EXPORTED_KEYS) <= set(packaged)
    assert not (REPO / "hparams" / "inference.yaml").exists()
    # without overrides the written file is the packaged one, byte for byte
    assert config.render_inference_yaml({}) == config.INFERENCE_YAML.read_text()


def test_setup_installs_the_packaged_files():
    """setup.py's package_data names the YAML and the card template that the code reads."""
    import ast

    tree = ast.parse((REPO / "setup.py").read_text())
    (package_data,) = [
        ast.literal_eval(k.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for k in node.keywords
        if k.arg == "package_data"
    ]
    names = package_data["m4ser_lobes.inference"]
    shipped = {Path(config.__file__).with_name(name) for name in names}
    assert {config.INFERENCE_YAML, card.MODEL_CARD} <= shipped
    assert all(path.is_file() for path in shipped)


def test_a_text_only_export_without_corrector_loads_from_the_packaged_yaml(tiny_m4ser, tmp_path):
    """Null encoders and corrector keys: the packaged YAML builds a text-only model."""
    from hyperpyyaml import load_hyperpyyaml

    overrides = {**dict.fromkeys(config.CORRECTOR_KEYS), "has_corrector": False}
    overrides.update(speech_encoder=None, modalities="text", use_msr=False, use_mir=False)
    trained = _top_level(tiny_m4ser.export / "hyperparams.yaml")
    overrides.update({k: trained[k] for k in ("d_model", "nhead", "cme_ffn", "num_emotions")})
    path = tmp_path / "hyperparams.yaml"
    config.write_inference_yaml(path, overrides)
    text = path.read_text()
    assert "speech_encoder: null\n" in text and "aec_decoder: null\n" in text
    with open(path, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, {"pretrained_path": str(tiny_m4ser.export)})
    assert hparams["model"].speech_encoder is None and hparams["model"].uses_text
    assert hparams["has_corrector"] is False and hparams["aed_head"] is None
    with pytest.raises(KeyError, match="inference.yaml has no top-level key speech_encodr"):
        config.render_inference_yaml({"speech_encodr": None})


def test_the_model_card_is_its_template_filled(tiny_m4ser):
    """README.md: every line of model_card.md with its fields filled, no field left, no path."""
    import re
    import string

    written = (tiny_m4ser.export / "README.md").read_text()
    template = card.MODEL_CARD.read_text()
    found = string.Template.pattern.finditer(template)
    fields = {m.group("named") or m.group("braced") for m in found} - {None}
    assert {"corpus", "fold", "results", "source", "correction_line"} <= fields
    for line in template.splitlines():
        if "$" not in line:
            assert line in written.splitlines(), line
    assert not re.search(r"\$[a-z_]+", written), "a field was left unfilled"
    assert 'info = classifier.transcribe_file("speech.wav", correct=True)' in written
    assert "*_, (info,)" not in written
    for local in (str(tiny_m4ser.export.parent), str(REPO)):
        assert local not in written


def test_hub_repo_id_loads_from_the_cache(tiny_m4ser, tiny_classifier, tmp_path, utterance):
    """A Hub repo id goes through snapshot_download (here: an offline cache) and loads the same."""
    from speechbrain.utils.fetching import FetchConfig

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--m4ser--tiny-test"
    shutil.copytree(tiny_m4ser.export, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    hub = M4SERClassifier.from_hparams(
        source="m4ser/tiny-test",
        fetch_config=FetchConfig(huggingface_cache_dir=str(tmp_path / "hub"), allow_network=False),
        run_opts={"device": "cpu"},
    )
    path, text = utterance
    got = hub.classify_file(path, transcript=text)[0]
    want = tiny_classifier.classify_file(path, transcript=text)[0]
    assert torch.equal(got, want)


# ------------------------------------------------------------------------------ inputs
def write(path, data, rate, subtype="PCM_16"):
    sf.write(path, data, rate, subtype=subtype)
    return path


def test_stereo_file_is_downmixed(tiny_classifier, utterance, tmp_path):
    path, text = utterance
    mono, rate = sf.read(path, dtype="float32")
    stereo = write(tmp_path / "stereo.wav", np.stack([mono, mono], axis=1), rate, "FLOAT")
    got = tiny_classifier.classify_file(stereo, transcript=text)
    want = tiny_classifier.classify_file(path, transcript=text)
    assert torch.equal(got[0], want[0]) and got[3] == want[3]


@pytest.mark.parametrize("rate", [8000, 44100])
def test_other_sample_rates_are_resampled(tiny_classifier, utterance, tmp_path, rate):
    import torchaudio

    path, text = utterance
    wav = load_audio(path)
    resampled = torchaudio.functional.resample(wav, 16000, rate).numpy()
    other = write(tmp_path / f"{rate}.wav", resampled, rate, "FLOAT")
    probs, score, index, labels = tiny_classifier.classify_file(other, transcript=text)
    assert probs.shape == (1, len(tiny_classifier.classes))
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-5)
    assert labels[0] == tiny_classifier.classes[int(index[0])] and score[0] == probs.max()
    want = tiny_classifier.classify_batch(load_audio(other), transcripts=[text])[0]  # 16 kHz
    assert torch.allclose(probs, want, atol=1e-6)


def test_without_transcript_the_asr_model_runs(tiny_m4ser, utterance, monkeypatch):
    classifier = M4SERClassifier.from_hparams(
        source=str(tiny_m4ser.export), run_opts={"device": "cpu"}
    )
    path, text = utterance
    given = classifier.transcribe_file(path, transcript=text)
    assert given == TranscriptInfo(text, "given", None)
    assert classifier.asr is None, "ASR must not be loaded when the transcript is given"
    asr_calls = []
    original = classifier.transcribe
    monkeypatch.setattr(
        classifier, "transcribe", lambda wavs: asr_calls.append(len(wavs)) or original(wavs)
    )
    (probs, *_), heard = classifier.classify_and_transcribe_file(path)
    assert isinstance(heard, TranscriptInfo)
    assert heard.source == "asr" and isinstance(heard.text, str) and heard.corrected is None
    assert asr_calls == [1], "classified and transcribed in one pass: the ASR runs once"
    assert torch.equal(probs, classifier.classify_file(path)[0])
    assert classifier.transcribe_file(path) == heard
    assert asr_calls == [1, 1, 1], "each public call runs the ASR once"
    assert classifier.asr.model_id == str(tiny_m4ser.export / "asr")
    assert torch.equal(probs, classifier.classify_file(path, transcript=heard.text)[0])
    wav = load_audio(path)
    (batch_info,) = classifier.transcribe_batch(wav)
    assert batch_info == heard
    assert torch.allclose(classifier.classify_batch(wav)[0], probs, atol=1e-6)


def test_classify_returns_speechbrains_four_values(tiny_classifier, utterance):
    """(probabilities, score, index, labels) only; the text comes from transcribe_*."""
    path, text = utterance
    result = tiny_classifier.classify_file(path, transcript=text)
    assert len(result) == 4 and result[3] == [tiny_classifier.classes[int(result[2][0])]]
    batch = tiny_classifier.classify_batch(load_audio(path), transcripts=[text])
    assert len(batch) == 4 and torch.allclose(batch[0], result[0], atol=1e-6)
    infos = tiny_classifier.transcribe_batch(
        torch.stack([load_audio(path)] * 2), transcripts=[text, ""], correct=True
    )
    assert [(i.text, i.source) for i in infos] == [(text, "given"), ("", "given")]
    assert all(isinstance(i.corrected, str) for i in infos)
    # the shortest input is the speech encoder's own receptive field
    assert tiny_classifier.min_samples == tiny_classifier.model.speech_encoder.min_samples > 100


def test_a_long_file_is_classified_as_averaged_windows(tiny_classifier, tmp_path, monkeypatch):
    """60 s of 8 kHz audio: 8 evenly spaced 4 s windows, 8 per forward pass; the ASR runs once,
    on the whole file, and every window reads that one transcript."""
    rng = np.random.default_rng(0)
    t = np.arange(60 * 8000) / 8000
    audio = (0.3 * np.sin(2 * np.pi * 200 * t) + 0.05 * rng.standard_normal(t.size)).astype(
        "float32"
    )
    path = write(tmp_path / "long.wav", audio, 8000)
    calls = []
    original = tiny_classifier.emotion_probabilities

    def spy(wavs, wav_lens, texts):
        calls.append((wavs, texts, original(wavs, wav_lens, texts)))
        return calls[-1][2]

    monkeypatch.setattr(tiny_classifier, "emotion_probabilities", spy)
    heard = []
    asr = tiny_classifier.load_asr()
    monkeypatch.setattr(tiny_classifier, "asr", lambda wavs: heard.append(wavs) or asr(wavs))
    probs, _, _, _ = tiny_classifier.classify_file(path)
    assert len(heard) == 1 and len(heard[0]) == 1, "one ASR call, on one waveform: the file"
    assert np.array_equal(heard[0][0], load_audio(path).numpy()), "the whole file, not a window"
    info = tiny_classifier.transcribe_file(path)
    assert len(heard) == 2
    hp = tiny_classifier.hparams
    window = int(hp.window_seconds * 16000)
    assert 60 > hp.max_windows * hp.window_seconds, "the cap must be exercised"
    assert all(len(wavs) <= hp.batch_size for wavs, _, _ in calls)
    windows = torch.cat([wavs for wavs, _, _ in calls])
    assert torch.equal(windows, split_windows(load_audio(path), window, hp.max_windows))
    assert windows.shape == (hp.max_windows, window)
    texts = [t for _, batch_texts, _ in calls for t in batch_texts]
    assert info.source == "asr" and texts == [info.text] * hp.max_windows
    want = torch.cat([p for _, _, p in calls]).mean(dim=0, keepdim=True)
    assert torch.allclose(probs, want, atol=1e-7)


def test_a_file_just_over_the_window_gives_two_full_windows(tiny_classifier, tmp_path, monkeypatch):
    """4.3 s with 4 s windows: two windows of 4 s (0-4 s and 0.3-4.3 s), not two of 2.15 s."""
    rate, hp = 16000, tiny_classifier.hparams
    monkeypatch.setattr(hp, "window_seconds", 4.0)
    rng = np.random.default_rng(1)
    path = write(tmp_path / "a.wav", 0.1 * rng.standard_normal(int(4.3 * rate)), rate, "FLOAT")
    seen = []
    original = tiny_classifier.emotion_probabilities

    def spy(wavs, wav_lens, texts):
        seen.append(wavs)
        return original(wavs, wav_lens, texts)

    monkeypatch.setattr(tiny_classifier, "emotion_probabilities", spy)
    tiny_classifier.classify_file(path, transcript="oh no")
    windows = torch.cat(seen)
    audio = load_audio(path)
    assert windows.shape == (2, 4 * rate)
    assert torch.equal(windows[0], audio[: 4 * rate]) and torch.equal(windows[1], audio[-4 * rate :])


def test_an_asr_model_that_cannot_load_is_a_clear_error(tiny_m4ser, utterance, tmp_path):
    from m4ser_lobes.inference.classifier import ASRUnavailableError

    empty = tmp_path / "empty-whisper"
    empty.mkdir()
    classifier = M4SERClassifier.from_hparams(
        source=str(tiny_m4ser.export), run_opts={"device": "cpu"}
    )
    classifier.set_asr(empty)
    path, text = utterance
    with pytest.raises(ASRUnavailableError) as err:
        classifier.classify_file(path)
    message = str(err.value)
    for needle in (str(empty), "transformers", 'transcript="..."', "set_asr", "--asr-model"):
        assert needle in message, (needle, message)
    assert classifier.asr is None
    assert classifier.classify_file(path, transcript=text)[3][0] in tiny_m4ser.classes
    with pytest.raises(ValueError, match="unknown ASR backend 'whisper.cpp'"):
        classifier.set_asr(backend="whisper.cpp")
    classifier.set_asr(tiny_m4ser.whisper)  # a working local folder: transcribed again
    info = classifier.transcribe_file(path)
    assert info.source == "asr" and classifier.asr.model_id == str(tiny_m4ser.whisper)


def test_correction_is_loaded_lazily_and_matches_the_trained_model(tiny_m4ser, utterance):
    from m4ser_lobes.text.alignment import correct

    classifier = M4SERClassifier.from_hparams(
        source=str(tiny_m4ser.export), run_opts={"device": "cpu"}
    )
    assert classifier.corrector is None
    path, text = utterance
    probs = classifier.classify_file(path, transcript=text)[0]
    assert classifier.corrector is None, "classifying never builds the corrector"
    info = classifier.transcribe_file(path, transcript=text, correct=True)
    assert (info.text, info.source) == (text, "given")
    assert classifier.corrector is not None
    assert classifier.model.aed_head is None, "AED must not stay in the emotion path"
    assert torch.equal(probs, classifier.classify_file(path, transcript=text)[0])
    _, trained = export.load_trained_model(export.locate_run(tiny_m4ser.run))
    ids, pad = classifier.encode_texts([text])
    labels, spans = trained.correct_transcripts(ids, pad, max_len=16)
    expected = correct(ids[0], labels[0], spans[0], classifier.model.text_encoder.tokenizer)
    assert info.corrected == expected
    assert classifier.correct_transcripts([text, "oh no"])[0] == expected


def make_bad_inputs(folder):
    """name -> (path, words the error message must contain)."""
    folder.mkdir(exist_ok=True)
    (folder / "not_audio.wav").write_text("this is not a RIFF file\n")
    write(folder / "empty.wav", np.zeros(0, dtype="float32"), 16000)
    write(folder / "nan.wav", np.full(16000, np.nan, dtype="float32"), 16000, "FLOAT")
    write(folder / "tiny.wav", np.zeros(100, dtype="float32"), 16000)
    return {
        "missing": (folder / "missing.wav", "file not found"),
        "not_audio": (folder / "not_audio.wav", "not a readable audio file"),
        "empty": (folder / "empty.wav", "empty"),
        "nan": (folder / "nan.wav", "NaN"),
        "too_short": (folder / "tiny.wav", "too short"),
    }


@pytest.mark.parametrize("kind", ["missing", "not_audio", "empty", "nan", "too_short"])
def test_bad_files_fail_clearly(tiny_classifier, tmp_path, kind):
    path, problem = make_bad_inputs(tmp_path)[kind]
    with pytest.raises(AudioError) as err:
        tiny_classifier.classify_file(path, transcript="hello")
    assert str(path) in str(err.value) and problem in str(err.value)


def test_classify_batch_checks_its_arguments(tiny_classifier):
    with pytest.raises(ValueError, match="NaN"):
        tiny_classifier.classify_batch(torch.full((1, 16000), float("nan")), transcripts=["a"])
    with pytest.raises(ValueError, match="2 transcripts for a batch of 1"):
        tiny_classifier.classify_batch(torch.zeros(1, 16000), transcripts=["a", "b"])
    with pytest.raises(ValueError, match=r"\[B, L\]"):
        tiny_classifier.classify_batch(torch.zeros(1, 2, 16000), transcripts=["a"])


# ------------------------------------------------------------------------ the exported model
def _pad_batch(wavs, width, tail):
    """Right-pad [L_i] waveforms to [B, width] with ``tail`` noise; relative lengths."""
    batch = tail * torch.randn(len(wavs), width)
    for row, wav in enumerate(wavs):
        batch[row, : len(wav)] = wav
    return batch, torch.tensor([len(w) / width for w in wavs])


def test_classify_batch_is_exact_for_padded_clips(tiny_m4ser, tiny_classifier):
    """Clips of different lengths padded together: the probabilities of each clip alone, which
    are also what the Brain's padded test batches gave them."""
    with open(tiny_m4ser.test_manifest, encoding="utf-8") as fin:
        entries = sorted(
            ((load_audio(e["wav"]), e["hypothesis"], utt) for utt, e in json.load(fin).items()),
            key=lambda item: item[0].shape[0],
        )
    chosen = []
    for wav, text, utt in entries:  # lengths at least 30 % apart
        if not chosen or wav.shape[0] > 1.3 * chosen[-1][0].shape[0]:
            chosen.append((wav, text, utt))
    assert len(chosen) >= 3, "the tiny corpus needs clips of clearly different lengths"
    clips, texts, ids = zip(*chosen)
    assert max(len(c) for c in clips) <= tiny_m4ser.max_audio_seconds * 16000  # no crop involved
    batch, rel = _pad_batch(clips, width=int(1.2 * max(len(c) for c in clips)), tail=0.5)
    batched = tiny_classifier.classify_batch(batch, rel, transcripts=list(texts))
    for row, (clip, text, utt) in enumerate(chosen):
        alone = tiny_classifier.classify_batch(clip.unsqueeze(0), transcripts=[text])
        torch.testing.assert_close(batched[0][row], alone[0][0], atol=1e-5, rtol=0)
        assert batched[3][row] == alone[3][0]
        brain = torch.tensor(tiny_m4ser.brain_probabilities[utt], dtype=alone[0].dtype)
        torch.testing.assert_close(alone[0][0], brain, atol=1e-5, rtol=0)
