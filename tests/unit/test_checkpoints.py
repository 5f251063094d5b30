"""Checkpoints whole or absent, a full disk, and exact resume (``m4ser_lobes.checkpoints``).

The interrupted saves are real: a subprocess (this file run as a script) saves a checkpoint and
is SIGKILLed in the middle of its second save, while one of its files is half written. The full
disk is a real 8 MiB tmpfs when this machine lets us mount one, else a real file size limit
(``RLIMIT_FSIZE``: writes fail with ``EFBIG``); the test never skips.
"""

import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.checkpoints import (
    Checkpointer,
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)
from speechbrain.utils.epoch_loop import EpochCounter

from m4ser_lobes.checkpoints import (
    AtomicCheckpointer,
    CheckpointDiskFull,
    folder_bytes,
    human_bytes,
)
from m4ser_lobes.data import batching
from m4ser_lobes.testing import sigkill

THIS = Path(__file__).resolve()
TIMEOUT_S = 120


# ------------------------------------------------------------------------------ helpers
@register_checkpoint_hooks
class Blocker:
    """A recoverable whose save can stop half-way through its file (torch zip), then hang."""

    def __init__(self, marker=None):
        self.marker = marker
        self.block = False
        self.payload = torch.arange(50_000, dtype=torch.float32)

    @mark_as_saver
    def save(self, path):
        buffer = io.BytesIO()
        torch.save(self.payload, buffer)
        data = buffer.getvalue()
        with open(path, "wb") as fout:
            fout.write(data[: len(data) // 2] if self.block else data)
            fout.flush()
            os.fsync(fout.fileno())
        if self.block:
            Path(self.marker).write_text(str(os.getpid()))
            time.sleep(TIMEOUT_S * 5)  # killed here

    @mark_as_loader
    def load(self, path, end_of_epoch):
        self.payload = torch.load(path, weights_only=True)


def recoverables(seed=0, marker=None):
    torch.manual_seed(seed)
    # model before blocker before counter: a plain Checkpointer killed in the blocker's save
    # leaves a whole model.ckpt, a truncated blocker.ckpt and no counter.ckpt
    return {"model": torch.nn.Linear(256, 512), "blocker": Blocker(marker),
            "counter": EpochCounter(10)}


def save_then_hang(save, marker, atomic):
    """(In the subprocess.) Save checkpoint 1 whole, then hang half-way through checkpoint 2."""
    objects = recoverables(seed=0, marker=marker)
    checkpointer = (AtomicCheckpointer if atomic else Checkpointer)(save, objects)
    checkpointer.save_checkpoint(meta={"n": 1})
    with torch.no_grad():
        objects["model"].weight.fill_(2.0)
    objects["counter"].current = 5
    objects["blocker"].block = True
    checkpointer.save_checkpoint(meta={"n": 2})


def run_until_marker(tmp_path, *args):
    """Start this file as a worker with ``args``; SIGKILL it once it wrote its marker."""
    marker, log = tmp_path / "marker", tmp_path / "worker.log"
    with open(log, "w") as fout:
        proc = subprocess.Popen([sys.executable, str(THIS), *args, str(marker)],
                                stdout=fout, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not marker.exists():
            assert proc.poll() is None, f"worker exited early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"worker never blocked:\n{log.read_text()}"
            time.sleep(0.05)
        assert sigkill(proc, timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            sigkill(proc)


def first_weights():
    return recoverables(seed=0)["model"].weight.detach().clone()


# ------------------------------------------------------------------------------ SIGKILL in a save
def test_sigkill_during_a_save_leaves_the_previous_checkpoint_to_recover(tmp_path, caplog):
    save = tmp_path / "save"
    run_until_marker(tmp_path, "save-then-hang", str(save), "atomic")
    published = sorted(p.name for p in save.iterdir() if p.name.startswith("CKPT+"))
    hidden = sorted(p.name for p in save.iterdir() if p.name.startswith("."))
    assert len(published) == 1 and len(hidden) == 1 and hidden[0].endswith(".partial")
    assert (save / hidden[0] / "blocker.ckpt").exists()  # the kill came mid-save

    objects = recoverables(seed=1)
    checkpointer = AtomicCheckpointer(save, objects)
    assert [c.meta["n"] for c in checkpointer.list_checkpoints()] == [1]
    with caplog.at_level(logging.WARNING, logger="m4ser_lobes.checkpoints"):
        recovered = checkpointer.recover_if_possible()
    assert recovered.meta["n"] == 1 and "checkpoint_files" not in recovered.meta
    assert torch.equal(objects["model"].weight, first_weights())
    assert objects["counter"].current == 0
    assert sorted(p.name for p in save.iterdir()) == published  # the partial save removed
    assert any(hidden[0] in r.getMessage() for r in caplog.records)

    # the run goes on: the next save is whole again
    checkpointer.save_checkpoint(meta={"n": 3})
    assert sorted(c.meta["n"] for c in checkpointer.list_checkpoints()) == [1, 3]


def test_half_written_checkpoint_of_a_plain_checkpointer_is_skipped(tmp_path, caplog):
    save = tmp_path / "save"
    run_until_marker(tmp_path, "save-then-hang", str(save), "plain")
    folders = sorted(save.glob("CKPT+*"), key=lambda p: (p / "counter.ckpt").exists())
    assert len(folders) == 2
    broken = folders[0]
    folders.reverse()
    assert not (broken / "counter.ckpt").exists() and (broken / "blocker.ckpt").exists()
    # What SpeechBrain's own Checkpointer does with it: it picks it and fails, every rerun.
    with pytest.raises((RuntimeError, KeyError)):
        Checkpointer(save, recoverables(seed=1)).recover_if_possible()

    objects = recoverables(seed=1)
    with caplog.at_level(logging.WARNING, logger="m4ser_lobes.checkpoints"):
        recovered = AtomicCheckpointer(save, objects).recover_if_possible()
    assert recovered.path == folders[0] and recovered.meta["n"] == 1
    assert torch.equal(objects["model"].weight, first_weights())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"ignoring the incomplete checkpoint {broken} (counter.ckpt is missing)" in warnings[0]

    # the same folder with its missing file: the truncated torch file is caught
    shutil.copy(folders[0] / "counter.ckpt", broken / "counter.ckpt")
    reason = AtomicCheckpointer(save, recoverables(seed=1)).incomplete(broken)
    assert reason.startswith("blocker.ckpt is unreadable")


def test_checkpoint_damaged_after_its_save_and_leftovers(tmp_path):
    save = tmp_path / "save"
    objects = recoverables(seed=0)
    checkpointer = AtomicCheckpointer(save, objects)
    first = checkpointer.save_checkpoint(meta={"n": 1}, name="a")
    second = checkpointer.save_checkpoint(meta={"n": 2}, name="b")
    with open(second.path / "model.ckpt", "r+b") as fout:
        fout.truncate(1000)
    assert checkpointer.incomplete(second.path) == "model.ckpt has 1000 bytes instead of " + str(
        (first.path / "model.ckpt").stat().st_size)
    assert [c.meta["n"] for c in checkpointer.list_checkpoints()] == [1]

    # a kill while replacing a checkpoint of the same name left it aside: it is put back;
    # the folders of an interrupted save or deletion are removed
    os.replace(first.path, save / ".CKPT+a.old")
    (save / ".CKPT+c.partial").mkdir()
    (save / ".CKPT+d.deleted").mkdir()
    checkpointer.remove_leftovers()
    assert sorted(p.name for p in save.iterdir()) == ["CKPT+a", "CKPT+b"]

    # saving under an existing name replaces it whole; deleting leaves nothing behind
    checkpointer.save_checkpoint(meta={"n": 4}, name="a")
    assert [c.meta["n"] for c in checkpointer.list_checkpoints()] == [4]
    checkpointer.delete_checkpoints(num_to_keep=0)
    assert sorted(p.name for p in save.iterdir()) == ["CKPT+b"]  # incomplete: never listed


# ------------------------------------------------------------------------------ full disk
def mount_tmpfs(folder):
    folder.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def fill_disk_then_free(save, mode):
    """(In the subprocess.) Save, fill the disk, fail to save, free space, save again."""
    import resource

    report = {}
    objects = recoverables(seed=0)
    checkpointer = AtomicCheckpointer(save, objects)
    first = checkpointer.save_checkpoint(meta={"n": 1}).path
    report["first"], report["first_size"] = first.name, human_bytes(folder_bytes(first))
    filler = save.parent / "filler"
    if mode == "tmpfs":
        with open(filler, "wb", buffering=0) as fout:
            try:
                while True:
                    fout.write(b"\0" * 65536)
                    fout.flush()
            except OSError:
                pass
    else:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        checkpointer.save_checkpoint(meta={"n": 2})
        report["error"] = None
    except CheckpointDiskFull as error:
        report["error"] = str(error)
    report["after_failure"] = sorted(p.name for p in save.iterdir())
    if mode == "tmpfs":
        filler.unlink()
    else:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    checkpointer.save_checkpoint(meta={"n": 3})
    resumed = AtomicCheckpointer(save, recoverables(seed=1))
    report["recovered"] = resumed.recover_if_possible().meta["n"]
    print("REPORT " + json.dumps(report))


def test_full_disk_stops_with_one_line_and_the_run_resumes_once_space_is_freed(tmp_path):
    disk = tmp_path / "disk"
    mode = "tmpfs" if mount_tmpfs(disk) else "rlimit"
    try:
        done = subprocess.run(
            [sys.executable, str(THIS), "fill-disk", str(disk / "save"), mode],
            capture_output=True, text=True, timeout=TIMEOUT_S,
        )
    finally:
        if mode == "tmpfs":
            subprocess.run(["umount", str(disk)], check=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.split("REPORT ", 1)[1])
    error = report["error"]
    assert error is not None, f"the save did not fail ({mode})"
    what, fix = {
        "tmpfs": ("disk full", "free space on that disk"),
        "rlimit": ("file size limit reached", "raise the file size limit (ulimit -f)"),
    }[mode]
    assert "\n" not in error and error.startswith(f"{disk / 'save'}: {what}, ")
    assert f"needs about {report['first_size']}," in error  # the size of the last checkpoint
    assert f"): {fix}, then rerun the same command" in error
    assert report["after_failure"] == [report["first"]]  # no partial folder left
    assert report["recovered"] == 3


# ------------------------------------------------------------------------------ exact resume
class Interrupted(Exception):
    """Stands for the SIGKILL: the run stops between two batches, state unsaved."""


class DropoutBrain(sb.Brain):
    """Dropout in the model and random noise in the data pipeline (like the random crop)."""

    stop_at = None

    def compute_forward(self, batch, stage):
        return self.modules.model(batch.feats.data).squeeze(-1)

    def compute_objectives(self, predictions, batch, stage):
        return (predictions - batch.target.data.squeeze(-1)).pow(2).mean()

    def fit_batch(self, batch):
        if self.stop_at == (self.hparams.counter.current, self.step):
            raise Interrupted
        return super().fit_batch(batch)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.VALID:
            self.checkpointer.save_and_keep_only(meta={"loss": stage_loss}, min_keys=["loss"])


def toy_dataset(noisy):
    generator = torch.Generator().manual_seed(7)
    data = {
        f"u{i}": {"duration": 1.0 + (i % 5), "x": torch.randn(8, generator=generator).tolist(),
                  "y": float(i % 3)}
        for i in range(40)
    }
    dataset = DynamicItemDataset(data)

    @sb.utils.data_pipeline.takes("x", "y")
    @sb.utils.data_pipeline.provides("feats", "target")
    def pipeline(x, y):
        feats = torch.tensor(x)
        yield feats + 0.1 * torch.randn(8) if noisy else feats  # the global torch RNG
        yield torch.tensor([y])

    sb.dataio.dataset.add_dynamic_item([dataset], pipeline)
    sb.dataio.dataset.set_output_keys([dataset], ["id", "feats", "target"])
    return dataset


def train(save, checkpointer_class, seed, stop_at=None, epochs=3):
    """A fresh 'process': seeded, new objects; fit until ``stop_at`` (epoch, step) or the end."""
    sb.utils.seed.seed_everything(seed, verbose=False)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                torch.nn.Linear(32, 1))
    counter = EpochCounter(epochs)
    checkpointer = checkpointer_class(save, {"model": model, "counter": counter})
    brain = DropoutBrain(
        modules={"model": model}, hparams={"counter": counter},
        opt_class=lambda params: torch.optim.Adam(params, lr=0.01),
        run_opts={"device": "cpu", "noprogressbar": True, "ckpt_interval_steps": 3},
        checkpointer=checkpointer,
    )
    brain.stop_at = stop_at
    train_set, valid_set = toy_dataset(noisy=True), toy_dataset(noisy=False)
    kwargs = batching.train_loader_kwargs(train_set, 4, num_buckets=3, seed=11)
    brain.train_sampler = kwargs["batch_sampler"]  # as the recipe does
    try:
        brain.fit(counter, train_set, valid_set, train_loader_kwargs=kwargs,
                  valid_loader_kwargs={"batch_size": 4})
    except Interrupted:
        return None
    return {name: p.detach().clone() for name, p in model.named_parameters()}, brain.optimizer_step


@pytest.mark.parametrize("stop_at", [(2, 5), (2, 1)], ids=["mid-epoch", "epoch-start"])
def test_killed_and_resumed_training_equals_an_uninterrupted_one(tmp_path, stop_at):
    """Killed at batch 5 of epoch 2 (last checkpoint: the intra-epoch one after batch 3) or at
    its batch 1 (last: the end of epoch 1); resumed by a run seeded otherwise, as a fresh
    process would be: the weights after 3 epochs are those of the uninterrupted run, bit for bit.
    """
    reference, steps = train(tmp_path / "reference", AtomicCheckpointer, seed=3)
    assert train(tmp_path / "run", AtomicCheckpointer, seed=3, stop_at=stop_at) is None
    resumed, resumed_steps = train(tmp_path / "run", AtomicCheckpointer, seed=99)
    assert resumed_steps == steps
    for name in reference:
        assert torch.equal(resumed[name], reference[name]), name

    # the same with SpeechBrain's Checkpointer: the weights differ (the random state is lost)
    assert train(tmp_path / "plain", Checkpointer, seed=3, stop_at=stop_at) is None
    plain, _ = train(tmp_path / "plain", Checkpointer, seed=99)
    assert any(not torch.equal(plain[name], reference[name]) for name in reference)


class WorkerSeeds(torch.utils.data.Dataset):
    """Items that carry the torch seed of the worker that read them (its base seed + id)."""

    def __len__(self):
        return 12

    def __getitem__(self, index):
        return torch.utils.data.get_worker_info().seed


def worker_seeds(save, seed, stop_at=None):
    """Worker seeds per epoch of a 1-worker loader, 3 epochs of 6 batches; checkpoints at each
    epoch's end, and mid-epoch at ``stop_at`` (epoch, batch), where the run then stops."""
    sb.utils.seed.seed_everything(seed, verbose=False)
    loader = sb.dataio.dataloader.SaveableDataLoader(WorkerSeeds(), batch_size=2, num_workers=1)
    counter = EpochCounter(3)
    checkpointer = AtomicCheckpointer(save, {"dataloader-TRAIN": loader, "counter": counter})
    checkpointer.recover_if_possible()
    seeds = {}
    for epoch in counter:
        for step, batch in enumerate(loader, start=1):
            seeds.setdefault(epoch, []).extend(batch.tolist())
            if (epoch, step) == stop_at:
                checkpointer.save_checkpoint(end_of_epoch=False)
                return seeds
        checkpointer.save_and_keep_only()
    return seeds


def test_a_resumed_epoch_gives_its_workers_the_seeds_of_the_interrupted_one(tmp_path):
    """The loader's own generator is restored to its state before the interrupted epoch's
    iterator: the resumed epoch's workers, and every later epoch's, get the same seeds."""
    reference = worker_seeds(tmp_path / "reference", seed=3)
    assert len({s for epoch in reference.values() for s in epoch}) == 3  # one seed an epoch
    interrupted = worker_seeds(tmp_path / "run", seed=3, stop_at=(2, 2))
    resumed = worker_seeds(tmp_path / "run", seed=99)  # seeded otherwise, as a new process
    assert sorted(resumed) == [2, 3]
    assert interrupted[2] + resumed[2] == reference[2]
    assert resumed[3] == reference[3]


if __name__ == "__main__":
    command, folder, option = sys.argv[1:4]
    if command == "save-then-hang":
        save_then_hang(Path(folder), sys.argv[4], option == "atomic")
    elif command == "fill-disk":
        fill_disk_then_free(Path(folder), option)
