"""What the CPU demos of the recipes share (``recipes/IEMOCAP/demo.py``, ``recipes/MELD/demo.py``).

A demo is the recipe's own ``train.py`` on ``hparams/m4ser.yaml`` with YAML overrides: a
generated corpus, tiny random encoders saved locally (nothing is downloaded), the model and
training sizes of :data:`DEMO_SIZES`, few epochs. A demo script adds only its corpus: where the
generated corpus is, its words and what it prints.

Example
-------
>>> argv = train_argv({"fold": 1, "lr": 0.002, "expected_utterances": None},
...                   ["--lr=0.01", "--noprogressbar"])
>>> argv[1:]
['--fold=1', '--lr=0.01', '--expected_utterances=null', '--device=cpu', '--noprogressbar']
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HPARAMS_FILE = REPO / "hparams" / "m4ser.yaml"

#: Width of the tiny random encoders a demo saves (``hidden_size``; two layers each).
ENCODER_WIDTH = 64
#: The values that shrink ``hparams/m4ser.yaml`` to a CPU demo around those encoders.
DEMO_SIZES = {
    "d_model": ENCODER_WIDTH,
    "nhead": 4,
    "cme_ffn": 2 * ENCODER_WIDTH,
    "aec_ffn": 2 * ENCODER_WIDTH,
    "discriminator_hidden": ENCODER_WIDTH,
}
#: The training values of a demo (after ``number_of_epochs``).
DEMO_TRAINING = {
    "batch_size": 8,
    "lr": 0.002,
    "num_workers": 0,
    "max_audio_seconds": 4.0,
    "ckpt_interval_minutes": 0,
}


def tiny_encoders(models_folder, words):
    """Save a tiny random HuBERT and BERT under ``models_folder`` once; return their overrides.

    Arguments
    ---------
    models_folder : str or Path
        ``tiny-hubert/`` and ``tiny-bert/`` go there (kept when already saved: reruns resume).
    words : iterable of str
        Words the BERT WordPiece vocabulary holds whole (the corpus's).

    Returns
    -------
    dict
        ``speech_encoder_source`` and ``text_encoder_source`` (folder paths).
    """
    from m4ser_lobes.testing.models import save_tiny_speech_encoder, save_tiny_text_encoder

    speech = Path(models_folder) / "tiny-hubert"
    text = Path(models_folder) / "tiny-bert"
    if not (speech / "config.json").exists():
        save_tiny_speech_encoder(speech, kind="hubert", hidden_size=ENCODER_WIDTH, num_layers=2)
    if not (text / "config.json").exists():
        save_tiny_text_encoder(text, words=words, hidden_size=ENCODER_WIDTH, num_layers=2)
    return {"speech_encoder_source": str(speech), "text_encoder_source": str(text)}


def demo_overrides(out, corpus, words, epochs, seed):
    """All the overrides of a demo run in ``out``: the corpus's, the tiny encoders, the sizes.

    Arguments
    ---------
    out : Path
        The demo's working folder (``results/`` and ``models/`` go there).
    corpus : dict
        The corpus overrides (``data_folder``, ``hypotheses_file``, ``experiment_name`` ...).
    words : iterable of str
        Whole words of the tiny BERT vocabulary.
    epochs, seed : int
        ``number_of_epochs`` and ``seed``.

    Returns
    -------
    dict
    """
    out = Path(out)
    return {
        **corpus,
        "results_folder": str(out / "results"),
        "seed": seed,
        **tiny_encoders(out / "models", words),
        **DEMO_SIZES,
        "number_of_epochs": epochs,
        **DEMO_TRAINING,
    }


def train_argv(overrides, extra_args=()):
    """train.py's command line: the model YAML, the overrides, ``--device=cpu``, ``extra_args``.

    A ``--key=value`` in ``extra_args`` whose key is an override replaces it (in place); anything
    else is passed on after ``--device=cpu``.
    """
    from m4ser_lobes.testing.models import override_argv

    overrides = dict(overrides)
    passed_on = []
    for arg in extra_args:
        key, sep, value = arg[2:].partition("=")
        if arg.startswith("--") and sep and key in overrides:
            overrides[key] = value
        else:
            passed_on.append(arg)
    return override_argv(HPARAMS_FILE, overrides, "--device=cpu", *passed_on)


def run_training(train, argv):
    """Run ``train.main(argv)`` on one CPU thread (unless OMP_NUM_THREADS says otherwise).

    Returns
    -------
    brain : M4SERBrain
    metrics : dict
        Its ``test_metrics.json``.
    """
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)  # tiny models: one thread is several times faster on a CPU
    brain = train.main(argv)
    metrics_file = Path(brain.hparams.output_folder) / "test_metrics.json"
    return brain, json.loads(metrics_file.read_text(encoding="utf-8"))


def demo_parser(description, out):
    """The options every demo has: ``--out`` (default ``out``), ``--epochs``, ``--seed``."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=out, help=f"working folder (default: {out})")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    return parser
