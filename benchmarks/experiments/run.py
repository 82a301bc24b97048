"""One experiment end to end: config → trained method → scored tasks → a self-describing run directory.

    runs/<name>/seed<seed>/
      config.json          the resolved experiment config
      environment.json     git commit and dirty flag, package versions, model source, host
      train/checkpoint/    resumable training state (while training; kept for resume)
      train.json           losses, steps, time, dev scores per epoch (written when training ends)
      model/               the trained method in its own format + method.json
      tasks/<task>.json    metrics, task version and fingerprint, split, decoding, timing
      predictions/<task>.jsonl   prompt, output, answer, gold, correct per example
      result.json          everything above in one record; written last, so it marks completion
      wandb/               the W&B run (offline unless the config says online)

      identity.json        the hash of everything the result depends on (benchmarks/experiments/identity.py)
      .lock                held by the process running the run (benchmarks/experiments/locks.py)

A killed run resumes where it stopped: training from its last good checkpoint, evaluation at the
first task without a result. A run whose ``result.json`` exists is complete and is not redone.
A directory is a run's only if its recorded identity equals the config's (``RunConflict`` otherwise,
with the keys that differ; ``overwrite=True`` deletes it and starts again). Before anything is
created (run directory, lock, W&B run), ``preflight`` checks what the run will need at the end: the
method options and that the method fits the model (attached to its architecture on the meta device:
layers in range, target modules present), every task's
fingerprint against the one its YAML records, every scored set (non-empty, prompts non-empty,
golds scorable) and decoding, and that training examples keep target tokens after truncation.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
import subprocess
import time
import warnings
from importlib import metadata
from pathlib import Path

import torch

from baselines import build_method, count_parameters, load_method, save_method
from baselines.registry import get_method, split_spec
from reft import distributed
from reft.data import ClassificationCollator, ClassificationDataset, SupervisedCollator, SupervisedDataset
from reft.files import atomic_write, atomic_write_json
from reft.pretrained import load_model, load_tokenizer, model_skeleton
from reft.sharding import gather_trainable, is_sharded_model
from reft.train import TrainingConfig, set_seed, train

from benchmarks.experiments.accounting import peak_memory
from benchmarks.experiments.config import ExperimentConfig
from benchmarks.experiments.contamination import overlapping
from benchmarks.experiments.examples import contamination, eval_examples, train_examples
from benchmarks.experiments.evaluate import evaluate_task
from benchmarks.experiments.identity import claim, run_identity
from benchmarks.experiments.judges import get_judge
from benchmarks.experiments.locks import DirectoryLock
from benchmarks.tasks.metrics import alpaca_eval_records
from benchmarks.tasks import get_task

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "transformers", "peft", "reft-harness", "safetensors", "numpy", "scikit-learn", "scipy")


def run_dir(config: ExperimentConfig) -> Path:
    return Path(config.output_root) / config.name / f"seed{config.seed}"


def is_complete(config: ExperimentConfig) -> bool:
    """Whether the run's ``result.json`` exists (whatever configuration wrote it; see ``identity``)."""
    return (run_dir(config) / "result.json").is_file()


class RunRefused(ValueError):
    """A run that would fail or mislead, refused before training (``preflight``)."""


def environment(config: ExperimentConfig) -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {"git_commit": git("rev-parse", "HEAD") or None, "git_dirty": bool(git("status", "--porcelain")),
            "packages": versions, "python": platform.python_version(), "host": platform.node(),
            "model": config.model.name, "model_revision": config.model.revision,
            "device": "cuda" if torch.cuda.is_available() else "cpu", "threads": torch.get_num_threads(),
            "processes": distributed.world_size()}


