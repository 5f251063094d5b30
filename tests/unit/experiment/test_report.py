"""Tests for ``m4ser_lobes.experiment.report`` on hand-written fold folders with known numbers.

Fold 1 (classes in order neu, ang):  true neu neu neu ang | predicted neu neu ang ang
    -> WA 75, recall neu 2/3, ang 1/1 -> UA 83.3333
Fold 2 (classes in order ang, neu — the other label-encoder order):
    true ang ang neu neu neu neu | predicted ang neu neu neu neu neu
    -> WA 5/6 = 83.3333, recall ang 1/2, neu 4/4 -> UA 75
Pooled (10 utterances): correct 3 + 5 = 8 -> WA 80; recall neu 6/7, ang 2/3 -> UA 76.1905
Mean over folds: WA 79.1667, UA 79.1667 (population std 4.1667).
"""

import json
import math
import re

import numpy as np
import pytest

from m4ser_lobes.experiment import report as rp
from m4ser_lobes.experiment.ablations import SWITCHES, paper_result

FOLD1 = {
    "classes": ["neu", "ang"],
    "rows": [("a1", "neu", "neu"), ("a2", "neu", "neu"), ("a3", "neu", "ang"), ("a4", "ang", "ang")],
    "W-F1": 76.6667,
}
FOLD2 = {
    "classes": ["ang", "neu"],
    "rows": [("b1", "ang", "ang"), ("b2", "ang", "neu"), ("b3", "neu", "neu"),
             ("b4", "neu", "neu"), ("b5", "neu", "neu"), ("b6", "neu", "neu")],
    "W-F1": 80.9524,
}


def history(offset, with_gan=True, epochs=3):
    """Fake per-epoch statistics; ``offset`` makes folds differ by a known amount."""
    out = []
    for epoch in range(1, epochs + 1):
        train = {"loss": 3.0 / epoch + offset, "L_ER": 1.0 / epoch + offset, "L_AED": 0.5,
                 "L_AEC": 2.0, "L_LCL": 1.5}
        if with_gan:
            train.update({"L_D": -1.3 + 0.1 * epoch, "L_G": 1.4 + offset, "L_GAN": 0.1,
                          "D(H_S^spe)": 0.6, "D(H_T^spe)": 0.4, "D(H_inv)": 0.5})
        out.append({"epoch": epoch, "train": train,
                    "valid": {"loss": 1.0, "WA": 50.0, "UA": 40.0 + 10 * epoch + offset, "W-F1": 45.0}})
    return out


def write_fold(folder, spec, hist=None):
    """A finished fold folder as train.py leaves it (test_metrics.json, predictions.csv, history)."""
    from m4ser_lobes.metrics import emotion_metrics

    folder.mkdir(parents=True, exist_ok=True)
    index = {c: i for i, c in enumerate(spec["classes"])}
    true = [index[t] for _, t, _ in spec["rows"]]
    pred = [index[p] for _, _, p in spec["rows"]]
    metrics = emotion_metrics(true, pred, num_classes=len(index))
    paper = paper_result(SWITCHES, "IEMOCAP")  # what train.py writes for the full model
    (folder / "test_metrics.json").write_text(
        json.dumps(dict(metrics, classes=spec["classes"], paper=paper)))
    lines = ["id,true,predicted," + ",".join(f"p_{c}" for c in spec["classes"])]
    # 0.8 on the predicted class, in the fold's own class order
    lines += [f"{u},{t},{p}," + ",".join("0.8" if c == p else "0.2" for c in spec["classes"])
              for u, t, p in spec["rows"]]
    (folder / "predictions.csv").write_text("\n".join(lines) + "\n")
    if hist is not None:
        (folder / "history.json").write_text(json.dumps(hist))
    return folder


@pytest.fixture
def experiment(tmp_path):
    """``<tmp>/exp/fold{1,2}/seed7`` with the two folds of the module docstring."""
    exp = tmp_path / "exp"
    write_fold(exp / "fold1" / "seed7", FOLD1, history(0.0))
    write_fold(exp / "fold2" / "seed7", FOLD2, history(1.0))
    return exp


@pytest.fixture
def report(experiment):
    return rp.cross_validation_report(rp.collect_fold_results(rp.find_fold_dirs(experiment)))


