"""Equal-budget hyperparameter search with Optuna: every method gets the same number of trials
(or compute-seconds) on the dev split, by the same sampler, and the best trial becomes its final
configuration (issue 14; a comparison is only as fair as its tuning budget).

    tuning: {trials: 12, sampler: tpe, seed: 0, workers: 2}     # or seconds: 3600 instead of trials
    methods:
      loreft:
        config: benchmarks/experiments/glue/minilm_cpu_loreft.yaml
        search:
          train.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
          method.rank: {type: int, low: 1, high: 4}
          method.positions: {type: categorical, choices: [f1, f3]}
          method.dropout: {type: float, low: 0.0, high: 0.2, when: {method.positions: f3}}

**One study per method, shared by the workers.** ``workers`` processes (local subprocesses, or the
tasks of one SLURM array job) ask the same Optuna study for their next trial, so trials run
asynchronously. The studies live in ``<sweep>/search/journal.log``, Optuna's ``JournalStorage``
with a file backend: an append-only log that any process on a shared filesystem can open with no
database server, where SQLite's locking is unreliable on network filesystems (NFS) and a
PostgreSQL/MySQL server is one more thing for a user to run.

**Exact, equal budgets.** Counting the trials a method has used and asking for the next one happen
under one file lock (``<sweep>/search/ask.lock``), so two workers never overshoot a budget. A trial
counts when it completes, fails on its own (a diverging configuration is a result), or runs; a
trial whose worker was killed does not count.

**Kills and resumption.** A running trial is kept alive by its worker's heartbeat file
(``<sweep>/search/heartbeats/``, touched every ``HEARTBEAT_S``); a trial whose worker died on this
host (pid gone) or whose heartbeat is older than ``STALE_S`` is marked failed and its parameters
are queued again (the re-run's ``retry_of`` names it), so the next worker re-runs it, in the same run directory (named by
the parameters), resuming from the last training checkpoint. Re-running the same command
continues the study. The objective is the dev score only (``benchmarks.sweeps.select.dev_score``):
trials are dev runs, which may not score a test split (``experiment`` refuses).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import math
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from benchmarks.experiments.run import RunRefused, run_experiment
from benchmarks.sweeps.select import dev_score, run_seconds
from benchmarks.sweeps.spec import SweepSpec, experiment
from reft.typed import from_dict

HEARTBEAT_S = 15.0
STALE_S = 120.0


def search_root(spec: SweepSpec) -> Path:
    return Path(spec.root) / "search"


def storage(spec: SweepSpec):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    root = search_root(spec)
    root.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(root / "journal.log")))


def study_of(spec: SweepSpec, method: str, worker: int = 0):
    """The method's study (created on first use); the sampler is seeded per worker and by the number
    of trials already in the study, so two workers, or a worker and its restarted self, never
    propose the same random start-up points."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=f"{spec.name}-{method}", storage=storage(spec), direction="maximize",
                                pruner=pruner_of(spec), load_if_exists=True)
    # the trials so far enter the seed: a worker started again (a resumed search) draws new points
    # instead of replaying the random start-up points it drew before
    seed = spec.tuning.seed + 1000 * worker + len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=seed) if spec.tuning.sampler == "tpe" else \
        optuna.samplers.RandomSampler(seed=seed)
    return study


def pruner_of(spec: SweepSpec):
    """``tuning.pruner`` as Optuna's pruner: ``median`` stops a trial whose dev score after an epoch is
    below the median of the earlier trials' at that epoch (from the third trial on; never at the
    last epoch, which the run finishes anyway), ``halving`` is asynchronous successive halving."""
    import optuna

    if spec.tuning.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2)
    if spec.tuning.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def sample(trial, space: dict) -> dict:
    """A point of ``space`` from an Optuna trial. Floats keep 3 significant digits (run labels stay
    readable); list choices (e.g. layer lists) travel through Optuna as JSON text."""
    point: dict = {}
    for key, dist in space.items():
        if any(point.get(other) != value for other, value in (dist.get("when") or {}).items()):
            continue
        if dist["type"] == "float":
            value = trial.suggest_float(key, dist["low"], dist["high"], log=dist.get("log", False),
                                        step=dist.get("step"))
            point[key] = float(f"{value:.3g}")
        elif dist["type"] == "int":
            point[key] = trial.suggest_int(key, dist["low"], dist["high"], log=dist.get("log", False),
                                           step=dist.get("step", 1))
        else:
            encoded = [json.dumps(c) if isinstance(c, (list, dict)) else c for c in dist["choices"]]
            value = trial.suggest_categorical(key, encoded)
            point[key] = json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
    return point


# ---------------------------------------------------------------- trial bookkeeping
def _heartbeat(spec: SweepSpec, study_name: str, number: int) -> Path:
    return search_root(spec) / "heartbeats" / f"{study_name}-{number}"


