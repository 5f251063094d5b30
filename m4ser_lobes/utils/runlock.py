"""One trainer per run folder: an exclusive ``flock`` on ``<folder>/.lock``; and one preparer
per prepared-data folder, the others waiting their turn (:func:`hold` with ``wait=True``).

Two trainers writing the same checkpoints, history and results interleave their files; a second
``train.py`` started on a folder in use (a resubmitted job, a command run twice) must stop at
once. :func:`hold` takes the lock without waiting and writes the holder's PID and host into the
lock file; a second holder gets :class:`RunLocked`, one line naming the folder, the holder and
what to do. The kernel releases the lock when its process ends, however it ends (``kill -9``
included): no stale lock to remove by hand. The file itself stays (removing it would let a
third process lock a new file while the second still holds the old one).

Example
-------
>>> folder = getfixture("tmp_path") / "run"
>>> with hold(folder) as lock:
...     lock.path.name, (folder / ".lock").exists()
('.lock', True)
>>> with hold(folder):  # free again
...     pass
"""

import contextlib
import errno
import fcntl
import logging
import os
import socket
from pathlib import Path

LOCK_FILE = ".lock"
#: errno of a filesystem without ``flock`` (Lustre mounted without ``-o flock``, some NFS).
UNSUPPORTED = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP)
logger = logging.getLogger(__name__)


class RunLocked(RuntimeError):
    """Another process holds the run folder; the message is one line."""


class RunLock:
    """A held lock on a run folder; :meth:`release` (or the process's end) frees it."""

    def __init__(self, path, fd):
        self.path = Path(path)
        self._fd = fd

    @property
    def held(self):
        return self._fd is not None

    def release(self):
        """Free the folder (the lock file is emptied, not removed)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def holder_of(path):
    """``(pid, host)`` recorded in the lock file ``path`` (``"?"`` for what cannot be read)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return fields.get("pid", "?"), fields.get("host", "?")


def acquire(folder, wait=False, lock_file=LOCK_FILE):
    """Lock ``folder`` (created if needed) for this process, or raise :class:`RunLocked`.

    With ``wait``, a folder in use is waited for (logged once, naming the holder) instead:
    how the runs of a grid or a job array that start together take turns to prepare the data
    they share (the first prepares, the others then find it done).

    Returns
    -------
    RunLock
        Released by ``release()``, a ``with`` block, or the end of the process. The descriptor
        is not inherited by programs this process starts (``O_CLOEXEC``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / lock_file
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if wait:
            pid, host = holder_of(path)
            logger.info("%s is being prepared by PID %s on host %s: waiting for it", folder,
                        pid, host)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            return _locked(path, fd)
        os.close(fd)
        pid, host = holder_of(path)
        kill = f"kill {pid}" if host == socket.gethostname() else f"kill {pid} on {host}"
        raise RunLocked(
            f"{folder} is in use by another training run (PID {pid} on host {host}): wait for "
            f"it to finish, or stop it ({kill}) and rerun this command; it resumes from the "
            "last checkpoint"
        ) from None
    except OSError as error:
        os.close(fd)
        if error.errno not in UNSUPPORTED:
            raise
        logger.warning("%s: this filesystem refuses file locks (%s), so nothing stops another "
                       "process using %s at the same time; mount it with locking (Lustre: "
                       "-o flock) or keep one job per folder", path, error.strerror, folder)
        return RunLock(path, None)
    except BaseException:
        os.close(fd)
        raise
    return _locked(path, fd)


def _locked(path, fd):
    """Record this process as the holder of the locked ``fd``."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid={os.getpid()}\nhost={socket.gethostname()}\n".encode(), 0)
    return RunLock(path, fd)


@contextlib.contextmanager
def hold(folder, wait=False, lock_file=LOCK_FILE):
    """``with hold(folder): train()``: :func:`acquire`, released when the block ends."""
    lock = acquire(folder, wait, lock_file)
    try:
        yield lock
    finally:
        lock.release()
