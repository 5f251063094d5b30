"""An experiment is a plan (a list of runs), a dispatch (run them where the compute is) and a table
rebuilt from the finished run folders. No job queue: every run resumes, refuses changed settings
and writes ``test_metrics.json`` and ``predictions.csv`` by itself (:mod:`.run`).

* :func:`plan_grid`: rows (label -> experiment name and overrides) × folds × seeds, each a
  :class:`m4ser_lobes.experiment.run.Run` planned and checked before anything runs.
* :func:`dispatch_local`: the unfinished runs one after another (or one per visible GPU), each in
  a child process that dies with this one; :func:`write_slurm` / :func:`submit_slurm` /
  :func:`wait_slurm`: the same command lines as a SLURM job array (``--requeue``: a preempted
  task resumes from its checkpoints; resubmitting sends only unfinished runs).
* :func:`grid_table`: per row, the mean ± std over seeds of the per-seed figure (IEMOCAP: the mean
  over folds of WA and UA; MELD: ACC and W-F1), the pooled figure, macro-F1, how many of the
  planned runs finished (a row with missing runs is marked partial, never silently averaged), the
  paper's number and the difference, and a paired bootstrap against the full model over the same
  test utterances.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from typing import List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from m4ser_lobes.experiment import run as runs
from m4ser_lobes.experiment.ablations import PAPER_METRICS, paper_figures
from m4ser_lobes.experiment.folds import read_predictions
from m4ser_lobes.experiment.settings import ConfigError
from m4ser_lobes.metrics import calibration

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
#: The recipe script of each corpus (what a dispatched command line runs).
SCRIPTS = {"IEMOCAP": REPO / "recipes" / "IEMOCAP" / "train.py",
           "MELD": REPO / "recipes" / "MELD" / "train.py"}
#: The two reported metrics of each corpus (test_metrics.json keys).
METRICS = PAPER_METRICS


@dataclass(frozen=True)
class GridRun:
    """One run of a grid: its row, fold (None for MELD), seed and planned :class:`Run`."""

    row: str
    fold: object
    seed: int
    run: runs.Run

    @property
    def folder(self):
        return self.run.output_folder


def plan_grid(hparams_file, base, corpus, rows, folds=(None,), seeds=(1986,), run_opts=None):
    """Plan every run of ``rows`` × ``folds`` × ``seeds``; refuse the grid in one line if any run
    would be refused (a bad value, or a folder holding work with other settings).

    Arguments
    ---------
    rows : dict
        label -> (experiment_name, overrides), e.g. ``m4ser_lobes.experiment.ablations.TABLE_IV``.
    folds : sequence
        IEMOCAP test sessions; ``(None,)`` for a corpus without folds.
    """
    grid, conflicts = [], []
    for label, (name, overrides) in rows.items():
        for fold in folds:
            for seed in seeds:
                values = {**base, **overrides, "experiment_name": name, "seed": seed}
                if fold is not None:
                    values["fold"] = fold
                planned = runs.plan_run(hparams_file, values, corpus, run_opts)
                conflict = runs.recorded_conflict(planned)
                if conflict:
                    conflicts.append(conflict)
                grid.append(GridRun(label, fold, seed, planned))
    if conflicts and not base.get("overwrite"):
        raise runs.refusal("; ".join(conflicts[:3]) + (f" (+{len(conflicts) - 3} more)"
                                                       if len(conflicts) > 3 else ""))
    return grid


def _yaml_value(value):
    """A value as SpeechBrain's ``--key=value`` parser reads it back (YAML flow style)."""
    import io

    import ruamel.yaml

    if value is None:
        return "null"
    if isinstance(value, (bool, int, float, str)):
        return str(value)
    yaml = ruamel.yaml.YAML()
    yaml.default_flow_style = True
    stream = io.StringIO()
    yaml.dump(value, stream)
    return stream.getvalue().strip()