def _worker_alive(user_attrs: dict) -> bool | None:
    """False when the trial's worker ran on this host and its pid is gone; None when unknown."""
    host, pid = user_attrs.get("host"), user_attrs.get("pid")
    if host != socket.gethostname() or pid is None:
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


class SearchRefused(RuntimeError):
    """A trial's run was refused before training (e.g. a task whose code changed): the search stops."""


def recover_killed(spec: SweepSpec, study, log=print) -> list[int]:
    """Mark trials whose worker died as failed (``killed``) and queue their parameters again."""
    from optuna.trial import TrialState

    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        beat = _heartbeat(spec, study.study_name, trial.number)
        stale = not beat.exists() or time.time() - beat.stat().st_mtime > STALE_S
        if _worker_alive(trial.user_attrs) is False or (stale and _worker_alive(trial.user_attrs) is not True):
            study.tell(trial.number, state=TrialState.FAIL)  # its re-run names it: retry_of (so it is not counted)
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
            beat.unlink(missing_ok=True)
            recovered.append(trial.number)
            log(f"search {study.study_name}: trial {trial.number} lost its worker; its parameters are queued again")
    return recovered


def killed(trials) -> set[int]:
    """Numbers of the trials whose worker died (each has a re-run naming it in ``retry_of``)."""
    return {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}


def point_key(trial) -> str:
    """A trial's point as comparable text."""
    return json.dumps(trial.user_attrs.get("point", trial.params), sort_keys=True, default=str)


def counted_numbers(trials) -> set[int]:
    """The trials that use budget: done, failed on its own, or running, at a point no earlier such
    trial had; not one whose worker died (``killed``), one refused before training
    (``SearchRefused``), a repeat of an earlier point (``duplicate_of``, or older repeats found by
    their point: they add no information), nor one waiting in the queue."""
    from optuna.trial import TrialState

    lost, seen, numbers = killed(trials), set(), set()
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state == TrialState.WAITING or trial.number in lost or {"refused", "duplicate_of"} & set(trial.user_attrs):
            continue
        if point_key(trial) not in seen:
            seen.add(point_key(trial))
            numbers.add(trial.number)
    return numbers


def budget_left(spec: SweepSpec, study) -> bool:
    everything = study.get_trials(deepcopy=False)
    numbers = counted_numbers(everything)
    trials = [t for t in everything if t.number in numbers]
    if spec.tuning.trials is not None:
        return len(trials) < spec.tuning.trials
    return sum(t.user_attrs.get("seconds", 0.0) for t in trials) < spec.tuning.seconds


@contextmanager
def _locked(spec: SweepSpec) -> Iterator[None]:
    path = search_root(spec) / "ask.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _beating(path: Path) -> Iterator[None]:
    """Touch ``path`` every ``HEARTBEAT_S`` while the block runs; remove it after."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            path.touch()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        path.unlink(missing_ok=True)


def slurm_job() -> str | None:
    """This worker's SLURM job (``<array job>_<task>`` for an array task), None outside SLURM."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def _next_trial(spec: SweepSpec, study, space: dict, log):
    """Under the ask lock: recover dead trials, check the budget, ask, record the worker, start the
    heartbeat file. None when the budget is used."""
    with _locked(spec):
        recover_killed(spec, study, log)
        if not budget_left(spec, study):
            return None, None
        trial, point = _new_point(study, space)
        trial.set_user_attr("point", point)
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        job = slurm_job()
        if job:
            trial.set_user_attr("job", job)
        beat = _heartbeat(spec, study.study_name, trial.number)
        beat.parent.mkdir(parents=True, exist_ok=True)
        beat.touch()
        return trial, point


REPEATS = 50  # proposals of already-tried points in a row before the space counts as exhausted


def _new_point(study, space: dict):
    """Ask for a trial at a point no counted trial has (floats keep 3 significant digits, so a
    sampler may propose a point again): a repeat is told at once, with its original's dev score
    when that is known (the sampler learns from it), and marked ``duplicate_of`` (it uses no budget)."""
    from optuna.trial import TrialState

    everything = study.get_trials(deepcopy=False)
    originals = {point_key(t): t for t in everything if t.number in counted_numbers(everything)}
    for _ in range(REPEATS):
        trial = study.ask()
        point = sample(trial, space)
        original = originals.get(json.dumps(point, sort_keys=True, default=str))
        if original is None:
            return trial, point
        trial.set_user_attr("point", point)
        trial.set_user_attr("duplicate_of", original.number)
        if original.state == TrialState.COMPLETE:
            study.tell(trial, original.value)
        else:
            study.tell(trial, state=TrialState.FAIL)
    raise SearchRefused(f"search {study.study_name}: the sampler proposed only points already tried, {REPEATS} times "
                        f"in a row: the space holds fewer distinct points than the budget ({len(originals)} tried)")


