"""Fig. 8 of the cross-validation report: the loss curves, one panel per logged term, and
their data (per-fold curves from ``history.json``, their mean over folds).

The panels come from :data:`m4ser_lobes.losses.LOSS_TERMS` (one per loss term, in table order,
with its reference line: L_G's equilibrium 2 ln 2), then the discriminator's mean outputs D(·)
(0.5 at equilibrium) and the validation UA. An ablation simply lacks some curves; its panels are
left out. Epochs are whole numbers on every x axis.

L_D is drawn with the paper's sign: L_D = E[log D(H_S^spe)] + E[log(1 − D(H_T^spe))] ≤ 0 is the
objective the discriminator maximises, so its curve rises from negative values toward its
maximum 0 as D learns (Fig. 8; the panel's reference line is that 0).
"""

import math

import numpy as np

from m4ser_lobes.losses import LOSS_TERMS
from m4ser_lobes.metrics import save_figure

#: The mean discriminator outputs the Brain logs with the GAN (``M4SERBrain.adversarial_terms``).
DISCRIMINATOR_PANEL = ("D(·) means", ("D(H_S^spe)", "D(H_T^spe)", "D(H_inv)"), ("0.5", 0.5))
#: Reference lines of terms the loss table gives none: L_D (≤ 0, maximised by D) and its bound 0.
EXTRA_REFERENCES = {"L_D": ("0: the maximum of L_D ≤ 0", 0.0)}
#: Fig. 8 panels in order: (title, training-statistic keys drawn in that panel, reference line).
LOSS_PANELS = tuple((t.paper, (t.paper,), t.reference or EXTRA_REFERENCES.get(t.paper))
                    for t in LOSS_TERMS) + (DISCRIMINATOR_PANEL,)
VALID_CURVE = "valid UA"
#: Every curve the report keeps, training statistics first (ablations simply lack some).
CURVE_KEYS = tuple(k for _, keys, _ in LOSS_PANELS for k in keys) + (VALID_CURVE,)


# ------------------------------------------------------------------------------ curve data
def history_curves(history):
    """Per-epoch values of every :data:`CURVE_KEYS` entry one fold logged.

    Returns
    -------
    dict
        key -> ``{"epochs": [...], "values": [...]}``; keys never logged are absent.

    Example
    -------
    >>> h = [{"epoch": 1, "train": {"L_ER": 1.5}, "valid": {"UA": 40.0}},
    ...      {"epoch": 2, "train": {"L_ER": 1.0}, "valid": {"UA": 55.0}}]
    >>> history_curves(h)
    {'L_ER': {'epochs': [1, 2], 'values': [1.5, 1.0]}, 'valid UA': {'epochs': [1, 2], 'values': [40.0, 55.0]}}
    """
    curves = {}
    for entry in sorted(history, key=lambda e: e["epoch"]):
        stats = dict(entry.get("train") or {})
        if "UA" in (entry.get("valid") or {}):
            stats[VALID_CURVE] = entry["valid"]["UA"]
        for key in CURVE_KEYS:
            if isinstance(stats.get(key), (int, float)):
                curve = curves.setdefault(key, {"epochs": [], "values": []})
                curve["epochs"].append(entry["epoch"])
                curve["values"].append(float(stats[key]))
    return {k: curves[k] for k in CURVE_KEYS if k in curves}


def mean_curve(fold_curves):
    """Mean over folds at each epoch (over the folds that logged that epoch).

    Example
    -------
    >>> mean_curve([{"epochs": [1, 2], "values": [1.0, 3.0]}, {"epochs": [1], "values": [2.0]}])
    {'epochs': [1, 2], 'values': [1.5, 3.0]}
    """
    by_epoch = {}
    for curve in fold_curves:
        for epoch, value in zip(curve["epochs"], curve["values"]):
            by_epoch.setdefault(epoch, []).append(value)
    epochs = sorted(by_epoch)
    return {"epochs": epochs, "values": [float(np.mean(by_epoch[e])) for e in epochs]}


def report_curves(results):
    """key -> ``{"mean": curve, "folds": {fold: curve}}`` for every logged :data:`CURVE_KEYS`.

    ``results``: fold -> an object with a ``history`` (``history.json``'s list), e.g.
    :class:`m4ser_lobes.experiment.folds.FoldResult`.
    """
    per_fold = {k: history_curves(r.history) for k, r in results.items()}
    curves = {}
    for key in CURVE_KEYS:
        folds = {str(k): c[key] for k, c in per_fold.items() if key in c}
        if folds:
            curves[key] = {"mean": mean_curve(folds.values()), "folds": folds}
    return curves


# ------------------------------------------------------------------------------ drawing
def plot_curves(curves, path, title=""):
    """Fig. 8: one panel per logged term; mean over folds (thick) and each fold (thin).

    Arguments
    ---------
    curves : dict
        key -> ``{"mean": curve, "folds": {fold: curve}}``, a curve being ``{"epochs": [...],
        "values": [...]}`` (:func:`report_curves`).
    path : str or Path
        The PNG to write (atomically).
    title : str
        The figure's title.

    Example
    -------
    >>> curve = {"epochs": [1, 2], "values": [1.5, 1.4]}
    >>> path = getfixture("tmp_path") / "loss_curves.png"
    >>> plot_curves({"L_G": {"mean": curve, "folds": {"1": curve}}}, path)
    >>> path.read_bytes()[:4] == b"\\x89PNG"
    True
    """
    save_figure(curves_figure(curves, title), path)


def curves_figure(curves, title=""):
    """The matplotlib figure of :func:`plot_curves` (not saved).

    Example
    -------
    >>> curve = {"epochs": [1, 2, 3], "values": [1.5, 1.4, 1.3]}
    >>> fig = curves_figure({"L_ER": {"mean": curve, "folds": {"1": curve}}})
    >>> [float(t) for t in fig.axes[0].get_xticks() if 1 <= t <= 3]  # whole epochs only
    [1.0, 2.0, 3.0]
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(t, [k for k in keys if k in curves], ref) for t, keys, ref in LOSS_PANELS]
    panels = [p for p in panels if p[1]]
    if VALID_CURVE in curves:
        panels.append((VALID_CURVE + " (%)", [VALID_CURVE], None))
    cols = 3 if len(panels) > 4 else max(len(panels), 1)
    rows = max(math.ceil(len(panels) / cols), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (panel_title, keys, ref) in zip(axes.flat, panels):
        _draw_panel(ax, panel_title, [(k, curves[k]) for k in keys], ref)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no history.json: no curves", ha="center", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _draw_panel(ax, title, series, reference):
    from matplotlib.ticker import MaxNLocator

    for i, (key, curve) in enumerate(series):
        color = f"C{i}"
        for fold_curve in curve["folds"].values():
            ax.plot(fold_curve["epochs"], fold_curve["values"], color=color, lw=0.6, alpha=0.4)
        mean = curve["mean"]
        ax.plot(mean["epochs"], mean["values"], color=color, lw=2, marker=".", label=key)
    if reference is not None:
        label, value = reference
        ax.axhline(value, color="k", ls="--", lw=1, label=label)
    if len(series) > 1 or reference is not None:
        ax.legend(fontsize=7)
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