# ------------------------------------------------------------------------------ numbers
def test_fixture_numbers_are_what_the_docstring_says(experiment):
    results = rp.collect_fold_results(rp.find_fold_dirs(experiment))
    assert results[1].metrics["WA"] == 75.0 and results[1].metrics["UA"] == pytest.approx(83.3333)
    assert results[2].metrics["WA"] == pytest.approx(83.3333) and results[2].metrics["UA"] == 75.0
    assert results[2].classes == ["ang", "neu"]


def test_per_fold_mean_and_std(report):
    assert list(report["folds"]) == ["1", "2"]
    assert report["folds"]["1"]["WA"] == 75.0 and report["folds"]["1"]["n"] == 4
    assert report["folds"]["2"]["n"] == 6
    assert report["mean"]["WA"] == pytest.approx((75 + 250 / 3) / 2, abs=1e-3)
    assert report["mean"]["UA"] == pytest.approx((250 / 3 + 75) / 2, abs=1e-3)
    assert report["std"]["WA"] == pytest.approx((250 / 3 - 75) / 2, abs=1e-3)


def test_pooled_differs_from_mean_and_is_recomputed_by_class_name(report):
    pooled = report["pooled"]
    assert pooled["n"] == 10
    assert pooled["WA"] == pytest.approx(80.0)
    assert pooled["UA"] == pytest.approx(100 * (6 / 7 + 2 / 3) / 2, abs=1e-3)
    assert pooled["WA"] != pytest.approx(report["mean"]["WA"], abs=0.1)
    # class order = fold 1's (neu, ang); fold 2's indices were remapped by name
    assert report["classes"] == ["neu", "ang"]
    assert pooled["confusion"] == [[6, 1], [1, 2]]
    assert pooled["recall"] == pytest.approx([100 * 6 / 7, 100 * 2 / 3], abs=1e-3)
    # calibration too: 0.8 on the predicted class, right 8 times in 10 -> ECE 0 (read by
    # position, fold 2's columns would put 0.8 on the other class)
    assert pooled["calibration"]["ECE"] == pytest.approx(0.0, abs=1e-9)
    assert pooled["calibration"]["NLL"] == pytest.approx(-(8 * math.log(0.8) + 2 * math.log(0.2)) / 10)
    assert pooled["calibration"]["Brier"] == pytest.approx(0.32)


def test_averaged_confusion_matrix_in_common_order(report):
    cm = np.asarray(report["confusion_avg"])
    # fold 1 rows: neu [2/3, 1/3], ang [0, 1]; fold 2 (reordered): neu [1, 0], ang [1/2, 1/2]
    expected = 100 * np.array([[(2 / 3 + 1) / 2, (1 / 3 + 0) / 2], [(0 + 0.5) / 2, (1 + 0.5) / 2]])
    np.testing.assert_allclose(cm, expected, atol=1e-3)
    np.testing.assert_allclose(cm.sum(axis=1), 100.0, atol=1e-3)


