#!/usr/bin/env python3
r"""Five-fold leave-one-session-out cross-validation of M4SER on IEMOCAP, resumable.

    python recipes/IEMOCAP/cross_validate.py hparams/m4ser.yaml \
        --data_folder=/data/IEMOCAP_full_release --hypotheses_file=hyps.json \
        [--folds=[1,2,3,4,5]] [--launcher="torchrun --standalone --nproc_per_node=4"] \
        [any other train.py override, e.g. --experiment_name=no_gan --use_gan=False]

Options are keys of the YAML, as for train.py (``folds`` and ``launcher`` are in
``hparams/iemocap.yaml``). Each fold is ``train.py <hparams> --fold=k <the same arguments>`` in
its own process (stopped with this one: a killed cross-validation leaves no orphan trainer), so
folds share no state and an interrupted fold resumes from its own checkpoints. Every fold is
planned and checked before any runs (``m4ser_lobes.experiment.run.plan_run``): a fold folder
made with other settings is refused with the differences, unless ``--overwrite=True``. A fold
with its test results and the same settings is skipped: rerun the same command after any
interruption. When every fold has finished, :mod:`m4ser_lobes.experiment.report` writes
``<results_folder>/<experiment_name>/cv_report/`` (per-fold, mean ± std and pooled WA/UA/W-F1,
the averaged confusion matrix of Fig. 12, the loss curves of Fig. 8);
``python -m m4ser_lobes.experiment.report <results_folder>/<experiment_name>`` rebuilds it alone.
"""

import json
import logging
import shlex
import sys
import time
from pathlib import Path

TRAIN = Path(__file__).resolve().parent / "train.py"
logger = logging.getLogger("cross_validate")


def fold_metrics_line(folder):
    """``WA .. UA .. W-F1 ..`` from a finished fold's ``test_metrics.json``.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> _ = (folder / "test_metrics.json").write_text(json.dumps({"WA": 75, "UA": 70.5, "W-F1": 74}))
    >>> fold_metrics_line(folder)
    'WA 75.00  UA 70.50  W-F1 74.00'
    """
    metrics = json.loads((Path(folder) / "test_metrics.json").read_text(encoding="utf-8"))
    return "  ".join(f"{key} {float(metrics[key]):.2f}" for key in ("WA", "UA", "W-F1"))


def plan_folds(argv):
    """Plan and check every fold before any runs; returns ``{fold: Run}`` (refusals: one line)."""
    import speechbrain as sb

    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.experiment import run as runs
    from m4ser_lobes.experiment.settings import ConfigError

    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    overrides = runs.overrides_dict(overrides)
    if "fold" in overrides:
        raise ConfigError("the fold is set per run by cross_validate.py: choose folds with "
                          "--folds=[1,2] (a YAML list)")
    first = runs.plan_run(hparams_file, overrides, IEMOCAP, run_opts)
    plans = {fold: runs.plan_run(hparams_file, {**overrides, "fold": fold}, IEMOCAP, run_opts)
             for fold in sorted(set(first.values["folds"]))}
    conflicts = [c for c in map(runs.recorded_conflict, plans.values()) if c]
    if conflicts and not first.values["overwrite"]:
        raise runs.refusal("; ".join(conflicts))
    return plans


def train_fold(fold, plan, argv):
    """Run train.py for one fold in a child process that dies with this one."""
    from m4ser_lobes.utils.processes import run_child

    launcher = plan.values["launcher"]
    runner = shlex.split(launcher) if launcher else [sys.executable]
    command = [*runner, str(TRAIN), *argv, f"--fold={fold}"]
    logger.info("fold %d: training -> %s\n  %s", fold, plan.output_folder, shlex.join(command))
    start = time.monotonic()
    returncode = run_child(command)
    if returncode != 0 or not (plan.output_folder / "test_metrics.json").is_file():
        sys.exit(f"error: fold {fold} failed (exit code {returncode}); see "
                 f"{plan.output_folder / 'log.txt'}. Fix the cause and rerun the same command: "
                 f"finished folds are skipped and fold {fold} resumes from its checkpoints.")
    logger.info("fold %d: finished in %.0f s: %s", fold, time.monotonic() - start,
                fold_metrics_line(plan.output_folder))


def main(argv=None):
    """Run the unfinished folds, then write the report; returns the report dict."""
    from m4ser_lobes.experiment.report import REPORT_FOLDER, build_report, summary_line
    from m4ser_lobes.experiment.run import is_finished, one_line_errors

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else list(argv)
    with one_line_errors():
        plans = plan_folds(argv)
    for fold, plan in plans.items():
        if is_finished(plan):
            logger.info("fold %d: skipped, already finished: %s", fold,
                        fold_metrics_line(plan.output_folder))
        else:
            train_fold(fold, plan, argv)
    values = next(iter(plans.values())).values
    experiment_dir = Path(values["results_folder"]) / values["experiment_name"]
    report = build_report({k: p.output_folder for k, p in plans.items()},
                          experiment_dir / REPORT_FOLDER, experiment=experiment_dir.name)
    logger.info("%s", summary_line(report))
    logger.info("report: %s", experiment_dir / REPORT_FOLDER / "cv_report.md")
    return report


if __name__ == "__main__":
    main()
