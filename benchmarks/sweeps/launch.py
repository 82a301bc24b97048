"""Launch a sweep's runs through submitit, and report their status.

Executors (built by ``slurm.executors``): ``slurm`` (one SLURM array job per launch; ``executor.parallelism`` is the array's
``%`` limit, and partition, GPUs, CPUs, memory, time and account come from the spec or the CLI),
``local`` (subprocesses on this machine, at most ``parallelism`` at once; the default) and
``debug`` (in this process, for debugging). Runs whose ``result.json`` exists are skipped, so a
relaunch only does what is missing.

What a launch refuses or adopts:

* a run whose directory holds another configuration's run (the spec was edited after it ran) is
  **stale**: the launch stops and names it (``overwrite_stale=True``, ``reft sweep --overwrite-stale``,
  reruns it in place);
* a method's runs of a stage are launched by one process at a time
  (``<sweep>/<stage>/.launch-<method>.lock``; a second launcher is told who holds it), so launchers
  of other methods (``reft sweep SPEC --methods a`` beside ``--methods b``, one per core) go on side
  by side; the jobs record is written under a file lock;
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

import fcntl
import json
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.experiments.config import parse_experiment
from benchmarks.experiments.identity import is_stale as holds_another_run
from benchmarks.experiments.locks import DirectoryLock
from benchmarks.experiments.run import is_complete, run_dir, run_experiment
from reft.files import atomic_write_json

from benchmarks.sweeps.spec import Run, RunsFailed, SweepSpec
from slurm.executors import (RequeueableCall, cancel_on_signal, job_of_record, job_state, log_tail, make_executor,
                             submit_throttled)

JOBS_FILE = "jobs.json"


class RunJob(RequeueableCall):
    """A picklable, requeue-able call of ``run_experiment`` on one resolved config (a requeued job
    resumes from the run's last training checkpoint)."""

    def __init__(self, config: dict, overwrite: bool = False) -> None:
        self.config = config
        self.overwrite = overwrite

    def __call__(self) -> str:
        config = parse_experiment(self.config, "sweep job")
        overwrite, self.overwrite = self.overwrite, False  # a requeued job resumes what it started
        return str(run_experiment(config, overwrite=overwrite))


def _record_jobs(spec: SweepSpec, entries: dict[str, dict]) -> None:
    path = spec.root / JOBS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.root / ".jobs.lock", "w") as guard:  # launchers of other methods write it too
        fcntl.flock(guard, fcntl.LOCK_EX)
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


def launch(spec: SweepSpec, runs: list[Run], wait: bool = True, overwrite_stale: bool = False, log=print) -> list:
    """Submit the runs without a result; returns the submitit jobs (waited for if ``wait``)."""
    parts = sorted({(run.stage, run.method) for run in runs})  # one lock order for every launcher
    locks = [DirectoryLock(spec.root / stage, f"launch of sweep {spec.name} stage {stage} method {method}",
                           f".launch-{method}.lock") for stage, method in parts]
    held = []
    try:
        for lock in locks:
            held.append(lock.acquire())
        return _launch(spec, runs, wait, overwrite_stale, log)
    finally:
        for lock in held:
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
    jobs = []
    with cancel_on_signal(jobs):  # local and debug: at most `parallelism` at once
        submit_throttled(executor, [job_of(run) for run in pending], spec.executor.parallelism, jobs,
                         on_submit=lambda index, job: _record(spec, [pending[index]], [job]))
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
        lines = [f"  {run.key}: {(log_tail(Path(job.paths.stderr), 1) or 'no log').strip()} (log: {job.paths.stderr})"
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
        job = job_of_record(entry["executor"], entry["folder"], entry["job_id"]) if entry else None
        if job is None:
            report.append(RunStatus(run.key, "pending", directory))
            continue
        state = job_state(entry["executor"], job)
        if state in ("RUNNING", "COMPLETING", "REQUEUED", "CONFIGURING"):
            report.append(RunStatus(run.key, "running", directory, entry["job_id"]))
        elif state in ("PENDING", "SUSPENDED"):
            report.append(RunStatus(run.key, "pending", directory, entry["job_id"]))
        else:  # finished (or unknown without accounting) and still no result: it failed
            report.append(RunStatus(run.key, "failed", directory, entry["job_id"],
                                    log_tail(Path(job.paths.stderr)) or f"job state {state}"))
    return report
