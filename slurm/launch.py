"""Launch a sweep's runs through submitit, and report their status.

Executors: ``slurm`` (one SLURM array job per launch; ``executor.parallelism`` is the array's
``%`` limit, and partition, GPUs, CPUs, memory, time and account come from the spec or the CLI),
``local`` (subprocesses on this machine, at most ``parallelism`` at once; the default) and
``debug`` (in this process, for debugging). Runs whose ``result.json`` exists are skipped, so a
relaunch only does what is missing.

What a launch refuses or adopts:

* a run whose directory holds another configuration's run (the spec was edited after it ran) is
  **stale**: the launch stops and names it (``overwrite_stale=True``, ``reft sweep --overwrite-stale``,
  reruns it in place);
* a stage is launched by one process at a time (``<sweep>/<stage>/.launch.lock``; a second launcher
  is told who holds it);
* a run whose directory lock is held by a live process (an earlier launcher's job that outlived
  it) is **adopted**: waited for, not started twice;
* a launcher stopped by SIGINT/SIGTERM cancels the local jobs it started.

Preemption and time limits: each job is a ``RunJob``, which submitit checkpoints on SIGUSR2 /
timeout by requeueing the same call; the run then resumes from its last training checkpoint (and
at the first unscored task), and ends with the metrics of an uninterrupted run.

Every submitted job is recorded in ``<sweep>/jobs.json`` (run key → executor, folder, job id) so
``status`` can report done / running / failed / pending and the failing run's log tail.
"""

from __future__ import annotations

import json
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.config import parse_experiment
from benchmarks.identity import is_stale as holds_another_run
from benchmarks.locks import DirectoryLock
from benchmarks.run import is_complete, run_dir, run_experiment
from reft.io import atomic_write_json

from .sweep import ExecutorSpec, Run, RunsFailed, SweepSpec

JOBS_FILE = "jobs.json"


class RunJob:
    """A picklable, requeue-able call of ``run_experiment`` on one resolved config."""

    def __init__(self, config: dict, overwrite: bool = False) -> None:
        self.config = config
        self.overwrite = overwrite

    def __call__(self) -> str:
        config = parse_experiment(self.config, "sweep job")
        overwrite, self.overwrite = self.overwrite, False  # a requeued job resumes what it started
        return str(run_experiment(config, overwrite=overwrite))

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


class StaleRuns(ValueError):
    """Runs whose directories hold another configuration's run."""


def is_stale(run: Run) -> bool:
    """Whether the run's directory holds a run of another configuration than the spec's."""
    return holds_another_run(run.config, run_dir(run.config))


def running_elsewhere(run: Run) -> dict | None:
    """The holder (pid, host, since) of the run's directory lock, if a live process holds it."""
    return DirectoryLock(run_dir(run.config), "run").holder()


