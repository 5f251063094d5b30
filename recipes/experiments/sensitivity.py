#!/usr/bin/env python3
r"""Fig. 7: one-at-a-time sensitivity of α, β, γ, λ on IEMOCAP, one command.

    python recipes/experiments/sensitivity.py hparams/m4ser.yaml \
        --data_folder=/data/IEMOCAP_full_release --hypotheses_file=results/iemocap_whisper-medium.en.json \
        [--sweep="{alpha: [0.01, 0.05, 0.1, 0.5, 1]}"] [--folds=[1,2,3,4,5]] [--seeds=[1986,1987,1988]] \
        [--dispatch=local|slurm|none] [--slurm_partition=gpu ...]

The paper does not print the x values; the default grid around Table I is α, λ ∈ {0.01, 0.05,
0.1, 0.5, 1}, β ∈ {0.5, 1, 3, 5, 10}, γ ∈ {0.001, 0.01, 0.1, 1}. One key changes at a time; the
Table I point of every key is the same run, the full model (experiment ``full``, shared with the
Table IV experiment), trained once, and is always part of the sweep (``--sweep="{alpha: [0.01,
1]}"`` runs 0.01, 0.1 and 1). Every value is checked before any run (a negative or non-numeric
value is refused in one line). Writes ``<out>/sensitivity.md``/``.json`` and the
4-panel figure ``<out>/sensitivity.png`` (WA and UA against the value, log x, error bars over
seeds, the Table I value marked). Dispatch and SLURM options: as ``table4.py``.
"""

import logging
import sys
from pathlib import Path
from typing import Dict, List, Literal

from pydantic import Field, NonNegativeFloat

from m4ser_lobes.experiment import grid as grids
from m4ser_lobes.experiment.run import one_line_errors
from m4ser_lobes.utils.fileio import atomic_write_json, atomic_write_text

logger = logging.getLogger("sensitivity")
#: The default sweep (Table I values included: alpha 0.1, beta 3, gamma 0.01, lam 0.1).
SWEEP = {"alpha": [0.01, 0.05, 0.1, 0.5, 1.0], "beta": [0.5, 1.0, 3.0, 5.0, 10.0],
         "gamma": [0.001, 0.01, 0.1, 1.0], "lam": [0.01, 0.05, 0.1, 0.5, 1.0]}
SYMBOLS = {"alpha": "α", "beta": "β", "gamma": "γ", "lam": "λ"}


class Options(grids.GridOptions):
    sweep: Dict[Literal[tuple(SWEEP)], List[NonNegativeFloat]] = Field(
        default_factory=lambda: dict(SWEEP), min_length=1)
    out: str = "results/sensitivity"


def with_table_one(sweep, table_one):
    """Each key's values, sorted, with its Table I value added (the shared full run).

    Example
    -------
    >>> with_table_one({"lam": [1, 0.5]}, {"lam": 0.1})
    {'lam': [0.1, 0.5, 1.0]}
    """
    return {key: sorted({float(v) for v in values} | {float(table_one[key])})
            for key, values in sweep.items()}


def sweep_rows(sweep, table_one):
    """Row label -> (experiment name, overrides); the Table I point of every key is ``full``.

    Example
    -------
    >>> rows = sweep_rows({"alpha": [0.1, 0.5]}, {"alpha": 0.1})
    >>> rows["alpha=0.1"], rows["alpha=0.5"]
    (('full', {}), ('sens_alpha_0.5', {'alpha': 0.5}))
    """
    rows = {}
    for key, values in sweep.items():
        for value in values:
            same = float(value) == float(table_one[key])
            rows[f"{key}={value:g}"] = ("full", {}) if same else (f"sens_{key}_{value:g}",
                                                                 {key: float(value)})
    return rows


def sensitivity_figure(table, sweep, table_one, path):
    """The 4-panel Fig. 7: WA and UA against each key's value (log x, error bars over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_label = {r["row"]: r for r in table["rows"]}
    fig, axes = plt.subplots(1, len(sweep), figsize=(3.4 * len(sweep), 3.0), squeeze=False)
    for ax, (key, values) in zip(axes[0], sweep.items()):
        # WA and UA a little apart on x (a balanced test set gives them the same value)
        for metric, marker, shift in (("WA", "o", 0.95), ("UA", "s", 1.05)):
            points = [(v, by_label[f"{key}={v:g}"]) for v in values]
            xs = [v * shift for v, r in points if r.get(metric) is not None]
            ys = [r[metric] for _, r in points if r.get(metric) is not None]
            err = [r.get(f"{metric} std") or 0.0 for _, r in points if r.get(metric) is not None]
            ax.errorbar(xs, ys, yerr=err, marker=marker, capsize=3, label=metric)
        ax.axvline(table_one[key], color="grey", ls="--", lw=1, label="Table I")
        ax.set_xscale("log")
        ax.set_xticks(values, [f"{v:g}" for v in values])  # the swept values, not 2×10⁻¹ ...
        ax.minorticks_off()
        ax.set_xlabel(f"{SYMBOLS[key]} ({key})")
        ax.set_ylabel("%")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.experiment.run import plan_run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with one_line_errors():
        hparams_file, options, overrides, run_opts, flags = grids.parse_command_line(
            sys.argv[1:] if argv is None else argv, Options, __doc__)
        base = plan_run(hparams_file, {**overrides, "experiment_name": "full"}, IEMOCAP, run_opts)
        table_one = {key: base.values[key] for key in SWEEP}
        sweep = with_table_one(options.sweep, table_one)
        rows = sweep_rows(sweep, table_one)
        names = {}
        for label, (name, values) in rows.items():  # one row per distinct run set
            names.setdefault(name, (label, values))
        unique = {label: (name, values) for name, (label, values) in names.items()}
        grid = grids.plan_grid(hparams_file, overrides, IEMOCAP, unique, options.folds,
                               options.seeds, run_opts)
        Path(options.out).mkdir(parents=True, exist_ok=True)
        grids.dispatch(grid, options, run_opts, flags)
    computed = grids.grid_table(grid, reference=None, paper=lambda label, corpus: {})
    by_label = {r["row"]: r for r in computed["rows"]}
    by_name = {name: by_label[label] for name, (label, _) in names.items()}
    table = {"corpus": "IEMOCAP", "metrics": ["WA", "UA"], "table_one": table_one,
             "aggregation": "one key at a time, the Table I point of every key being the full "
                            "run; " + computed["aggregation"],
             "rows": [{**by_name[name], "row": label} for label, (name, _) in rows.items()]}
    out = Path(options.out)
    atomic_write_json(out / "sensitivity.json", table)
    atomic_write_text(out / "sensitivity.md", grids.table_markdown(table))
    sensitivity_figure(table, sweep, table_one, out / "sensitivity.png")
    print(grids.table_markdown(table))
    return table


if __name__ == "__main__":
    main()
