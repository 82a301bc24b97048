"""Launch a sweep's runs through submitit, and report their status.

Executors: ``slurm`` (one SLURM array job per launch; ``executor.parallelism`` is the array's
``%`` limit, and partition, GPUs, CPUs, memory, time and account come from the spec or the CLI),
``local`` (subprocesses on this machine, at most ``parallelism`` at once; the default) and
``debug`` (in this process, for debugging). Runs whose ``result.json`` exists are skipped, so a
relaunch only does what is missing.

Preemption and time limits: each job is a ``RunJob``, which submitit checkpoints on SIGUSR2 /
timeout by requeueing the same call; the run then resumes from its last training checkpoint (and
at the first unscored task), and ends with the metrics of an uninterrupted run.

Every submitted job is recorded in ``<sweep>/jobs.json`` (run key → executor, folder, job id) so
``status`` can report done / running / failed / pending and the failing run's log tail.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.config import parse_experiment
from benchmarks.run import is_complete, run_dir, run_experiment
from reft.io import atomic_write_json

from .sweep import ExecutorSpec, Run, RunsFailed, SweepSpec

JOBS_FILE = "jobs.json"


class RunJob:
    """A picklable, requeue-able call of ``run_experiment`` on one resolved config."""

    def __init__(self, config: dict) -> None:
        self.config = config

    def __call__(self) -> str:
        return str(run_experiment(parse_experiment(self.config, "sweep job")))

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self)  # the run resumes from its own checkpoint


def make_executor(spec: ExecutorSpec, folder: Path):
    import submitit

    kind = {"local": "local", "debug": "debug", "slurm": "slurm"}[spec.kind]
    executor = submitit.AutoExecutor(folder=str(folder), cluster=kind)
    executor.update_parameters(timeout_min=spec.timeout_min, name="reft")
    if kind == "slurm":
        parameters = {"slurm_array_parallelism": spec.parallelism}
        if spec.partition:
            parameters["slurm_partition"] = spec.partition
        if spec.gpus_per_node:
            parameters["gpus_per_node"] = spec.gpus_per_node
        if spec.cpus_per_task:
            parameters["cpus_per_task"] = spec.cpus_per_task
        if spec.mem_gb:
            parameters["mem_gb"] = spec.mem_gb
        if spec.account:
            parameters["slurm_account"] = spec.account
        executor.update_parameters(**parameters)
    return executor


def _record_jobs(spec: SweepSpec, entries: dict[str, dict]) -> None:
    path = spec.root / JOBS_FILE
    jobs = json.loads(path.read_text()) if path.is_file() else {}
    jobs.update(entries)
    atomic_write_json(path, jobs)


def launch(spec: SweepSpec, runs: list[Run], wait: bool = True) -> list:
    """Submit the runs without a result; returns the submitit jobs (waited for if ``wait``)."""
    pending = [run for run in runs if not is_complete(run.config)]
    if not pending:
        return []
    folder = spec.root / "jobs" / "%j"
    executor = make_executor(spec.executor, folder)
    if spec.executor.kind == "slurm":
        with executor.batch():
            jobs = [executor.submit(RunJob(run.config.to_dict())) for run in pending]
        _record(spec, pending, jobs)
        if wait:
            _wait(pending, jobs)
        return jobs
    jobs, active = [], []
    for run in pending:  # local and debug: at most `parallelism` at once
        while len(active) >= max(1, spec.executor.parallelism):
            active = [job for job in active if not job.done()]
            time.sleep(0.5)
        job = executor.submit(RunJob(run.config.to_dict()))
        _record(spec, [run], [job])
        jobs.append(job)
        active.append(job)
    if wait:
        _wait(pending, jobs)
    return jobs


def _wait(runs: list[Run], jobs: list) -> None:
    """Wait for every job, then raise ``RunsFailed`` naming each run left without a result, with
    the last line of its log (the others finished; a relaunch reruns only the failed ones)."""
    for job in jobs:
        job.wait()
    failed = [(run, job) for run, job in zip(runs, jobs) if not is_complete(run.config)]
    if failed:
        lines = [f"  {run.key}: {(_tail(Path(job.paths.stderr), 1) or 'no log').strip()} (log: {job.paths.stderr})"
                 for run, job in failed]
        raise RunsFailed(f"{len(failed)} of {len(runs)} runs ended without a result; a relaunch reruns "
                         "only these:\n" + "\n".join(lines))


def _record(spec: SweepSpec, runs: list[Run], jobs: list) -> None:
    _record_jobs(spec, {run.key: {"executor": spec.executor.kind, "job_id": str(job.job_id),
                                  "folder": str(spec.root / "jobs" / "%j"), "run_dir": str(run_dir(run.config))}
                        for run, job in zip(runs, jobs)})


@dataclass
class RunStatus:
    key: str
    state: str  # done | running | failed | pending
    run_dir: str
    job_id: str | None = None
    log_tail: str = ""


def _job(entry: dict):
    import submitit

    cls = {"slurm": submitit.SlurmJob, "local": submitit.LocalJob}.get(entry["executor"])
    return cls(folder=entry["folder"], job_id=entry["job_id"]) if cls else None


def _local_state(job) -> str:
    """A local job's id is its PID: alive → RUNNING, else FINISHED (a reconstructed LocalJob
    cannot tell a job still running under another launcher from a dead one)."""
    import os

    if job.paths.result_pickle.exists():
        return "FINISHED"
    try:
        os.kill(int(job.job_id), 0)
    except (ProcessLookupError, ValueError):
        return "FINISHED"
    except PermissionError:
        pass
    return "RUNNING"


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def status(spec: SweepSpec, runs: list[Run]) -> list[RunStatus]:
    """Done / running / failed / pending for each run, with the log tail of failed ones."""
    path = spec.root / JOBS_FILE
    jobs = json.loads(path.read_text()) if path.is_file() else {}
    report = []
    for run in runs:
        directory = str(run_dir(run.config))
        entry = jobs.get(run.key)
        if is_complete(run.config):
            report.append(RunStatus(run.key, "done", directory, entry and entry["job_id"]))
            continue
        job = _job(entry) if entry else None
        if job is None:
            report.append(RunStatus(run.key, "pending", directory))
            continue
        state = _local_state(job) if entry["executor"] == "local" else job.state.upper()
        if state in ("RUNNING", "COMPLETING", "REQUEUED", "CONFIGURING"):
            report.append(RunStatus(run.key, "running", directory, entry["job_id"]))
        elif state in ("PENDING", "SUSPENDED"):
            report.append(RunStatus(run.key, "pending", directory, entry["job_id"]))
        else:  # finished (or unknown without accounting) and still no result: it failed
            report.append(RunStatus(run.key, "failed", directory, entry["job_id"],
                                    _tail(Path(job.paths.stderr)) or f"job state {state}"))
    return report
