"""The Table IV experiment as one command (recipes/experiments/table4.py, experiment/grid.py):
a 2-row × 2-fold × 2-seed IEMOCAP grid of tiny runs dispatched here and as a job array on a real
single-node SLURM cluster (m4ser_lobes.testing.slurm) gives the same table, equal to a hand
aggregation of the runs' test_metrics.json; a rerun trains nothing; a changed setting is refused;
a grid with missing runs is shown as partial; a SLURM task cancelled mid-way resumes when the plan
is resubmitted. Locally the runs go two at a time (``--gpus=[0,1]``; CPU runs ignore the GPU id)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tiny_recipe import BATCH_SIZE, experiment_argv, make_tiny_assets

from m4ser_lobes.experiment import grid
from m4ser_lobes.experiment.settings import ConfigError
from m4ser_lobes.testing import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "recipes" / "experiments" / "table4.py"
table4 = load_script(SCRIPT, "table4_experiment")


def argv(assets, results, **keys):
    """The experiment's command line; ``keys`` replace the grid's and the runs' defaults."""
    return experiment_argv(assets, results, {"rows": "[full,gt_text]", "folds": "[1,2]",
                                             "seeds": "[3,4]", "expected_utterances": None,
                                             "batch_size": BATCH_SIZE, "gpus": "[0,1]"}, keys)


def hand_aggregation(results):
    """Row experiment -> (mean over seeds of the fold-mean WA, UA), from test_metrics.json."""
    out = {}
    for name in ("full", "gt_text"):
        per_seed = []
        for seed in (3, 4):
            folds = [json.loads((results / name / f"fold{k}" / f"seed{seed}" / "test_metrics.json")
                                .read_text()) for k in (1, 2)]
            per_seed.append([np.mean([f[m] for f in folds]) for m in ("WA", "UA")])
        out[name] = tuple(np.mean(per_seed, axis=0))
    return out


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_tiny_assets(tmp_path_factory.mktemp("grid_assets"))


@pytest.fixture(scope="module")
def local(assets, tmp_path_factory):
    """The grid dispatched here once: (results folder, table)."""
    results = tmp_path_factory.mktemp("grid") / "local"
    return results, table4.main(argv(assets, results))


@pytest.mark.slow
def test_local_grid_table_equals_hand_aggregation_then_rerun_trains_nothing(assets, local):
    results, table = local
    rows = {r["row"]: r for r in table["rows"]}
    for label, name in (("M4SER (full)", "full"), ("gt_text (Table VI)", "gt_text")):
        row = rows[label]
        assert (row["finished"], row["planned"], row["partial"]) == (4, 4, False)
        assert (row["WA"], row["UA"]) == pytest.approx(hand_aggregation(results)[name])
        assert row["paper WA"] == {"full": 79.2, "gt_text": 78.4}[name]
    assert set(rows["gt_text (Table VI)"]["p vs full"]) == {"WA", "UA"}
    # Pooled macro-F1 (beyond the paper): scikit-learn's over every test utterance of the row.
    from sklearn.metrics import f1_score

    from m4ser_lobes.experiment.folds import read_predictions

    pooled = [read_predictions(f) for f in sorted(results.glob("full/fold*/seed*/predictions.csv"))]
    true, pred = (sum((p[i] for p in pooled), []) for i in (1, 2))
    assert rows["M4SER (full)"]["pooled macro-F1"] == pytest.approx(
        100 * f1_score(true, pred, average="macro", zero_division=0))
    # Calibration pools the probabilities by class name, whatever order a fold's label encoder
    # gave the predictions.csv columns: fold 2's columns reversed, the table is the same.
    files = sorted(results.glob("*/fold2/seed*/predictions.csv"))
    originals = {f: f.read_text(encoding="utf-8") for f in files}
    for f, text in originals.items():
        reordered = [",".join(line.split(",")[:3] + line.split(",")[3:][::-1])
                     for line in text.splitlines()]
        f.write_text("\n".join(reordered) + "\n", encoding="utf-8")
    try:
        assert table4.main(argv(assets, results, dispatch="none"))["rows"] == table["rows"]
    finally:
        for f, text in originals.items():
            f.write_text(text, encoding="utf-8")
    markdown = (results / "table4" / "table4_iemocap.md").read_text()
    assert "mean ± std (ddof 1) over seeds" in markdown and "paired bootstrap" in markdown

    mtimes = sorted(p.stat().st_mtime_ns for p in results.glob("*/fold*/seed*/test_metrics.json"))
    again = table4.main(argv(assets, results))
    assert sorted(p.stat().st_mtime_ns for p in results.glob("*/fold*/seed*/test_metrics.json")) == mtimes
    assert again["rows"] == table["rows"]

    with pytest.raises(SystemExit, match=r"use_lcl: .* -> .*--overwrite=True"):
        table4.main(argv(assets, results, use_lcl=False, rows="[full]"))
    # Fig. 12 from two rows of the grid and Fig. 6 from the preparation summary.
    figures = load_script(REPO / "recipes" / "experiments" / "figures.py", "figures_tool")
    assert figures.main(["confusion", str(results / "full"), str(results / "gt_text"),
                         "--seed", "3", "--out", str(results / "fig12.png")]) == 0
    matrices = json.loads((results / "fig12.json").read_text())
    assert set(matrices) == {"full", "gt_text"} and matrices["full"]["folds"] == [1, 2]
    assert all(abs(sum(row) - 100) < 1e-6 for row in matrices["full"]["matrix"] if sum(row))
    summary = next((results / "prepared").glob("*/summary.json"))
    assert figures.main(["classes", str(summary), "--out", str(results / "fig6.png")]) == 0
    assert (results / "fig6.png").stat().st_size > 0
    assert (results / "table4" / "table4_iemocap_reliability.png").stat().st_size > 0

    partial = table4.main(argv(assets, results, seeds="[3,4,5]", dispatch="none"))
    assert all(r["partial"] and r["finished"] == 4 and r["planned"] == 6 for r in partial["rows"])
    assert "(partial)" in (results / "table4" / "table4_iemocap.md").read_text()


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    from m4ser_lobes.testing.slurm import start_cluster

    cluster = start_cluster(tmp_path_factory.mktemp("slurm"), cpus=2)
    yield cluster
    cluster.stop()


