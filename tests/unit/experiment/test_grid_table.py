"""The grid's table arithmetic (m4ser_lobes.experiment.grid): scores equal scikit-learn's, the
bootstrap calls no effect an effect, calibration is what its definition says."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from m4ser_lobes.experiment import grid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_scores_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    true, pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    true[:5] = 3  # every class present
    expected = {"WA": accuracy_score(true, pred), "UA": balanced_accuracy_score(true, pred),
                "W-F1": f1_score(true, pred, average="weighted"),
                "macro-F1": f1_score(true, pred, average="macro")}
    for metric, value in expected.items():
        assert grid._fast_score(true, pred, metric, 4) == pytest.approx(100 * value)


def test_bootstrap_separates_a_real_gap_from_noise():
    rng = np.random.default_rng(0)
    true = list(rng.integers(0, 4, 400))
    good = [t if rng.random() < 0.8 else (t + 1) % 4 for t in true]
    alike = [g if rng.random() < 0.99 else (g + 1) % 4 for g in good]  # a few flips
    worse = [t if rng.random() < 0.5 else (t + 1) % 4 for t in true]
    assert grid.paired_bootstrap(true, good, worse, "WA", rounds=300) < 0.01
    assert grid.paired_bootstrap(true, good, alike, "WA", rounds=300) > 0.05


def test_calibration_of_perfect_and_overconfident_predictions(tmp_path):
    classes = ["a", "b"]
    perfect = grid.calibration(["a", "b"], classes, [[1.0, 0.0], [0.0, 1.0]])
    assert perfect["ECE"] == pytest.approx(0) and perfect["Brier"] == pytest.approx(0)
    wrong = grid.calibration(["a", "b"], classes, [[0.0, 1.0], [1.0, 0.0]])
    assert wrong["ECE"] == pytest.approx(100) and wrong["Brier"] == pytest.approx(2)
    table = {"rows": [{"row": "x", "calibration": wrong}]}
    assert grid.reliability_diagram(table, tmp_path / "r.png").stat().st_size > 0


def test_the_paper_table_has_every_row_and_each_run_finds_its_row():
    from m4ser_lobes.experiment.ablations import (PAPER_TABLE_IV, ROWS_BY_NAME, SWITCHES,
                                                  TABLE_IV, paper_result, row_of)

    assert list(PAPER_TABLE_IV) == [label for label, _ in ROWS_BY_NAME.values()]
    assert list(PAPER_TABLE_IV)[:len(TABLE_IV)] == list(TABLE_IV)
    assert PAPER_TABLE_IV["M4SER (full)"] == (79.2, 80.1, 66.5, 66.0)
    for label, overrides in ROWS_BY_NAME.values():  # every row is found from its switches alone
        assert row_of({**SWITCHES, **overrides, "lr": 0.1}) == label
    assert paper_result(SWITCHES, "IEMOCAP") == {"row": "M4SER (full)", "source": "Tables II and IV",
                                                 "WA": 79.2, "UA": 80.1}
    gt_text = {**SWITCHES, **ROWS_BY_NAME["gt_text"][1]}
    assert paper_result(gt_text, "IEMOCAP")["source"] == "Table VI"
    assert paper_result(gt_text, "MELD") is None  # the paper has no MELD figure for it
    assert paper_result({**SWITCHES, "use_gan": False, "use_msr": False}, "MELD") is None
