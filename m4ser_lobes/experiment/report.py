"""The cross-validation report: per-fold, mean and pooled WA/UA, Fig. 12 and Fig. 8.

    python -m m4ser_lobes.experiment.report results/m4ser            # every fold<k>/seed<s>/ found there
    python -m m4ser_lobes.experiment.report results/m4ser --folds 1 2 --seed 1986

reads the finished fold folders of one experiment (``<results_folder>/<experiment_name>/``,
``fold<k>/seed<seed>/`` each holding ``test_metrics.json``, ``predictions.csv`` and
``history.json``, written by ``recipes/IEMOCAP/train.py``) and writes, atomically, into
``<experiment_dir>/cv_report/``:

``cv_report.json``          everything below, machine-readable, with the run configuration and
                            ``protocol`` (how each fold's checkpoint was chosen and its batches
                            drawn: :func:`m4ser_lobes.experiment.settings.protocol`);
``cv_report.md``            the configuration (which parts of M4SER ran, from each fold's
                            ``configuration.json``, identical across folds), the protocol
                            (selection metric, validation mode and ratio, seed, batching; a
                            ``validation=test_fold`` report is headed OPTIMISTIC);
                            the tables: per-fold / mean ± std / pooled WA, UA, W-F1, the averaged
                            confusion matrix, first- and last-epoch loss terms;
``confusion_matrix_avg.png`` Fig. 12: the mean over folds of the row-normalised confusion matrices;
``loss_curves.png``         Fig. 8: one panel per loss term (mean over folds, thin per-fold lines),
                            L_G with its equilibrium 2 ln 2, D(·) with 0.5, and validation UA
                            (:mod:`m4ser_lobes.experiment.figures`).

Three summaries, because they differ (docs/design.md §8): *per fold* (from each ``test_metrics.json``),
*mean over folds* (mean and population standard deviation of the per-fold numbers) and *pooled*
(WA/UA recomputed once over the concatenated predictions of all folds; on IEMOCAP all 5531
utterances). The paper's figures of the experiment's row (the ``paper`` entry the runs wrote in
``test_metrics.json``: WA 79.2, UA 80.1 for the full model, Table II) sit beside the *mean over
folds*; *pooled* is a secondary view. Class names, not label-encoder indices, identify classes, so folds whose label
encoders ordered the classes differently are combined correctly; the report uses the class order
of the lowest fold.
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from m4ser_lobes.experiment.figures import (  # noqa: F401  (re-exported)
    CURVE_KEYS, LOSS_PANELS, VALID_CURVE, history_curves, mean_curve, plot_curves, report_curves)
from m4ser_lobes.experiment.ablations import paper_source
from m4ser_lobes.experiment.folds import (
    METRIC_FILE, PREDICTIONS_FILE, SUMMARY_KEYS, collect_fold_results, find_fold_dirs)
from m4ser_lobes.experiment.run import CONFIGURATION_FILE
from m4ser_lobes.metrics import calibration, emotion_metrics, plot_confusion_matrix
from m4ser_lobes.utils.fileio import atomic_write_json, atomic_write_text

logger = logging.getLogger(__name__)

REPORT_FOLDER = "cv_report"


# ------------------------------------------------------------------------------ pure helpers
def reorder_confusion(confusion, classes, order):
    """A confusion matrix whose rows/columns follow ``classes`` rewritten in class ``order``.

    Example
    -------
    >>> reorder_confusion([[5, 1], [2, 3]], ["sad", "neu"], ["neu", "sad"])
    [[3, 2], [1, 5]]
    """
    index = [list(classes).index(name) for name in order]
    return np.asarray(confusion)[np.ix_(index, index)].tolist()


def row_normalise(confusion):
    """Rows as percentages of the true class (a row with no utterance becomes NaN).

    Example
    -------
    >>> row_normalise([[3, 1], [0, 0]]).tolist()
    [[75.0, 25.0], [nan, nan]]
    """
    cm = np.asarray(confusion, dtype=float)
    support = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, 100.0 * cm / support, np.nan)


def average_confusion(confusions):
    """Fig. 12: the mean of row-normalised confusion matrices (percent; each row sums to 100).

    A class absent from one fold's test set is averaged over the folds that have it.

    Example
    -------
    >>> average_confusion([[[1, 0], [0, 1]], [[1, 1], [0, 4]]]).tolist()
    [[75.0, 25.0], [0.0, 100.0]]
    """
    stacked = np.stack([row_normalise(c) for c in confusions])
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.nanmean(stacked, axis=0), nan=0.0)


def mean_std(values):
    """Mean and population standard deviation, rounded to 4 decimals.

    Example
    -------
    >>> mean_std([70.0, 80.0])
    (75.0, 5.0)
    """
    values = np.asarray(values, dtype=float)
    return round(float(values.mean()), 4), round(float(values.std()), 4)


def pooled_metrics(results, classes):
    """WA, UA, W-F1, recall and confusion over the concatenated predictions of all folds.

    Class names are mapped to indices of ``classes``, so every fold counts the same way.
    """
    index = {name: i for i, name in enumerate(classes)}
    seen = {}
    y_true, y_pred = [], []
    for result in results.values():
        for utt, true, pred in zip(result.ids, result.true, result.predicted):
            if utt in seen:
                raise ValueError(
                    f"utterance {utt} is a test utterance of both {seen[utt]} and "
                    f"{result.folder}: pooling needs disjoint test sets (one folder per fold)"
                )
            seen[utt] = result.folder
            for name in (true, pred):
                if name not in index:
                    raise ValueError(
                        f"{result.folder / PREDICTIONS_FILE}: class {name!r} is not one of "
                        f"{classes} (the classes of {METRIC_FILE})"
                    )
            y_true.append(index[true])
            y_pred.append(index[pred])
    metrics = emotion_metrics(y_true, y_pred, num_classes=len(classes))
    rows = [[p[name] for name in classes] for r in results.values() for p in r.probabilities or ()]
    if len(rows) == len(y_true):  # every fold wrote its probabilities
        metrics["calibration"] = calibration([classes[t] for t in y_true], classes, rows)
    return dict(metrics, n=len(y_true))


# ------------------------------------------------------------------------------ the report
def common_configuration(results):
    """The configuration all folds ran with (None when no fold recorded one).

    Raises
    ------
    ValueError
        Two folds ran with different configurations: one report must describe one experiment.

    Example
    -------
    >>> from m4ser_lobes.experiment.folds import FoldResult
    >>> r = {k: FoldResult(k, Path(f"f{k}"), {}, [], [], [], configuration={"gan": True})
    ...      for k in (1, 2)}
    >>> common_configuration(r)
    {'gan': True}
    >>> r[2].configuration = {"gan": False}
    >>> common_configuration(r)
    Traceback (most recent call last):
    ...
    ValueError: fold 2 (f2/configuration.json) ran with gan=False but fold 1 with gan=True: a report combines folds of one configuration; rerun fold 2 with the same settings
    """
    recorded = [r for r in results.values() if r.configuration is not None]
    if not recorded:
        return None
    first = recorded[0]
    for result in recorded[1:]:
        differing = sorted(k for k in set(first.configuration) | set(result.configuration)
                           if first.configuration.get(k) != result.configuration.get(k))
        if differing:
            ran = ", ".join(f"{k}={result.configuration.get(k)}" for k in differing)
            had = ", ".join(f"{k}={first.configuration.get(k)}" for k in differing)
            raise ValueError(
                f"fold {result.fold} ({result.folder / CONFIGURATION_FILE}) ran with {ran} but "
                f"fold {first.fold} with {had}: a report combines folds of one configuration; "
                f"rerun fold {result.fold} with the same settings"
            )
    return first.configuration


def run_protocol(results):
    """How the folds' checkpoints were chosen and batches drawn (None when no fold recorded it).

    Each fold's :func:`~m4ser_lobes.experiment.settings.protocol` is read from its
    ``configuration.json``, else from its ``test_metrics.json`` (both record it).

    Raises
    ------
    ValueError
        Two folds recorded different protocols.
    """
    from m4ser_lobes.experiment.settings import PROTOCOL_KEYS

    recorded = {}
    for k, result in results.items():
        for source in (result.configuration or {}, result.metrics):
            if "batching" in source:
                recorded[k] = {key: source.get(key) for key in PROTOCOL_KEYS}
                break
    if not recorded:
        return None
    (first, protocol), *others = recorded.items()
    for k, other in others:
        if other != protocol:
            raise ValueError(
                f"fold {k} ({results[k].folder}) chose its checkpoint or batches otherwise "
                f"({other}) than fold {first} ({protocol}): a report combines folds of one "
                f"protocol; rerun fold {k} with the same settings")
    return protocol


def paper_of(results):
    """The paper's figures of the folds' row (``test_metrics.json``'s ``paper``: row, source,
    WA, UA), or None when a fold has none (a configuration the paper has no row for) or the
    folds disagree."""
    papers = [r.metrics.get("paper") for r in results.values()]
    return papers[0] if papers[0] and all(p == papers[0] for p in papers) else None


def class_order(results):
    """The lowest fold's class order, after checking every fold has the same class set."""
    first = next(iter(results.values()))
    for result in results.values():
        if sorted(result.classes) != sorted(first.classes):
            raise ValueError(
                f"fold {result.fold} ({result.folder / METRIC_FILE}) has classes "
                f"{result.classes} but fold {first.fold} has {first.classes}: folds of one "
                "report must share their classes (same num_emotions and label merges)"
            )
    return first.classes