def run_trial(spec: SweepSpec, method: str, study, trial, point: dict, log=print) -> None:
    """Train and score one trial on the dev split and tell the study (failed: its error recorded;
    pruned: stopped after an epoch whose dev score the pruner judged hopeless)."""
    import optuna
    from optuna.trial import TrialState

    def report(epoch: int, score: float) -> None:
        trial.report(score, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"dev score {score:.4f} after epoch {epoch}")

    started = time.monotonic()
    with _beating(_heartbeat(spec, study.study_name, trial.number)):
        try:
            config = experiment(spec, "dev", method, point, spec.dev.seeds[0])
            directory = run_experiment(config, log=lambda *a: None, on_epoch=report)
            result = json.loads((Path(directory) / "result.json").read_text())
            score, _ = dev_score(result, str(directory))
        except RunRefused as refused:  # the environment, not the point: every trial would fail alike
            trial.set_user_attr("refused", f"{refused}"[:500])
            study.tell(trial, state=TrialState.FAIL)
            raise SearchRefused(f"search {study.study_name}: trial {trial.number} {point} was refused before "
                                f"training ({refused}); the search stops rather than spend its budget on "
                                "refusals (refused trials do not count): fix the cause and rerun") from refused
        except optuna.TrialPruned as pruned:  # uses budget: the epochs it trained were spent
            trial.set_user_attr("seconds", time.monotonic() - started)
            trial.set_user_attr("pruned", str(pruned))
            study.tell(trial, state=TrialState.PRUNED)
            log(f"search {study.study_name}: trial {trial.number} {point} pruned: {pruned}")
            return
        except Exception as error:  # a diverging or impossible configuration is a result: the trial failed
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:500])
            trial.set_user_attr("seconds", time.monotonic() - started)
            study.tell(trial, state=TrialState.FAIL)
            log(f"search {study.study_name}: trial {trial.number} {point} failed: {error}")
            return
    seconds = run_seconds(result)
    trial.set_user_attr("seconds", seconds)
    trial.set_user_attr("run_dir", str(directory))
    study.tell(trial, score if math.isfinite(score) else None,
               state=TrialState.COMPLETE if math.isfinite(score) else TrialState.FAIL)
    log(f"search {study.study_name}: trial {trial.number} {point} dev {score:.4f} ({seconds:.0f} s)")


def work(spec: SweepSpec, worker: int = 0, poll: float = 5.0, log=print) -> int:
    """One worker: for each method in turn, run trials while its budget lasts, then wait until its
    running trials end (recovering any whose worker died). Returns the number of trials run."""
    ran = 0
    for method, method_spec in spec.methods.items():
        study = study_of(spec, method, worker)
        while True:
            trial, point = _next_trial(spec, study, method_spec.search, log)
            if trial is not None:
                run_trial(spec, method, study, trial, point, log)
                ran += 1
                continue
            from optuna.trial import TrialState

            with _locked(spec):
                recover_killed(spec, study, log)
                waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if waiting and budget_left(spec, study):
                continue  # a killed trial was queued again: run it
            if not running:
                break
            time.sleep(poll)
    return ran


class SearchWorker:
    """A picklable worker for submitit (a local subprocess or a SLURM array task)."""

    def __init__(self, spec: dict, worker: int) -> None:
        self.spec, self.worker = spec, worker

    def __call__(self) -> int:
        return work(from_dict(SweepSpec, self.spec, "search worker"), self.worker)


def run_search(spec: SweepSpec, log=print) -> None:
    """Start ``tuning.workers`` workers through the sweep's executor and wait for them."""
    from benchmarks.sweeps.spec import RunsFailed
    from slurm.executors import cancel_on_signal, make_executor, submit_throttled

    executor = make_executor(spec.executor, search_root(spec) / "jobs" / "%j")
    workers = [SearchWorker(dataclasses.asdict(spec), index) for index in range(spec.tuning.workers)]
    budget = f"{spec.tuning.trials} trials" if spec.tuning.trials is not None else f"{spec.tuning.seconds:.0f} s"
    log(f"sweep {spec.name}: search, {budget} per method ({', '.join(spec.methods)}), {spec.tuning.sampler} "
        f"sampler, {len(workers)} worker(s) ({spec.executor.kind})")
    jobs: list = []
    if spec.executor.kind == "slurm":
        with executor.batch():
            jobs = [executor.submit(worker) for worker in workers]
    else:
        with cancel_on_signal(jobs):
            submit_throttled(executor, workers, len(workers), jobs, on_submit=lambda index, job: None)
            for job in jobs:
                job.wait()
    for job in jobs:
        job.wait()
    failed = [job for job in jobs if job.exception() is not None]
    if failed:
        raise RunsFailed(f"{len(failed)} search worker(s) failed: {failed[0].exception()}")


__all__ = ["run_search", "work", "study_of", "killed", "counted_numbers", "recover_killed", "sample", "pruner_of"]
