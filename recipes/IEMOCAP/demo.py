#!/usr/bin/env python3
"""The whole pipeline on a generated IEMOCAP look-alike, on a CPU, in a few minutes.

    python recipes/IEMOCAP/demo.py [--out demo_output/iemocap] [--epochs 10] [--fold 1] [--key=value ...]

Steps: generate the corpus (``m4ser_lobes.testing.mini_iemocap``) -> save tiny random HuBERT and BERT
models locally (no download) -> the IEMOCAP run of ``hparams/m4ser.yaml`` with the overrides of
:func:`demo_overrides` (``m4ser_lobes.experiment.run``: prepare, train, validate, test) -> print
WA/UA. It is the paper configuration's own code; only YAML values differ: encoder sources,
sizes, epochs and learning rate. Rerunning resumes; any ``--key=value`` of train.py is passed on.
"""

from pathlib import Path

OUT = "demo_output/iemocap"


def demo_overrides(out, fold=1, epochs=10, seed=7):
    """The YAML overrides that turn ``hparams/m4ser.yaml`` into the demo (returns a dict)."""
    from m4ser_lobes.testing.mini_iemocap import corpus_words, generate_iemocap
    from m4ser_lobes.testing import demo

    out = Path(out).resolve()
    corpus_dir = out / "corpus"
    if not (corpus_dir / "hypotheses.json").exists():
        generate_iemocap(corpus_dir, seed=0)
    corpus = {
        "data_folder": str(corpus_dir / "IEMOCAP_full_release"),
        "hypotheses_file": str(corpus_dir / "hypotheses.json"),
        "experiment_name": "demo",
        "fold": fold,
        "expected_utterances": None,
    }
    return demo.demo_overrides(out, corpus, corpus_words(), epochs, seed)


def run(out=OUT, fold=1, epochs=10, seed=7, extra_args=()):
    """Run the demo; returns the test metrics dict."""
    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.testing.demo import run_training

    return run_training(IEMOCAP, demo_overrides(out, fold, epochs, seed), extra_args)[1]


def main(argv=None):
    from m4ser_lobes.testing.demo import demo_parser

    parser = demo_parser(__doc__, OUT)
    parser.add_argument("--fold", type=int, default=1, help="test session (1-5)")
    args, extra = parser.parse_known_args(argv)
    from m4ser_lobes.experiment.run import one_line_errors

    with one_line_errors():
        metrics = run(args.out, args.fold, args.epochs, args.seed, extra)
    print(f"\nDemo, fold {args.fold}: test WA {metrics['WA']:.1f} %  UA {metrics['UA']:.1f} %")
    print(f"(outputs under {args.out}/results/demo/fold{args.fold}/seed{args.seed})")


if __name__ == "__main__":
    main()