def cross_validation_report(results, experiment=None):
    """Everything the report shows, as a JSON-safe dict.

    Arguments
    ---------
    results : dict
        fold -> :class:`FoldResult` (from :func:`collect_fold_results`).
    experiment : str, optional
        A name for the titles (default: the name of the folder above ``fold<k>/seed<s>``).

    Returns
    -------
    dict
        ``experiment``, ``configuration`` (see :func:`common_configuration`), ``protocol``
        (:func:`run_protocol`), ``classes``,
        ``folds`` (fold -> WA/UA/W-F1, ``n``, ``folder``),
        ``mean`` and ``std`` over folds, ``pooled`` (WA/UA/W-F1/recall/confusion/n),
        ``confusion_avg`` (C x C percent, rows = true class), ``curves`` (key -> ``mean`` and
        per-fold ``folds`` curves).
    """
    classes = class_order(results)
    if experiment is None:
        experiment = next(iter(results.values())).folder.parents[1].name
    folds = {
        str(k): {
            **{key: float(r.metrics[key]) for key in SUMMARY_KEYS},
            "n": len(r.ids),
            "folder": str(r.folder),
        }
        for k, r in results.items()
    }
    summary = {key: mean_std([f[key] for f in folds.values()]) for key in SUMMARY_KEYS}
    confusions = [reorder_confusion(r.metrics["confusion"], r.classes, classes) for r in results.values()]
    return {
        "experiment": experiment,
        "configuration": common_configuration(results),
        "protocol": run_protocol(results),
        "paper": paper_of(results),
        "classes": classes,
        "folds": folds,
        "mean": {key: m for key, (m, _) in summary.items()},
        "std": {key: s for key, (_, s) in summary.items()},
        "pooled": pooled_metrics(results, classes),
        "confusion_avg": np.round(average_confusion(confusions), 4).tolist(),
        "curves": report_curves(results),
    }


