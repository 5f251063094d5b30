"""Rerunning an interrupted ``train.py`` command resumes from its intra-epoch checkpoint.

A run with a checkpoint every 3 batches (``--ckpt_interval_minutes=0 --ckpt_interval_steps=3``)
is SIGKILLed in the middle of batch 5 of epoch 2 (after that batch's discriminator update, before
its model update), then the same command is rerun. It must load the intra-epoch checkpoint of
batch 3, redo batches 4 to 7 of epoch 2 only, and end with as many optimizer steps as an
uninterrupted run of the same command in another folder (2 epochs x 7 batches, tiny corpus).
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_recipe import (checkpoints, in_process_run, make_tiny_assets, output_folder, run_argv,
                         steps_per_epoch, subprocess_env, tiny_argv, train_utterances)

from m4ser_lobes.testing import sigkill

WORKER = Path(__file__).resolve().parent / "resume_worker.py"
EPOCHS = 2
CKPT_EVERY = 3  # batches
FREEZE_EPOCH, FREEZE_STEP = 2, 5  # killed during batch 5 of epoch 2...
CKPT_STEP = 3  # ...when the last intra-epoch checkpoint is that of batch 3
TIMEOUT_S = 300


def wait_for(marker, proc, log_path):
    """Wait until the worker froze at its batch (marker written); fail if it exits instead."""
    deadline = time.monotonic() + TIMEOUT_S
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"worker exited (rc={proc.returncode}) before freezing:\n{tail(log_path)}")
        if time.monotonic() > deadline:
            pytest.fail(f"worker did not reach its freeze point in {TIMEOUT_S} s:\n{tail(log_path)}")
        time.sleep(0.2)
    return json.loads(marker.read_text())


def tail(path, chars=4000):
    return Path(path).read_text(errors="replace")[-chars:] if Path(path).exists() else ""


@pytest.mark.slow
def test_killed_run_resumes_with_same_optimizer_steps(tmp_path):
    assets = make_tiny_assets(tmp_path / "assets")
    killed_results, reference_results = tmp_path / "killed", tmp_path / "reference"
    ckpt_every = {"ckpt_interval_steps": CKPT_EVERY}
    argv = tiny_argv(assets, killed_results, EPOCHS, **ckpt_every)
    reference_argv = tiny_argv(assets, reference_results, EPOCHS, **ckpt_every)

    # 1. The run to interrupt, in a subprocess; the uninterrupted reference meanwhile, in-process.
    marker, worker_log = tmp_path / "frozen.json", tmp_path / "worker.log"
    env = subprocess_env(
        M4SER_FREEZE_AT=f"{FREEZE_EPOCH}:{FREEZE_STEP}", M4SER_FREEZE_MARKER=marker
    )
    with open(worker_log, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), *argv], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        with in_process_run():
            run_argv(reference_argv)
        frozen = wait_for(marker, proc, worker_log)
        save = output_folder(killed_results) / "save"
        before_kill = checkpoints(save)
        assert sigkill(proc, timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            sigkill(proc)

    per_epoch = steps_per_epoch(train_utterances(killed_results))
    assert per_epoch >= FREEZE_STEP + 1, "the tiny corpus must leave batches after the kill"
    expected_steps = EPOCHS * per_epoch

    # 2. What the kill left: the epoch-1 checkpoint and the intra-epoch one after batch 3.
    assert frozen == {
        "epoch": FREEZE_EPOCH,
        "step": FREEZE_STEP,
        "optimizer_step": per_epoch + FREEZE_STEP - 1,
    }
    intra = before_kill[-1]
    assert intra["meta"].get("brain_intra_epoch_ckpt") is True
    assert intra["meta"]["end-of-epoch"] is False
    assert intra["counter"] == FREEZE_EPOCH
    assert intra["brain"]["step"] == CKPT_STEP
    assert intra["brain"]["optimizer_step"] == per_epoch + CKPT_STEP
    assert (intra["path"] / "dataloader-TRAIN.ckpt").read_text().strip() == str(CKPT_STEP)
    assert [c["counter"] for c in before_kill if c["meta"]["end-of-epoch"]] == [1]

    # 3. Rerun the same command, in-process: it must resume mid-epoch 2, not restart.
    log_txt = output_folder(killed_results) / "log.txt"
    log_start = log_txt.stat().st_size
    with in_process_run():
        run_argv(argv)
    rerun_log = log_txt.read_text(encoding="utf-8", errors="replace")[log_start:]
    assert f"Loading a checkpoint from {intra['path']}" in rerun_log
    assert "Going into epoch 1" not in rerun_log
    assert "Going into epoch 2" in rerun_log

    # 4. Same optimizer steps and epochs as the uninterrupted run.
    resumed, reference = checkpoints(save)[-1], checkpoints(output_folder(reference_results) / "save")[-1]
    for final in (resumed, reference):
        assert final["meta"]["end-of-epoch"] is True
        assert final["counter"] == EPOCHS
        assert final["brain"]["step"] == 0
    assert reference["brain"]["optimizer_step"] == expected_steps
    assert resumed["brain"]["optimizer_step"] == reference["brain"]["optimizer_step"]
    assert not any(c["meta"].get("brain_intra_epoch_ckpt") for c in checkpoints(save))

    # Each epoch was validated and logged once; the test set was evaluated.
    history = json.loads((output_folder(killed_results) / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    train_log = (output_folder(killed_results) / "train_log.txt").read_text().splitlines()
    assert [line.split(" - ")[0] for line in train_log if line.startswith("epoch:")] == [
        "epoch: 1",
        "epoch: 2",
    ]
    assert (output_folder(killed_results) / "test_metrics.json").exists()

    # 5. Exact resume (RNG states and the loader's generator in every checkpoint): the resumed
    #    run ends with the uninterrupted run's weights and test numbers, to the bit.
    import torch

    final_weights = [torch.load(c["path"] / "model.ckpt", map_location="cpu", weights_only=True)
                     for c in (resumed, reference)]
    assert final_weights[0].keys() == final_weights[1].keys()
    differing = [k for k in final_weights[0] if not torch.equal(final_weights[0][k], final_weights[1][k])]
    assert not differing, f"{len(differing)} of {len(final_weights[0])} tensors differ: {differing[:5]}"
    metrics = [json.loads((output_folder(r) / "test_metrics.json").read_text())
               for r in (killed_results, reference_results)]
    assert {k: metrics[0][k] for k in ("WA", "UA", "W-F1", "confusion")} == \
        {k: metrics[1][k] for k in ("WA", "UA", "W-F1", "confusion")}