def command_of(grid_run, python=sys.executable):
    """The command line that carries out one run (the corpus recipe with its overrides).

    Example
    -------
    >>> from types import SimpleNamespace
    >>> corpus = SimpleNamespace(name="IEMOCAP")
    >>> run = SimpleNamespace(corpus=corpus, hparams_file="hparams/m4ser.yaml",
    ...                       overrides={"fold": 2, "expected_utterances": None, "trim": [1, 2]})
    >>> command_of(GridRun("r", 2, 1, run), python="python")[2:]
    ['hparams/m4ser.yaml', '--fold=2', '--expected_utterances=null', '--trim=[1, 2]']
    """
    run = grid_run.run
    return [python, str(SCRIPTS[run.corpus.name]), str(run.hparams_file),
            *(f"--{k}={_yaml_value(v)}" for k, v in run.overrides.items())]


def unfinished(grid):
    """The runs of ``grid`` without their test results (made with the same settings)."""
    return [g for g in grid if not runs.is_finished(g.run)]


# ------------------------------------------------------------------------------ dispatch
def dispatch_local(grid, extra_args=(), gpus=None):
    """Run the unfinished runs here, one after another, or one per GPU at a time.

    Each run is a child process that dies with this one (:func:`m4ser_lobes.utils.processes.
    run_pool`); with several GPUs the next run starts as soon as one ends. Its output goes to
    ``<run folder>.dispatch.log`` beside the run folder.

    Arguments
    ---------
    extra_args : sequence of str
        SpeechBrain run options for every run (``--device=cuda:0`` ...).
    gpus : sequence of str or None
        Visible GPU ids; with several, one run per GPU runs at a time (``CUDA_VISIBLE_DEVICES``).

    Returns
    -------
    dict
        folder -> exit code of every run started.
    """
    from tqdm import tqdm

    from m4ser_lobes.utils.processes import run_pool

    todo = unfinished(grid)
    logger.info("%d of %d runs to do", len(todo), len(grid))
    logs = {}

    def start(grid_run, index):
        def with_slot(gpu):
            env = dict(os.environ)
            if gpu is not None:
                env["CUDA_VISIBLE_DEVICES"] = str(gpu)
            command = [*command_of(grid_run), *extra_args]
            log = grid_run.folder.parent / f"{grid_run.folder.name}.dispatch.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            logger.info("%s%s: %s", grid_run.folder, "" if gpu is None else f" (GPU {gpu})",
                        shlex.join(command))
            logs[index] = open(log, "a")  # noqa: SIM115 (closed when the run ends)
            return command, {"env": env, "stdout": logs[index], "stderr": subprocess.STDOUT}
        return with_slot

    with tqdm(total=len(todo), desc="runs", unit="run") as bar:
        def done(index, _code):
            logs.pop(index).close()
            bar.update(1)

        try:
            codes = run_pool([start(g, i) for i, g in enumerate(todo)], list(gpus or [None]),
                             on_done=done)
        finally:
            for out in logs.values():
                out.close()
    return {str(g.folder): code for g, code in zip(todo, codes)}


def write_slurm(grid, folder, partition=None, time_limit=None, account=None, gpus_per_task=1,
                parallel=None, extra_sbatch=(), extra_args=()):
    """``commands.txt`` (one line per unfinished run) and ``array.sbatch`` in ``folder``.

    Task i of the array runs line i+1. Returns ``(script path, number of tasks)``; no script is
    written when every run is finished.
    """
    folder = Path(folder).resolve()
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    todo = unfinished(grid)
    lines = [shlex.join([*command_of(g), *extra_args]) for g in todo]
    (folder / "commands.txt").write_text("".join(line + "\n" for line in lines))
    script = folder / "array.sbatch"
    if not todo:
        return script, 0
    array = f"0-{len(todo) - 1}" + (f"%{parallel}" if parallel else "")
    header = ["#!/bin/bash", "#SBATCH --job-name=m4ser-grid", f"#SBATCH --array={array}",
              "#SBATCH --requeue", f"#SBATCH --output={folder / 'logs' / '%A_%a.out'}"]
    if gpus_per_task:
        header.append(f"#SBATCH --gres=gpu:{gpus_per_task}")
    header += [f"#SBATCH --partition={partition}"] if partition else []
    header += [f"#SBATCH --time={time_limit}"] if time_limit else []
    header += [f"#SBATCH --account={account}"] if account else []
    header += [f"#SBATCH {line}" for line in extra_sbatch]
    body = [f"cd {shlex.quote(str(Path.cwd()))}",
            f'line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(str(folder / "commands.txt"))})',
            'echo "task $SLURM_ARRAY_TASK_ID: $line"',
            'eval "$line"']
    script.write_text("\n".join(header + [""] + body) + "\n")
    return script, len(todo)


