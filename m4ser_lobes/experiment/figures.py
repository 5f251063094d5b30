"""Fig. 8 of the cross-validation report: the loss curves, one panel per logged term.

The panels come from :data:`m4ser_lobes.losses.LOSS_TERMS` (one per loss term, in table order,
with its reference line: L_G's equilibrium 2 ln 2), then the discriminator's mean outputs D(·)
(0.5 at equilibrium) and the validation UA. An ablation simply lacks some curves; its panels are
left out.
"""

import math

from m4ser_lobes.losses import LOSS_TERMS
from m4ser_lobes.metrics import save_figure

#: The mean discriminator outputs the Brain logs with the GAN (``M4SERBrain.adversarial_terms``).
DISCRIMINATOR_PANEL = ("D(·) means", ("D(H_S^spe)", "D(H_T^spe)", "D(H_inv)"), ("0.5", 0.5))
#: Fig. 8 panels in order: (title, training-statistic keys drawn in that panel, reference line).
LOSS_PANELS = tuple((t.paper, (t.paper,), t.reference) for t in LOSS_TERMS) + (DISCRIMINATOR_PANEL,)
VALID_CURVE = "valid UA"
#: Every curve the report keeps, training statistics first (ablations simply lack some).
CURVE_KEYS = tuple(k for _, keys, _ in LOSS_PANELS for k in keys) + (VALID_CURVE,)


def plot_curves(curves, path, title=""):
    """Fig. 8: one panel per logged term; mean over folds (thick) and each fold (thin).

    Arguments
    ---------
    curves : dict
        key -> ``{"mean": curve, "folds": {fold: curve}}``, a curve being ``{"epochs": [...],
        "values": [...]}`` (``report_curves`` of :mod:`m4ser_lobes.experiment.report`).
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
    save_figure(fig, path)


def _draw_panel(ax, title, series, reference):
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
