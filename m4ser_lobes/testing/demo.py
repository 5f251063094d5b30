"""What the CPU demos of the recipes share (``recipes/IEMOCAP/demo.py``, ``recipes/MELD/demo.py``).

A demo is the recipe's own run (:func:`m4ser_lobes.experiment.run.plan_run` and ``train``) on
``hparams/m4ser.yaml`` with overrides: a generated corpus, tiny random encoders saved locally
(nothing is downloaded), the model and training sizes of :data:`DEMO_SIZES`, few epochs. A demo
script adds only its corpus: where the generated corpus is, its words and what it prints. Every
demo writes under ``demo_output/<corpus>/`` (ignored by git; ``make clean`` removes it).

Example
-------
>>> overrides, run_opts = demo_arguments({"fold": 1, "lr": 0.002}, ["--lr=0.01", "--noprogressbar"])
>>> overrides, run_opts["device"], run_opts["noprogressbar"]
({'fold': 1, 'lr': 0.01}, 'cpu', True)
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
#: The training values of a demo (after ``number_of_epochs``). Batches are the YAML's random
#: draws (Table I's); ``--bucketing=True`` would save little here: the generated clips are short
#: and alike (26 % padded audio in random batches of 8, 2 % bucketed).
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


def demo_arguments(overrides, extra_args=()):
    """``(overrides, run_opts)`` of a demo run: ``overrides`` updated by the ``--key=value`` of
    ``extra_args`` (read by SpeechBrain's own parser), on the CPU unless ``--device`` says otherwise.
    """
    import speechbrain as sb

    from m4ser_lobes.experiment.run import overrides_dict

    _, run_opts, extra = sb.parse_arguments([str(HPARAMS_FILE), *extra_args])
    run_opts = {k: run_opts[k] for k in run_opts.overridden_args}
    run_opts.setdefault("device", "cpu")
    return {**overrides, **overrides_dict(extra)}, run_opts


def run_training(corpus, overrides, extra_args=()):
    """Plan and train the demo run on one CPU thread (unless OMP_NUM_THREADS or --cpu_threads
    says otherwise; ``train`` sets and logs it, ``m4ser_lobes.experiment.run.choose_threads``).

    Returns
    -------
    brain : M4SERBrain
    metrics : dict
        Its ``test_metrics.json``.
    """
    from m4ser_lobes.experiment.run import plan_run, train

    if "OMP_NUM_THREADS" not in os.environ:
        # tiny models: one thread is several times faster on a CPU than several
        overrides = {"cpu_threads": 1, **overrides}
    overrides, run_opts = demo_arguments(overrides, extra_args)
    brain = train(plan_run(HPARAMS_FILE, overrides, corpus, run_opts))
    metrics_file = Path(brain.hparams.output_folder) / "test_metrics.json"
    return brain, json.loads(metrics_file.read_text(encoding="utf-8"))


def demo_parser(description, out):
    """The options every demo has: ``--out`` (default ``out``), ``--epochs``, ``--seed``."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=out, help=f"working folder (default: {out})")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default: 10)")
    parser.add_argument("--seed", type=int, default=7,
                        help="training seed and validation split seed (default: 7)")
    return parser
