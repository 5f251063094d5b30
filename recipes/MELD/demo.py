#!/usr/bin/env python3
"""The MELD pipeline on a generated MELD look-alike, on a CPU, in a minute or two.

    python recipes/MELD/demo.py [--out demo_output/meld] [--epochs 10] [--per-split 70] [--key=value ...]

Steps: generate the corpus in the exact release layout (``m4ser_lobes.testing.mini_meld``: CSVs,
mp4 clips, the release's media problems) -> save tiny random HuBERT and BERT models locally (no
download) -> the MELD run of ``hparams/m4ser.yaml`` (with ``hparams/meld.yaml``) and the
overrides of :func:`demo_overrides` (prepare, train, select on dev W-F1, test) -> print test ACC
and W-F1. It is the MELD recipe's own code; only YAML values differ: encoder sources, sizes,
epochs, learning rate and the asserted counts. Rerunning resumes. Any ``--key=value`` of
train.py is passed on (e.g. ``--class_weights=balanced``, ``--use_gan=False``).
"""

from pathlib import Path

OUT = "demo_output/meld"


def demo_words():
    """Words the tiny WordPiece vocabulary holds whole: IEMOCAP look-alike's and MELD's cues."""
    from m4ser_lobes.testing.mini_iemocap import corpus_words
    from m4ser_lobes.testing.mini_meld import CUE_WORDS

    return sorted(set(corpus_words()) | set(CUE_WORDS.values()))


def demo_overrides(out, epochs=10, seed=7, per_split=70):
    """The overrides that shrink the MELD recipe to the demo (returns a dict)."""
    from m4ser_lobes.testing.mini_meld import generate_meld
    from m4ser_lobes.testing import demo

    out = Path(out).resolve()
    corpus_dir = out / "corpus"
    if not (corpus_dir / "hypotheses.json").exists():
        generate_meld(corpus_dir, seed=0, per_split=per_split)
    corpus = {
        "data_folder": str(corpus_dir / "MELD.Raw"),
        "hypotheses_file": str(corpus_dir / "hypotheses.json"),
        "experiment_name": "meld_demo",
        "expected_counts": None,  # a generated subset: the release's counts are not asserted
    }
    return demo.demo_overrides(out, corpus, demo_words(), epochs, seed)


def run(out=OUT, epochs=10, seed=7, per_split=70, extra_args=()):
    """Run the demo; returns ``(brain, test metrics dict)``."""
    from m4ser_lobes.corpora.meld import MELD
    from m4ser_lobes.testing.demo import run_training

    return run_training(MELD, demo_overrides(out, epochs, seed, per_split), extra_args)


def main(argv=None):
    from m4ser_lobes.experiment.run import one_line_errors
    from m4ser_lobes.testing.demo import demo_parser

    parser = demo_parser(__doc__, OUT)
    parser.add_argument("--per-split", type=int, default=70,
                        help="CSV rows per split of the generated corpus (7 classes rotate)")
    args, extra = parser.parse_known_args(argv)
    with one_line_errors():
        brain, metrics = run(args.out, args.epochs, args.seed, args.per_split, extra)
    print(f"\nMELD demo: test ACC {metrics['ACC']:.1f} %  W-F1 {metrics['W-F1']:.1f} %"
          f"  (UA {metrics['UA']:.1f} %; chance ACC {100 / len(metrics['classes']):.1f} %)")
    print(f"(outputs under {brain.hparams.output_folder})")


if __name__ == "__main__":
    main()
