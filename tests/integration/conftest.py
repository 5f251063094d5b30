"""Fixtures of the integration tests: ONE tiny M4SER trained and exported per test session.

``tiny_m4ser`` trains the paper configuration's own code (``recipes/IEMOCAP/train.py`` with
``hparams/m4ser.yaml``) for one epoch on fold 1 of a small generated IEMOCAP look-alike, with
tiny random encoders, then exports it with ``m4ser-export`` (a tiny Whisper bundled as the ASR
model): about 30-60 s on 2 cores, so every test that uses it is marked ``slow`` here. Tests must
treat what it returns as read-only.
"""

import json
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[2]


#: Fixtures that train a model (``meld_run``: ``test_meld_recipe.py``).
TRAINING_FIXTURES = {"tiny_m4ser", "meld_run"}


def pytest_collection_modifyitems(items):
    """Mark ``slow`` every test of this folder that needs a trained model."""
    here = Path(__file__).parent
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())) and \
                Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.slow)


class TinyM4SER(NamedTuple):
    """What :func:`tiny_m4ser` built."""

    run: Path  # training output folder (hyperparams.yaml, save/, predictions.csv ...)
    export: Path  # the exported inference folder
    whisper: Path  # the tiny Whisper folder (also bundled in export/asr)
    test_manifest: Path  # fold-1 test manifest the Brain was tested on
    test_batch_size: int  # the Brain's test batch size (batches are padded, in manifest order)
    max_audio_seconds: float  # the Brain's crop
    brain_probabilities: dict  # utterance id -> full-precision test probabilities (Brain)
    classes: list  # class names in index order


@pytest.fixture(scope="session")
def tiny_m4ser(tmp_path_factory):
    """Train (1 epoch, fold 1) and export a tiny M4SER; see :class:`TinyM4SER`."""
    from m4ser_lobes.inference import export
    from m4ser_lobes.testing.mini_iemocap import corpus_words, generate_iemocap
    from m4ser_lobes.testing.models import (
        TINY_OVERRIDES,
        save_tiny_speech_encoder,
        save_tiny_text_encoder,
        save_tiny_whisper,
    )

    out = tmp_path_factory.mktemp("tiny_m4ser")
    # The demo's folder layout, pre-filled with a smaller corpus and smaller encoders.
    corpus = generate_iemocap(out / "corpus", seed=0, utterances_per_dialog=4)
    speech = save_tiny_speech_encoder(out / "models" / "tiny-hubert", hidden_size=32)
    text = save_tiny_text_encoder(out / "models" / "tiny-bert", words=corpus_words())
    whisper = save_tiny_whisper(out / "models" / "tiny-whisper", words=corpus_words())

    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.experiment.run import plan_run, train
    from m4ser_lobes.testing.demo import HPARAMS_FILE, demo_overrides

    overrides = demo_overrides(out, {"experiment_name": "demo", "fold": 1,
                                     "expected_utterances": None}, corpus_words(), 1, 7)
    overrides.update(
        TINY_OVERRIDES,
        number_of_epochs=1,
        batch_size=8,
        data_folder=str(corpus.root),
        hypotheses_file=str(corpus.hypotheses),
        speech_encoder_source=str(speech),
        text_encoder_source=str(text),
    )
    brain = train(plan_run(HPARAMS_FILE, overrides, IEMOCAP, {"device": "cpu"}))
    hparams = brain.hparams
    run = Path(hparams.output_folder)
    probabilities = dict(zip(brain.predictions["ids"], brain.predictions["prob"]))
    classes = [hparams.label_encoder.decode_ndim(i) for i in range(len(hparams.label_encoder))]
    test_manifest = Path(hparams.test_annotation)
    test_batch_size = hparams.test_dataloader_options["batch_size"]
    max_audio_seconds = hparams.max_audio_seconds
    del brain, hparams

    exported = out / "export"
    status = export.main(
        [
            "--checkpoint",
            str(run),
            "--out",
            str(exported),
            "--asr-model",
            str(whisper),
            "--repo-id",
            "m4ser/tiny-test",
        ]
    )
    assert status == 0
    assert json.loads((exported / "export_info.json").read_text())["best_checkpoint"]
    return TinyM4SER(
        run,
        exported,
        whisper,
        test_manifest,
        test_batch_size,
        max_audio_seconds,
        probabilities,
        classes,
    )


@pytest.fixture(scope="session")
def tiny_classifier(tiny_m4ser):
    """The exported tiny model loaded once with ``M4SERClassifier`` (CPU)."""
    from m4ser_lobes.inference.classifier import M4SERClassifier

    return M4SERClassifier.from_hparams(source=str(tiny_m4ser.export), run_opts={"device": "cpu"})