def submit_slurm(script, env=None):
    """``sbatch --parsable script``; returns the job id. A missing ``sbatch`` or a refused
    submission is one line that says what to do."""
    try:
        done = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True,
                              env=env)
    except FileNotFoundError:
        raise ConfigError("sbatch not found: run this on a SLURM login node, or dispatch here with "
                          "--dispatch=local") from None
    if done.returncode != 0:
        reason = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
        raise ConfigError(f"sbatch refused {script}: {reason} (check --slurm_partition, "
                          "--slurm_account and --slurm_gpus for this cluster)")
    return done.stdout.strip().split(";")[0]


def wait_slurm(job, env=None, poll=2.0, timeout=None):
    """Wait until no task of ``job`` is pending or running (``squeue``)."""
    start = time.monotonic()
    while True:
        queue = subprocess.run(["squeue", "-h", "-j", str(job), "-o", "%i %T"],
                               capture_output=True, text=True, env=env)
        if queue.returncode != 0 or not queue.stdout.strip():
            return
        if timeout is not None and time.monotonic() - start > timeout:
            raise TimeoutError(f"SLURM job {job} still queued after {timeout} s")
        time.sleep(poll)


# ------------------------------------------------------------------------------ table
def _scores(true, pred, metrics):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    table = {"WA": accuracy_score, "ACC": accuracy_score, "UA": balanced_accuracy_score,
             "W-F1": lambda t, p: f1_score(t, p, average="weighted", zero_division=0),
             "macro-F1": lambda t, p: f1_score(t, p, average="macro", zero_division=0)}
    return {m: 100 * float(table[m](true, pred)) for m in (*metrics, "macro-F1")}


def _fast_score(true, pred, metric, n_classes):
    """WA/ACC, UA, W-F1 or macro-F1 (percent) of integer labels, from the confusion matrix."""
    confusion = np.bincount(true * n_classes + pred, minlength=n_classes ** 2).reshape(n_classes, -1)
    support = confusion.sum(axis=1)
    tp = np.diag(confusion)
    if metric in ("WA", "ACC"):
        return 100 * tp.sum() / max(support.sum(), 1)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros(n_classes), where=present)
    if metric == "UA":
        return 100 * recall[present].mean()
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(n_classes), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall,
                   out=np.zeros(n_classes), where=(precision + recall) > 0)
    if metric == "W-F1":
        return 100 * (f1 * support).sum() / max(support.sum(), 1)
    return 100 * f1[present].mean()


def paired_bootstrap(true, pred_a, pred_b, metric, rounds=1000, seed=0):
    """Two-sided p-value that ``metric`` of ``pred_a`` and ``pred_b`` differ on the same utterances.

    Utterances are resampled with replacement; p is twice the share of resamples in which the
    difference changes sign or vanishes (at most 1).

    Example
    -------
    >>> t = ["a"] * 50 + ["b"] * 50
    >>> paired_bootstrap(t, t, ["a"] * 100, "WA") < 0.01, paired_bootstrap(t, t, t, "WA")
    (True, 1.0)
    """
    labels = {c: i for i, c in enumerate(sorted(set(true) | set(pred_a) | set(pred_b)))}
    true, pred_a, pred_b = (np.array([labels[x] for x in v]) for v in (true, pred_a, pred_b))
    n = len(labels)
    observed = _fast_score(true, pred_a, metric, n) - _fast_score(true, pred_b, metric, n)
    if observed == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    flips = 0
    for _ in range(rounds):
        idx = rng.integers(0, len(true), len(true))
        diff = (_fast_score(true[idx], pred_a[idx], metric, n)
                - _fast_score(true[idx], pred_b[idx], metric, n))
        flips += int(np.sign(diff) != np.sign(observed))
    return float(min(1.0, 2 * flips / rounds))