@contextmanager
def _cancel_on_signal(jobs: list):
    """SIGTERM/SIGINT while waiting: cancel the local jobs started here, then stop."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except KeyboardInterrupt:
        for job in jobs:
            if not job.done():
                job.cancel(check=False)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def launch(spec: SweepSpec, runs: list[Run], wait: bool = True, overwrite_stale: bool = False, log=print) -> list:
    """Submit the runs without a result; returns the submitit jobs (waited for if ``wait``)."""
    stages = sorted({run.stage for run in runs})
    locks = [DirectoryLock(spec.root / stage, f"launch of sweep {spec.name} stage {stage}", ".launch.lock")
             for stage in stages]
    for lock in locks:
        lock.acquire()
    try:
        return _launch(spec, runs, wait, overwrite_stale, log)
    finally:
        for lock in locks:
            lock.release()


def _launch(spec: SweepSpec, runs: list[Run], wait: bool, overwrite_stale: bool, log) -> list:
    stale = [run for run in runs if is_stale(run)]
    if stale and not overwrite_stale:
        raise StaleRuns(f"{len(stale)} run(s) of sweep {spec.name} hold results of another configuration (the spec "
                        "or a config changed since they ran): " + ", ".join(run.key for run in stale[:5])
                        + ("..." if len(stale) > 5 else "") + "; rerun them with --overwrite-stale, or give the "
                        "sweep a new name")
    stale_keys = {run.key for run in stale}
    pending, adopted = [], []
    for run in runs:
        if run.key in stale_keys:
            pending.append(run)
        elif not is_complete(run.config):
            holder = running_elsewhere(run)
            if holder is not None:
                log(f"  {run.key}: already running ({DirectoryLock(run_dir(run.config)).describe(holder)}); "
                    "waiting for it instead of starting it twice")
                adopted.append(run)
            else:
                pending.append(run)
    if not pending:
        if adopted and wait:
            _wait_adopted(adopted)
        return []
    folder = spec.root / "jobs" / "%j"
    executor = make_executor(spec.executor, folder)

    def job_of(run: Run) -> RunJob:
        return RunJob(run.config.to_dict(), overwrite=run.key in stale_keys)

    if spec.executor.kind == "slurm":
        with executor.batch():
            jobs = [executor.submit(job_of(run)) for run in pending]
        _record(spec, pending, jobs)
        if wait:
            _wait(pending, jobs, adopted)
        return jobs
    jobs, active = [], []
    with _cancel_on_signal(jobs):
        for run in pending:  # local and debug: at most `parallelism` at once
            while len(active) >= max(1, spec.executor.parallelism):
                active = [job for job in active if not job.done()]
                time.sleep(0.5)
            job = executor.submit(job_of(run))
            _record(spec, [run], [job])
            jobs.append(job)
            active.append(job)
        if wait:
            _wait(pending, jobs, adopted)
    return jobs


def _wait_adopted(runs: list[Run], poll: float = 2.0) -> None:
    while any(running_elsewhere(run) is not None for run in runs):
        time.sleep(poll)


def _wait(runs: list[Run], jobs: list, adopted: list[Run] = ()) -> None:
    """Wait for every job (and every adopted run), then raise ``RunsFailed`` naming each run left
    without a result, with the last line of its log (a relaunch reruns only the failed ones)."""
    for job in jobs:
        job.wait()
    _wait_adopted(list(adopted))
    failed = [(run, job) for run, job in zip(runs, jobs) if not is_complete(run.config)]
    failed += [(run, None) for run in adopted if not is_complete(run.config)]
    if failed:
        lines = [f"  {run.key}: {(_tail(Path(job.paths.stderr), 1) or 'no log').strip()} (log: {job.paths.stderr})"
                 if job is not None else f"  {run.key}: the process running it ended without a result"
                 for run, job in failed]
        raise RunsFailed(f"{len(failed)} of {len(runs) + len(adopted)} runs ended without a result; a relaunch "
                         "reruns only these:\n" + "\n".join(lines))


def _record(spec: SweepSpec, runs: list[Run], jobs: list) -> None:
    _record_jobs(spec, {run.key: {"executor": spec.executor.kind, "job_id": str(job.job_id),
                                  "folder": str(spec.root / "jobs" / "%j"), "run_dir": str(run_dir(run.config))}
                        for run, job in zip(runs, jobs)})


@dataclass
class RunStatus:
    key: str
    state: str  # done | running | failed | pending | stale
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
    """Done / running / failed / pending / stale for each run, with the log tail of failed ones;
    stale: the run's directory holds a run of another configuration (the spec changed since)."""
    path = spec.root / JOBS_FILE
    jobs = json.loads(path.read_text()) if path.is_file() else {}
    report = []
    for run in runs:
        directory = str(run_dir(run.config))
        entry = jobs.get(run.key)
        if is_stale(run):
            report.append(RunStatus(run.key, "stale", directory, entry and entry["job_id"],
                                    "holds a run of another configuration; rerun with --overwrite-stale"))
            continue
        if running_elsewhere(run) is not None and not is_complete(run.config):
            report.append(RunStatus(run.key, "running", directory, entry and entry["job_id"]))
            continue
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
