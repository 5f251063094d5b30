#!/usr/bin/env python3
"""The whole pipeline on a generated IEMOCAP look-alike, on a CPU, in a few minutes.

    python recipes/IEMOCAP/demo.py [--out demo_output] [--epochs 10] [--fold 1]

Steps: generate the corpus (``m4ser_lobes.testing.mini_iemocap``) -> save tiny random HuBERT and BERT
models locally (no download) -> ``train.py hparams/m4ser.yaml`` with the overrides of
:func:`demo_overrides` and ``m4ser_lobes.testing.demo`` (prepare, train, validate, test) -> print WA/UA. It is the paper configuration's own code; only
YAML values differ: encoder sources, sizes, epochs and learning rate. Rerunning resumes.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def demo_overrides(out, fold=1, epochs=10, seed=7):
    """The YAML overrides that turn ``hparams/m4ser.yaml`` into the demo (returns a dict)."""
    from m4ser_lobes.testing.mini_iemocap import corpus_words, generate_iemocap
    from m4ser_lobes.experiment import demo

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


def run(out="demo_output", fold=1, epochs=10, seed=7, extra_args=()):
    """Run the demo; returns the test metrics dict."""
    from m4ser_lobes.experiment import demo
    from m4ser_lobes.testing.models import import_script

    train = import_script(HERE / "train.py")  # one module, as the tests and studies import it

    argv = demo.train_argv(demo_overrides(out, fold, epochs, seed), extra_args)
    return demo.run_training(train, argv)[1]


def main(argv=None):
    from m4ser_lobes.testing.demo import demo_parser

    parser = demo_parser(__doc__, "demo_output")
    parser.add_argument("--fold", type=int, default=1, help="test session (1-5)")
    args, extra = parser.parse_known_args(argv)
    metrics = run(args.out, args.fold, args.epochs, args.seed, extra)
    print(f"\nDemo, fold {args.fold}: test WA {metrics['WA']:.1f} %  UA {metrics['UA']:.1f} %")
    print(f"(outputs under {args.out}/results/demo/fold{args.fold}/seed{args.seed})")


if __name__ == "__main__":
    main()
