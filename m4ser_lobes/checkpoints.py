"""Checkpoints that are whole or absent, and the random state saved with each (exact resume).

SpeechBrain's :class:`~speechbrain.utils.checkpoints.Checkpointer` writes ``CKPT.yaml`` (the
validation metrics) first and the weights after it, in the checkpoint's final folder. A run
killed during a save (preemption, ``kill -9``, out of memory) or stopped by a full disk leaves a
``CKPT+...`` folder that looks valid, and every rerun then fails to resume (``KeyError: 'model'``,
``PytorchStreamReader failed reading zip archive``). :class:`AtomicCheckpointer` fixes that:

- A save is written into a hidden folder beside the checkpoints (``.CKPT+<name>.partial``);
  every file is fsynced, ``CKPT.yaml`` is written LAST with the size of every file it covers
  (``checkpoint_files``), and the folder is published by one ``os.replace`` (the parent folder
  fsynced). A ``CKPT+*`` folder is therefore always complete; deleting one renames it aside
  first (``.CKPT+<name>.deleted``), so a kill while deleting leaves no half checkpoint either.
- Listing (``list_checkpoints``, ``find_checkpoint(s)``, ``recover_if_possible``) skips an
  incomplete checkpoint with a WARNING naming it: a file of its ``checkpoint_files`` missing or
  of another size; for a folder written before (no ``checkpoint_files``), a registered
  recoverable's file missing, an empty file, or a torch file whose zip directory is unreadable.
  The last whole checkpoint is used. ``recover_if_possible`` also removes the hidden leftovers
  of interrupted saves and deletions.
- A full disk during a save (``ENOSPC``, a quota, a file size limit) removes the partial folder
  and raises :class:`CheckpointDiskFull`, one line naming the folder, the space a checkpoint
  needs and the space free; once space is freed the same command resumes.
- The random state (:class:`RNGState`: torch CPU and CUDA, numpy, python ``random``, and the
  training data loader's own generator) is saved with every checkpoint and restored on
  recovery, so that a run killed anywhere and resumed ends with the numbers of an uninterrupted
  one (``tests/unit/test_checkpoints.py``).

Example
-------
>>> import torch
>>> save = getfixture("tmp_path") / "save"
>>> model = torch.nn.Linear(2, 2)
>>> checkpointer = AtomicCheckpointer(save, {"model": model})
>>> ckpt = checkpointer.save_checkpoint(meta={"UA": 50.0})
>>> sorted(p.name for p in ckpt.path.iterdir())
['CKPT.yaml', 'model.ckpt', 'rng_state.ckpt']
>>> checkpointer.find_checkpoint(max_key="UA").meta["UA"]
50.0
>>> (ckpt.path / "model.ckpt").write_bytes(b"PK")  # damaged after the save
2
>>> checkpointer.find_checkpoint() is None  # skipped, with a warning naming it
True
"""

import collections.abc
import errno
import logging
import os
import random
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
import yaml
from speechbrain.utils.checkpoints import (
    CKPT_PREFIX,
    DEFAULT_SAVE_HOOKS,
    METAFNAME,
    PARAMFILE_EXT,
    Checkpoint,
    Checkpointer,
    ckpt_recency,
    get_default_hook,
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)
from speechbrain.utils.distributed import ddp_barrier, ddp_broadcast, if_main_process

logger = logging.getLogger(__name__)

#: Key of ``CKPT.yaml`` listing the size in bytes of every file of the checkpoint.
FILES_KEY = "checkpoint_files"
#: Name of the :class:`RNGState` recoverable (``rng_state.ckpt``).
RNG_STATE = "rng_state"
#: Suffixes of the hidden folders of a save under way and of a deletion under way.
PARTIAL, OLD, DELETED = ".partial", ".old", ".deleted"
#: errno values of a full disk, a quota, and a file size limit (RLIMIT_FSIZE).
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
PROBE_BYTES = 1 << 20
#: Most iterator creations (epochs) replayed to find a loader generator's epoch-start state.
MAX_REPLAYED_DRAWS = 10_000
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CheckpointDiskFull(OSError):
    """A checkpoint could not be saved for lack of disk space (one-line message)."""