def reliability_diagram(table, path):
    """One panel per row: accuracy against confidence of the pooled test predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table["rows"] if r.get("calibration")]
    if not rows:
        return None
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.2), squeeze=False)
    for ax, row in zip(axes[0], rows):
        conf, acc, n = zip(*row["calibration"]["reliability"])
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
        ax.plot(conf, acc, marker="o")
        ax.set_title(f"{row['row']}\nECE {row['calibration']['ECE']:.1f}", fontsize=8)
        ax.set_xlabel("confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def grid_table(grid, reference="M4SER (full)", paper=paper_figures, rounds=1000):
    """Rows of the experiment's table, rebuilt from the run folders (see the module docstring)."""
    corpus = grid[0].run.corpus.name
    metrics = METRICS[corpus]
    by_row = {}
    for g in grid:
        by_row.setdefault(g.row, []).append(g)
    pooled_predictions = {}
    rows = []
    for label, members in by_row.items():
        done = [g for g in members if runs.is_finished(g.run)]
        failed = [str(g.folder) for g in members if g not in done and
                  (g.folder / "log.txt").is_file()]
        per_seed = {}
        pooled, probabilities, classes = {}, {}, None
        for g in done:
            metrics_file = json.loads((g.folder / "test_metrics.json").read_text())
            per_seed.setdefault(g.seed, []).append(metrics_file)
            classes = classes or sorted(metrics_file.get("classes", ()))  # one order for all runs
            for utt, t, p, prob in zip(*read_predictions(g.folder / "predictions.csv")):
                pooled[(g.seed, utt)] = (t, p)
                probabilities[(g.seed, utt)] = prob
        seeds = sorted(per_seed)
        seed_means = {m: [float(np.mean([f[m] for f in per_seed[s]])) for s in seeds]
                      for m in metrics}
        keys = sorted(pooled)
        true = [pooled[k][0] for k in keys]
        pred = [pooled[k][1] for k in keys]
        pooled_predictions[label] = dict(zip(keys, pred)), dict(zip(keys, true))
        row = {
            "row": label,
            "finished": len(done), "planned": len(members), "partial": len(done) < len(members),
            "failed": failed,
            "seeds": seeds,
            **{m: (float(np.mean(v)) if v else None) for m, v in seed_means.items()},
            **{f"{m} std": (float(np.std(v, ddof=1)) if len(v) > 1 else None)
               for m, v in seed_means.items()},
            **({f"pooled {m}": v for m, v in _scores(true, pred, metrics).items()} if keys else {}),
        }
        if keys and classes:
            row["calibration"] = calibration(true, classes, [[probabilities[k][c] for c in classes]
                                                             for k in keys])
        for m, figure in paper(label, corpus).items():
            row[f"paper {m}"] = figure
            row[f"diff {m}"] = None if row[m] is None else row[m] - figure
        rows.append(row)
    if reference in pooled_predictions:
        ref_pred, ref_true = pooled_predictions[reference]
        for row in rows:
            pred, true = pooled_predictions[row["row"]]
            shared = sorted(set(pred) & set(ref_pred))
            if row["row"] == reference or not shared:
                continue
            row["p vs full"] = {m: paired_bootstrap([true[k] for k in shared],
                                                    [pred[k] for k in shared],
                                                    [ref_pred[k] for k in shared], m, rounds)
                                for m in metrics}
    return {"corpus": corpus, "metrics": list(metrics), "rows": rows,
            "aggregation": ("per seed: the mean over folds of each fold's test figure "
                            "(IEMOCAP; MELD: the test figure); shown: mean ± std (ddof 1) over "
                            "seeds; pooled: every test utterance of every fold and seed at once; "
                            "p vs full: paired bootstrap (1000 resamples) over the same pooled "
                            "utterances; ECE (10 bins), NLL, Brier of the pooled probabilities; "
                            "partial: planned runs missing, never averaged in silence")}


