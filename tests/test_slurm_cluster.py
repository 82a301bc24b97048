"""Real SLURM: submitit array jobs and cancellation on the local single-node cluster (fixture slurm_cluster).

Jobs run stdlib functions (``functools.partial(operator.mul, 10)``, ``time.sleep``): submitit pickles
functions by reference, and the job's interpreter must import them.
"""

from __future__ import annotations

import functools
import operator
import subprocess
import time

import pytest

submitit = pytest.importorskip("submitit")


def _wait(predicate, timeout: float, what: str, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def _executor(cluster, folder, **params):
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(slurm_partition=cluster.partition, timeout_min=2, cpus_per_task=1, **params)
    return executor


def test_cluster_is_up(slurm_cluster):
    _wait(lambda: slurm_cluster.node_state() == "idle", 10, "the node to be idle")
    assert slurm_cluster.conf_path.exists()
    assert slurm_cluster.env["SLURM_CONF"] == str(slurm_cluster.conf_path)
    out = slurm_cluster.run("sinfo", "--noheader", "--format=%P %a %l %D %N", check=True).stdout.split()
    assert out == [f"{slurm_cluster.partition}*", "up", "infinite", "1", "localhost"]


def test_array_job_results(slurm_cluster, tmp_path):
    executor = _executor(slurm_cluster, tmp_path, slurm_array_parallelism=2)
    jobs = executor.map_array(functools.partial(operator.mul, 10), [1, 2, 3])
    assert len(jobs) == 3 and len({job.job_id.split("_")[0] for job in jobs}) == 1
    array_id = jobs[0].job_id.split("_")[0]
    show = slurm_cluster.run("scontrol", "show", "job", array_id, check=True).stdout
    assert "ArrayTaskThrottle=2" in show
    _wait(lambda: all(job.done() for job in jobs), 45, "the array job")
    assert [job.result() for job in jobs] == [10, 20, 30]
    # the result pickles are written before the job steps end: SLURM says COMPLETED moments later
    _wait(lambda: set(slurm_cluster.squeue(array_id).values()) == {"COMPLETED"}, 20, "squeue to say COMPLETED")
    assert sorted(slurm_cluster.squeue(array_id)) == sorted(job.job_id for job in jobs)
    # submitit's view through the squeue-backed sacct (no slurmdbd here)
    assert [job.watcher.get_state(job.job_id, mode="force") for job in jobs] == ["COMPLETED"] * 3
    assert jobs[0].get_info()["NodeList"] == "localhost"


def test_cancel_running_job(slurm_cluster, tmp_path):
    job = _executor(slurm_cluster, tmp_path).submit(time.sleep, 300)
    _wait(lambda: slurm_cluster.squeue(job.job_id).get(job.job_id) == "RUNNING", 30, "the job to run")
    # the job's python is up once submitit's log says so; cancel it mid-run with the real scancel
    _wait(lambda: "Starting with JobEnvironment" in (job.stderr() or "") + (job.stdout() or ""), 20,
          "the job's python to start")
    subprocess.run(["scancel", job.job_id], check=True, timeout=10)
    _wait(lambda: slurm_cluster.squeue(job.job_id).get(job.job_id) == "CANCELLED", 20, "squeue to say CANCELLED")
    assert job.watcher.get_state(job.job_id, mode="force") == "CANCELLED"
    assert job.done(force_check=True)
    job._results_timeout_s = 0  # submitit waits 15 s for a result pickle a slow NFS may still deliver
    with pytest.raises(submitit.core.utils.UncompletedJobError, match="CANCELLED"):
        job.result()
    _wait(lambda: slurm_cluster.node_state() == "idle", 10, "the node to be idle again")


def test_second_cluster_is_independent(slurm_cluster):
    """Clusters are stopped by pid: stopping another one leaves the session's cluster running."""
    from slurm.local_cluster import LocalSlurmCluster

    with LocalSlurmCluster() as other:
        assert other.conf_path != slurm_cluster.conf_path
        assert set(other.ports.values()).isdisjoint(slurm_cluster.ports.values())
        assert other.node_state() == "idle"
        assert other.startup_s < 15
        pids = [proc.pid for proc in other.procs.values()]
    assert all(not _alive(pid) for pid in pids)
    assert slurm_cluster.run("sinfo", "--version").returncode == 0
    assert slurm_cluster.node_state() == "idle"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_reft_cluster_up_status_env_down(tmp_path, monkeypatch, capsys):
    """Issue 18.4: the cluster the tests use, as commands: ``reft cluster up`` returns with the cluster
    running (held by a supervisor in its own session), ``env`` gives the clients what they need, a
    job runs, ``down`` stops daemons and supervisor, and ``status`` then says none runs."""
    import os
    import re

    from benchmarks.cli import main
    from slurm.local_cluster import LocalSlurmCluster

    ok, reason = LocalSlurmCluster.available()
    if not ok:
        if os.environ.get("REFT_REQUIRE_SLURM") == "1":
            pytest.fail(f"REFT_REQUIRE_SLURM=1 but no local SLURM cluster: {reason}", pytrace=False)
        pytest.skip(reason)
    monkeypatch.setenv("REFT_CLUSTER_STATE", str(tmp_path / "state.json"))
    assert main(["cluster", "status"]) == 1
    assert main(["cluster", "up"]) == 0
    pid = int(re.search(r"supervisor pid (\d+)", capsys.readouterr().out).group(1))
    try:
        assert main(["cluster", "up"]) == 0 and "already running" in capsys.readouterr().out
        assert main(["cluster", "status"]) == 0 and "localhost idle" in capsys.readouterr().out
        assert main(["cluster", "env"]) == 0
        env = dict(re.findall(r'export (\w+)="([^"]*)"', capsys.readouterr().out))
        assert set(env) == {"SLURM_CONF", "PATH"}
        client = {**os.environ, **env}
        out = tmp_path / "job.out"
        submitted = subprocess.run(["sbatch", "--parsable", "-o", str(out), "--wrap", "echo from-the-job"],
                                   env=client, capture_output=True, text=True, timeout=30, check=True)
        job = submitted.stdout.strip()
        _wait(lambda: out.is_file() and "from-the-job" in out.read_text(), 60, f"job {job} to run")
    finally:
        assert main(["cluster", "down"]) == 0
    assert "stopped the cluster" in capsys.readouterr().out
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert main(["cluster", "status"]) == 1 and not (tmp_path / "state.json").exists()
    assert main(["cluster", "down"]) == 0 and "no local SLURM cluster is running" in capsys.readouterr().out
