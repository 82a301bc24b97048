"""Re-scoring a finished run (``reft eval RUN key=value``): its saved method on other tasks,
splits or decodings, written under ``RUN/evals/<label>/`` beside the run's own result.

A task changed since the run scored it (its fingerprint differs from the run's record) is refused
unless ``allow_changed_task``: new scores of a changed template or extractor next to old ones would
silently mix two versions of the task.

The result records, like a training run's, how many of the scored rows are training rows
(``contamination``: the run's training prompts against the re-scored sets). Scoring a run on its
own training split is allowed, and is what that count is for: the rows it trained on beside
held-out rows of the same tasks tell underfitting from overfitting (``benchmarks.report.rescored``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from baselines import load_method
from reft.files import atomic_write_json
from reft.pretrained import load_model, load_tokenizer

from benchmarks.experiments.config import ExperimentConfig, parse_experiment
from benchmarks.experiments.examples import contamination
from benchmarks.experiments.run import RunRefused, WandbLogger, _evaluate, _head_kwargs, environment
from benchmarks.tasks import get_task


def recorded_tasks(run: Path) -> dict[str, dict]:
    """The version and fingerprint of every task ``run`` read, as it recorded them (identity.json,
    else the tasks of result.json); {} for a run that recorded neither."""
    identity = run / "identity.json"
    if identity.is_file():
        return json.loads(identity.read_text())["identity"]["tasks"]
    result = run / "result.json"
    if result.is_file():
        return {name: {"version": record.get("version"), "fingerprint": record.get("fingerprint")}
                for name, record in json.loads(result.read_text()).get("tasks", {}).items()}
    return {}


def check_rescored_tasks(config: ExperimentConfig, run: Path, allow_changed_task: bool = False) -> None:
    """Refuse (``RunRefused``) to re-score ``run`` on a task whose template, extractor, metric or
    data source changed since the run scored it (its fingerprint differs from the run's record), or,
    for a task the run never scored, since its YAML recorded it. ``allow_changed_task`` scores anyway
    (the result records the new fingerprint)."""
    if allow_changed_task:
        return
    recorded = recorded_tasks(run)
    changed = []
    for name in config.data.eval:
        task = get_task(name)
        before = recorded.get(name, {}).get("fingerprint") or task.recorded_fingerprint
        if task.fingerprint() != before:
            source = "the run recorded" if name in recorded else "its YAML records"
            changed.append(f"{name} (now v{task.version} {task.fingerprint()}; {source} {before})")
    if changed:
        raise RunRefused(f"{run}: task(s) changed since they were scored: {'; '.join(changed)}. Re-scoring would mix "
                         "versions of a task; pass --allow-changed-task to score with the current one anyway")


def evaluate_run(config: ExperimentConfig, run: Path, out: Path, allow_changed_task: bool = False) -> dict:
    """Score a finished run's saved model on ``config``'s eval tasks; results go under ``out``.
    Tasks changed since the run scored them are refused (``check_rescored_tasks``)."""
    if not (run / "model" / "method.json").is_file():
        raise FileNotFoundError(f"{run / 'model'} holds no saved method: the run has not finished training")
    check_rescored_tasks(config, run, allow_changed_task)
    recorded = run / "config.json"  # the rows the run trained on: its own config's, not the overrides'
    trained = parse_experiment(json.loads(recorded.read_text()), str(recorded))
    try:  # the scored rows that are training rows (counted, not refused)
        in_training = contamination(config, trained)
    except FileNotFoundError as error:  # the run's training data is not here: score without the count
        warnings.warn(f"{run}: training rows not counted among the scored rows ({error})")
        in_training = None
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", config.to_dict())
    tokenizer = load_tokenizer(config.model.name)
    model = load_model(config.model.name, task=config.model.task, dtype=config.model.dtype, **_head_kwargs(config))
    _, wrapped = load_method(model, run / "model")
    logger = WandbLogger(config, out, name=f"{config.run_name}-eval-{out.name}", job_type="eval")
    tasks = _evaluate(config, out, tokenizer, wrapped, logger)
    logger.finish({})
    atomic_write_json(out / "result.json", {"run": str(run), "tasks": tasks, "contamination": in_training,
                                            "config": config.to_dict(),
                                            "environment": environment(config)})
    return tasks
