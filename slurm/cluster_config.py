"""What the local SLURM cluster (``slurm.local_cluster``) writes and asks the machine: ``slurm.conf``,
the ``sacct`` stand-in for a cluster without slurmdbd, the node's hardware line, free ports, and
where the daemons' binaries are, and the killing of a stopped cluster's leftover job processes.

``slurm.conf`` is for ``ClusterName=local``: ``SlurmctldHost=localhost``, one node ``localhost``
(``NodeAddr=127.0.0.1``) with the CPU layout and memory ``slurmd -C`` reports, one partition
(``Default=YES MaxTime=INFINITE State=UP``), the ports picked at start, munge through the
cluster's private socket, ``proctrack/linuxproc`` and ``task/none`` (no cgroups, no systemd), no
accounting, ``select/cons_tres`` with ``CR_CPU`` (or ``select/linear``), ``ReturnToService=2``,
short timeouts (``MessageTimeout``, ``KillWait``) so cancellation and shutdown take seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

SACCT_SHIM = r"""#!/bin/sh
# sacct stand-in for a cluster without slurmdbd (slurm/local_cluster.py): submitit's query
# `sacct -o JobID,State,NodeList --parsable2 -j ID[,ID...]` answered from squeue --states=all.
jobs=""
while [ $# -gt 0 ]; do
    case "$1" in
        -j|--jobs) jobs="${jobs:+$jobs,}$2"; shift 2 ;;
        --jobs=*) jobs="${jobs:+$jobs,}${1#--jobs=}"; shift ;;
        -j?*) jobs="${jobs:+$jobs,}${1#-j}"; shift ;;
        *) shift ;;
    esac
done
echo "JobID|State|NodeList"
if [ -n "$jobs" ]; then
    exec squeue --noheader --states=all --array --jobs="$jobs" --format='%i|%T|%N' 2>/dev/null
else
    exec squeue --noheader --states=all --array --format='%i|%T|%N' 2>/dev/null
fi
"""



def which(name: str) -> str | None:
    """``shutil.which`` that also looks in /usr/sbin and /sbin (the daemons' home; not on every PATH)."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def free_ports(count: int) -> list[int]:
    """Distinct TCP ports free right now (bound to port 0 together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def node_hardware() -> str:
    """``CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..``."""
    try:
        out = subprocess.run([which("slurmd") or "slurmd", "-C"], capture_output=True, text=True, timeout=20).stdout
        line = next(l for l in out.splitlines() if l.startswith("NodeName="))
        fields = [f for f in line.split()[1:] if f.split("=")[0] in
                  ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")]
        if any(f.startswith("CPUs=") for f in fields):
            return " ".join(fields)
    except (OSError, subprocess.SubprocessError, StopIteration):
        pass
    cpus = os.cpu_count() or 1
    with open("/proc/meminfo") as f:
        mem_kb = int(next(l for l in f if l.startswith("MemTotal:")).split()[1])
    return f"CPUs={cpus} RealMemory={mem_kb // 1024}"


def slurm_conf(c) -> str:
    """``slurm.conf`` for the cluster ``c`` (a ``LocalSlurmCluster`` after ``start()`` picked its
    root, ports, hardware and select plugin)."""
    select_params = "SelectTypeParameters=CR_CPU\n" if c.select_type == "select/cons_tres" else ""
    return f"""# written by slurm/local_cluster.py
ClusterName={c.cluster_name}
SlurmctldHost=localhost
SlurmctldPort={c.ports['slurmctld']}
SlurmdPort={c.ports['slurmd']}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={c.munge_socket}
CredType=cred/munge
StateSaveLocation={c.root / 'state'}
SlurmdSpoolDir={c.root / 'spool'}
SlurmctldPidFile={c.root / 'run' / 'slurmctld.pid'}
SlurmdPidFile={c.root / 'run' / 'slurmd.pid'}
SlurmctldLogFile={c.logs['slurmctld']}
SlurmdLogFile={c.logs['slurmd']}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType={c.select_type}
{select_params}MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
ReturnToService=2
MessageTimeout=5
TCPTimeout=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
MinJobAge=3600
UnkillableStepTimeout=30
SchedulerParameters=sched_interval=5
FirstJobId={c.first_job_id}
NodeName={c.node} NodeAddr=127.0.0.1 NodeHostname={c.node} {c.node_hardware} State=UNKNOWN
PartitionName={c.partition} Nodes={c.node} Default=YES MaxTime=INFINITE State=UP
"""


def kill_marked_processes(marker: bytes, exclude: set[int]) -> None:
    """SIGKILL every process whose environment holds ``marker`` (``NAME=value``), and all their
    descendants, except the pids in ``exclude``; repeated until none is left (at most 3 rounds).
    Never by process name: other clusters and daemons may run on the machine."""
    for _ in range(3):
        parents: dict[int, int] = {}
        marked = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in exclude:
                continue
            pid = int(entry)
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    parents[pid] = int(f.read().rsplit(b")", 1)[1].split()[1])
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        marked.add(pid)
            except (OSError, ValueError, IndexError):
                continue
        doomed = set(marked)
        grew = True
        while grew:
            children = {pid for pid, ppid in parents.items() if ppid in doomed and pid not in exclude} - doomed
            doomed |= children
            grew = bool(children)
        if not doomed:
            return
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)