def table_markdown(table):
    """The table as Markdown, the paper's number beside ours."""
    metrics = table["metrics"]
    head = ["row", *(f"{m} (mean ± std)" for m in metrics), *(f"pooled {m}" for m in metrics),
            "pooled macro-F1", *(f"paper {m}" for m in metrics), "p vs full", "ECE / NLL / Brier",
            "runs"]
    lines = [f"{table['corpus']}: {table['aggregation']}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def fmt(value, spread=None):
        if value is None:
            return "—"
        return f"{value:.2f}" + (f" ± {spread:.2f}" if spread is not None else "")

    for row in table["rows"]:
        p = row.get("p vs full")
        cells = [row["row"] + (" (partial)" if row["partial"] else ""),
                 *(fmt(row[m], row[f"{m} std"]) for m in metrics),
                 *(fmt(row.get(f"pooled {m}")) for m in metrics), fmt(row.get("pooled macro-F1")),
                 *(fmt(row.get(f"paper {m}")) for m in metrics),
                 ", ".join(f"{m} p={v:.3f}" for m, v in p.items()) if p else "—",
                 (f"{row['calibration']['ECE']:.1f} / {row['calibration']['NLL']:.3f} / "
                  f"{row['calibration']['Brier']:.3f}") if row.get("calibration") else "—",
                 f"{row['finished']}/{row['planned']}"]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [f for row in table["rows"] for f in row["failed"]]
    if failed:
        lines += ["", "Unfinished runs with a log (failed or still running): "
                  + ", ".join(f"{f}/log.txt" for f in failed)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ command lines
class GridOptions(BaseModel):
    """What every experiment command takes besides the runs' keys (HyperPyYAML ``--key=value``)."""

    model_config = ConfigDict(extra="forbid")
    corpus: Literal["IEMOCAP", "MELD"] = "IEMOCAP"
    folds: List[Literal[1, 2, 3, 4, 5]] = Field(default_factory=lambda: [1, 2, 3, 4, 5],
                                                min_length=1)
    seeds: List[StrictInt] = Field(default_factory=lambda: [1986, 1987, 1988], min_length=1)
    dispatch: Literal["local", "slurm", "none"] = "local"
    out: StrictStr = "results/experiments"
    gpus: Optional[List[StrictInt]] = None
    slurm_partition: Optional[StrictStr] = None
    slurm_time: Optional[StrictStr] = None
    slurm_account: Optional[StrictStr] = None
    slurm_gpus: StrictInt = Field(1, ge=0)
    slurm_parallel: Optional[StrictInt] = Field(None, ge=1)
    slurm_sbatch: List[StrictStr] = Field(default_factory=list)
    slurm_wait: StrictBool = False


def parse_command_line(argv, options_class, doc):
    """``(hparams_file, options, run overrides, run_opts, flags)`` of an experiment command.

    ``--help`` prints ``doc``; the experiment's keys are checked by ``options_class`` (one line on
    a bad value); every other ``--key=value`` is an override of every run.
    """
    import speechbrain as sb
    from pydantic import ValidationError

    if not argv or argv[0] in ("-h", "--help"):
        print(doc)
        raise SystemExit(0)
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    overrides = runs.overrides_dict(overrides)
    mine = {k: overrides.pop(k) for k in list(overrides) if k in options_class.model_fields}
    for key in ("experiment_name", "fold", "seed"):
        if key in overrides:
            raise ConfigError(f"--{key} is set per run by the experiment: use the experiment's "
                              "--rows/--sweep, --folds and --seeds")
    try:
        options = options_class(**mine)
    except ValidationError as error:
        problem = error.errors()[0]
        key = problem["loc"][0] if problem["loc"] else "?"
        raise ConfigError(f"--{key}={mine.get(key)!r}: {problem['msg'].lower()}") from None
    flags = [a for a in argv[1:] if a.startswith("--") and "=" not in a]
    return hparams_file, options, overrides, run_opts, flags


def dispatch(grid, options, run_opts, flags):
    """Send the unfinished runs of ``grid`` where ``options.dispatch`` says."""
    device = [f"--device={run_opts['device']}"] if "device" in run_opts.overridden_args else []
    extra = [*device, *flags]
    if options.dispatch == "local":
        dispatch_local(grid, extra, options.gpus)
    elif options.dispatch == "slurm":
        script, tasks = write_slurm(grid, options.out, options.slurm_partition, options.slurm_time,
                                    options.slurm_account, options.slurm_gpus,
                                    options.slurm_parallel, options.slurm_sbatch, extra)
        if not tasks:
            logger.info("every run is finished: nothing submitted")
            return
        job = submit_slurm(script)
        logger.info("submitted %d tasks as SLURM job %s (%s)", tasks, job, script)
        if options.slurm_wait:
            wait_slurm(job)
