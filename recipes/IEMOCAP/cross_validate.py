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
building any model. When every requested fold has finished, :mod:`m4ser_lobes.experiment.report` writes
``<results_folder>/<experiment_name>/cv_report/``: per-fold, mean ± std and pooled WA/UA/W-F1
(``cv_report.md``, ``cv_report.json``), the averaged confusion matrix (Fig. 12,
``confusion_matrix_avg.png``) and the loss curves incl. L_D and L_G (Fig. 8, ``loss_curves.png``).
``python -m m4ser_lobes.experiment.report <results_folder>/<experiment_name>`` rebuilds it alone.

Before any fold runs, every fold's configuration is validated as train.py does it
(``m4ser_lobes.experiment.config``), and each existing fold folder's recorded settings
(``fingerprint.json``) are compared with this command's: a fold made with other settings is
neither skipped nor resumed (the report would show the old run's numbers); the command is
refused with the differences, unless ``--overwrite=True`` (train.py then moves the old fold run
aside and trains it again). The report records the configuration (``configuration.json`` of the
folds) so two ablation reports can be told apart.
"""

import argparse
import json
import logging
import shlex
import subprocess
import sys
import time
from pathlib import Path

from m4ser_lobes.experiment import config

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from m4ser_lobes.corpora.iemocap import HPARAM_RULES  # noqa: E402

RULES = {**config.SCHEMA, **HPARAM_RULES}  # the rules train.py checks
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
    """The plain values of the YAML for one fold, as train.py would see them, validated; builds
    no model.

    ``!ref`` and overrides are resolved by HyperPyYAML; objects (``!new:``...) read as ``None``.
    Run options such as ``--device`` are separated exactly as train.py does it. Raises
    :class:`m4ser_lobes.experiment.config.ConfigError` (one line) on a value train.py would refuse.
    """
    import speechbrain as sb

    from m4ser_lobes.experiment.recipe import check_configuration

    _, run_opts, overrides = sb.parse_arguments([hparams_file, f"--fold={fold}", *train_args])
    return check_configuration(hparams_file, overrides, run_opts, RULES)[0]


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


def plan_folds(hparams_file, folds, train_args):
    """Validate every fold and compare it with its folder, before any fold runs.

    Returns
    -------
    experiment_dir : Path
    plans : dict
        fold -> ``(output_folder, conflict)``; ``conflict`` is None or what differs from the
        run already in the folder (only with ``--overwrite=True``; otherwise refused here).
    """
    plans, experiment_dir, refused = {}, None, []
    for fold in folds:
        values = resolve_hparams(hparams_file, train_args, fold)
        output_folder = Path(values["output_folder"])
        experiment_dir = Path(values["results_folder"]) / values["experiment_name"]
        conflict = config.rerun_conflict(output_folder, config.run_settings(values, RULES))
        if conflict is not None and not values["overwrite"]:
            refused.append(f"fold {fold}: {conflict}")
        plans[fold] = (output_folder, conflict)
    if refused:
        raise config.rerun_error("; ".join(refused))
    logger.info("configuration: %s", config.describe(values)["summary"])
    return experiment_dir, plans


def run_folds(hparams_file, folds, train_args, launcher=None, train_script=TRAIN):
    """Train every unfinished fold (skipping finished ones); returns ``(experiment_dir, fold_dirs)``."""
    experiment_dir, plans = plan_folds(hparams_file, folds, train_args)
    for fold, (output_folder, conflict) in plans.items():
        if conflict is None and (output_folder / FINISHED_MARKER).is_file():
            logger.info("fold %d: skipped, already finished (%s): %s", fold,
                        output_folder / FINISHED_MARKER, fold_metrics_line(output_folder))
            continue
        if conflict is not None:
            logger.warning("fold %d: overwrite=True: %s; training it again", fold, conflict)
        train_fold(hparams_file, fold, train_args, output_folder, launcher, train_script)
    return experiment_dir, {fold: folder for fold, (folder, _) in plans.items()}


def main(argv=None, train_script=TRAIN):
    """Run the folds, then write the report; returns the report dict."""
    from m4ser_lobes.experiment.report import REPORT_FOLDER, build_report, summary_line

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    hparams_file, folds, launcher, train_args = parse_args(sys.argv[1:] if argv is None else argv)
    logger.info("folds %s of %s", " ".join(map(str, folds)), hparams_file)
    try:
        experiment_dir, fold_dirs = run_folds(hparams_file, folds, train_args, launcher,
                                              train_script)
    except config.ConfigError as error:
        raise SystemExit(f"error: {error}") from error
    report = build_report(fold_dirs, experiment_dir / REPORT_FOLDER, experiment=experiment_dir.name)
    if report.get("configuration"):
        logger.info("configuration: %s", report["configuration"]["summary"])
    logger.info("%s", summary_line(report))
    logger.info("report: %s", experiment_dir / REPORT_FOLDER / "cv_report.md")
    return report


if __name__ == "__main__":
    main()
