#!/usr/bin/env python3
"""The whole pipeline on a generated IEMOCAP look-alike, on a CPU, in a few minutes.

    python recipes/IEMOCAP/demo.py [--out demo_output] [--epochs 10] [--fold 1]

Steps: generate the corpus (``m4ser_lobes.corpora.mini_iemocap``) -> save tiny random HuBERT and BERT
models locally (no download) -> ``train.py hparams/m4ser.yaml`` with the overrides below
(prepare, train, validate, test) -> print WA/UA. It is the paper configuration's own code; only
YAML values differ: encoder sources, sizes, epochs and learning rate. Rerunning resumes.
"""

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def demo_overrides(out, fold=1, epochs=10, seed=7):
    """The YAML overrides that turn ``hparams/m4ser.yaml`` into the demo (returns a dict)."""
    from m4ser_lobes.corpora.mini_iemocap import corpus_words, generate_iemocap
    from m4ser_lobes.utils.testing import save_tiny_speech_encoder, save_tiny_text_encoder

    out = Path(out).resolve()
    corpus_dir = out / "corpus"
    if not (corpus_dir / "hypotheses.json").exists():
        generate_iemocap(corpus_dir, seed=0)
    speech = out / "models" / "tiny-hubert"
    text = out / "models" / "tiny-bert"
    if not (speech / "config.json").exists():
        save_tiny_speech_encoder(speech, kind="hubert", hidden_size=64, num_layers=2)
    if not (text / "config.json").exists():
        save_tiny_text_encoder(text, words=corpus_words(), hidden_size=64, num_layers=2)
    return {
        "data_folder": str(corpus_dir / "IEMOCAP_full_release"),
        "hypotheses_file": str(corpus_dir / "hypotheses.json"),
        "results_folder": str(out / "results"),
        "experiment_name": "demo",
        "fold": fold,
        "seed": seed,
        "expected_utterances": None,
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


def run(out="demo_output", fold=1, epochs=10, seed=7, extra_args=()):
    """Run the demo; returns the test metrics dict."""
    sys.path.insert(0, str(HERE))
    import torch
    import train

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)  # tiny models: one thread is several times faster on a CPU

    overrides = demo_overrides(out, fold, epochs, seed)
    passed_on = []
    for arg in extra_args:  # `--key=value` replaces a demo value; anything else is passed on
        key, sep, value = arg[2:].partition("=")
        if arg.startswith("--") and sep and key in overrides:
            overrides[key] = value
        else:
            passed_on.append(arg)
    argv = [str(REPO / "hparams" / "m4ser.yaml")]
    argv += [f"--{key}={'null' if value is None else value}" for key, value in overrides.items()]
    argv += ["--device=cpu", *passed_on]
    brain = train.main(argv)
    with open(os.path.join(brain.hparams.output_folder, "test_metrics.json"), encoding="utf-8") as fin:
        return json.load(fin)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_output", help="working folder (default: demo_output)")
    parser.add_argument("--fold", type=int, default=1, help="test session (1-5)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args, extra = parser.parse_known_args(argv)
    metrics = run(args.out, args.fold, args.epochs, args.seed, extra)
    print(f"\nDemo, fold {args.fold}: test WA {metrics['WA']:.1f} %  UA {metrics['UA']:.1f} %")
    print(f"(outputs under {args.out}/results/demo/fold{args.fold}/seed{args.seed})")


if __name__ == "__main__":
    main()