def test_class_order_mismatch_changes_nothing(tmp_path):
    """The same predictions with fold 2 written in fold 1's class order give the same report."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_fold(a / "fold1" / "seed1", FOLD1)
    write_fold(a / "fold2" / "seed1", FOLD2)
    write_fold(b / "fold1" / "seed1", FOLD1)
    write_fold(b / "fold2" / "seed1", dict(FOLD2, classes=["neu", "ang"]))
    ra, rb = (rp.cross_validation_report(rp.collect_fold_results(rp.find_fold_dirs(x))) for x in (a, b))
    assert ra["pooled"] == rb["pooled"]
    assert ra["confusion_avg"] == rb["confusion_avg"]


def test_helpers_reorder_and_normalise():
    assert rp.reorder_confusion([[1, 2], [3, 4]], ["x", "y"], ["y", "x"]) == [[4, 3], [2, 1]]
    cm = rp.average_confusion([[[0, 0], [1, 1]], [[3, 1], [0, 2]]])  # class 0 absent in fold 1
    np.testing.assert_allclose(cm, [[75, 25], [25, 75]])


# ------------------------------------------------------------------------------ curves
def test_loss_curves_mean_and_per_fold(report):
    curves = report["curves"]
    assert list(curves) == [k for k in rp.CURVE_KEYS]
    l_er = curves["L_ER"]
    assert l_er["mean"]["epochs"] == [1, 2, 3]
    assert l_er["mean"]["values"] == pytest.approx([1.0 + 0.5, 0.5 + 0.5, 1 / 3 + 0.5])
    assert set(l_er["folds"]) == {"1", "2"}
    assert curves["valid UA"]["mean"]["values"] == pytest.approx([50.5, 60.5, 70.5])


def test_fig8_panels_are_the_loss_table():
    """One panel per row of losses.LOSS_TERMS, in table order, with its reference line."""
    from m4ser_lobes.losses import LOSS_TERMS

    from m4ser_lobes.experiment.figures import EXTRA_REFERENCES

    terms = [(t.paper, (t.paper,), t.reference or EXTRA_REFERENCES.get(t.paper))
             for t in LOSS_TERMS]
    assert list(rp.LOSS_PANELS[:len(terms)]) == terms
    references = {p[0]: p[2] for p in rp.LOSS_PANELS}
    assert references["L_G"] == ("2 ln 2", 2 * math.log(2))
    assert references["L_D"][1] == 0.0  # L_D <= 0 (the paper's sign), maximised by D
    assert rp.LOSS_PANELS[len(terms):] == (("D(·) means", ("D(H_S^spe)", "D(H_T^spe)",
                                                           "D(H_inv)"), ("0.5", 0.5)),)
    assert rp.CURVE_KEYS[-1] == "valid UA"


def test_ablation_without_gan_has_no_adversarial_curves(tmp_path):
    write_fold(tmp_path / "fold1" / "s", FOLD1, history(0.0, with_gan=False))
    result = rp.cross_validation_report(rp.collect_fold_results({1: tmp_path / "fold1" / "s"}))
    assert "L_ER" in result["curves"] and "L_G" not in result["curves"]
    assert not any(k.startswith("D(") for k in result["curves"])
    paths = rp.write_report(result, tmp_path / "out")
    assert paths["curves"].stat().st_size > 0
    loss_section = paths["markdown"].read_text().split("Loss terms")[1]
    assert "| L_ER |" in loss_section and "L_G" not in loss_section


# ------------------------------------------------------------------------------ files
def test_write_report_files(report, tmp_path):
    paths = rp.write_report(report, tmp_path / "cv_report")
    assert {p.name for p in (tmp_path / "cv_report").iterdir()} == {
        "cv_report.json", "cv_report.md", "confusion_matrix_avg.png", "loss_curves.png"}
    for key in ("confusion", "curves"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert paths[key].stat().st_size > 1000
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(report))
    assert "| paper (Tables II and IV, M4SER (full)) |  | 79.2 | 80.1 | — |" in \
        paths["markdown"].read_text()
    assert "pooled test probabilities (beyond the paper): ECE 0.0 % (10 bins), NLL 0.500, " \
        "Brier 0.320." in paths["markdown"].read_text()


def test_a_configuration_without_a_paper_row_says_so(experiment, tmp_path):
    for path in experiment.glob("fold*/seed7/test_metrics.json"):
        metrics = json.loads(path.read_text())
        del metrics["paper"]
        path.write_text(json.dumps(metrics))
    report = rp.build_report(rp.find_fold_dirs(experiment), tmp_path / "out")
    text = (tmp_path / "out" / "cv_report.md").read_text()
    assert report["paper"] is None and "| paper" not in text
    assert "The paper reports no figure for this configuration." in text


def test_markdown_contains_the_numbers(report, tmp_path):
    text = rp.write_report(report, tmp_path)["markdown"].read_text()
    assert re.search(r"\| 1 \| 4 \| 75\.00 \| 83\.33 \|", text)
    assert re.search(r"\| 2 \| 6 \| 83\.33 \| 75\.00 \|", text)
    assert re.search(r"\| mean ± std \| 10 \| 79\.17 ± 4\.17 \| 79\.17 ± 4\.17 \|", text)
    assert re.search(r"\| pooled \| 10 \| 80\.00 \| 76\.19 \|", text)
    assert re.search(r"\| \*\*neu\*\* \| 83\.33 \| 16\.67 \|", text)
    assert "| L_G | 1.9000 (epoch 1) | 1.9000 (epoch 3) |" in text
    assert f"{2 * math.log(2):.3f}" in text


# ------------------------------------------------------------------------------ errors
def test_missing_fold_names_the_folder_and_the_fix(experiment):
    (experiment / "fold2" / "seed7" / "test_metrics.json").unlink()
    with pytest.raises(FileNotFoundError) as error:
        rp.collect_fold_results(rp.find_fold_dirs(experiment))
    message = str(error.value)
    assert str(experiment / "fold2" / "seed7" / "test_metrics.json") in message
    assert "cross_validate.py" in message and "--folds 2" in message


def test_fold_never_started(experiment):
    with pytest.raises(FileNotFoundError, match=r"fold3.*never started"):
        rp.find_fold_dirs(experiment, folds=[1, 3])


def test_several_seeds_need_a_choice(experiment):
    write_fold(experiment / "fold1" / "seed8", FOLD1)
    with pytest.raises(ValueError, match="--seed"):
        rp.find_fold_dirs(experiment)
    assert rp.find_fold_dirs(experiment, seed=7)[1].name == "seed7"


def test_different_class_sets_are_refused(tmp_path):
    write_fold(tmp_path / "f1", FOLD1)
    write_fold(tmp_path / "f2", {**FOLD2, "classes": ["ang", "sad"],
                                "rows": [("b1", "ang", "sad"), ("b2", "sad", "sad")]})
    with pytest.raises(ValueError, match=r"f2.*test_metrics\.json.*share their classes"):
        rp.cross_validation_report(rp.collect_fold_results({1: tmp_path / "f1", 2: tmp_path / "f2"}))


def test_same_utterance_in_two_folds_is_refused(tmp_path):
    write_fold(tmp_path / "f1", FOLD1)
    write_fold(tmp_path / "f2", FOLD1)
    with pytest.raises(ValueError, match="a1.*disjoint"):
        rp.cross_validation_report(rp.collect_fold_results({1: tmp_path / "f1", 2: tmp_path / "f2"}))


def test_command_line_rebuilds_the_report(experiment, capsys):
    rp.main([str(experiment)])
    assert "pooled WA 80.00" in capsys.readouterr().out
    assert (experiment / "cv_report" / "loss_curves.png").stat().st_size > 0
    with pytest.raises(SystemExit) as exit_:
        rp.main([str(experiment), "--folds", "1", "4"])
    assert exit_.value.code == 2
    assert "fold4" in capsys.readouterr().err


# ------------------------------------------------------------------------------ configuration
def configuration(**switches):
    """A ``configuration.json`` as train.py writes it (m4ser_lobes.experiment.settings.describe)."""
    from m4ser_lobes.experiment.settings import describe

    values = {"modalities": "both", "use_msr": True, "use_mir": True, "use_aed": True,
              "use_aec": True, "use_gan": True, "use_lcl": True, "text_source": "hypothesis",
              "speech_encoder_source": "hubert", "text_encoder_source": "bert", **switches}
    return describe(values)


def test_report_records_the_configuration_so_ablations_differ(experiment, tmp_path):
    no_report = rp.cross_validation_report(rp.collect_fold_results(rp.find_fold_dirs(experiment)))
    assert no_report["configuration"] is None
    assert "Configuration: unknown" in rp.report_markdown(no_report)

    reports = {}
    for name, switches in (("full", {}), ("no_gan", {"use_gan": False})):
        for k in (1, 2):
            (experiment / f"fold{k}" / "seed7" / "configuration.json").write_text(
                json.dumps(configuration(**switches)))
        out = tmp_path / name
        reports[name] = rp.build_report(rp.find_fold_dirs(experiment), out)
        assert json.loads((out / "cv_report.json").read_text())["configuration"] == \
            configuration(**switches)
        reports[name]["markdown"] = (out / "cv_report.md").read_text()
    assert reports["full"]["configuration"]["gan"] is True
    assert reports["no_gan"]["configuration"]["gan"] is False
    lines = {name: r["markdown"].splitlines()[2] for name, r in reports.items()}
    assert lines["full"].startswith("Configuration: speech + text, MSR, MIR, AED, AEC selective, GAN")
    assert lines["full"] != lines["no_gan"] and "GAN" not in lines["no_gan"]


def test_folds_of_different_configurations_are_not_combined(experiment):
    (experiment / "fold1" / "seed7" / "configuration.json").write_text(json.dumps(configuration()))
    (experiment / "fold2" / "seed7" / "configuration.json").write_text(
        json.dumps(configuration(use_lcl=False)))
    results = rp.collect_fold_results(rp.find_fold_dirs(experiment))
    with pytest.raises(ValueError, match=r"fold 2 .*configuration.json\) ran with .*lcl=False.* "
                                         r"but fold 1 with .*lcl=True"):
        rp.cross_validation_report(results)


# ------------------------------------------------------------------------------ protocol
PROTOCOL = {"selection_metric": "UA", "validation": "train_sessions", "valid_ratio": 0.1,
            "seed": 7, "bucketing": False, "batch_size": 16, "max_batch_seconds": None,
            "num_buckets": 20}


def test_the_header_says_how_each_checkpoint_was_chosen_and_batches_drawn(experiment, tmp_path):
    for k in (1, 2):
        (experiment / f"fold{k}" / "seed7" / "configuration.json").write_text(
            json.dumps(configuration(**PROTOCOL)))
    report = rp.build_report(rp.find_fold_dirs(experiment), tmp_path / "out")
    assert report["protocol"] == {"selection_metric": "UA", "validation": "train_sessions",
                                  "valid_ratio": 0.1, "seed": 7, "optimistic": False,
                                  "batching": {"bucketing": False, "batch_size": 16,
                                               "max_batch_seconds": None, "num_buckets": None}}
    assert json.loads((tmp_path / "out" / "cv_report.json").read_text())["protocol"] == \
        report["protocol"]
    header = (tmp_path / "out" / "cv_report.md").read_text().split("| fold |")[0]
    assert ("Checkpoint and batches: checkpoint of the best UA on a 10 % hold-out of the "
            "training sessions (validation=train_sessions), seed 7; random batches of 16") in header
    assert header.count("checkpoint of the best") == 1  # the configuration line does not repeat it
    assert "WA 79.2 / UA 80.1 (Tables II and IV, a mean over five folds) compare with *mean ± std*" \
        in header
    assert "OPTIMISTIC" not in header and "OPTIMISTIC" not in rp.summary_line(report)


def test_a_test_fold_selection_is_labelled_optimistic_everywhere(experiment, tmp_path):
    """Folds selected on their test session read from test_metrics.json (no configuration.json)."""
    from m4ser_lobes.experiment.settings import protocol

    for k in (1, 2):
        path = experiment / f"fold{k}" / "seed7" / "test_metrics.json"
        metrics = json.loads(path.read_text())
        path.write_text(json.dumps({**metrics, **protocol({**PROTOCOL, "validation": "test_fold",
                                                           "bucketing": True})}))
    report = rp.build_report(rp.find_fold_dirs(experiment), tmp_path / "out")
    assert report["protocol"]["optimistic"] is True and report["protocol"]["valid_ratio"] is None
    text = (tmp_path / "out" / "cv_report.md").read_text()
    assert "**OPTIMISTIC: every fold chose its checkpoint on its test session" in text
    assert "validation=test_fold), seed 7; duration-bucketed batches of 16 (20 buckets)" in text
    assert re.search(r"\| mean ± std \(optimistic\) \| 10 \|", text)
    assert re.search(r"\| pooled \(optimistic\) \| 10 \|", text)
    assert "OPTIMISTIC" in rp.summary_line(report)


def test_folds_of_different_protocols_are_not_combined(experiment):
    from m4ser_lobes.experiment.settings import protocol

    for k, validation in ((1, "train_sessions"), (2, "test_fold")):
        path = experiment / f"fold{k}" / "seed7" / "test_metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()),
                                    **protocol({**PROTOCOL, "validation": validation})}))
    with pytest.raises(ValueError, match=r"fold 2 .* chose its checkpoint or batches otherwise "
                                         r".*'validation': 'test_fold'.* than fold 1"):
        rp.cross_validation_report(rp.collect_fold_results(rp.find_fold_dirs(experiment)))


def test_no_recorded_protocol_says_unknown(report):
    assert report["protocol"] is None
    assert "Checkpoint and batches: unknown" in rp.report_markdown(report)


def test_loss_curves_have_whole_epoch_ticks(report, tmp_path):
    """Fig. 8's x axes show epochs 1, 2, 3, never 1.5 (matplotlib's default ticks do)."""
    import matplotlib.pyplot as plt

    from m4ser_lobes.experiment.figures import curves_figure

    fig = curves_figure(report["curves"])
    try:
        shown = [ax for ax in fig.axes if ax.axison]
        assert len(shown) == 9  # 7 loss terms, D(.) means, valid UA
        for ax in shown:
            low, high = ax.get_xlim()
            ticks = [float(t) for t in ax.get_xticks() if low <= t <= high]
            assert ticks and all(t == int(t) for t in ticks), (ax.get_title(), ticks)
    finally:
        plt.close(fig)
