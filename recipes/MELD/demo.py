#!/usr/bin/env python3
"""The MELD pipeline on a generated MELD look-alike, on a CPU, in a minute or two.

    python recipes/MELD/demo.py [--out meld_demo_output] [--epochs 10] [--per-split 70]

Steps: generate the corpus in the exact release layout (``m4ser_lobes.corpora.mini_meld``: CSVs,
mp4 clips, the release's media problems) -> save tiny random HuBERT and BERT models locally (no
download) -> ``recipes/MELD/train.py hparams/m4ser.yaml`` with the overrides below (prepare,
train, select on dev W-F1, test) -> print test ACC and W-F1. It is the MELD recipe's own code
(``hparams/meld_overrides.yaml`` included); only YAML values differ: encoder sources, sizes,
epochs, learning rate and the asserted counts. Rerunning resumes. Any ``--key=value`` of
train.py is passed on (e.g. ``--class_weights=balanced``, ``--use_gan=False``).
"""

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def import_train():
    """``recipes/MELD/train.py`` under a private module name (IEMOCAP has a ``train`` too)."""
    name = "_m4ser_meld_train"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "train.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def demo_words():
    """Words the tiny WordPiece vocabulary holds whole: IEMOCAP look-alike's and MELD's cues."""
    from m4ser_lobes.corpora.mini_iemocap import corpus_words
    from m4ser_lobes.corpora.mini_meld import CUE_WORDS

    return sorted(set(corpus_words()) | set(CUE_WORDS.values()))


def demo_overrides(out, epochs=10, seed=7, per_split=70):
    """The overrides that shrink the MELD recipe to the demo (returns a dict)."""
    from m4ser_lobes.corpora.mini_meld import generate_meld
    from m4ser_lobes.utils.testing import save_tiny_speech_encoder, save_tiny_text_encoder

    out = Path(out).resolve()
    corpus_dir = out / "corpus"
    if not (corpus_dir / "hypotheses.json").exists():
        generate_meld(corpus_dir, seed=0, per_split=per_split)
    speech = out / "models" / "tiny-hubert"
    text = out / "models" / "tiny-bert"
    if not (speech / "config.json").exists():
        save_tiny_speech_encoder(speech, kind="hubert", hidden_size=64, num_layers=2)
    if not (text / "config.json").exists():
        save_tiny_text_encoder(text, words=demo_words(), hidden_size=64, num_layers=2)
    return {
        "data_folder": str(corpus_dir / "MELD.Raw"),
        "hypotheses_file": str(corpus_dir / "hypotheses.json"),
        "results_folder": str(out / "results"),
        "experiment_name": "meld_demo",
        "seed": seed,
        "expected_counts": None,  # a generated subset: the release's counts are not asserted
        "speech_encoder_source": str(speech),
        "text_encoder_source": str(text),
        "d_model": 64,
        "nhead": 4,
        "cme_ffn": 128,
        "aec_ffn": 128,
        "discriminator_hidden": 64,
        "number_of_epochs": epochs,
        "batch_size": 8,
        "lr": 0.002,
        "num_workers": 0,
        "max_audio_seconds": 4.0,
        "ckpt_interval_minutes": 0,
    }


def argv_of(overrides, extra_args=()):
    """train.py's command line: the model YAML, the overrides, ``--device=cpu``, ``extra_args``.

    A ``--key=value`` in ``extra_args`` whose key is a demo override replaces it.
    """
    overrides = dict(overrides)
    passed_on = []
    for arg in extra_args:
        key, sep, value = arg[2:].partition("=")
        if arg.startswith("--") and sep and key in overrides:
            overrides[key] = value
        else:
            passed_on.append(arg)
    argv = [str(REPO / "hparams" / "m4ser.yaml")]
    argv += [f"--{key}={'null' if value is None else value}" for key, value in overrides.items()]
    return argv + ["--device=cpu", *passed_on]


def run(out="meld_demo_output", epochs=10, seed=7, per_split=70, extra_args=()):
    """Run the demo; returns ``(brain, test metrics dict)``."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)  # tiny models: one thread is several times faster on a CPU
    train = import_train()
    brain = train.main(argv_of(demo_overrides(out, epochs, seed, per_split), extra_args))
    with open(os.path.join(brain.hparams.output_folder, "test_metrics.json"), encoding="utf-8") as fin:
        return brain, json.load(fin)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="meld_demo_output", help="working folder (default: meld_demo_output)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-split", type=int, default=70,
                        help="CSV rows per split of the generated corpus (7 classes rotate)")
    args, extra = parser.parse_known_args(argv)
    from m4ser_lobes.experiment.config import ConfigError

    try:
        brain, metrics = run(args.out, args.epochs, args.seed, args.per_split, extra)
    except ConfigError as error:  # one line, no traceback
        sys.exit(f"error: {error}")
    print(f"\nMELD demo: test ACC {metrics['ACC']:.1f} %  W-F1 {metrics['W-F1']:.1f} %"
          f"  (UA {metrics['UA']:.1f} %; chance ACC {100 / len(metrics['classes']):.1f} %)")
    print(f"(outputs under {brain.hparams.output_folder})")


if __name__ == "__main__":
    main()
