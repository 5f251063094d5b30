"""``m4ser-export`` takes the checkpoint the recipe tested: the best by the run's ``selection_metric``."""

from m4ser_lobes.inference.export import locate_run, selection_key


def make_run(folder, selection_metric, checkpoints):
    save = folder / "save"
    save.mkdir(parents=True)
    if selection_metric is not None:
        (folder / "hyperparams.yaml").write_text(f"lr: 0.001\nselection_metric: {selection_metric}\n")
    else:
        (folder / "hyperparams.yaml").write_text("lr: 0.001\n")
    (save / "label_encoder.txt").write_text("'neu' => 0\n")
    for stamp, (name, metrics) in enumerate(checkpoints.items(), 1):
        ckpt = save / name
        ckpt.mkdir()
        (ckpt / "model.ckpt").write_bytes(b"weights")  # not empty: an empty one is incomplete
        meta = "".join(f"{key}: {value}\n" for key, value in metrics.items())
        (ckpt / "CKPT.yaml").write_text(f"end-of-epoch: true\nunixtime: {stamp}\n{meta}")
    return folder


CHECKPOINTS = {"CKPT+1": {"UA": 60.0, "W-F1": 40.0}, "CKPT+2": {"UA": 50.0, "W-F1": 55.0}}


def test_meld_run_exports_its_best_weighted_f1_checkpoint(tmp_path):
    run = locate_run(make_run(tmp_path / "meld", "W-F1", CHECKPOINTS))
    assert run.checkpoint.name == "CKPT+2" and run.is_best


def test_iemocap_run_exports_its_best_ua_checkpoint(tmp_path):
    run = locate_run(make_run(tmp_path / "iemocap", "UA", CHECKPOINTS))
    assert run.checkpoint.name == "CKPT+1" and run.is_best


def test_runs_before_selection_metric_existed_select_on_ua(tmp_path):
    folder = make_run(tmp_path / "old", None, CHECKPOINTS)
    assert selection_key(folder / "hyperparams.yaml") == "UA"
    assert locate_run(folder).checkpoint.name == "CKPT+1"


def test_an_explicit_checkpoint_is_kept_and_marked_not_best(tmp_path):
    folder = make_run(tmp_path / "meld", "W-F1", CHECKPOINTS)
    run = locate_run(folder / "save" / "CKPT+1")
    assert run.checkpoint.name == "CKPT+1" and not run.is_best
