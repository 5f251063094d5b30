#!/usr/bin/env python3
r"""Table IV (and Table V's accuracy rows, and Table VI): ablation rows × folds × seeds, one command.

    python recipes/experiments/table4.py hparams/m4ser.yaml --corpus=IEMOCAP \
        --data_folder=/data/IEMOCAP_full_release --hypotheses_file=results/iemocap_whisper-medium.en.json \
        [--rows=[full,wo_gan]] [--folds=[1,2,3,4,5]] [--seeds=[1986,1987,1988]] \
        [--dispatch=local|slurm|none] [--slurm_partition=gpu --slurm_time=08:00:00 --slurm_parallel=20]

Rows are experiment names of ``m4ser_lobes.experiment.ablations`` (the 13 Table IV rows, ``msr_mir``
of Table V, ``gt_text`` of Table VI; all by default). Every run is planned and checked first; a
run that exists with other settings refuses the whole grid. ``--dispatch=local`` runs the
unfinished runs here (``--gpus=[0,1]``: one per GPU at a time); ``--dispatch=slurm`` writes
``<out>/commands.txt`` and ``<out>/array.sbatch`` (a job array, ``--requeue``) and submits it
(``--slurm_wait=True`` waits for it); ``--dispatch=none`` only rebuilds the table. Rerunning the
same command sends only unfinished runs. The table (``<out>/table4_<corpus>.md`` and ``.json``) is
rebuilt from the run folders: mean ± std over seeds of the fold means, pooled figures, macro-F1,
runs finished / planned (partial rows marked), the paper's numbers, a paired bootstrap against
the full model, calibration (ECE, NLL, Brier and ``<out>/table4_<corpus>_reliability.png``).
Any other ``--key=value`` goes to every run (``--number_of_epochs=50``).
"""

import logging
import sys
from pathlib import Path
from typing import List, Literal

from pydantic import Field

from m4ser_lobes.experiment import grid as grids
from m4ser_lobes.experiment.ablations import ROWS_BY_NAME
from m4ser_lobes.experiment.run import one_line_errors
from m4ser_lobes.utils.fileio import atomic_write_json, atomic_write_text

logger = logging.getLogger("table4")


class Options(grids.GridOptions):
    """The rows of the experiment (experiment names); the rest is :class:`GridOptions`."""

    rows: List[Literal[tuple(ROWS_BY_NAME)]] = Field(default_factory=lambda: list(ROWS_BY_NAME),
                                                     min_length=1)
    out: str = "results/table4"


def main(argv=None):
    from m4ser_lobes.corpora.iemocap import IEMOCAP
    from m4ser_lobes.corpora.meld import MELD

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    with one_line_errors():
        hparams_file, options, overrides, run_opts, flags = grids.parse_command_line(
            sys.argv[1:] if argv is None else argv, Options, __doc__)
        corpus = IEMOCAP if options.corpus == "IEMOCAP" else MELD
        rows = {ROWS_BY_NAME[name][0]: (name, ROWS_BY_NAME[name][1]) for name in options.rows}
        folds = options.folds if corpus is IEMOCAP else [None]
        grid = grids.plan_grid(hparams_file, overrides, corpus, rows, folds, options.seeds, run_opts)
        Path(options.out).mkdir(parents=True, exist_ok=True)
        grids.dispatch(grid, options, run_opts, flags)
    table = grids.grid_table(grid)
    stem = Path(options.out) / f"table4_{corpus.name.lower()}"
    atomic_write_json(stem.with_suffix(".json"), table)
    atomic_write_text(stem.with_suffix(".md"), grids.table_markdown(table))
    grids.reliability_diagram(table, f"{stem}_reliability.png")
    print(grids.table_markdown(table))
    return table


if __name__ == "__main__":
    main()
