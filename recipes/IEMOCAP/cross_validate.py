#!/usr/bin/env python3
r"""Five-fold leave-one-session-out cross-validation of M4SER on IEMOCAP, resumable.

    python recipes/IEMOCAP/cross_validate.py hparams/m4ser.yaml \
        --data_folder=/data/IEMOCAP_full_release --hypotheses_file=hyps.json \
        [--folds 1 2 3 4 5] [--launcher "torchrun --standalone --nproc_per_node=4"] \
        [any other train.py override, e.g. --experiment_name=no_gan --use_gan=False]

Each fold is ``train.py <hparams> --fold=k <overrides>`` in its own process, so folds share no
state and an interrupted fold resumes from its own checkpoints. A fold whose
``test_metrics.json`` exists is finished and skipped: rerun the same command after any
interruption. Fold k's folder is the ``output_folder`` that train.py computes from the same YAML
and overrides (``<results_folder>/<experiment_name>/fold<k>/seed<seed>/``), read here without
building any model. When every requested fold has finished, :mod:`m4ser_lobes.report` writes
``<results_folder>/<experiment_name>/cv_report/``: per-fold, mean ± std and pooled WA/UA/W-F1
(``cv_report.md``, ``cv_report.json``), the averaged confusion matrix (Fig. 12,
``confusion_matrix_avg.png``) and the loss curves incl. L_D and L_G (Fig. 8, ``loss_curves.png``).
``python -m m4ser_lobes.report <results_folder>/<experiment_name>`` rebuilds it alone.
"""

import argparse
import json
import logging
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from m4ser_lobes.fileio import load_yaml_values

HERE = Path(__file__).resolve().parent
TRAIN = HERE / "train.py"
FOLDS = (1, 2, 3, 4, 5)
FINISHED_MARKER = "test_metrics.json"

logger = logging.getLogger("cross_validate")


def parse_args(argv):
    """``(hparams_file, folds, launcher, train_args)``; unknown arguments go to train.py.

    Example
    -------
    >>> parse_args(["h.yaml", "--folds", "2", "1", "--lr=0.1", "--device=cpu"])
    ('h.yaml', [1, 2], None, ['--lr=0.1', '--device=cpu'])
    """
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # `--fold=1` must not pass for `--folds`
    )
    parser.add_argument("hparams_file", help="the train.py YAML, e.g. hparams/m4ser.yaml")
    parser.add_argument("--folds", type=int, nargs="+", default=list(FOLDS), choices=FOLDS,
                        help="test sessions to run (default: 1 2 3 4 5)")
    parser.add_argument("--launcher", default=None,
                        help="command that runs train.py (default: this Python), e.g. "
                             "'torchrun --standalone --nproc_per_node=4'")
    args, train_args = parser.parse_known_args(argv)
    for arg in train_args:
        if arg == "--fold" or arg.startswith("--fold="):
            parser.error("the fold is set per run by cross_validate.py: choose folds with --folds 1 2 ...")
    return args.hparams_file, sorted(set(args.folds)), args.launcher, train_args


def resolve_hparams(hparams_file, train_args, fold):
    """The plain values of the YAML for one fold, as train.py would see them; builds no model.

    ``!ref`` and overrides are resolved by HyperPyYAML; objects (``!new:``...) read as ``None``.
    Run options such as ``--device`` are separated exactly as train.py does it.
    """
    import speechbrain as sb
    from hyperpyyaml import resolve_references

    _, _, overrides = sb.parse_arguments([hparams_file, f"--fold={fold}", *train_args])
    with open(hparams_file, encoding="utf-8") as fin:
        try:
            resolved = resolve_references(fin, overrides).getvalue()
        except ValueError as error:
            unset = re.search(r"'(\w+)' is a !PLACEHOLDER", str(error))
            if unset is None:
                raise
            raise SystemExit(
                f"{hparams_file}: {unset.group(1)} has no value; pass it on the command line: "
                f"--{unset.group(1)}=<value>"
            ) from error
    return load_yaml_values(resolved)


def fold_metrics_line(folder):
    """``WA .. UA .. W-F1 ..`` from a finished fold's ``test_metrics.json``.

    Example
    -------
    >>> import json
    >>> folder = getfixture("tmp_path")
    >>> _ = (folder / "test_metrics.json").write_text(json.dumps({"WA": 75, "UA": 70.5, "W-F1": 74}))
    >>> fold_metrics_line(folder)
    'WA 75.00  UA 70.50  W-F1 74.00'
    """
    with open(Path(folder) / FINISHED_MARKER, encoding="utf-8") as fin:
        metrics = json.load(fin)
    return "  ".join(f"{key} {float(metrics[key]):.2f}" for key in ("WA", "UA", "W-F1"))


def train_fold(hparams_file, fold, train_args, output_folder, launcher=None, train_script=TRAIN):
    """Run train.py for one fold in a child process; raise a clear error when it fails."""
    runner = shlex.split(launcher) if launcher else [sys.executable]
    command = [*runner, str(train_script), hparams_file, f"--fold={fold}", *train_args]
    logger.info("fold %d: training -> %s\n  %s", fold, output_folder, shlex.join(command))
    start = time.monotonic()
    returncode = subprocess.run(command, check=False).returncode
    if returncode != 0 or not (output_folder / FINISHED_MARKER).is_file():
        raise SystemExit(
            f"fold {fold} failed (exit code {returncode}, no {output_folder / FINISHED_MARKER}); "
            f"see {output_folder / 'log.txt'}. Fix the cause and rerun the same command: "
            f"finished folds are skipped and fold {fold} resumes from {output_folder / 'save'}."
        )
    logger.info("fold %d: finished in %.0f s: %s", fold, time.monotonic() - start,
                fold_metrics_line(output_folder))


def run_folds(hparams_file, folds, train_args, launcher=None, train_script=TRAIN):
    """Train every unfinished fold (skipping finished ones); returns ``(experiment_dir, fold_dirs)``."""
    fold_dirs, experiment_dir = {}, None
    for fold in folds:
        hparams = resolve_hparams(hparams_file, train_args, fold)
        output_folder = Path(hparams["output_folder"])
        experiment_dir = Path(hparams["results_folder"]) / hparams["experiment_name"]
        fold_dirs[fold] = output_folder
        if (output_folder / FINISHED_MARKER).is_file():
            logger.info("fold %d: skipped, already finished (%s): %s", fold,
                        output_folder / FINISHED_MARKER, fold_metrics_line(output_folder))
            continue
        train_fold(hparams_file, fold, train_args, output_folder, launcher, train_script)
    return experiment_dir, fold_dirs


def main(argv=None, train_script=TRAIN):
    """Run the folds, then write the report; returns the report dict."""
    from m4ser_lobes.report import REPORT_FOLDER, build_report, summary_line

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    hparams_file, folds, launcher, train_args = parse_args(sys.argv[1:] if argv is None else argv)
    logger.info("folds %s of %s", " ".join(map(str, folds)), hparams_file)
    experiment_dir, fold_dirs = run_folds(hparams_file, folds, train_args, launcher, train_script)
    report = build_report(fold_dirs, experiment_dir / REPORT_FOLDER, experiment=experiment_dir.name)
    logger.info("%s", summary_line(report))
    logger.info("report: %s", experiment_dir / REPORT_FOLDER / "cv_report.md")
    return report


if __name__ == "__main__":
    main()
