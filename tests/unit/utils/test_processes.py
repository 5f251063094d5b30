"""Children die with their parents (``m4ser_lobes.utils.processes.run_child``), real processes.

The parent is a Python process running ``run_child`` on a sleeping Python child; the test
kills the parent (SIGKILL, SIGTERM, a terminal's SIGINT to its process group) and watches the
child.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHILD = """
import os, signal, sys, time
from pathlib import Path
folder = Path(sys.argv[1])
def on_signal(signum, frame):
    with open(folder / "signals", "a") as fout:
        fout.write(signal.Signals(signum).name + "\\n")
    time.sleep(0.5)  # a trainer saving its state
    (folder / "child_done").write_text("")
    os._exit(0)
signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
(folder / "child_pid").write_text(str(os.getpid()))
time.sleep(600)
"""

PARENT = """
import sys
from m4ser_lobes.utils.processes import run_child
print("returned", run_child([sys.executable, "-c", sys.argv[1], sys.argv[2]]), flush=True)
"""


def alive(pid):
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.fixture
def family(tmp_path):
    """A parent running ``run_child`` (in a process group of its own): (parent, child pid)."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, process_group=0)
    child_pid = None
    try:
        wait_for(lambda: (tmp_path / "child_pid").exists() or parent.poll() is not None, 60,
                 "the child never started")
        child_pid = int((tmp_path / "child_pid").read_text())
        yield parent, child_pid
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait()
        if child_pid is not None and alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def test_the_child_is_killed_when_the_parent_is_sigkilled(family):
    parent, child_pid = family
    assert alive(child_pid)
    os.kill(parent.pid, signal.SIGKILL)
    assert parent.wait(timeout=30) == -signal.SIGKILL
    wait_for(lambda: not alive(child_pid), 1.0, "the child outlived its SIGKILLed parent by 1 s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_parent_reaches_the_child_once_and_the_parent_waits(family, tmp_path,
                                                                           signum):
    parent, child_pid = family
    # SIGTERM to the parent alone (a scheduler); SIGINT to its whole process group (Ctrl-C)
    if signum == signal.SIGINT:
        os.killpg(parent.pid, signum)
    else:
        os.kill(parent.pid, signum)
    returncode = parent.wait(timeout=30)
    assert (tmp_path / "child_done").exists()  # the parent ended after the child
    assert (tmp_path / "signals").read_text().split() == [signum.name]  # once
    # the parent then got the signal itself: it did not return (a runner starts no next fold)
    assert "returned" not in parent.stdout.read()
    assert returncode == -signum  # (an uncaught KeyboardInterrupt ends Python with SIGINT)
    assert not alive(child_pid)