def _rank():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def _fsync(path, directory=False):
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def folder_bytes(folder):
    """Total size in bytes of the files under ``folder`` (0 when it does not exist)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def human_bytes(count):
    """``1536`` -> ``'1.5 KiB'``.

    Example
    -------
    >>> human_bytes(512), human_bytes(3 * 2**20), human_bytes(5.5 * 2**30)
    ('512 B', '3.0 MiB', '5.5 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return None  # unreachable


def unreadable(path):
    """Why the checkpoint file ``path`` cannot be loaded, or None when it looks whole.

    Cheap: an empty file, or a torch zip archive (``torch.save``'s format) whose central
    directory, at the end of the file, cannot be read (the file was cut short). Other files
    (SpeechBrain's small text files) only need to be non-empty.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            return f"{path.name} is empty"
        with open(path, "rb") as fin:
            is_zip = fin.read(4) == b"PK\x03\x04"
        if is_zip:
            with zipfile.ZipFile(path) as archive:
                archive.infolist()
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        return f"{path.name} is unreadable ({error})"
    return None


class RNGState:
    """The random state of this process, saved with a checkpoint and restored on recovery.

    torch's CPU generator, every initialised CUDA device's, numpy's global one, python's
    ``random``, and the generators of the data loaders given to :meth:`track_loader`. Under
    DDP every rank saves its own (``rng_state.ckpt`` for rank 0, ``rng_state.rank<r>.ckpt``).

    Example
    -------
    >>> path = getfixture("tmp_path") / "rng_state.ckpt"
    >>> state = RNGState()
    >>> state.save(path)
    >>> first = torch.rand(3), np.random.rand(), random.random()
    >>> state.load(path, end_of_epoch=True)
    >>> second = torch.rand(3), np.random.rand(), random.random()
    >>> torch.equal(first[0], second[0]) and first[1:] == second[1:]
    True
    """

    def __init__(self):
        self.loaders = {}  # name -> (loader, its generator, the generator's seed)

    def track_loader(self, name, loader):
        """Give ``loader`` (a torch DataLoader) a generator of its own, saved with this state.

        A DataLoader without a generator draws its workers' base seed from torch's global
        generator each time an epoch's iterator is created: a run resumed in the middle of an
        epoch creates one iterator more than an uninterrupted one, and every later random draw
        (dropout, random crops) would be one step off. With its own generator (seeded from
        ``torch.initial_seed()``), creating the iterator leaves the global stream alone, and a
        run resumed mid-epoch gives the epoch's new iterator the base seed of the interrupted
        one (the generator's state before that draw is saved too). A loader that already has a
        generator is left as it is.
        """
        if getattr(loader, "generator", None) is None:
            seed = torch.initial_seed()
            loader.generator = torch.Generator()
            loader.generator.manual_seed(seed)
            self.loaders[name] = (loader, loader.generator, seed)
        else:
            self.loaders.pop(name, None)

    @staticmethod
    def _state_before_iterator(loader, generator, seed):
        """The generator's state before the draw of the loader's current epoch iterator.

        Only iterator creations draw from it (one int64 each): the draws since ``seed`` are
        replayed until the current state; None without a current iterator (SpeechBrain's
        ``SaveableDataLoader`` keeps it) or when the state is not found.
        """
        if getattr(loader, "_speechbrain_iterator", None) is None:
            return None
        target, replay = generator.get_state(), torch.Generator()
        replay.manual_seed(seed)
        previous = None
        for _ in range(MAX_REPLAYED_DRAWS):
            state = replay.get_state()
            if torch.equal(state, target):
                return previous
            previous = state
            torch.empty((), dtype=torch.int64).random_(generator=replay)
        return None

    @staticmethod
    def _path_of_rank(path, rank):
        path = Path(path)
        return path if rank == 0 else path.with_name(f"{path.stem}.rank{rank}{path.suffix}")

    @mark_as_saver
    def save(self, path):
        """Write this process's random state (every rank writes its own file)."""
        keys, pos, has_gauss, cached = np.random.get_state()[1:]
        state = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "numpy": [torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                      float(cached)],
            "python": random.getstate(),
            "loaders": {
                name: {"seed": seed, "state": generator.get_state(),
                       "epoch_start": self._state_before_iterator(loader, generator, seed)}
                for name, (loader, generator, seed) in self.loaders.items()
            },
        }
        torch.save(state, self._path_of_rank(path, _rank()))

    @mark_as_loader
    def load(self, path, end_of_epoch):
        """Restore the random state saved by this rank (rank 0's when it saved none).

        A loader's generator goes back to its state before the interrupted epoch's iterator
        when ``end_of_epoch`` is False (the epoch's iterator is created again).
        """
        own = self._path_of_rank(path, _rank())
        if not own.exists():
            logger.warning("%s holds no random state of rank %d: rank 0's is used (the resumed "
                           "run will not repeat an uninterrupted one exactly)", own.parent, _rank())
            own = Path(path)
        state = torch.load(own, map_location="cpu", weights_only=True)
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            for device, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state, device)
        keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        for name, (loader, generator, _) in list(self.loaders.items()):
            saved = state.get("loaders", {}).get(name)
            if saved is None:
                continue
            restart = saved["epoch_start"] is not None and not end_of_epoch
            generator.set_state(saved["epoch_start"] if restart else saved["state"])
            self.loaders[name] = (loader, generator, saved["seed"])