# ------------------------------------------------------------------------------ writing
def write_report(report, out_dir):
    """Write ``cv_report.json``, ``cv_report.md``, ``confusion_matrix_avg.png``, ``loss_curves.png``.

    Every file is written atomically (a reader never sees half a report); returns the paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "cv_report.json",
        "markdown": out_dir / "cv_report.md",
        "confusion": out_dir / "confusion_matrix_avg.png",
        "curves": out_dir / "loss_curves.png",
    }
    atomic_write_json(paths["json"], report)
    atomic_write_text(paths["markdown"], report_markdown(report))
    plot_confusion_matrix(
        report["confusion_avg"],
        report["classes"],
        paths["confusion"],
        title=f"Mean over {len(report['folds'])} folds (% of true class)",
    )
    plot_curves(report["curves"], paths["curves"], title=f"{report['experiment']}")
    return paths


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report_markdown(report):
    """The report as markdown tables (numbers with 2 decimals)."""
    rows = [
        [k, f["n"], *(f"{f[key]:.2f}" for key in SUMMARY_KEYS)] for k, f in report["folds"].items()
    ]
    rows.append(
        ["mean ± std", sum(f["n"] for f in report["folds"].values())]
        + [f"{report['mean'][key]:.2f} ± {report['std'][key]:.2f}" for key in SUMMARY_KEYS]
    )
    pooled = report["pooled"]
    rows.append(["pooled", pooled["n"], *(f"{pooled[key]:.2f}" for key in SUMMARY_KEYS)])
    if (report.get("protocol") or {}).get("optimistic"):
        for row in rows:
            row[0] = f"{row[0]} (optimistic)"
    paper = report.get("paper")
    if paper:
        rows.append([f"paper ({paper_source(paper)})", "",
                     *(f"{paper[k]:.1f}" if k in paper else "—" for k in SUMMARY_KEYS)])
    classes = report["classes"]
    confusion = [
        [f"**{name}**", *(f"{v:.2f}" for v in row)]
        for name, row in zip(classes, report["confusion_avg"])
    ]
    recall = [[name, "—" if r is None else f"{r:.2f}"] for name, r in zip(classes, pooled["recall"])]
    configuration = report.get("configuration")
    if configuration:
        described = "Configuration: " + configuration.get(  # the protocol has its own line
            "parts_summary", configuration.get("summary", "?"))
        if configuration.get("settings_digest"):
            described += f" (settings `{configuration['settings_digest']}`, `identity.json`)"
        described += f"; ASR {configuration['asr']['summary']}" if configuration.get("asr") else ""
    else:
        described = "Configuration: unknown (the folds have no `configuration.json`)."
    described += "\n\n" + protocol_markdown(report.get("protocol"))
    parts = [
        f"# Cross-validation report: {report['experiment']}",
        described,
        (
            "WA = overall accuracy, UA = mean per-class recall (percent). *mean ± std*: over the "
            "per-fold numbers (population std); *pooled*: recomputed over all test predictions. "
            + (f"The paper's WA {paper['WA']:.1f} / UA {paper['UA']:.1f} ({paper['source']}, "
               "a mean over five folds) compare with *mean ± std*; *pooled* is secondary."
               if paper else "The paper reports no figure for this configuration.")
        ),
        _table(["fold", "n", *SUMMARY_KEYS], rows),
        *([f"Calibration of the pooled test probabilities (beyond the paper): ECE "
           f"{pooled['calibration']['ECE']:.1f} % (10 bins), NLL {pooled['calibration']['NLL']:.3f}, "
           f"Brier {pooled['calibration']['Brier']:.3f}."] if pooled.get("calibration") else []),
        "## Pooled recall per class",
        _table(["class", "recall"], recall),
        "## Averaged confusion matrix (Fig. 12)",
        (
            "Mean over folds of the row-normalised matrices: % of the true class (rows) "
            "predicted as each class (columns). `confusion_matrix_avg.png`."
        ),
        _table(["true \\ predicted", *classes], confusion),
    ]
    if report["curves"]:
        note = "`loss_curves.png`."
        if "L_G" in report["curves"]:
            note = ("L_G → 2 ln 2 ≈ 1.386 and D(H_inv) → 0.5 at the adversarial equilibrium; "
                    "L_D ≤ 0 is the objective D maximises, with the paper's sign (it rises from "
                    "negative values toward 0). " + note)
        parts += [
            "## Loss terms (Fig. 8), mean over folds",
            note,
            _table(["term", "first epoch", "last epoch"], _curve_rows(report["curves"])),
        ]
    return "\n\n".join(parts) + "\n"


def protocol_markdown(protocol):
    """The report's protocol line; an optimistic (``validation=test_fold``) one in bold capitals.

    Example
    -------
    >>> protocol_markdown(None)
    'Checkpoint and batches: unknown (the folds recorded no protocol).'
    """
    from m4ser_lobes.experiment.settings import protocol_text

    if not protocol:
        return "Checkpoint and batches: unknown (the folds recorded no protocol)."
    if protocol.get("optimistic"):
        return ("**OPTIMISTIC: every fold chose its checkpoint on its test session "
                "(validation=test_fold), so these are upper bounds, not held-out results.** "
                + protocol_text(protocol))
    return f"Checkpoint and batches: {protocol_text(protocol)}"


def _curve_rows(curves):
    rows = []
    for key, curve in curves.items():
        epochs, values = curve["mean"]["epochs"], curve["mean"]["values"]
        rows.append([key, f"{values[0]:.4f} (epoch {epochs[0]})", f"{values[-1]:.4f} (epoch {epochs[-1]})"])
    return rows


# ------------------------------------------------------------------------------ command line
def build_report(fold_dirs, out_dir, experiment=None):
    """Read the folds, write the report into ``out_dir``; returns the report dict."""
    report = cross_validation_report(collect_fold_results(fold_dirs), experiment)
    paths = write_report(report, out_dir)
    logger.info("cross-validation report in %s", paths["markdown"].parent)
    return report


def summary_line(report):
    """One line with the headline numbers.

    Example
    -------
    >>> summary_line({"folds": {"1": {}, "2": {}}, "mean": {"WA": 75.0, "UA": 70.0},
    ...               "std": {"WA": 5.0, "UA": 1.0}, "pooled": {"WA": 74.5, "UA": 70.25}})
    '2 folds: mean WA 75.00 ± 5.00, UA 70.00 ± 1.00; pooled WA 74.50, UA 70.25'
    """
    mean, std, pooled = report["mean"], report["std"], report["pooled"]
    return (
        f"{len(report['folds'])} folds: mean WA {mean['WA']:.2f} ± {std['WA']:.2f}, "
        f"UA {mean['UA']:.2f} ± {std['UA']:.2f}; pooled WA {pooled['WA']:.2f}, UA {pooled['UA']:.2f}"
    ) + (" (OPTIMISTIC: checkpoints chosen on the test sessions, validation=test_fold)"
         if (report.get("protocol") or {}).get("optimistic") else "")


def main(argv=None):
    """``python -m m4ser_lobes.experiment.report <experiment_dir> [--folds ...] [--seed S] [--out DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment_dir", type=Path, help="<results_folder>/<experiment_name>")
    parser.add_argument("--folds", type=int, nargs="+", help="folds to include (default: all found)")
    parser.add_argument("--seed", type=int, help="run to take when a fold holds several seed<s>/")
    parser.add_argument("--out", type=Path, help="output folder (default: <experiment_dir>/cv_report)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        fold_dirs = find_fold_dirs(args.experiment_dir, args.folds, args.seed)
        report = build_report(fold_dirs, args.out or args.experiment_dir / REPORT_FOLDER,
                              experiment=args.experiment_dir.name)
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    print(summary_line(report))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
