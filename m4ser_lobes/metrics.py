"""Emotion metrics with scikit-learn, and the files people look at (CSV, JSON, PNG).

WA = overall accuracy, UA = mean per-class recall (balanced accuracy) — the standard definitions
(several public codebases swap the names, docs/design.md §8). MELD reports ACC (= WA) and
support-weighted F1 (W-F1), with per-class F1 and recall.
"""

import csv
import io

import numpy as np

from m4ser_lobes.utils.fileio import atomic_write_text

#: Validation metrics that can choose the tested checkpoint (``selection_metric``; WA is MELD's ACC).
SELECTION_METRICS = ("UA", "WA", "W-F1")


def emotion_metrics(y_true, y_pred, num_classes):
    """WA (= ACC), UA, weighted F1, per-class recall, F1 and support, and the confusion matrix.

    Arguments
    ---------
    y_true, y_pred : sequence of int
        Class indices.
    num_classes : int
        C; the confusion matrix is C x C even when a class is absent.

    Returns
    -------
    dict
        ``WA``, ``ACC`` (the same number under MELD's name), ``UA``, ``W-F1`` (percent; F1 per
        class weighted by its support, scikit-learn's ``average="weighted"``), ``recall`` and
        ``f1`` (per class, percent; recall None for a class absent from ``y_true``),
        ``support`` (per class), ``confusion`` (C x C counts, rows = true class).

    Example
    -------
    >>> m = emotion_metrics([0, 0, 0, 1], [0, 0, 0, 0], num_classes=2)
    >>> m["WA"], m["ACC"], m["UA"], m["confusion"]
    (75.0, 75.0, 50.0, [[3, 0], [1, 0]])
    >>> m["f1"], m["recall"], m["support"], m["W-F1"]
    ([85.7143, 0.0], [100.0, 0.0], [3, 1], 64.2857)
    """
    from sklearn.metrics import confusion_matrix, f1_score

    labels = list(range(num_classes))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    present = support > 0
    recall = np.where(present, np.diag(cm) / np.maximum(support, 1), np.nan)
    per_class_f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    accuracy = round(100.0 * float(np.trace(cm)) / max(int(cm.sum()), 1), 4)
    return {
        "WA": accuracy,
        "ACC": accuracy,
        "UA": round(100.0 * float(np.nanmean(recall[present])) if present.any() else 0.0, 4),
        "W-F1": round(
            100.0
            * float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
            4,
        ),
        "recall": [None if np.isnan(r) else round(100.0 * float(r), 4) for r in recall],
        "f1": [round(100.0 * float(f), 4) for f in per_class_f1],
        "support": [int(n) for n in support],
        "confusion": cm.tolist(),
    }


def calibration(labels, classes, probabilities, bins=10):
    """ECE (percent, ``bins`` equal-width confidence bins), NLL and Brier score of predictions.

    ``labels`` are class names, ``probabilities`` one row per utterance in ``classes``' order;
    ``reliability`` is ``(mean confidence, accuracy, utterances)`` of each non-empty bin.

    Example
    -------
    >>> c = calibration(["a", "b"], ["a", "b"], [[0.9, 0.1], [0.2, 0.8]])
    >>> round(c["ECE"], 1), round(c["NLL"], 3), round(c["Brier"], 3)
    (15.0, 0.164, 0.05)
    """
    probabilities = np.clip(np.asarray(probabilities, dtype=float), 1e-12, 1.0)
    index = {c: i for i, c in enumerate(classes)}
    truth = np.array([index[t] for t in labels])
    onehot = np.eye(len(classes))[truth]
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece, curve = 0.0, []
    for b in range(bins):
        members = which == b
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            ece += members.mean() * gap
            curve.append([float(confidence[members].mean()), float(correct[members].mean()),
                          int(members.sum())])  # lists: the same once written as JSON
    return {"ECE": 100 * float(ece),
            "NLL": float(-np.log(probabilities[np.arange(len(truth)), truth]).mean()),
            "Brier": float(((probabilities - onehot) ** 2).sum(axis=1).mean()),
            "reliability": curve}


def per_class(metrics, class_names):
    """``{class: {"recall", "f1", "support"}}`` from :func:`emotion_metrics` (for people to read).

    Example
    -------
    >>> per_class(emotion_metrics([0, 1], [0, 0], 2), ["neutral", "joy"])["neutral"]
    {'recall': 100.0, 'f1': 66.6667, 'support': 1}
    """
    return {name: {"recall": metrics["recall"][i], "f1": metrics["f1"][i],
                   "support": metrics["support"][i]}
            for i, name in enumerate(class_names)}


def write_predictions_csv(path, ids, y_true, y_pred, probabilities, class_names):
    """Write one row per utterance: id, true, predicted, and one probability column per class."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "true", "predicted"] + [f"p_{c}" for c in class_names])
    for utt, t, p, probs in zip(ids, y_true, y_pred, probabilities):
        writer.writerow([utt, class_names[t], class_names[p]] + [f"{x:.6f}" for x in probs])
    atomic_write_text(path, buffer.getvalue())


def plot_confusion_matrix(confusion, class_names, path, title="Confusion matrix", normalize=True):
    """Save a confusion matrix as a PNG (rows = true class; row-normalised percentages by default).

    Drawn by scikit-learn's ``ConfusionMatrixDisplay`` on a fixed 0-100 % scale (counts: 0 to the
    largest), without a colour bar, white text on the darker half of the scale.

    Example
    -------
    >>> path = getfixture("tmp_path") / "cm.png"
    >>> plot_confusion_matrix([[3, 1], [0, 2]], ["neu", "ang"], path)
    >>> path.stat().st_size > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    cm = np.asarray(confusion, dtype=float)
    shown = 100.0 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1e-12) if normalize else cm
    size = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 * size + 2, 1.2 * size + 1.5))
    values = shown if normalize else cm.astype(int)
    display = ConfusionMatrixDisplay(values, display_labels=class_names)
    display.plot(ax=ax, cmap="Blues", colorbar=False, values_format=".1f" if normalize else "d",
                 im_kw={"vmin": 0, "vmax": 100 if normalize else None})
    threshold = 50 if normalize else shown.max() / 2  # white text on the darker half of the scale
    for (i, j), text in np.ndenumerate(display.text_):
        text.set_color("white" if shown[i, j] > threshold else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path):
    """Save a matplotlib figure as PNG atomically and close it."""
    import os

    import matplotlib.pyplot as plt

    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
