"""A private single-node SLURM cluster on this machine, for tests and for trying the SLURM dispatch.

Debian ships SLURM 22.05 (``apt-get install -y --no-install-recommends slurmctld slurmd
slurm-client munge``). As root and without systemd, :func:`start_cluster` writes a
``slurm.conf`` whose every path lies in one folder, starts ``munged`` (as the ``munge`` user) when
it is not running, then ``slurmctld`` and ``slurmd`` on ports of their own, and waits until
``sinfo`` shows the node idle. Clients find it through ``SLURM_CONF`` (:attr:`Cluster.env`).
:meth:`Cluster.stop` stops the two daemons by PID. No accounting daemon: jobs are followed with
``squeue`` and the run folders.

    python -m m4ser_lobes.testing.slurm /tmp/slurm   # start one, print the SLURM_CONF to export
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PACKAGES = "slurmctld slurmd slurm-client munge"


class SlurmUnavailable(RuntimeError):
    """SLURM or munge is not installed, or the cluster did not come up; the message says why."""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    """A running private cluster: its folder, ``SLURM_CONF`` and the daemons' PIDs."""

    folder: Path
    conf: Path
    pids: dict

    @property
    def env(self):
        """The environment of a client of this cluster (``sbatch``, ``squeue`` ...)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def stop(self):
        """Stop slurmd and slurmctld by PID (munged is left to the machine)."""
        for name in ("slurmd", "slurmctld"):
            pid = self.pids.get(name)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
                time.sleep(0.1)
            if os.path.exists(f"/proc/{pid}"):
                os.kill(pid, signal.SIGKILL)


def _ensure_munged():
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode == 0:
        return
    run = Path("/run/munge")
    run.mkdir(parents=True, exist_ok=True)
    shutil.chown(run, "munge", "munge")
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        subprocess.run(["mungekey", "--create"], check=True)
        shutil.chown(key, "munge", "munge")
    subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True)


def start_cluster(folder, cpus=None, timeout=30):
    """Start a private cluster in ``folder``; returns a :class:`Cluster`.

    Raises
    ------
    SlurmUnavailable
        A binary is missing (the message names the apt packages), or ``sinfo`` never showed the
        node idle (the message names the daemons' logs).
    """
    for binary in ("slurmctld", "slurmd", "sbatch", "munged"):
        if shutil.which(binary) is None:
            raise SlurmUnavailable(f"{binary} not found: apt-get install -y --no-install-recommends "
                                   f"{PACKAGES}")
    folder = Path(folder).resolve()
    for sub in ("state", "spool", "log"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    cpus = cpus or os.cpu_count() or 1
    conf = folder / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=m4ser",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "SlurmUser=root",
        "AuthType=auth/munge",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'log' / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "MpiDefault=none",
        "ReturnToService=2",
        "SchedulerType=sched/backfill",
        "MaxArraySize=10001",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
        "",
    ]))
    _ensure_munged()
    env = {**os.environ, "SLURM_CONF": str(conf)}
    subprocess.run(["slurmctld"], env=env, check=True)
    subprocess.run(["slurmd"], env=env, check=True)
    pids = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in ("slurmctld", "slurmd"):
            pid_file = folder / f"{name}.pid"
            if pid_file.is_file() and pid_file.read_text().strip():
                pids[name] = int(pid_file.read_text().strip())
        info = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True)
        if info.returncode == 0 and info.stdout.strip() in ("idle", "mix", "alloc") and len(pids) == 2:
            return Cluster(folder, conf, pids)
        time.sleep(0.3)
    Cluster(folder, conf, pids).stop()
    raise SlurmUnavailable(f"the private SLURM cluster did not come up in {timeout} s; see "
                           f"{folder / 'log'}")


if __name__ == "__main__":
    cluster = start_cluster(sys.argv[1] if len(sys.argv) > 1 else "slurm_cluster")
    print(f"export SLURM_CONF={cluster.conf}   # stop: kill {' '.join(map(str, cluster.pids.values()))}")