# Every rank saves its own random state (the default saver runs on the main process only).
register_checkpoint_hooks(RNGState, save_on_main_only=False)


class AtomicCheckpointer(Checkpointer):
    """A SpeechBrain ``Checkpointer`` whose checkpoints are whole or absent (module docstring).

    Arguments
    ---------
    checkpoints_dir, recoverables, custom_load_hooks, custom_save_hooks, allow_partial_load
        As :class:`speechbrain.utils.checkpoints.Checkpointer`.
    save_rng_state : bool
        Add an :class:`RNGState` recoverable (``rng_state``, optional on loading: a checkpoint
        written without it loads with a warning). A torch DataLoader registered later (the
        Brain registers its training loader as ``dataloader-TRAIN``) gets its own generator,
        saved in it (:meth:`RNGState.track_loader`).
    """

    def __init__(self, checkpoints_dir, recoverables=None, custom_load_hooks=None,
                 custom_save_hooks=None, allow_partial_load=False, save_rng_state=True):
        self.rng_state = RNGState() if save_rng_state else None
        self._warned = set()
        self._meta_cache = {}
        super().__init__(checkpoints_dir, recoverables, custom_load_hooks, custom_save_hooks,
                         allow_partial_load)
        if self.rng_state is not None:
            self.add_recoverable(RNG_STATE, self.rng_state, optional_load=True)

    # ------------------------------------------------------------------ recoverables
    def add_recoverable(self, name, obj, custom_load_hook=None, custom_save_hook=None,
                        optional_load=False):
        super().add_recoverable(name, obj, custom_load_hook, custom_save_hook, optional_load)
        if self.rng_state is not None and isinstance(obj, torch.utils.data.DataLoader):
            self.rng_state.track_loader(name, obj)

    def add_recoverables(self, recoverables):
        if not isinstance(recoverables, collections.abc.Mapping):
            return super().add_recoverables(recoverables)  # its error
        for name, obj in recoverables.items():
            self.add_recoverable(name, obj)
        return None

    # ------------------------------------------------------------------ saving
    def save_checkpoint(self, meta={}, end_of_epoch=True, name=None, verbosity=logging.INFO):
        """Save every recoverable into a hidden folder, then publish it with one rename.

        Arguments and return value as ``Checkpointer.save_checkpoint``. Raises
        :class:`CheckpointDiskFull` (the partial folder removed) when the disk fills up.
        """
        final = partial = None
        main = if_main_process()
        if main:
            final = self._new_checkpoint_dirpath() if name is None else (
                self._custom_checkpoint_dirpath(name))
            partial = self._hidden(final, PARTIAL)
        final, partial = ddp_broadcast((final, partial), src=0)
        try:
            if main:
                if partial.exists():
                    shutil.rmtree(partial)
                partial.mkdir()
            ddp_barrier()
            paramfiles = {}
            for key, obj in self.recoverables.items():
                self._save_recoverable(key, obj, partial / f"{key}{PARAMFILE_EXT}")
                paramfiles[key] = final / f"{key}{PARAMFILE_EXT}"
            ddp_barrier()  # every rank's files are written
            saved_meta = self._publish(partial, final, meta, end_of_epoch) if main else None
        except BaseException as error:
            if main and partial.exists():
                written = folder_bytes(partial)
                cause = self._disk_full(error, partial) if isinstance(error, Exception) else None
                shutil.rmtree(partial, ignore_errors=True)
                if cause is not None:
                    raise CheckpointDiskFull(self._disk_full_message(cause, written)) from error
            raise
        ddp_barrier()
        if not main:
            return None
        kind = "end-of-epoch" if end_of_epoch else "intra-epoch"
        logger.log(verbosity, f"Saved an {kind} checkpoint in {final}")
        return Checkpoint(final, saved_meta, paramfiles)

    def _save_recoverable(self, key, obj, path):
        if key in self.custom_save_hooks:
            self.custom_save_hooks[key](obj, path)
            return
        hook = get_default_hook(obj, DEFAULT_SAVE_HOOKS)
        if hook is None:
            raise RuntimeError(f"Don't know how to save {type(obj)} ({key!r}): register a "
                               "default hook or add a custom hook for this object")
        hook(obj, path)

    def _publish(self, partial, final, meta, end_of_epoch):
        """fsync the files, write CKPT.yaml with their sizes, rename ``partial`` to ``final``."""
        sizes = {}
        for path in sorted(partial.iterdir()):
            if path.is_file():
                _fsync(path)
                sizes[path.name] = path.stat().st_size
        saved_meta = {"unixtime": time.time(), "end-of-epoch": end_of_epoch}
        saved_meta.update(meta)
        saved_meta.pop(FILES_KEY, None)
        with open(partial / METAFNAME, "w", encoding="utf-8") as fout:
            fout.write("# yamllint disable\n")
            fout.write(yaml.dump({**saved_meta, FILES_KEY: sizes}))
            fout.flush()
            os.fsync(fout.fileno())
        _fsync(partial, directory=True)
        if final.exists():  # a custom name saved again: the old one goes aside, then away
            old = self._hidden(final, OLD)
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(partial, final)
            _fsync(self.checkpoints_dir, directory=True)
            shutil.rmtree(old)
        else:
            os.replace(partial, final)
            _fsync(self.checkpoints_dir, directory=True)
        return saved_meta

    def _hidden(self, final, suffix):
        return self.checkpoints_dir / f".{Path(final).name}{suffix}"

    # ------------------------------------------------------------------ full disk
    @staticmethod
    def _disk_full(error, partial):
        """The disk-full errno behind ``error`` (raised while saving into ``partial``), or None.

        An ``OSError`` with a disk-full errno in the chain of ``error``, or, since ``torch.save``
        reports a failed write as a bare ``RuntimeError``, a probe write of 1 MiB into
        ``partial`` that fails with one.
        """
        seen, chain = error, set()
        while seen is not None and id(seen) not in chain:
            chain.add(id(seen))
            if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
                return seen.errno
            seen = seen.__cause__ or seen.__context__
        try:
            with open(partial / ".probe", "wb") as fout:
                fout.write(b"\0" * PROBE_BYTES)
                fout.flush()
                os.fsync(fout.fileno())
        except OSError as probe_error:
            return probe_error.errno if probe_error.errno in DISK_FULL_ERRNOS else None
        return None

    def _disk_full_message(self, cause, written):
        """One line: the folder, what stopped the save, the space a checkpoint needs (an
        estimate: the last checkpoint's size) and the space free."""
        latest = max(self.list_checkpoints(), key=ckpt_recency, default=None)
        needed = max(written, self._state_bytes(),
                     folder_bytes(latest.path) if latest is not None else 0)
        free = shutil.disk_usage(self.checkpoints_dir).free
        what, fix = {
            errno.EDQUOT: ("disk quota exceeded", "free space in your quota"),
            errno.EFBIG: ("file size limit reached", "raise the file size limit (ulimit -f)"),
        }.get(cause, ("disk full", "free space on that disk"))
        return (f"{self.checkpoints_dir}: {what}, the checkpoint was not saved (a checkpoint "
                f"needs about {human_bytes(needed)}, {human_bytes(free)} free): {fix}, then "
                "rerun the same command (it resumes from the last whole checkpoint)")

    def _state_bytes(self):
        """Bytes of the tensors of the module and optimiser recoverables (a lower bound)."""
        total = 0
        for obj in self.recoverables.values():
            if isinstance(obj, (torch.nn.Module, torch.optim.Optimizer)):
                stack = [obj.state_dict()]
                while stack:
                    item = stack.pop()
                    if torch.is_tensor(item):
                        total += item.numel() * item.element_size()
                    elif isinstance(item, dict):
                        stack.extend(item.values())
                    elif isinstance(item, (list, tuple)):
                        stack.extend(item)
        return total

    # ------------------------------------------------------------------ listing and recovery
    def list_checkpoints(self):
        """The whole checkpoints of the folder; incomplete ones are skipped with a warning."""
        checkpoints, cache, self._meta_cache = [], self._meta_cache, {}
        for path in sorted(self.checkpoints_dir.iterdir()):
            if not (path.is_dir() and path.name.startswith(CKPT_PREFIX)):
                continue
            meta, reason = self._read_meta(path, cache)
            if reason is None:
                reason = self._incomplete_files(path, meta.get(FILES_KEY))
            if reason is None:
                meta = {k: v for k, v in meta.items() if k != FILES_KEY}
                paramfiles = {f.stem: f for f in path.iterdir() if f.suffix == PARAMFILE_EXT}
                checkpoints.append(Checkpoint(path, meta, paramfiles))
            elif path not in self._warned:
                self._warned.add(path)
                logger.warning("ignoring the incomplete checkpoint %s (%s): the last whole one "
                               "is used; delete that folder once you no longer need it",
                               path, reason)
        return checkpoints

    def incomplete(self, path):
        """Why the checkpoint folder ``path`` is incomplete, or None when it is whole."""
        meta, reason = self._read_meta(Path(path))
        return reason if reason is not None else self._incomplete_files(path, meta.get(FILES_KEY))

    def _read_meta(self, path, cache=None):
        """``(meta, None)`` or ``(None, why it cannot be read)``.

        Parsed once per version of the file: ``cache`` holds the last listing's (the checkpoints
        still there are kept for the next one).
        """
        meta_path = path / METAFNAME
        try:
            stat = meta_path.stat()
            key = (meta_path, stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if cache is not None and key in cache:
                meta = cache[key]
            else:
                with open(meta_path, encoding="utf-8") as fin:
                    meta = yaml.load(fin, Loader=YAML_LOADER)
            self._meta_cache[key] = meta
        except FileNotFoundError:
            return None, f"no {METAFNAME}"
        except (OSError, yaml.YAMLError) as error:
            return None, f"{METAFNAME} is unreadable ({type(error).__name__})"
        if not isinstance(meta, dict):
            return None, f"{METAFNAME} holds no metadata"
        return dict(meta), None

    def _incomplete_files(self, path, sizes):
        """Why the files of checkpoint ``path`` are incomplete (``sizes``: its FILES_KEY)."""
        path = Path(path)
        if isinstance(sizes, dict):  # written by this class: the sizes decide
            for name, size in sorted(sizes.items()):
                try:
                    actual = (path / name).stat().st_size
                except FileNotFoundError:
                    return f"{name} is missing"
                if actual != size:
                    return f"{name} has {actual} bytes instead of {size}"
            return None
        if not self.allow_partial_load:  # written by a plain Checkpointer
            for name in self.recoverables:
                if self.optional_recoverables.get(name) or "dataloader" in name:
                    continue
                if not (path / f"{name}{PARAMFILE_EXT}").is_file():
                    return f"{name}{PARAMFILE_EXT} is missing"
        for file in sorted(path.glob(f"*{PARAMFILE_EXT}")):
            reason = unreadable(file)
            if reason is not None:
                return reason
        return None

    def remove_leftovers(self):
        """Remove the hidden folders of interrupted saves and deletions (main process only).

        A ``.CKPT+<name>.old`` whose ``CKPT+<name>`` is missing (killed while replacing a
        checkpoint of the same name) is put back instead.
        """
        if not if_main_process():
            return
        for path in sorted(self.checkpoints_dir.iterdir()):
            name = path.name
            if not (path.is_dir() and name.startswith(f".{CKPT_PREFIX}")):
                continue
            if name.endswith(OLD):
                final = self.checkpoints_dir / name[1: -len(OLD)]
                if not final.exists():
                    os.replace(path, final)
                    continue
            elif not name.endswith((PARTIAL, DELETED)):
                continue
            logger.warning("removing %s, left by a checkpoint save or deletion that was "
                           "interrupted", path)
            shutil.rmtree(path, ignore_errors=True)

    def recover_if_possible(self, importance_key=None, max_key=None, min_key=None,
                            ckpt_predicate=None):
        """Remove the leftovers of interrupted saves, then recover from the chosen whole one."""
        self.remove_leftovers()
        return super().recover_if_possible(importance_key, max_key, min_key, ckpt_predicate)

    def delete_checkpoints(self, *, num_to_keep=1, min_keys=None, max_keys=None,
                           importance_keys=[ckpt_recency], ckpt_predicate=None,
                           verbosity=logging.INFO):
        """``Checkpointer.delete_checkpoints``; each deleted folder is renamed aside first."""
        if num_to_keep < 0:
            raise ValueError("Number of checkpoints to keep must be positive.")
        keys = [{"min_key": key} for key in min_keys or []]
        keys += [{"max_key": key} for key in max_keys or []]
        keys += [{"importance_key": key} for key in importance_keys]
        candidates, protected = set(), set()
        for key_kwargs in keys:
            key_kwargs["ckpt_predicate"] = ckpt_predicate
            candidates.update(self.find_checkpoints(**key_kwargs))
            protected.update(self.find_checkpoints(max_num_checkpoints=num_to_keep, **key_kwargs))
        ddp_barrier()
        if if_main_process():
            for checkpoint in candidates - protected:
                doomed = self._hidden(checkpoint.path, DELETED)
                os.replace(checkpoint.path, doomed)
                shutil.rmtree(doomed)
                logger.log(verbosity, f"Deleted checkpoint in {checkpoint.path}")
        ddp_barrier()
