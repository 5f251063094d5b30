"""``recipes/IEMOCAP/cross_validate.py``: folds in child processes, resume, report.

The fast tests replace train.py with a stand-in script (``train_script``) that writes a fold's
files (and, as train.py does, its ``fingerprint.json`` and ``configuration.json``), so the
orchestration (output folders, skipping, refusing a changed configuration, errors) is checked
in seconds. The slow
test runs the real recipe, two 1-epoch folds of the tiny demo configuration, then the same
command again, which must skip both folds.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from m4ser_lobes.experiment import config
from m4ser_lobes.experiment.config import ConfigError
from m4ser_lobes.testing.models import import_script

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "IEMOCAP"
HPARAMS = REPO / "hparams" / "m4ser.yaml"

cross_validate = import_script(RECIPE / "cross_validate.py")

FAKE_TRAIN = """
import json, sys
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[2:] if a.startswith("--") and "=" in a)
if args.get("fail") == "True":
    sys.exit(3)
fold = int(args["fold"])
out = Path(args["results_folder"]) / args["experiment_name"] / f"fold{fold}" / f"seed{args['seed']}"
out.mkdir(parents=True, exist_ok=True)
# What train.py records, computed by the test for these arguments (see run_cv).
recorded = json.loads((Path(__file__).parent / "fake_settings.json").read_text())
(out / "fingerprint.json").write_text(json.dumps({"settings": recorded["settings"]}))
(out / "configuration.json").write_text(json.dumps(recorded["configuration"]))
classes = ["neu", "ang"]
rows = [(f"u{fold}a", "neu", "neu"), (f"u{fold}b", "ang", "neu" if fold == 1 else "ang")]
(out / "predictions.csv").write_text(
    "id,true,predicted,p_neu,p_ang\\n" + "".join(f"{u},{t},{p},0.5,0.5\\n" for u, t, p in rows))
acc = 50.0 if fold == 1 else 100.0
(out / "test_metrics.json").write_text(json.dumps({
    "WA": acc, "UA": acc, "W-F1": acc, "classes": classes,
    "confusion": [[1, 0], [1, 0]] if fold == 1 else [[1, 0], [0, 1]]}))
(out / "history.json").write_text(json.dumps(
    [{"epoch": 1, "train": {"L_ER": 1.0, "L_G": 1.4}, "valid": {"UA": 50.0}}]))