@pytest.mark.slow
def test_slurm_array_gives_the_local_table_and_a_cancelled_task_resumes(assets, local, tmp_path,
                                                                       slurm, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))
    results = tmp_path / "slurm"
    # A task cancelled while it trains: its run is unfinished afterwards.
    single = dict(dispatch="slurm", slurm_gpus=0, number_of_epochs=30, rows="[full]", folds="[1]",
                  seeds="[3]")
    first = argv(assets, results, **single)
    table4.main(first)
    commands = (results / "table4" / "commands.txt").read_text().splitlines()
    assert len(commands) == 1 and "recipes/IEMOCAP/train.py" in commands[0]
    history = results / "full" / "fold1" / "seed3" / "history.json"
    deadline = time.monotonic() + 240
    while not history.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert history.exists(), (results / "table4" / "logs").glob("*")
    subprocess.run(["scancel", "--full", "--name=m4ser-grid"], env=slurm.env, check=True)
    deadline = time.monotonic() + 60
    while subprocess.run(["squeue", "-h"], env=slurm.env, capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert not (history.parent / "test_metrics.json").exists()
    epochs_before = len(json.loads(history.read_text()))
    # Meanwhile the table shows it as failed (or still running), with its log's path.
    shown = table4.main(argv(assets, results, **{**single, "dispatch": "none"}))
    assert shown["rows"][0]["failed"] == [str(history.parent)] and shown["rows"][0]["partial"]
    assert f"{history.parent}/log.txt" in (results / "table4" / "table4_iemocap.md").read_text()
    # Resubmitted with the epochs it was planned with: it resumes (no epoch redone) and finishes.
    table4.main(argv(assets, results, **single, slurm_wait=True))
    log = (history.parent / "log.txt").read_text()
    assert "Loading a checkpoint from" in log
    assert json.loads(history.read_text())[0]["epoch"] == 1 and epochs_before >= 1
    assert (history.parent / "test_metrics.json").exists()
    # The whole grid through SLURM: the same table as the local dispatch (CPU runs are exact).
    tabled = table4.main(argv(assets, tmp_path / "slurm_grid", dispatch="slurm", slurm_gpus=0,
                              slurm_wait=True))
    strip = lambda t: [{k: v for k, v in r.items() if k != "failed"} for r in t["rows"]]  # noqa: E731
    assert strip(tabled) == strip(local[1])
    # A submission the cluster refuses, and a machine without sbatch: one line each.
    refused = tmp_path / "refused.sbatch"
    refused.write_text("#!/bin/bash\n#SBATCH --partition=no_such_partition\ntrue\n")
    with pytest.raises(ConfigError, match=r"sbatch refused .*refused\.sbatch: .*--slurm_partition"):
        grid.submit_slurm(refused, env=slurm.env)
    with pytest.raises(ConfigError, match=r"sbatch not found: .*--dispatch=local"):
        grid.submit_slurm(refused, env={**slurm.env, "PATH": str(tmp_path / "empty")})
    assert sys.executable in (tmp_path / "slurm_grid" / "table4" / "commands.txt").read_text()


SENSITIVITY = REPO / "recipes" / "experiments" / "sensitivity.py"


@pytest.mark.slow
def test_sensitivity_trains_the_table_one_point_once_and_refuses_bad_values(assets, local):
    results, _ = local  # holds the full run of seeds 3, 4, folds 1, 2 already
    sensitivity = load_script(SENSITIVITY, "sensitivity_experiment")

    def sens_argv(**keys):  # the sweep replaces the rows
        return [a for a in argv(assets, results, **keys) if not a.startswith("--rows=")]

    with pytest.raises(SystemExit, match=r"--sweep=.*greater than or equal to 0"):
        sensitivity.main(sens_argv(sweep="{alpha: [-0.5]}"))
    with pytest.raises(SystemExit, match=r"--sweep=.*valid number"):
        sensitivity.main(sens_argv(sweep="{alpha: [high]}"))
    full_metrics = sorted(p.stat().st_mtime_ns for p in (results / "full").glob("fold*/seed*/test_metrics.json"))
    table = sensitivity.main(sens_argv(sweep="{alpha: [0.1, 0.5]}", folds="[1]", seeds="[3]",
                                       out=f"{results}/sens"))
    # alpha=0.1 is Table I: the full run, shared and not retrained; alpha=0.5 trained once.
    assert sorted(p.stat().st_mtime_ns for p in (results / "full").glob("fold*/seed*/test_metrics.json")) == full_metrics
    assert (results / "sens_alpha_0.5" / "fold1" / "seed3" / "test_metrics.json").is_file()
    assert [r["row"] for r in table["rows"]] == ["alpha=0.1", "alpha=0.5"]
    assert all(r["finished"] == r["planned"] == 1 for r in table["rows"])
    assert (results / "sens" / "sensitivity.png").stat().st_size > 0


@pytest.mark.slow
def test_fig11_weights_and_table7_from_the_asr_and_gt_text_runs(local, tmp_path):
    """Fig. 11 / Table VII from two finished runs of the grid: the full model (ASR text) and
    Table VI's gt_text row, on two test utterances whose hypothesis differs from the transcript."""
    from m4ser_lobes.experiment import weights as fig11

    results, _ = local
    asr_run, gt_run = results / "full" / "fold1" / "seed3", results / "gt_text" / "fold1" / "seed3"
    manifest = json.loads(Path(fig11.TrainedRun(asr_run).manifests()["test"]).read_text())
    ids = [u for u, e in sorted(manifest.items()) if e["hypothesis"] and
           e["hypothesis"].split() != e["transcript"].split()][:2]
    assert len(ids) == 2
    figures = load_script(REPO / "recipes" / "experiments" / "figures.py", "figures_tool")
    out = tmp_path / "fig11.png"
    assert figures.main(["weights", str(asr_run), str(gt_run), "--ids", *ids,
                         "--labels", "ASR", "GT", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    analysis = json.loads(out.with_suffix(".json").read_text())
    assert analysis["runs"]["ASR"]["text_source"] == "hypothesis"
    assert analysis["runs"]["GT"]["text_source"] == "transcript"
    for example, utterance in zip(("(a)", "(b)"), ids):
        data = analysis["examples"][example]
        assert data["id"] == utterance
        asr, gt = data["ASR"], data["GT"]
        assert asr["split"] == gt["split"] == "test"
        # Each run reads its own text: the word pieces differ, the speech frames do not.
        assert asr["tokens"] != gt["tokens"]
        assert len(asr["curves"]["speech_single"]) == len(gt["curves"]["speech_single"]) > 1
        for weights in (asr, gt):
            curves = weights["curves"]
            assert len(curves["text_single"]) == len(curves["text_cross"]) == len(weights["tokens"])
            assert len(curves["speech_cross"]) == len(curves["speech_single"])
            for curve in curves.values():  # min-max normalised per utterance
                assert min(curve) == 0.0 and max(curve) == pytest.approx(1.0)
            assert weights["dtw_cross"] == pytest.approx(
                fig11.dtw_distance(curves["text_cross"], curves["speech_cross"]))
            assert 0 <= weights["dtw_cross"] <= 1
    # The same analysis again gives the same numbers (evaluation mode, one utterance at a time).
    again = fig11.weights_analysis([asr_run, gt_run], ids, ["ASR", "GT"])
    assert json.loads(json.dumps(again)) == analysis
    table = out.with_suffix(".md").read_text()
    assert "DTW ↓ cross-modal (Table VII)" in table
    assert "| paper (ASR, GT) | 0.52 | 1.89 | 1.46 | 1.57 |" in table
    first = sorted(manifest)[0]
    with pytest.raises(SystemExit, match=rf"'nope' is in none of .*manifests.*test split: {first}"):
        figures.main(["weights", str(asr_run), "--ids", "nope", "--out", str(out)])
