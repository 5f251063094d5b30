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


# ------------------------------------------------------------------------------ run_pool
JOB = """
import os, sys, time
from pathlib import Path
folder, index = Path(sys.argv[1]), sys.argv[2]
(folder / f"slot{index}").write_text(os.environ["SLOT"])
if index == "0":  # ends only once job 2 has started: job 2 must not wait for job 0's slot
    deadline = time.monotonic() + 60
    while not (folder / "slot2").exists():
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.02)
sys.exit(10 + int(index))
"""


def test_a_pool_starts_the_next_job_as_soon_as_a_slot_is_free(tmp_path):
    """Job 0 holds its slot until job 2 runs: in waves of two it would never end (exit 1)."""
    from m4ser_lobes.utils.processes import run_pool

    def start(index):
        return lambda slot: ([sys.executable, "-c", JOB, str(tmp_path), str(index)],
                             {"env": dict(os.environ, SLOT=slot)})

    ended = {}
    codes = run_pool([start(i) for i in range(3)], ["a", "b"], on_done=ended.__setitem__)
    assert codes == [10, 11, 12]  # job 0 saw job 2 start (it exits 1 after 60 s otherwise)
    assert ended == {0: 10, 1: 11, 2: 12}
    slots = [(tmp_path / f"slot{i}").read_text() for i in range(3)]
    assert slots == ["a", "b", "b"]  # job 2 took the slot job 1 freed


POOL_PARENT = """
import sys
from m4ser_lobes.utils.processes import run_pool
child, folder = sys.argv[1], sys.argv[2]
later = "import pathlib, sys; pathlib.Path(sys.argv[1], 'third_started').write_text('')"
starts = [lambda slot, i=i: ([sys.executable, "-c", child, f"{folder}/{i}"], {})
          for i in range(2)]
starts.append(lambda slot: ([sys.executable, "-c", later, folder], {}))
print("returned", run_pool(starts, [0, 1]), flush=True)
"""


@pytest.fixture
def pool(tmp_path):
    """A parent running ``run_pool``: two sleeping children on two slots, a third job waiting."""
    folders = [tmp_path / str(i) for i in range(2)]
    for folder in folders:
        folder.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", POOL_PARENT, CHILD, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, process_group=0)
    pids = []
    try:
        wait_for(lambda: all((f / "child_pid").exists() for f in folders) or
                 parent.poll() is not None, 60, "the children never started")
        pids = [int((f / "child_pid").read_text()) for f in folders]
        yield parent, pids, folders
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_every_child_of_a_pool_dies_with_its_sigkilled_parent(pool):
    parent, pids, _ = pool
    os.kill(parent.pid, signal.SIGKILL)
    assert parent.wait(timeout=30) == -signal.SIGKILL
    wait_for(lambda: not any(alive(pid) for pid in pids), 1.0,
             "a child outlived its SIGKILLed parent by 1 s")


def test_sigterm_reaches_every_running_child_once_and_no_job_starts_after_it(pool, tmp_path):
    parent, pids, folders = pool
    os.kill(parent.pid, signal.SIGTERM)
    assert parent.wait(timeout=30) == -signal.SIGTERM
    for folder in folders:
        assert (folder / "child_done").exists()
        assert (folder / "signals").read_text().split() == ["SIGTERM"]
    assert not (tmp_path / "third_started").exists()
    assert "returned" not in parent.stdout.read()
    assert not any(alive(pid) for pid in pids)
