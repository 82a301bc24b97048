"""``reft cluster up | down | status | env``: the local single-node SLURM cluster as a service.

``LocalSlurmCluster`` (slurm/local_cluster.py) runs munged, slurmctld and slurmd as children of the
process that started them, and they stop when it ends. A command that starts a cluster for a user
therefore starts a small supervisor in its own session (``python -m slurm.cluster_service serve``)
that holds the cluster until ``down`` (SIGTERM) and keeps its state in one JSON file::

    reft cluster up                      # ~1-2 s to an idle node; prints the partition and SLURM_CONF
    eval "$(reft cluster env)"           # SLURM_CONF and PATH (with the sacct shim) for sbatch/squeue
    reft sweep benchmarks/sweeps/glue_cpu.yaml --executor slurm
    reft cluster status                  # supervisor pid, node state, queue
    reft cluster down                    # stops the daemons and the jobs still running

The state file is ``$REFT_CLUSTER_STATE`` or ``~/.cache/reft/cluster/state.json``; the supervisor's
log is beside it (``supervisor.log``), with the daemons' logs under the cluster's directory until
``down`` removes it. ``up`` on a running cluster reports it and starts nothing; ``down`` on none
says so. Needs the daemons (``bash slurm/install.sh``) and root, as the tests do.

A job requeued with ``scontrol requeue`` waits in ``PD (BeginTime)`` for about two minutes before
it runs again: SLURM's own delay for requeued jobs, not a hang (the README's SLURM section).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from slurm.local_cluster import LocalSlurmCluster, SlurmClusterError


def state_path() -> Path:
    default = Path.home() / ".cache" / "reft" / "cluster" / "state.json"
    return Path(os.environ.get("REFT_CLUSTER_STATE", default))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: reaped here when it is this process's child)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:  # not our child
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def read_state(path: Path | None = None) -> dict | None:
    """The running cluster's state (pid, root, env, partition), or None when none runs (a state
    file left by a supervisor that died is removed)."""
    path = path or state_path()
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    if not _alive(state["pid"]):
        path.unlink(missing_ok=True)
        return None
    return state


def _write_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(state, indent=2))
    os.replace(partial, path)


def up(partition: str = "debug", timeout: float = 90.0, path: Path | None = None) -> tuple[dict, bool]:
    """Start the cluster (or find the running one): (state, started)."""
    path = path or state_path()
    state = read_state(path)
    if state is not None:
        return state, False
    ok, reason = LocalSlurmCluster.available()
    if not ok:
        raise SlurmClusterError(reason)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.with_name("supervisor.log")
    with log.open("w") as handle:
        supervisor = subprocess.Popen([sys.executable, "-m", "slurm.cluster_service", "serve", "--state", str(path),
                                       "--partition", partition], stdout=handle, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True,
                                      cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(path)
        if state is not None and state.get("pid") == supervisor.pid:
            return state, True
        if supervisor.poll() is not None:
            raise SlurmClusterError(f"the cluster did not start (supervisor exit {supervisor.returncode}); "
                                    f"{log}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    supervisor.terminate()
    raise SlurmClusterError(f"the cluster did not come up in {timeout:.0f} s; see {log}")


def down(timeout: float = 60.0, path: Path | None = None) -> dict | None:
    """Stop the running cluster (its supervisor stops the daemons and the jobs); its state, or None."""
    path = path or state_path()
    state = read_state(path)
    if state is None:
        return None
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(state["pid"]):
        os.kill(state["pid"], signal.SIGKILL)  # its daemons die with it (PR_SET_PDEATHSIG)
    path.unlink(missing_ok=True)
    return state


def status(path: Path | None = None) -> dict | None:
    """The state plus the node's state and the queue, or None when no cluster runs."""
    state = read_state(path)
    if state is None:
        return None
    env = {**os.environ, **state["env"]}
    def client(*args: str) -> str:
        try:
            done = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return "(no answer in 10 s)"
        return done.stdout.strip() or done.stderr.strip()
    return {**state, "node": client("sinfo", "--noheader", "--Node", "--format=%N %T"),
            "queue": client("squeue", "--noheader", "--states=all", "--format=%i %j %T %r")}


def env_lines(state: dict) -> str:
    """Shell ``export`` lines for SLURM's clients (``eval "$(reft cluster env)"``)."""
    return "".join(f"export {key}={json.dumps(value)}\n" for key, value in sorted(state["env"].items()))


def serve(path: Path, partition: str) -> int:
    """The supervisor: start the cluster, record its state, hold it until SIGTERM/SIGINT."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    cluster = LocalSlurmCluster(partition)
    cluster.start()
    try:
        _write_state(path, {"pid": os.getpid(), "root": str(cluster.root), "partition": cluster.partition,
                            "env": cluster.env, "ports": cluster.ports, "started": time.time(),
                            "startup_s": cluster.startup_s})
        print(f"cluster up in {cluster.startup_s:.1f} s at {cluster.root}", flush=True)
        while not stopping:
            time.sleep(0.5)
    finally:
        cluster.stop()
        path.unlink(missing_ok=True)
        print("cluster stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slurm.cluster_service")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--state", required=True)
    parser.add_argument("--partition", default="debug")
    args = parser.parse_args(argv)
    return serve(Path(args.state), args.partition)


if __name__ == "__main__":
    raise SystemExit(main())
