"""Finished fold folders of an experiment, as the cross-validation report and the figures read
them: :func:`find_fold_dirs` (``<experiment>/fold<k>/seed<s>/``), :func:`collect_fold_results`
(one :class:`FoldResult` per fold) and :func:`read_predictions` (a ``predictions.csv``, the
probabilities by class name).
"""

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from m4ser_lobes.experiment.run import CONFIGURATION_FILE

logger = logging.getLogger(__name__)

METRIC_FILE = "test_metrics.json"
PREDICTIONS_FILE = "predictions.csv"
HISTORY_FILE = "history.json"
#: The figures every fold's ``test_metrics.json`` holds (the report's columns).
SUMMARY_KEYS = ("WA", "UA", "W-F1")


@dataclass
class FoldResult:
    """What one finished fold folder holds.

    ``metrics`` is ``test_metrics.json``; ``true``/``predicted`` are the class *names* from
    ``predictions.csv`` (one per test utterance, in file order); ``history`` is ``history.json``
    (an empty list when the file is absent); ``configuration`` is ``configuration.json`` (None
    when absent).
    """

    fold: int
    folder: Path
    metrics: dict
    ids: list
    true: list
    predicted: list
    history: list = field(default_factory=list)
    configuration: dict = None
    probabilities: list = None  # one {class name: probability} per utterance (file order)

    @property
    def classes(self):
        """The fold's class names in its label encoder's order."""
        return list(self.metrics["classes"])


# ------------------------------------------------------------------------------ reading folds
def find_fold_dirs(experiment_dir, folds=None, seed=None):
    """The ``fold<k>/seed<seed>/`` folders of one experiment, by fold number.

    Arguments
    ---------
    experiment_dir : str or Path
        ``<results_folder>/<experiment_name>``.
    folds : iterable of int, optional
        Folds to take (default: every ``fold<k>`` folder present).
    seed : int, optional
        Needed only when a fold folder holds several ``seed<s>`` folders.

    Returns
    -------
    dict
        fold -> Path, sorted by fold.

    Example
    -------
    >>> exp = getfixture("tmp_path")
    >>> for k in (2, 1):
    ...     (exp / f"fold{k}" / "seed7").mkdir(parents=True)
    >>> {k: p.relative_to(exp).as_posix() for k, p in find_fold_dirs(exp).items()}
    {1: 'fold1/seed7', 2: 'fold2/seed7'}
    """
    experiment_dir = Path(experiment_dir)
    if folds is None:
        found = [re.fullmatch(r"fold(\d+)", p.name) for p in experiment_dir.glob("fold*")]
        folds = sorted(int(m.group(1)) for m in found if m)
    if not folds:
        raise FileNotFoundError(
            f"no fold<k>/ folder in {experiment_dir}: pass the experiment folder "
            "<results_folder>/<experiment_name> that recipes/IEMOCAP/train.py wrote into"
        )
    return {k: _seed_dir(experiment_dir / f"fold{k}", seed) for k in sorted(folds)}


def _seed_dir(fold_dir, seed):
    if seed is not None:
        return fold_dir / f"seed{seed}"
    seeds = sorted(p for p in fold_dir.glob("seed*") if p.is_dir())
    if len(seeds) == 1:
        return seeds[0]
    if not seeds:
        raise FileNotFoundError(
            f"no seed<s>/ folder in {fold_dir}: this fold was never started; run "
            "recipes/IEMOCAP/cross_validate.py (it trains missing folds) or leave the fold out"
        )
    raise ValueError(
        f"{fold_dir} holds several runs ({', '.join(p.name for p in seeds)}): choose one with "
        "--seed"
    )


def collect_fold_results(fold_dirs):
    """Read the finished fold folders.

    Arguments
    ---------
    fold_dirs : dict
        fold number -> fold output folder (``.../fold<k>/seed<s>``).

    Returns
    -------
    dict
        fold number -> :class:`FoldResult`, sorted by fold.

    Raises
    ------
    FileNotFoundError
        A folder lacks ``test_metrics.json`` or ``predictions.csv`` (the fold has not finished);
        the message names the folder and how to finish or drop the fold.
    """
    if not fold_dirs:
        raise ValueError("no fold folder given: a report needs at least one finished fold")
    return {k: read_fold(k, fold_dirs[k]) for k in sorted(fold_dirs)}


def read_fold(fold, folder):
    """One :class:`FoldResult` from a fold output folder (see :func:`collect_fold_results`)."""
    folder = Path(folder)
    for name in (METRIC_FILE, PREDICTIONS_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"fold {fold}: {folder / name} does not exist, so the fold has not finished. "
                f"Finish it with `python recipes/IEMOCAP/cross_validate.py <hparams> --folds "
                f"{fold} <same overrides>` (it resumes from {folder / 'save'}), or leave fold "
                f"{fold} out of the report (--folds)."
            )
    with open(folder / METRIC_FILE, encoding="utf-8") as fin:
        metrics = json.load(fin)
    missing = [k for k in (*SUMMARY_KEYS, "confusion", "classes") if k not in metrics]
    if missing:
        raise ValueError(
            f"{folder / METRIC_FILE} lacks {missing}: it was not written by train.py's test "
            "stage; delete it and rerun the fold"
        )
    ids, true, predicted, probabilities = read_predictions(folder / PREDICTIONS_FILE)
    history = []
    if (folder / HISTORY_FILE).is_file():
        with open(folder / HISTORY_FILE, encoding="utf-8") as fin:
            history = json.load(fin)
    else:
        logger.warning("fold %d: no %s in %s; no loss curves for it", fold, HISTORY_FILE, folder)
    configuration = None
    if (folder / CONFIGURATION_FILE).is_file():
        with open(folder / CONFIGURATION_FILE, encoding="utf-8") as fin:
            configuration = json.load(fin)
    else:
        logger.warning("fold %d: no %s in %s; its configuration is unknown", fold,
                       CONFIGURATION_FILE, folder)
    return FoldResult(fold, folder, metrics, ids, true, predicted, history, configuration,
                      probabilities)


def read_predictions(path):
    """``(ids, true, predicted, probabilities)`` of a ``predictions.csv``: class-name lists and
    one ``{class name: probability}`` per row (its ``p_<class>`` columns follow the run's own
    label-encoder order, which differs between folds: read by name, never by position).

    Example
    -------
    >>> path = getfixture("tmp_path") / "predictions.csv"
    >>> _ = path.write_text("id,true,predicted,p_neu,p_ang\\nu1,neu,ang,0.4,0.6\\n")
    >>> read_predictions(path)
    (['u1'], ['neu'], ['ang'], [{'neu': 0.4, 'ang': 0.6}])
    """
    with open(path, encoding="utf-8", newline="") as fin:
        rows = list(csv.DictReader(fin))
    if rows and not {"id", "true", "predicted"} <= set(rows[0]):
        raise ValueError(f"{path} needs the columns id,true,predicted; found {list(rows[0])}")
    return ([r["id"] for r in rows], [r["true"] for r in rows], [r["predicted"] for r in rows],
            [{k[2:]: float(v) for k, v in r.items() if k.startswith("p_")} for r in rows])
