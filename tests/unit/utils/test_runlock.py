"""One trainer per run folder (``m4ser_lobes.utils.runlock``), with two real processes."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from m4ser_lobes.utils.runlock import RunLocked, acquire, hold, holder_of

HOLDER = """
import sys, time
from m4ser_lobes.utils.runlock import hold
with hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""

SECOND = """
import sys
from m4ser_lobes.utils.runlock import RunLocked, acquire
try:
    acquire(sys.argv[1])
except RunLocked as error:
    sys.exit(f"error: {error}")
"""


@pytest.fixture
def holder(tmp_path):
    """A process holding ``tmp_path / "run"`` (started, lock taken)."""
    folder = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield folder, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_second_trainer_is_refused_with_one_line(holder):
    folder, proc = holder
    assert holder_of(folder / ".lock") == (str(proc.pid), socket.gethostname())
    with pytest.raises(RunLocked) as refused:
        acquire(folder)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{folder} is in use")
    assert f"(PID {proc.pid} on host {socket.gethostname()})" in message
    assert f"stop it (kill {proc.pid})" in message and "wait for it to finish" in message

    # a second process gets the same line (what train.py prints) and exits non-zero
    second = subprocess.run([sys.executable, "-c", SECOND, str(folder)], capture_output=True,
                            text=True, timeout=120)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [f"error: {message}"]


def test_the_kernel_frees_the_folder_when_the_holder_is_killed(holder):
    folder, proc = holder
    with pytest.raises(RunLocked):
        acquire(folder)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 5
    while True:  # no stale lock: free as soon as the process is gone
        try:
            lock = acquire(folder)
            break
        except RunLocked:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    with lock:
        assert holder_of(folder / ".lock") == (str(os.getpid()), socket.gethostname())
    assert (folder / ".lock").read_text() == ""  # released: names no holder
    with hold(folder):  # and free again
        pass


def test_waiting_holders_take_turns(tmp_path, caplog):
    """``wait=True`` (data preparation): a second holder waits for the first, then holds."""
    import logging
    import threading

    from m4ser_lobes.utils.runlock import acquire, hold

    order = []
    first = acquire(tmp_path, wait=True, lock_file=".prepare.lock")
    started = threading.Event()

    def second():
        started.set()
        with hold(tmp_path, wait=True, lock_file=".prepare.lock"):
            order.append("second holds")

    with caplog.at_level(logging.INFO, logger="m4ser_lobes.utils.runlock"):
        thread = threading.Thread(target=second)
        thread.start()
        started.wait()
        thread.join(timeout=0.5)
        assert thread.is_alive() and order == []  # it waits
        order.append("first releases")
        first.release()
        thread.join(timeout=30)
    assert order == ["first releases", "second holds"]
    assert "being prepared by PID" in caplog.text and "waiting for it" in caplog.text


def test_a_filesystem_without_locks_is_said_and_does_not_stop_the_run(tmp_path, monkeypatch,
                                                                      caplog):
    """Lustre without ``-o flock`` answers ENOLCK: one warning naming the fix, no crash. (This
    machine's filesystems all lock, so the refusal is the one thing simulated here.)"""
    import errno
    import fcntl
    import logging

    from m4ser_lobes.utils import runlock

    def refuse(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    with caplog.at_level(logging.WARNING, logger="m4ser_lobes.utils.runlock"):
        with runlock.hold(tmp_path) as lock:
            assert not lock.held
    assert "refuses file locks (No locks available)" in caplog.text and "-o flock" in caplog.text
    def fail(fd, operation):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(fcntl, "flock", fail)
    with pytest.raises(OSError, match="I/O error"):  # any other error is not hidden
        runlock.acquire(tmp_path)
