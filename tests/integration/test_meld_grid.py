"""The Table IV experiment command on MELD (recipes/experiments/table4.py --corpus=MELD,
experiment/grid.py): a 2-row × 2-seed grid of tiny runs on the generated MELD look-alike,
dispatched here, gives a table equal to a hand aggregation of the runs' test_metrics.json (ACC and
W-F1, no folds); a rerun trains nothing; a changed setting is refused; a grid with missing runs is
shown as partial. The grid runs two at a time (``--gpus=[0,1]``, a pool of two slots). The IEMOCAP
twin is test_grid.py."""

import json
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from tiny_recipe import experiment_argv

from m4ser_lobes.testing import load_script

REPO = Path(__file__).resolve().parents[2]
table4 = load_script(REPO / "recipes" / "experiments" / "table4.py", "table4_meld_experiment")
ROWS = {"M4SER (full)": "full", "D(3) w/o GAN & LCL": "wo_gan_lcl"}
SEEDS = (3, 4)
PAPER = {"full": (66.5, 66.0), "wo_gan_lcl": (65.5, 64.1)}  # Tables III and IV: ACC, W-F1


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """The smallest MELD look-alike a run accepts, and tiny encoders. 9 rows a split: with 7
    (``MIN_PER_SPLIT``) the undecodable training clip (row 1) is the only 'joy' of train, and a run
    refuses dev and test labels that train lacks; row 8 is another 'joy'."""
    from m4ser_lobes.testing.mini_meld import generate_meld
    from m4ser_lobes.testing.models import save_tiny_speech_encoder, save_tiny_text_encoder

    demo = load_script(REPO / "recipes" / "MELD" / "demo.py", "meld_demo_for_grid")
    folder = tmp_path_factory.mktemp("meld_grid_assets")
    corpus = generate_meld(folder / "corpus", seed=0, per_split=9)
    speech = save_tiny_speech_encoder(folder / "tiny-hubert", kind="hubert", hidden_size=32,
                                      num_layers=1)
    text = save_tiny_text_encoder(folder / "tiny-bert", words=demo.demo_words(), hidden_size=32,
                                  num_layers=1)
    return {"data_folder": corpus.root, "hypotheses_file": corpus.hypotheses,
            "speech_encoder_source": speech, "text_encoder_source": text}


def argv(assets, results, **keys):
    """The experiment's command line on MELD; ``keys`` replace the grid's and the runs' defaults."""
    return experiment_argv(assets, results, {"corpus": "MELD", "rows": "[full,wo_gan_lcl]",
                                             "seeds": "[3,4]", "expected_counts": None,
                                             "batch_size": 8, "gpus": "[0,1]"}, keys)


def metrics_files(results):
    return sorted(results.glob("*/seed*/test_metrics.json"))


@pytest.fixture(scope="module")
def grid(assets, tmp_path_factory):
    """The MELD grid dispatched here once: (results folder, table)."""
    results = tmp_path_factory.mktemp("meld_grid") / "local"
    return results, table4.main(argv(assets, results))


def interval(folder):
    """(start, end) of a run: its log's first timestamp, its test_metrics.json's mtime."""
    first = (folder / "log.txt").read_text(encoding="utf-8")[:23]
    start = datetime.strptime(first, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return start, (folder / "test_metrics.json").stat().st_mtime


@pytest.mark.slow
def test_meld_grid_table_equals_hand_aggregation(grid):
    results, table = grid
    # --gpus=[0,1]: two runs at a time (CUDA_VISIBLE_DEVICES 0 and 1; these CPU runs ignore it)
    spans = sorted(interval(f.parent) for f in metrics_files(results))
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))
    # The two runs that start together take turns to prepare: only one decodes and reports the
    # release's missing clip, the other finds the manifests done.
    logs = [p.read_text(encoding="utf-8") for p in results.glob("*/seed*.dispatch.log")]
    assert len(logs) == 4 and sum(bool(re.search(r"skipping \S+: missing", t)) for t in logs) == 1
    assert table["corpus"] == "MELD" and table["metrics"] == ["ACC", "W-F1"]
    # grid.py plans MELD runs without folds: <results_folder>/<row>/seed<s>.
    assert [p.relative_to(results).as_posix() for p in metrics_files(results)] == \
        [f"{name}/seed{s}/test_metrics.json" for name in sorted(ROWS.values()) for s in SEEDS]
    rows = {r["row"]: r for r in table["rows"]}
    assert list(rows) == list(ROWS)
    for label, name in ROWS.items():
        row = rows[label]
        per_seed = [json.loads((results / name / f"seed{s}" / "test_metrics.json").read_text())
                    for s in SEEDS]
        assert (row["finished"], row["planned"], row["partial"]) == (2, 2, False)
        assert row["seeds"] == list(SEEDS) and row["failed"] == []
        for metric in ("ACC", "W-F1"):
            figures = [m[metric] for m in per_seed]
            assert row[metric] == pytest.approx(np.mean(figures))
            assert row[f"{metric} std"] == pytest.approx(np.std(figures, ddof=1))
        assert (row["paper ACC"], row["paper W-F1"]) == PAPER[name]
        assert row["diff ACC"] == pytest.approx(row["ACC"] - PAPER[name][0])
        assert all(m["paper"]["row"] == label for m in per_seed)
    full = json.loads((results / "full" / "seed3" / "test_metrics.json").read_text())
    assert full["paper"] == {"row": "M4SER (full)", "source": "Tables III and IV", "ACC": 66.5,
                             "W-F1": 66.0}
    assert "p vs full" not in rows["M4SER (full)"]
    assert set(rows["D(3) w/o GAN & LCL"]["p vs full"]) == {"ACC", "W-F1"}
    # What was written is what was returned; the markdown shows ours beside the paper's.
    assert json.loads((results / "table4" / "table4_meld.json").read_text()) == \
        json.loads(json.dumps(table))
    markdown = (results / "table4" / "table4_meld.md").read_text()
    assert markdown.startswith("MELD: ") and "mean ± std (ddof 1) over seeds" in markdown
    assert "| ACC (mean ± std) | W-F1 (mean ± std) |" in markdown and "(partial)" not in markdown
    full_line = next(line for line in markdown.splitlines() if line.startswith("| M4SER (full) |"))
    assert f"{rows['M4SER (full)']['ACC']:.2f} ± " in full_line
    assert "| 66.50 | 66.00 |" in full_line and full_line.endswith("| 2/2 |")


@pytest.mark.slow
def test_meld_grid_rerun_trains_nothing_refuses_changes_and_shows_partial_plans(assets, grid):
    results, table = grid
    mtimes = [p.stat().st_mtime_ns for p in metrics_files(results)]
    again = table4.main(argv(assets, results))
    assert [p.stat().st_mtime_ns for p in metrics_files(results)] == mtimes
    assert again["rows"] == table["rows"]

    with pytest.raises(SystemExit, match=r"use_lcl: .* -> .*--overwrite=True"):
        table4.main(argv(assets, results, use_lcl=False, rows="[full]"))

    partial = table4.main(argv(assets, results, seeds="[3,4,5]", dispatch="none"))
    assert [(r["finished"], r["planned"], r["partial"]) for r in partial["rows"]] == \
        [(2, 3, True)] * 2
    assert not (results / "full" / "seed5").exists()
    markdown = (results / "table4" / "table4_meld.md").read_text()
    assert "| M4SER (full) (partial) |" in markdown and "| 2/3 |" in markdown
