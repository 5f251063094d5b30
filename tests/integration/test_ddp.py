"""``torchrun --nproc_per_node=2 recipes/IEMOCAP/train.py ... --distributed_backend=gloo`` on CPU.

Checks the parameters across ranks rather than only the exit code: both ranks wrap the model
and the discriminator in ``DistributedDataParallel``, train on disjoint halves of the training
set, and end ``fit`` with identical parameters (model and discriminator) that differ from the
initial ones. Known flake (docs/design.md §10.3): a rank may abort at interpreter shutdown after it finished
(SIGABRT, torchrun rc=1), so success is judged on the per-rank files written after
``train.main`` returned (``ddp_worker.py``); a non-zero rc alone only warns.
"""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from tiny_recipe import (BATCH_SIZE, REPO, make_tiny_assets, output_folder, prepared_folder,
                         steps_per_epoch, subprocess_env, tiny_argv)

WORKER = Path(__file__).resolve().parent / "ddp_worker.py"
EPOCHS = 1
WORLD_SIZE = 2
TIMEOUT_S = 300
EXIT_GRACE_S = 60  # a rank that hangs at exit after writing its file


def run_torchrun(argv, log_path, rank_files):
    """torchrun in its own session; returns (rc, output). rc is None when the process group was
    killed: on timeout, or when it still runs EXIT_GRACE_S after every rank wrote its file."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={WORLD_SIZE}", str(WORKER), *argv,
    ]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline, finished_at = time.monotonic() + TIMEOUT_S, None
        while proc.poll() is None:
            if finished_at is None and all(p.exists() for p in rank_files):
                finished_at = time.monotonic()
            grace_over = finished_at is not None and time.monotonic() > finished_at + EXIT_GRACE_S
            if grace_over or time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return None, Path(log_path).read_text(errors="replace")
            time.sleep(0.5)
    return proc.returncode, Path(log_path).read_text(errors="replace")


@pytest.mark.slow
def test_torchrun_two_ranks_gloo_keeps_ranks_identical(tmp_path):
    assets = make_tiny_assets(tmp_path / "assets")
    results = tmp_path / "results"
    # Length-bucketed batches: the batch sampler SpeechBrain deals to the ranks (random batches
    # are dealt by its DistributedSamplerWrapper, tests/unit/data/test_batching.py).
    argv = tiny_argv(assets, results, EPOCHS, distributed_backend="gloo", bucketing=True)
    out = output_folder(results)
    paths = [out / f"rank{rank}.pt" for rank in range(WORLD_SIZE)]
    rc, output = run_torchrun(argv, tmp_path / "torchrun.log", paths)

    if not all(p.exists() for p in paths):
        pytest.fail(f"torchrun rc={rc}; missing {[p.name for p in paths if not p.exists()]}:\n"
                    f"{output[-6000:]}")
    if rc != 0:
        warnings.warn(
            f"torchrun rc={rc} after both ranks finished (exit-time flake; None = killed):\n{output[-2000:]}",
            stacklevel=1,
        )
    ranks = [torch.load(p, weights_only=False) for p in paths]
    # The run's configuration (and its ASR warnings) is written and said once, by rank 0.
    assert output.count("trains on hypotheses of") == 1, output[-4000:]

    # Both processes really were DDP ranks of one group.
    for rank, record in enumerate(ranks):
        assert record["finished"] is True
        assert (record["rank"], record["world_size"]) == (rank, WORLD_SIZE)
        assert record["distributed_launch"] is True
        assert record["module_types"] == {
            "model": "DistributedDataParallel",
            "discriminator": "DistributedDataParallel",
        }

    # Each rank trained on its own share of the epoch's length-bucketed batches: together they
    # cover the training set; only the batch repeated to even out the last round is seen twice.
    with open(prepared_folder(results) / "fold1" / "train.json", encoding="utf-8") as fin:
        train_ids = set(json.load(fin))
    seen = [set(record["batch_ids"]) for record in ranks]
    assert seen[0] | seen[1] == train_ids
    assert len(seen[0] & seen[1]) <= BATCH_SIZE
    batches = ranks[0]["batches_per_epoch"]
    assert batches == ranks[1]["batches_per_epoch"]
    assert batches >= steps_per_epoch(len(train_ids), WORLD_SIZE)
    assert [record["optimizer_step"] for record in ranks] == [EPOCHS * batches] * WORLD_SIZE

    # Identical parameters (and buffers) on both ranks, before and after training.
    first, second = ranks
    for phase in ("initial", "final"):
        assert first[phase].keys() == second[phase].keys() == {"model", "discriminator"}
        for module, state in first[phase].items():
            other = second[phase][module]
            assert state.keys() == other.keys()
            differing = [key for key in state if not torch.equal(state[key], other[key])]
            assert not differing, f"{phase} {module}: ranks differ in {differing}"

    # Training happened: the discriminator and the model (encoders and head) moved.
    for module in ("model", "discriminator"):
        trainable = first["trainable"][module]
        unchanged = [
            name for name in trainable
            if torch.equal(first["initial"][module][name], first["final"][module][name])
        ]
        if module == "discriminator":
            assert trainable and not unchanged, f"discriminator params not trained: {unchanged}"
        else:
            assert len(unchanged) <= len(trainable) // 10, f"model params not trained: {unchanged}"
    changed = {name for name in first["trainable"]["model"]
               if not torch.equal(first["initial"]["model"][name], first["final"]["model"][name])}
    for part in ("speech_encoder.", "text_encoder.", "fusion.", "emotion_head."):
        assert any(name.startswith(part) for name in changed), f"nothing under {part} trained"

    # Rank 0 validated and tested (evaluation after fit is not sharded).
    train_log = (out / "train_log.txt").read_text()
    assert "epoch: 1" in train_log and "test loss" in train_log
    assert (out / "test_metrics.json").exists()
