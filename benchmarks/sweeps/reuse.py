"""The final stage's first seed often retrains exactly what a dev run trained: the same method,
search point, seed and training data, scored on another split. Such a final run starts from the dev
run's trained model (``model/`` and ``train.json`` copied) and only evaluates, as a run killed after
training would; ``result.json``'s ``train.reused_from`` names the dev run.

Two runs train identically when their resolved configs agree outside what only scoring reads:
``name``, ``output_root``, ``wandb`` and ``data.eval_split``, and (when no best-epoch selection
reads them during training, i.e. ``data.resplit`` is off) ``data.eval``, ``data.eval_limit``, ``data.eval_sample`` and
``eval``. Anything else that differs (train split, limits, lr, ...) means a fresh run.
"""

from __future__ import annotations

import json
import shutil

from benchmarks.experiments.config import ExperimentConfig
from benchmarks.experiments.run import run_dir
from reft.files import atomic_write_json

from benchmarks.sweeps.spec import Run

SCORING_ONLY = ("name", "output_root", "wandb", "data.eval_split")
SCORING_ONLY_WITHOUT_RESPLIT = ("data.eval", "data.eval_limit", "data.eval_sample", "eval")


def training_identity(config: ExperimentConfig) -> dict:
    """The resolved config without the fields that do not change what is trained."""
    values = config.to_dict()
    ignored = SCORING_ONLY + (() if values["data"].get("resplit") else SCORING_ONLY_WITHOUT_RESPLIT)
    for dotted in ignored:
        *parents, leaf = dotted.split(".")
        node = values
        for key in parents:
            node = node[key]
        node.pop(leaf, None)
    return values


def reuse_dev_training(dev_runs: list[Run], final_runs: list[Run], log=print) -> list[Run]:
    """Seed each unstarted final run from a finished dev run that trained the same thing; returns
    the final runs so seeded."""
    trained = {}
    for run in dev_runs:
        directory = run_dir(run.config)
        if (directory / "train.json").is_file() and (directory / "model" / "method.json").is_file():
            trained[(run.method, run.point, run.seed)] = (run, directory)
    seeded = []
    for run in final_runs:
        match = trained.get((run.method, run.point, run.seed))
        target = run_dir(run.config)
        if match is None or (target / "train.json").exists():  # trained (or finished) already
            continue
        dev_run, source = match
        if training_identity(dev_run.config) != training_identity(run.config):
            continue
        target.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target / "model", ignore_errors=True)
        shutil.copytree(source / "model", target / "model")
        record = json.loads((source / "train.json").read_text())
        atomic_write_json(target / "train.json", {**record, "reused_from": str(source)})  # written last
        log(f"  {run.key}: reuses the training of {dev_run.key}")
        seeded.append(run)
    return seeded
