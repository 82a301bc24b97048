"""submitit executors (SLURM array jobs, local subprocesses, in-process debug) and the jobs they run.

What to run is decided above this package (``benchmarks.sweeps``); this module only knows how:

* ``ExecutorSpec``: the executor's settings as a sweep spec writes them (``executor:`` block);
* ``make_executor``: the submitit executor for a spec (``slurm``: one array job per batch, the
  spec's ``parallelism`` as the array's ``%`` limit, and with ``nodes`` × ``tasks_per_node`` > 1
  each run is one multi-node job: one ``srun`` starts a task per process on every node, and each
  task joins the run's process group from SLURM's variables (``reft.distributed.init_from_env``:
  rank, world size, and the first node as the rendezvous address, as torchrun's ``env://``);
  ``local``: subprocesses on this machine; ``debug``: in this process);
* ``RequeueableCall``: the base of a picklable job that submitit requeues on preemption or timeout
  (SIGUSR2) by resubmitting the same call, which then resumes from its own checkpoint;
* ``submit_throttled``: local submission with at most ``parallelism`` jobs alive at once;
  ``cancel_on_signal``: SIGTERM/SIGINT while waiting cancels the local jobs started;
* ``job_of_record`` / ``job_state``: a job rebuilt from its recorded id and folder, and its state
  (a local job's id is its PID).
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

EXECUTORS = ("local", "slurm", "debug")


@dataclass
class ExecutorSpec:
    kind: str = "local"
    parallelism: int = field(default=1, metadata={"help": "runs at once (SLURM: the array's % limit)"})
    timeout_min: int = 120
    partition: str | None = None
    gpus_per_node: int = 0
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    account: str | None = None
    nodes: int = field(default=1, metadata={"help": "SLURM nodes per run (multi-node training)"})
    tasks_per_node: int = field(default=1, metadata={
        "help": "SLURM tasks (training processes) per node; each run trains in nodes × tasks_per_node processes"})

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"executor.kind must be one of {EXECUTORS}, got {self.kind!r}")
        if self.nodes < 1 or self.tasks_per_node < 1:
            raise ValueError(f"executor.nodes and executor.tasks_per_node must be >= 1, got {self.nodes}, "
                             f"{self.tasks_per_node}")
        if self.kind != "slurm" and self.nodes * self.tasks_per_node > 1:
            raise ValueError(f"executor.nodes/tasks_per_node start several processes per run on SLURM only; on one "
                             f"machine use torchrun (`torchrun --nproc_per_node N -m benchmarks.cli train ...`)")


class RequeueableCall:
    """A job submitit requeues as itself on preemption or timeout (subclasses define ``__call__``
    and resume from their own checkpoints)."""

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self)


def make_executor(spec: ExecutorSpec, folder: Path):
    import submitit

    executor = submitit.AutoExecutor(folder=str(folder), cluster=spec.kind)
    executor.update_parameters(timeout_min=spec.timeout_min, name="reft")
    if spec.kind == "slurm":
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
        if spec.nodes * spec.tasks_per_node > 1:  # one srun, nodes × tasks_per_node tasks: each is one rank
            parameters.update(nodes=spec.nodes, tasks_per_node=spec.tasks_per_node)
        executor.update_parameters(**parameters)
    return executor


@contextmanager
def cancel_on_signal(jobs: list):
    """SIGTERM/SIGINT inside the block: cancel the (local) jobs in ``jobs`` not yet done, then stop.

    submitit cancels a local job with SIGINT. A launcher started in the background by a shell
    (``nohup reft sweep ... &``) starts with SIGINT *ignored*, and its jobs would inherit that and
    never stop; so inside the block SIGINT is restored to Python's default for the jobs started
    here (an exec'd child gets the default disposition unless the parent ignores the signal)."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    except KeyboardInterrupt:
        for job in jobs:
            if not job.done():
                job.cancel(check=False)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def submit_throttled(executor, calls: list, parallelism: int, jobs: list,
                     on_submit: Callable[[int, object], None], poll: float = 0.5) -> list:
    """Submit ``calls`` one by one, at most ``parallelism`` alive at once; each job is appended to
    ``jobs`` (so a ``cancel_on_signal(jobs)`` around the call sees it) and reported to
    ``on_submit(index, job)`` as soon as it exists."""
    active = []
    for index, call in enumerate(calls):
        while len(active) >= max(1, parallelism):
            active = [job for job in active if not job.done()]
            time.sleep(poll)
        job = executor.submit(call)
        on_submit(index, job)
        jobs.append(job)
        active.append(job)
    return jobs


def job_of_record(kind: str, folder: str, job_id: str):
    """The submitit job of a recorded submission (None for ``debug``, which leaves nothing to ask)."""
    import submitit

    cls = {"slurm": submitit.SlurmJob, "local": submitit.LocalJob}.get(kind)
    return cls(folder=folder, job_id=job_id) if cls else None


def _local_state(job) -> str:
    """A local job's id is its PID: alive → RUNNING, else FINISHED (a reconstructed LocalJob
    cannot tell a job still running under another launcher from a dead one)."""
    if job.paths.result_pickle.exists():
        return "FINISHED"
    try:
        os.kill(int(job.job_id), 0)
    except (ProcessLookupError, ValueError):
        return "FINISHED"
    except PermissionError:
        pass
    return "RUNNING"


def job_state(kind: str, job) -> str:
    """SLURM's state name (RUNNING, PENDING, COMPLETED, FAILED, ...), or RUNNING / FINISHED locally."""
    return _local_state(job) if kind == "local" else job.state.upper()


def log_tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""
