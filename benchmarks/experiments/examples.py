"""The examples a run reads: its training rows (``data.train``, less any that overlap a scored set
under ``data.decontaminate``) and each scored set (GLUE's validation set re-split into a dev and a
test half), and the contamination report between the two."""

from __future__ import annotations

import random

from baselines import get_method
from baselines.registry import split_spec
from benchmarks.experiments.config import ExperimentConfig
from benchmarks.experiments.contamination import TrainingText, contamination_report, sharing
from benchmarks.tasks import get_task
from benchmarks.tasks.data import glue_dev_test_split


def eval_examples(config: ExperimentConfig, task_name: str, split: str):
    """Examples to score. GLUE's validation set is re-split into a dev half (best-epoch selection)
    and a test half (reported), per seed as the paper does, or fixed (``data.resplit: fixed``)."""
    task = get_task(task_name)
    if config.data.eval_sample is not None:
        return task, seeded_sample(task.load(split, config.data.data_root), config.data.eval_sample)
    if not config.data.resplit:
        return task, task.load(split, config.data.data_root, config.data.eval_limit)
    if split not in ("test", "dev"):
        raise ValueError(f"data.resplit splits the validation set into 'test' and 'dev'; got split {split!r}")
    examples = task.load("validation", config.data.data_root)
    test, dev = glue_dev_test_split(len(examples), config.seed, fixed=config.data.resplit == "fixed")
    return task, [examples[i] for i in (test if split == "test" else dev)][:config.data.eval_limit]


def seeded_sample(examples: list, n: int, seed: int = 0) -> list:
    """``n`` of ``examples`` drawn at random with ``seed`` (all of them if fewer), in their order."""
    if n >= len(examples):
        return list(examples)
    return [examples[i] for i in sorted(random.Random(seed).sample(range(len(examples)), n))]


def scored_splits(config: ExperimentConfig) -> list[str]:
    return list(dict.fromkeys([config.data.eval_split] + (["dev"] if config.data.resplit else [])))


def scored_sets(config: ExperimentConfig) -> list[tuple[str, list[str], list[str]]]:
    """``(task:split, ids, prompts)`` of every set the run scores."""
    sets = []
    for task_name in config.data.eval:
        for split in scored_splits(config):
            examples = eval_examples(config, task_name, split)[1]
            sets.append((f"{task_name}:{split}", [e.id for e in examples], [e.prompt for e in examples]))
    return sets


def train_examples(config: ExperimentConfig) -> list:
    """The training rows; with ``data.decontaminate``, without those that match a scored example
    either way: a training row most of whose 8-grams occur in a scored set (a near-copy of one of
    its examples; each train task against each scored set, templates stripped), and every training
    row that shares an 8-gram (or its whole text) with a scored example the guard flags, until the
    guard (:func:`contamination`) finds nothing."""
    groups = [get_task(name).load(config.data.train_split, config.data.data_root, config.data.train_limit)
              for name in config.data.train]
    examples = [e for group in groups for e in group]
    if not config.data.decontaminate:
        return examples
    sets = scored_sets(config)
    matched = set()  # each train task against each scored set, so every side's template is stripped
    for _, _, prompts in sets:
        scored = TrainingText(prompts)
        for group in groups:
            matched |= set(scored.overlap([e.id for e in group], [e.prompt for e in group], every=True)["examples"])
    examples = [e for e in examples if e.id not in matched]
    while True:  # the guard's direction: a scored example found among the training prompts
        training = TrainingText([e.prompt for e in examples])
        flagged = [core for _, ids, prompts in sets for core in training.flagged(ids, prompts)]
        if not flagged:
            return examples
        examples = [e for e, hit in zip(examples, sharing([e.prompt for e in examples], flagged)) if not hit]


def contamination(config: ExperimentConfig, trained: ExperimentConfig | None = None) -> dict[str, dict]:
    """How many examples of each set ``config`` scores (``task:split``) occur among the training
    prompts of ``trained`` (default: ``config`` itself; a re-scored run passes the config it trained
    with, whose decontamination was against its own scored sets); none for a method that learns
    nothing from them."""
    trained = trained or config
    if not get_method(split_spec(trained.method)[0]).trains:
        return {}
    return contamination_report([e.prompt for e in train_examples(trained)], scored_sets(config))
