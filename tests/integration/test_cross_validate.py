"""``recipes/IEMOCAP/cross_validate.py``: every fold planned and checked first, folds in child
processes that die with it, finished folds skipped, a report at the end.

The fast tests check the refusals (nothing runs); the slow test runs the real recipe, two 1-epoch
folds of the tiny demo configuration, then the same command again (both folds skipped), then
kills a cross-validation with SIGKILL while its fold trains: no orphan trainer is left.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "IEMOCAP"
HPARAMS = REPO / "hparams" / "m4ser.yaml"
sys.path.insert(0, str(RECIPE))
import cross_validate  # noqa: E402

ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")


def base_args(tmp_path, *extra):
    return [str(HPARAMS), f"--results_folder={tmp_path / 'results'}", "--experiment_name=exp",
            "--seed=3", "--data_folder=/nowhere", "--text_source=transcript", "--use_aed=False",
            "--use_aec=False", *extra]


# ------------------------------------------------------------------------------ fast
@pytest.mark.parametrize("extra, message", [
    (["--fold=2"], "the fold is set per run by cross_validate.py: choose folds with --folds="),
    (["--folds=[6]"], "folds=[6] is not allowed"),
    (["--folds=1"], "folds=1 is not allowed"),
    (["--use_gann=False"], "--use_gann is not a key of"),
])
def test_refusals_are_one_line_before_any_fold_runs(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as error:
        cross_validate.main(base_args(tmp_path, *extra))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "results").exists()


def test_a_fold_made_with_other_settings_is_refused_for_every_fold(tmp_path):
    from m4ser_lobes.utils import identity

    for fold in (1, 2):  # two folds holding work with use_gan=True (the default)
        run = cross_validate.plan_folds(base_args(tmp_path, f"--folds=[{fold}]"))[fold]
        (run.output_folder / "save" / "CKPT+1").mkdir(parents=True)
        identity.write(run.output_folder, {**run.settings, "data": "d"}, "started")
    with pytest.raises(SystemExit) as error:
        cross_validate.main(base_args(tmp_path, "--folds=[1,2]", "--use_gan=False"))
    message = str(error.value)
    assert message.count("use_gan: True -> False") == 2 and "fold1" in message and "fold2" in message
    assert "--experiment_name=" in message and "--overwrite=True" in message


# ------------------------------------------------------------------------------ slow
def demo_argv(tmp_path, folds, epochs=1):
    from m4ser_lobes.testing.demo import demo_overrides
    from m4ser_lobes.testing.mini_iemocap import corpus_words, generate_iemocap

    corpus = generate_iemocap(tmp_path / "corpus", seed=0, utterances_per_dialog=2)
    overrides = demo_overrides(tmp_path, {"data_folder": str(corpus.root),
                                          "hypotheses_file": str(corpus.hypotheses),
                                          "experiment_name": "demo", "expected_utterances": None},
                               corpus_words(), epochs, 7)
    overrides["batch_size"] = 16
    return [str(HPARAMS), f"--folds={folds}", "--device=cpu", "--noprogressbar",
            *(f"--{k}={'null' if v is None else v}" for k, v in overrides.items())]


@pytest.mark.slow
def test_two_real_folds_then_resume_then_no_orphan(tmp_path, caplog):
    argv = demo_argv(tmp_path, "[1,2]")
    first = subprocess.run([sys.executable, str(RECIPE / "cross_validate.py"), *argv], check=False,
                           cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    experiment = tmp_path / "results" / "demo"
    markers = [experiment / f"fold{k}" / "seed7" / "test_metrics.json" for k in (1, 2)]
    assert all(m.is_file() for m in markers)
    assert "fold 1: training" in first.stderr and "fold 2: training" in first.stderr
    report = json.loads((experiment / "cv_report" / "cv_report.json").read_text())
    assert list(report["folds"]) == ["1", "2"]
    assert report["pooled"]["n"] == sum(f["n"] for f in report["folds"].values()) == 16
    for name in ("cv_report.md", "confusion_matrix_avg.png", "loss_curves.png"):
        assert (experiment / "cv_report" / name).stat().st_size > 0

    # The same command again: both folds are skipped (no child runs) and the report is rebuilt.
    mtimes = [m.stat().st_mtime_ns for m in markers]
    caplog.set_level("INFO", logger="cross_validate")
    rerun = cross_validate.main(argv)
    assert "fold 1: skipped" in caplog.text and "fold 2: skipped" in caplog.text
    assert [m.stat().st_mtime_ns for m in markers] == mtimes
    assert rerun["pooled"] == report["pooled"]

    # SIGKILL of cross_validate.py while fold 3 trains: its train.py dies with it.
    log = tmp_path / "fold3.log"
    with open(log, "w") as out:
        parent = subprocess.Popen([sys.executable, str(RECIPE / "cross_validate.py"),
                                   *demo_argv(tmp_path, "[3]", epochs=50)],
                                  cwd=tmp_path, env=ENV, stdout=out, stderr=subprocess.STDOUT)
    history = experiment / "fold3" / "seed7" / "history.json"  # written after epoch 1
    deadline = time.monotonic() + 300
    while not history.exists() and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.2)
    assert parent.poll() is None and history.exists(), log.read_text()[-3000:]
    children = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True)
    child = int(children.stdout.split()[0])
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}") and \
            "zombie" not in Path(f"/proc/{child}/status").read_text().lower():
        time.sleep(0.1)
    alive = os.path.exists(f"/proc/{child}") and \
        "zombie" not in Path(f"/proc/{child}/status").read_text().lower()
    assert not alive, "the fold's trainer outlived cross_validate.py"
