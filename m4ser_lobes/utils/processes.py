"""Child processes that die with their parent: :func:`run_child`, and :func:`run_pool` for
several at a time (a grid's runs, one per GPU).

A runner that starts one training command after another (cross-validation folds, a grid of
settings) must not leave a trainer running when it is itself stopped: a SIGKILLed runner's
child would go on holding the GPU and the run folder, and a preempted job's SIGTERM would stop
the runner but not the child. :func:`run_child` ties the child to the runner:

- On Linux the child gets ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills it when the
  runner dies, however it dies (``kill -9`` included).
- SIGTERM and SIGINT received by the runner are forwarded to the child; the runner waits for the
  child to end, then receives the signal itself (SIGINT raises ``KeyboardInterrupt``; SIGTERM
  runs the handler it had, by default ending the runner), so a stopped runner never starts
  its next child.
- The child runs in its own process group, so a Ctrl-C in the terminal reaches it once (through
  the runner), not twice.

Example
-------
>>> import sys
>>> run_child([sys.executable, "-c", "raise SystemExit(3)"])
3
"""

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
FORWARDED = (signal.SIGTERM, signal.SIGINT)


def _die_with(parent_pid, then=None):
    """``preexec_fn``: SIGKILL this child when the thread that started it dies."""

    def preexec():
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                os._exit(126)
            if os.getppid() != parent_pid:  # the parent died before prctl took effect
                os._exit(126)
        if then is not None:
            then()

    return preexec


def start_child(cmd, **popen_kwargs):
    """Start ``cmd`` (``subprocess.Popen`` arguments) tied to this process: the kernel kills it
    when this process dies; it runs in a process group of its own. Returns the ``Popen``."""
    popen_kwargs["preexec_fn"] = _die_with(os.getpid(), popen_kwargs.get("preexec_fn"))
    if "start_new_session" not in popen_kwargs:
        popen_kwargs.setdefault("process_group", 0)
    return subprocess.Popen(cmd, **popen_kwargs)


def run_child(cmd, **popen_kwargs):
    """Run ``cmd`` (``subprocess.Popen`` arguments) as a child that dies with this process.

    Arguments
    ---------
    cmd : list of str or str
        The command, as ``subprocess.Popen`` takes it.
    **popen_kwargs
        Passed to ``Popen``; a ``preexec_fn`` given runs after the child is tied to its
        parent; ``process_group`` (default 0: a group of its own) or ``start_new_session``.

    Returns
    -------
    int
        The child's exit status (negative: the signal that ended it), once it has ended.
        When this process received SIGTERM or SIGINT meanwhile, it is forwarded to the child,
        and, once the child has ended, delivered to this process instead of returning.

    Note
    ----
    Call it from the thread that lives while the child runs (it waits for the child anyway):
    the kernel's parent-death signal follows the starting thread. Signals are forwarded only
    when it runs in the main thread (Python handles signals there only).
    """
    return run_pool([lambda _slot: (cmd, popen_kwargs)], [None])[0]


def run_pool(starts, slots, on_done=None, poll=0.1):
    """Run jobs as children tied to this process (:func:`start_child`), one per slot at a time.

    A job starts as soon as a slot is free (not in waves: a long run does not hold the others'
    slots idle). SIGTERM and SIGINT received meanwhile are forwarded to every running child,
    no further job starts, and once the running ones have ended the signal is delivered to this
    process instead of returning (a stopped runner starts nothing more).

    Arguments
    ---------
    starts : list of callable
        ``slot -> (cmd, popen_kwargs)`` for each job, in the order they start.
    slots : list
        One entry per job that may run at once (e.g. GPU ids), handed to ``starts``.
    on_done : callable, optional
        ``(index, returncode)`` when job ``index`` ends.

    Returns
    -------
    list of int
        The exit status of each job.

    Example
    -------
    >>> run_pool([lambda slot: ([sys.executable, "-c", f"raise SystemExit({slot})"], {})] * 3,
    ...          [4, 5])
    [4, 5, 4]
    """
    forward = threading.current_thread() is threading.main_thread()
    received, running = [], {}  # slot position -> (job index, Popen)

    def on_signal(signum, frame):
        received.append(signum)
        for _, proc in running.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {}
    if forward:
        for signum in FORWARDED:
            previous[signum] = signal.signal(signum, on_signal)
    codes = [None] * len(starts)
    pending, free = list(enumerate(starts)), list(range(len(slots)))
    try:
        while (pending and not received) or running:
            while pending and free and not received:
                position = free.pop(0)
                index, start = pending.pop(0)
                cmd, popen_kwargs = start(slots[position])
                running[position] = index, start_child(cmd, **dict(popen_kwargs))
                for signum in received:  # arrived while the child was starting
                    running[position][1].send_signal(signum)
            for position, (index, proc) in list(running.items()):
                if proc.poll() is not None:
                    del running[position]
                    free.append(position)
                    codes[index] = proc.returncode
                    if on_done is not None:
                        on_done(index, proc.returncode)
            if running:
                time.sleep(poll)
    except BaseException:
        for _, proc in running.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        signal.raise_signal(received[0])
    return codes
