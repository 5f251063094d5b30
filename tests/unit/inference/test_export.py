"""``m4ser-export`` takes the checkpoint the recipe tested (the best by the run's
``selection_metric``), and publishes the export so that ``--out`` is never missing."""

import os
import signal
import subprocess
import sys

import pytest

from m4ser_lobes.inference import folder as export_folder
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


# ------------------------------------------------------------------------ publishing (issue 15)
# An export is written into a staging folder and published over --out; kills and failures are
# injected between publish()'s steps in real processes. A real export killed mid-way:
# tests/integration/test_export_safety.py.


def _old_export(root):
    """An export at root/out."""
    out = root / "out"
    out.mkdir()
    (out / "model.ckpt").write_text("old")
    return out


def _exports(root):
    """An old export at root/out and a finished new one in a staging folder (this process)."""
    out = _old_export(root)
    tmp = export_folder.staging_folder(out)
    (tmp / "model.ckpt").write_text("new")
    return tmp, out


def _die_in_publish(out, inject):
    """An export process: stage a new export of ``out`` and publish it over the old one, with a
    SIGKILL injected by ``inject``."""
    script = "\n".join([
        "import os, signal, sys",
        "from m4ser_lobes.inference import folder",
        "die = lambda: os.kill(os.getpid(), signal.SIGKILL)",
        "tmp = folder.staging_folder(sys.argv[1])",
        "_ = (tmp / 'model.ckpt').write_text('new')",
        inject,
        "folder.publish(tmp, sys.argv[1], overwrite=True)",
    ])
    run = subprocess.run([sys.executable, "-c", script, str(out)])
    assert run.returncode == -signal.SIGKILL


def _hidden(root):
    return sorted(p.name.split("-")[0] for p in root.iterdir() if p.name.startswith("."))


def test_a_kill_after_the_swap_leaves_the_new_export_and_the_next_one_cleans_up(tmp_path):
    out = _old_export(tmp_path)
    # the swap happens, then the process dies before deleting the old export
    _die_in_publish(out, "real = folder._exchange\n"
                              "folder._exchange = lambda a, b: real(a, b) and die()")
    assert (out / "model.ckpt").read_text() == "new"
    assert _hidden(tmp_path) == [".out.tmp"], "the old export, under the staging name"
    assert export_folder.clean_leftovers(out) and _hidden(tmp_path) == []
    assert (out / "model.ckpt").read_text() == "new"


def test_without_a_swap_a_kill_between_the_renames_is_undone_by_the_next_export(tmp_path):
    out = _old_export(tmp_path)
    # no atomic swap here (another OS or file system): die after renaming the old one aside
    _die_in_publish(out, "folder._exchange = lambda a, b: False\n"
                              "real = os.replace\n"
                              "os.replace = lambda a, b: (real(a, b), die())")
    assert not out.exists() and _hidden(tmp_path) == [".out.old", ".out.tmp"]
    export_folder.clean_leftovers(out)  # the first thing the next export does
    assert (out / "model.ckpt").read_text() == "old" and _hidden(tmp_path) == []


def test_a_failure_between_the_renames_puts_the_old_export_back(tmp_path, monkeypatch):
    tmp, out = _exports(tmp_path)
    monkeypatch.setattr(export_folder, "_exchange", lambda a, b: False)
    real, calls = os.replace, []

    def replace(a, b):
        calls.append(b)
        if len(calls) == 2:  # renaming the new export in
            raise OSError(28, "No space left on device")
        real(a, b)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        export_folder.publish(tmp, out, overwrite=True)
    assert (out / "model.ckpt").read_text() == "old"
    assert (tmp / "model.ckpt").read_text() == "new"  # export_model removes its staging folder


def test_the_swap_is_atomic_here_and_leaves_nothing_behind(tmp_path):
    tmp, out = _exports(tmp_path)
    if not export_folder._exchange(tmp, out):
        pytest.skip("this file system cannot swap two folders in one step")
    export_folder._exchange(tmp, out)  # swap back
    export_folder.publish(tmp, out, overwrite=True)
    assert (out / "model.ckpt").read_text() == "new" and _hidden(tmp_path) == []


def test_folders_of_running_exports_and_other_names_are_left_alone(tmp_path):
    out = tmp_path / "out"
    running = export_folder.staging_folder(out)  # this process: alive
    other = tmp_path / ".out.tmp-somewhere-else-1-abcdefgh"  # another host
    foreign = tmp_path / ".out.tmpfiles"
    for path in (other, foreign):
        path.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    host = export_folder._owner().rsplit("-", 1)[0]
    stale = tmp_path / f".out.tmp-{host}-{dead.stdout.strip()}-abcdefgh"
    stale.mkdir()
    assert export_folder.clean_leftovers(out) == [stale]
    assert running.is_dir() and other.is_dir() and foreign.is_dir() and not stale.exists()
    assert str(os.getpid()) in running.name