print(f"FAKE TRAIN fold {fold}")
"""


@pytest.fixture
def fake_train(tmp_path):
    script = tmp_path / "fake_train.py"
    script.write_text(textwrap.dedent(FAKE_TRAIN))
    return script


def fake_args(tmp_path, *extra):
    results = tmp_path / "results"
    return [str(HPARAMS), f"--results_folder={results}", "--experiment_name=exp", "--seed=3",
            "--data_folder=/nowhere", "--text_source=transcript", *extra]


def run_cv(args, fake_train):
    """``cross_validate.main`` with the stand-in, which records the settings and configuration
    train.py would record for ``args`` (computed here, so the stand-in stays light)."""
    hparams_file, folds, _, train_args = cross_validate.parse_args(args)
    try:
        values = cross_validate.resolve_hparams(hparams_file, train_args, folds[0])
    except ConfigError:
        pass  # main refuses it
    else:
        settings = config.run_settings(values, cross_validate.RULES)
        (fake_train.parent / "fake_settings.json").write_text(json.dumps(
            {"settings": settings, "configuration": config.describe(values, settings)}))
    return cross_validate.main(args, train_script=fake_train)


# ------------------------------------------------------------------------------ fast
def test_parse_args_refuses_fold():
    with pytest.raises(SystemExit):
        cross_validate.parse_args(["h.yaml", "--fold=2"])
    assert cross_validate.parse_args(["h.yaml"])[1] == [1, 2, 3, 4, 5]


def test_output_folder_is_the_one_train_py_computes(tmp_path):
    hparams = cross_validate.resolve_hparams(
        str(HPARAMS), [f"--results_folder={tmp_path}", "--experiment_name=abl", "--seed=5",
                       "--data_folder=/x", "--device=cpu", "--use_gan=False",
                       "--text_source=transcript"], fold=4)
    assert hparams["output_folder"] == f"{tmp_path}/abl/fold4/seed5"
    assert hparams["fold"] == 4 and hparams["use_gan"] is False
    assert hparams["model"] is None  # nothing was built


def test_missing_placeholder_names_the_override():
    with pytest.raises(ConfigError, match="--data_folder="):
        cross_validate.resolve_hparams(str(HPARAMS), [], fold=1)


@pytest.mark.parametrize("bad, message", [
    ("--use_gan=no", "use_gan='no' is not allowed"),
    ("--modalities=speech", "use_gan=True needs the modality-invariant representation"),
])
def test_bad_configuration_refused_before_any_fold(tmp_path, fake_train, capfd, bad, message):
    with pytest.raises(SystemExit, match=message):
        run_cv(fake_args(tmp_path, "--folds", "1", "2", bad), fake_train)
    assert "FAKE TRAIN" not in capfd.readouterr().out
    assert not (tmp_path / "results").exists()


def test_runs_missing_folds_then_skips_finished(tmp_path, fake_train, capfd, caplog):
    caplog.set_level("INFO", logger="cross_validate")
    args = fake_args(tmp_path, "--folds", "1", "2")
    report = run_cv(args, fake_train)
    out = capfd.readouterr()
    assert "FAKE TRAIN fold 1" in out.out and "FAKE TRAIN fold 2" in out.out
    assert report["pooled"]["WA"] == 75.0 and report["mean"]["WA"] == 75.0
    assert (tmp_path / "results" / "exp" / "cv_report" / "cv_report.md").is_file()
    assert report["configuration"]["modalities"] == "both" and report["configuration"]["gan"]

    finished = tmp_path / "results" / "exp" / "fold1" / "seed3" / "test_metrics.json"
    before = finished.stat().st_mtime_ns
    caplog.clear()
    run_cv(args, fake_train)
    out = capfd.readouterr()
    assert "FAKE TRAIN" not in out.out
    assert "fold 1: skipped" in caplog.text and "fold 2: skipped" in caplog.text
    assert "WA 50.00" in caplog.text  # the finished fold's metrics are logged
    assert finished.stat().st_mtime_ns == before


def test_changed_configuration_is_refused_then_overwritten(tmp_path, fake_train, capfd, caplog):
    caplog.set_level("INFO", logger="cross_validate")
    experiment = tmp_path / "results" / "exp"
    run_cv(fake_args(tmp_path, "--folds", "1", "2"), fake_train)
    full = (experiment / "cv_report" / "cv_report.md").read_text()
    capfd.readouterr()

    # Same experiment_name, GAN off: the finished folds must not be skipped and reported.
    ablation = fake_args(tmp_path, "--folds", "1", "2", "--use_gan=False")
    with pytest.raises(SystemExit) as error:
        run_cv(ablation, fake_train)
    message = str(error.value)
    assert "fold 1: " in message and "fold 2: " in message
    assert "use_gan: True -> False" in message
    assert "--experiment_name=" in message and "--overwrite=True" in message
    assert "FAKE TRAIN" not in capfd.readouterr().out

    report = run_cv([*ablation, "--overwrite=True"], fake_train)
    out = capfd.readouterr().out
    assert "FAKE TRAIN fold 1" in out and "FAKE TRAIN fold 2" in out
    assert report["configuration"]["gan"] is False
    ablated = (experiment / "cv_report" / "cv_report.md").read_text()
    assert "GAN" in full.splitlines()[2] and "GAN" not in ablated.splitlines()[2]
    # The same command again: both folds now hold this configuration and are skipped.
    caplog.clear()
    run_cv([*ablation, "--overwrite=True"], fake_train)
    assert "FAKE TRAIN" not in capfd.readouterr().out
    assert "fold 1: skipped" in caplog.text and "fold 2: skipped" in caplog.text


def test_failed_fold_says_how_to_resume(tmp_path, fake_train):
    with pytest.raises(SystemExit) as error:
        run_cv(fake_args(tmp_path, "--folds", "2", "--fail=True"), fake_train)
    message = str(error.value)
    assert "fold 2 failed (exit code 3" in message
    assert str(tmp_path / "results" / "exp" / "fold2" / "seed3" / "log.txt") in message
    assert "rerun the same command" in message


# ------------------------------------------------------------------------------ slow
@pytest.mark.slow
def test_two_real_folds_then_resume(tmp_path, caplog):
    """Two 1-epoch folds of the tiny demo model on a 40-utterance corpus, then a rerun."""
    from demo import demo_overrides

    from m4ser_lobes.testing.mini_iemocap import generate_iemocap

    generate_iemocap(tmp_path / "corpus", seed=0, utterances_per_dialog=2)  # demo reuses it
    overrides = demo_overrides(tmp_path, epochs=1)
    overrides.pop("fold")
    overrides["batch_size"] = 16
    argv = [str(HPARAMS), "--folds", "1", "2", "--device=cpu",
            *(f"--{k}={'null' if v is None else v}" for k, v in overrides.items())]
    # One thread per process: the tiny model gains nothing from more, and 2 shared cores lose.
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    first = subprocess.run([sys.executable, str(RECIPE / "cross_validate.py"), *argv], check=False,
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    experiment = tmp_path / "results" / "demo"
    markers = [experiment / f"fold{k}" / "seed7" / "test_metrics.json" for k in (1, 2)]
    assert all(m.is_file() for m in markers)
    assert "fold 1: training" in first.stderr and "fold 2: training" in first.stderr
    report_dir = experiment / "cv_report"
    report = json.loads((report_dir / "cv_report.json").read_text())
    assert list(report["folds"]) == ["1", "2"]
    assert report["pooled"]["n"] == sum(f["n"] for f in report["folds"].values()) == 16
    assert {"L_ER", "L_AED", "L_AEC", "L_LCL", "L_D", "L_G", "valid UA"} <= set(report["curves"])
    assert report["configuration"]["modalities"] == "both" and report["configuration"]["gan"]
    for name in ("cv_report.md", "confusion_matrix_avg.png", "loss_curves.png"):
        assert (report_dir / name).stat().st_size > 0

    # The same command again (in this process, so a train.py stand-in that fails proves no fold
    # is retrained): both folds are skipped and the report is rebuilt from their folders.
    mtimes = [m.stat().st_mtime_ns for m in markers]
    must_not_run = tmp_path / "must_not_run.py"
    must_not_run.write_text("import sys; sys.exit('a finished fold was retrained')\n")
    caplog.set_level("INFO", logger="cross_validate")
    rerun = cross_validate.main(argv, train_script=must_not_run)
    assert "fold 1: skipped" in caplog.text and "fold 2: skipped" in caplog.text
    assert [m.stat().st_mtime_ns for m in markers] == mtimes
    assert rerun["pooled"] == report["pooled"] and rerun["folds"] == report["folds"]