# ---------------------------------------------------------------- data
def training_data(config: ExperimentConfig, tokenizer, method, wrapped):
    tasks = [get_task(name) for name in config.data.train]
    kinds = {task.kind for task in tasks}
    if len(kinds) != 1:
        raise ValueError(f"data.train mixes task kinds {sorted(kinds)}: {config.data.train}")
    examples = train_examples(config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    locate = method.locate(wrapped)
    if kinds == {"classify"}:
        dataset = ClassificationDataset(tokenizer, [e.text_a for e in examples], [e.text_b for e in examples],
                                        [e.label for e in examples], config.data.max_length)
        return dataset, ClassificationCollator(pad_id, locate)
    dataset = SupervisedDataset(tokenizer, [e.prompt for e in examples], [e.target for e in examples],
                                config.data.max_length)
    check_targets_survive(dataset, examples, config.data.max_length, drop=config.data.drop_truncated)
    return dataset, SupervisedCollator(pad_id, locate)


def check_targets_survive(dataset: SupervisedDataset, examples, max_length: int, drop: bool = False) -> int:
    """Training examples whose every target token was truncated away carry no loss (a batch of
    them has loss 0/0 = NaN): all of them → ``RunRefused``; some → a warning, or with ``drop``
    (``data.drop_truncated``) they leave ``dataset``. Returns their count."""
    empty = [e.id for e, t in zip(examples, dataset.examples) if all(label == -100 for label in t.labels)]
    if empty and len(empty) == len(examples):
        raise RunRefused(f"every training example's target is truncated away at data.max_length={max_length} "
                         f"(e.g. {empty[0]}): nothing would be learned; raise data.max_length")
    if empty and drop:
        dataset.examples = [t for t in dataset.examples if any(label != -100 for label in t.labels)]
        warnings.warn(f"data.drop_truncated: left out {len(empty)} of {len(examples)} training examples that keep "
                      f"no target token at data.max_length={max_length} (e.g. {empty[0]})", stacklevel=2)
    elif empty:
        warnings.warn(f"{len(empty)} of {len(examples)} training examples keep no target token at "
                      f"data.max_length={max_length} (e.g. {empty[0]}); they add no loss", stacklevel=2)
    return len(empty)


# ---------------------------------------------------------------- W&B
class WandbLogger:
    """W&B run grouped by suite (a sweep's runs: by sweep and stage; or the config's group), named
    after the run, typed by its method (a re-scoring: ``eval``), with the resolved config. Offline
    runs live in the run directory (``wandb/``); ``reft wandb-sync`` finds and syncs them all."""

    def __init__(self, config: ExperimentConfig, directory: Path, name: str | None = None,
                 job_type: str | None = None) -> None:
        self.run = None
        if config.wandb.mode == "disabled":
            return
        import wandb

        self.run = wandb.init(project=config.wandb.project, entity=config.wandb.entity, mode=config.wandb.mode,
                              group=config.wandb.group or config.suite, name=name or config.run_name,
                              job_type=job_type or config.method.get("name"), config=config.to_dict(),
                              dir=str(directory), reinit="finish_previous")

    def __call__(self, entry: dict) -> None:
        if self.run is not None:
            self.run.log(entry)

    def finish(self, summary: dict) -> None:
        if self.run is not None:
            self.run.summary.update(summary)
            self.run.finish()


# ---------------------------------------------------------------- the run
def _train(config: ExperimentConfig, directory: Path, tokenizer, logger, on_epoch=None) -> tuple:
    model = load_model(config.model.name, task=config.model.task, dtype=config.model.dtype,
                       **_head_kwargs(config))
    if (directory / "train.json").is_file():  # trained before a kill during evaluation
        method, wrapped = load_method(model, directory / "model")
        return method, wrapped, json.loads((directory / "train.json").read_text())
    set_seed(config.seed)
    method, wrapped = build_method(model, config.method)
    params = count_parameters(wrapped)
    dataset, collate = training_data(config, tokenizer, method, wrapped)
    training = TrainingConfig(**{**config.train.__dict__, "seed": config.seed,
                                 "output_dir": str(directory / "train")})
    evaluate = None
    if config.data.resplit:  # best epoch on the dev half, as the paper's GLUE runs
        task, dev = eval_examples(config, config.data.eval[0], "dev")

        def evaluate(model):
            metrics, _ = evaluate_task(model, tokenizer, task, dev, batch_size=config.eval.batch_size,
                                       max_length=config.data.max_length, progress=False)
            return metrics[task.primary_metric]

    result = train(wrapped, dataset, collate, training, log=logger, evaluate=evaluate, on_epoch=on_epoch) \
        if params.trainable else None
    if params.trainable and result.steps == 0:
        raise RunRefused(f"{config.run_name}: training made no optimizer step; the run is not complete")
    record = {"steps": result.steps if result else 0, "seconds": result.seconds if result else 0.0,
              "total_seconds": result.total_seconds if result else 0.0,
              "losses": result.losses if result else [], "resumed_from": result.resumed_from if result else 0,
              "epoch_scores": result.epoch_scores if result else [],
              "best_epoch": result.best_epoch if result else None, "examples": len(dataset),
              "params": {"trainable": params.trainable, "total": params.total, "percent": params.percent,
                         "head": params.head}}
    if result is not None and result.seconds > 0:
        seen = (result.steps - result.resumed_from) * training.batch_size * training.grad_accum
        record["examples_per_second"] = round(seen * distributed.world_size() / result.seconds, 3)
    record.update(peak_memory())
    if is_sharded_model(wrapped):  # FSDP: the first process evaluates and saves an unsharded copy
        trained = gather_trainable(wrapped)
        if distributed.is_main():
            method, wrapped = build_method(load_model(config.model.name, task=config.model.task,
                                                      dtype=config.model.dtype, **_head_kwargs(config)), config.method)
            parameters = dict(wrapped.named_parameters())
            with torch.no_grad():
                for name, value in trained.items():
                    parameters[name].copy_(value)
    if distributed.is_main():
        save_method(wrapped, directory / "model", overwrite=True)  # the run's own folder
        record["model_bytes"] = sum(p.stat().st_size for p in (directory / "model").rglob("*") if p.is_file())
        atomic_write_json(directory / "train.json", record)
    distributed.barrier()
    return method, wrapped, record


def _head_kwargs(config: ExperimentConfig) -> dict:
    if config.model.task != "sequence-classification":
        return {}
    return {"num_labels": get_task(config.data.eval[0] if config.data.eval else config.data.train[0]).num_labels}


def _decoding(config: ExperimentConfig, task) -> dict:
    decoding = task.decoding if config.eval.decoding == "default" else task.decoding_for(config.eval.decoding)
    if config.eval.max_new_tokens is not None:
        decoding.pop("max_length", None)  # the instruction decoding caps the total length instead
        decoding["max_new_tokens"] = config.eval.max_new_tokens
    return decoding


def judge_outputs(config: ExperimentConfig, directory: Path, examples, outputs: list[str]) -> dict:
    """Write AlpacaEval's ``model_outputs.json`` and score it against the reference outputs."""
    directory.mkdir(parents=True, exist_ok=True)
    records = alpaca_eval_records(examples, outputs, generator=config.name)
    references = [{"instruction": e.raw["instruction"], "output": e.raw["output"], "dataset": e.raw["dataset"],
                   "generator": e.raw.get("generator", "text_davinci_003")} for e in examples]
    atomic_write_json(directory / "model_outputs.json", records)
    return get_judge(config.eval.judge)(records, references, directory)


def _evaluate(config: ExperimentConfig, directory: Path, tokenizer, wrapped, logger) -> dict:
    results = {}
    split = config.data.eval_split
    for name in config.data.eval:
        path = directory / "tasks" / f"{name.replace('/', '__')}.json"
        if path.is_file():
            results[name] = json.loads(path.read_text())
            continue
        task, examples = eval_examples(config, name, split)
        decoding = _decoding(config, task) if task.kind == "generate" else {}
        torch.manual_seed(config.seed)  # sampling decodings draw from it
        start = time.perf_counter()
        metrics, predictions = evaluate_task(wrapped, tokenizer, task, examples, batch_size=config.eval.batch_size,
                                             decoding=decoding or None, sort_by_length=config.eval.sort_by_length,
                                             max_length=config.data.max_length, scoring=config.eval.scoring)
        if task.metric == "alpaca_eval":
            metrics = judge_outputs(config, directory / "alpaca_eval" / name.replace("/", "__"), examples,
                                    [p.answer for p in predictions])
        seconds = time.perf_counter() - start
        predictions_path = directory / "predictions" / f"{name.replace('/', '__')}.jsonl"
        lines = "".join(json.dumps(p.to_dict(), default=str) + "\n" for p in predictions)
        atomic_write(predictions_path, lambda tmp: Path(tmp).write_text(lines))
        results[name] = {"metrics": metrics, "primary_metric": task.primary_metric, "n": len(examples),
                         "split": split, "version": task.version, "fingerprint": task.fingerprint(),
                         "extractor": task.extractor, "decoding": decoding, "seconds": seconds,
                         **({"scoring": config.eval.scoring} if config.eval.scoring != "generate" else {}),
                         "predictions": str(predictions_path.relative_to(directory))}
        atomic_write_json(path, results[name])
        logger({f"eval/{name}/{k}": v for k, v in metrics.items()})
    return results


def preflight(config: ExperimentConfig) -> dict[str, dict]:
    """Everything a run needs at its end, checked before it trains (``RunRefused`` naming the thing);
    returns the contamination report (a scored set that overlaps the training prompts refuses the
    run unless ``data.allow_contamination``)."""
    name, options = split_spec(config.method)
    get_method(name).parse(options)  # unknown or ill-typed method options
    for task_name in dict.fromkeys([*config.data.train, *config.data.eval]):
        task = get_task(task_name)
        if task.fingerprint() != task.recorded_fingerprint and not config.data.allow_changed_tasks:
            raise RunRefused(f"task {task_name}: its template, extractor, metric or data source changed (fingerprint "
                             f"{task.fingerprint()}, its YAML records {task.recorded_fingerprint}); bump its version "
                             "and record the new fingerprint, or set data.allow_changed_tasks=true")
    splits = [config.data.eval_split] + (["dev"] if config.data.resplit else [])
    for task_name in config.data.eval:
        for split in dict.fromkeys(splits):
            task, examples = eval_examples(config, task_name, split)
            if not examples:
                raise RunRefused(f"task {task_name}: split {split!r} has no examples to score")
            empty = [e.id for e in examples if not str(e.prompt).strip()]
            if empty:
                raise RunRefused(f"task {task_name}: {len(empty)} example(s) with an empty prompt, e.g. {empty[0]}")
            if task.kind == "generate":
                _decoding(config, task)
                unscorable = _unscorable_golds(task, examples)
                if unscorable:
                    raise RunRefused(f"task {task_name}: {len(unscorable)} gold answer(s) its metric cannot score, "
                                     f"e.g. {unscorable[0]}")
    try:  # the method on the model's architecture (meta device, no weights): layers, target modules
        skeleton = model_skeleton(config.model.name, task=config.model.task, **_head_kwargs(config))
    except (OSError, ValueError, KeyError) as error:
        raise RunRefused(f"model {config.model.name!r} could not be read: {error}") from error
    try:
        _, skeleton = build_method(skeleton, config.method)
    except (ValueError, KeyError, IndexError, RuntimeError) as error:
        raise RunRefused(f"method {config.method} does not fit model {config.model.name}: {error}") from error
    if config.train.fsdp and hasattr(skeleton, "interventions"):
        raise RunRefused("train.fsdp shards the weights LoRA, DoRA and full finetuning train; ReFT's interventions "
                         "are a few thousand numbers and train data-parallel: set train.fsdp=false")
    report = contamination(config)
    bad = overlapping(report)
    if bad and not config.data.allow_contamination:
        raise RunRefused("training prompts occur in scored sets: " + "; ".join(
            f"{label}: {c['ngram']} of {c['n']} ({c['exact']} exactly), e.g. {', '.join(c['examples'][:3])}"
            for label, c in bad.items()) + ". Train on data apart from what is scored, or set "
            "data.allow_contamination=true to run anyway (the counts are recorded in result.json)")
    return report


def _unscorable_golds(task, examples) -> list[str]:
    """Ids (with the gold) of examples whose gold the task's metric cannot score: its ``unscorable``
    rule says so (a non-numeric gold for ``within_tolerance``), or its correctness rule raises. The
    evaluator would score such rows as wrong; a run refuses them before training instead."""
    from benchmarks.tasks.metrics import METRICS

    metric = METRICS[task.metric]
    if metric.is_correct is None:
        return []
    blank = task.extract("")
    bad = []
    for example in examples:
        try:
            problem = metric.unscorable(example.gold) if metric.unscorable else None
            if problem is None:
                task.is_correct(blank, example.gold)
        except (TypeError, ValueError, ArithmeticError) as error:
            problem = str(error)
        if problem:
            bad.append(f"{example.id} (gold {example.gold!r})")
    return bad


def run_experiment(config: ExperimentConfig, overwrite: bool = False, log=print, on_epoch=None) -> Path:
    """Run (or finish) one experiment; returns its run directory. A complete run of the same
    identity is returned as it is; a directory of another configuration is refused (``RunConflict``)
    unless ``overwrite``, which deletes it first. ``on_epoch(epoch, dev score)`` hears the per-epoch
    dev scores of a run that has them (``data.resplit``; see ``reft.train.train``)."""
    directory = run_dir(config)
    distributed.init_from_env()  # several processes (torchrun, SLURM tasks) share the training
    main = distributed.is_main()
    # a run that would fail is refused before anything is created (directory, lock, W&B run)
    report = None if is_complete(config) and not overwrite else preflight(config)
    lock = DirectoryLock(directory, "run") if main else None
    if main:
        lock.acquire()
    try:
        if main and overwrite and directory.is_dir():
            for child in directory.iterdir():
                if child.name != ".lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        if main:
            claim(directory, run_identity(config))
        if is_complete(config):
            if main:
                log(f"run {config.run_name} is complete with this configuration ({directory}): not rerun")
            return directory
        return _run(config, directory, main, report if report is not None else preflight(config), on_epoch)
    finally:
        if lock is not None:
            lock.release()


def _run(config: ExperimentConfig, directory: Path, main: bool, contamination_counts: dict, on_epoch=None) -> Path:
    env = environment(config)
    if main:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / "config.json", config.to_dict())
        atomic_write_json(directory / "environment.json", env)
    distributed.barrier()
    logger = WandbLogger(config if main else dataclasses.replace(
        config, wandb=dataclasses.replace(config.wandb, mode="disabled")), directory)
    tokenizer = load_tokenizer(config.model.name)
    _, wrapped, train_record = _train(config, directory, tokenizer, logger, on_epoch)
    if not main:  # evaluation and results belong to the first process (no barrier: it may take hours)
        return directory
    tasks = _evaluate(config, directory, tokenizer, wrapped, logger)
    result = {"name": config.name, "suite": config.suite, "seed": config.seed, "model": config.model.name,
              "method": config.method, "params": train_record["params"],
              "train": {k: v for k, v in train_record.items() if k != "params"}, "tasks": tasks,
              "contamination": contamination_counts, "config": config.to_dict(), "environment": env}
    logger.finish({f"{name}/{task['primary_metric']}": task["metrics"][task["primary_metric"]]
                   for name, task in tasks.items()} | {"params_percent": train_record["params"]["percent"]})
    atomic_write_json(directory / "result.json", result)
    return directory
