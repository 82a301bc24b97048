"""Copy finished runs' ``result.json`` into ``results/raw/<suite>/<run name>__seed<seed>.json``, the
source of truth that tables, plots and notebooks are built from (and that the repo commits:
run directories with checkpoints and predictions stay out of git).

Each task of a collected result carries a compact per-example record built from the run's saved
predictions, so intervals and paired tests (``benchmarks.report.stats``) regenerate from
``results/raw`` alone: ``examples: {ids: [...], correct: [0/1 ...], gold: [...]}``; for a
corpus-level metric (MCC, Pearson) ``{ids, answer, gold}`` (the golds give the majority-class row);
for AlpacaEval ``{ids, output, preference}`` (each output's text, and the offline judge's preference
for it over the reference). Ids drop the task prefix (``validation:120``).

A re-scoring (``reft eval RUN ...``, in ``RUN/evals/<label>/``) is collected the same way, with its
run's identity (name, suite, seed, model, method, Params%, training record), ``rescored: <label>``
and each example's prediction (``predicted``), as ``<out>/<suite>/<run name>__<label>__seed<seed>.json``;
it belongs in its own folder (``results/rescored``), since tables report test splits only.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.report.stats import CORPUS_METRICS
from benchmarks.tasks import get_task
from benchmarks.tasks.metrics import METRICS
from benchmarks.sweeps.select import merged_selection
from reft.files import atomic_write_json

RAW = Path(__file__).resolve().parents[2] / "results" / "raw"
RESCORED = RAW.parent / "rescored"


def collect_result(result_path: str | Path, out: str | Path = RAW, rescored_out: str | Path = RESCORED) -> Path:
    """Copy one run's result (a ``result.json`` or its run directory) into ``out``; a re-scoring's
    (``RUN/evals/<label>``) into ``rescored_out``, never among the test-split results."""
    path = Path(result_path)
    path = path / "result.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the run has not finished")
    result = json.loads(path.read_text())
    rescored = path.parent.parent.name == "evals" and "name" not in result
    if rescored:
        out = rescored_out
        result = rescored_result(path, result)
    for task, record in result["tasks"].items():
        if "examples" not in record and record.get("predictions"):
            record["examples"] = example_record(task, record, path.parent / record["predictions"], rescored)
    name = f"{result['name']}__{result['rescored']}" if rescored else result["name"]
    target = Path(out) / result["suite"] / f"{name}__seed{result['seed']}.json"
    atomic_write_json(target, result)
    return target


#: what a re-scoring takes from its run's result
RUN_IDENTITY = ("name", "suite", "seed", "model", "method", "params")


def rescored_result(path: Path, result: dict) -> dict:
    """A re-scoring's ``result.json`` (``RUN/evals/<label>/``) with its run's identity and training
    record (less the per-step losses) and ``rescored: <label>``."""
    run_result = path.parents[2] / "result.json"
    if not run_result.is_file():
        raise FileNotFoundError(f"{run_result} not found: {path} re-scored a run that has no result")
    run = json.loads(run_result.read_text())
    training = {key: value for key, value in run.get("train", {}).items() if key != "losses"}
    return {**{key: run[key] for key in RUN_IDENTITY}, "train": training, **result, "rescored": path.parent.name}


def example_record(task: str, record: dict, predictions: Path, with_predictions: bool = False) -> dict:
    """The per-example record of one scored task from its predictions file (see the module docstring);
    ``with_predictions`` adds each example's extracted answer (``predicted``) to a correctness record."""
    if not predictions.is_file():
        raise FileNotFoundError(f"{predictions} not found: the per-example record of {task} is built from it")
    rows = [json.loads(line) for line in predictions.read_text().splitlines() if line.strip()]
    if len(rows) != record["n"]:
        raise ValueError(f"{predictions}: {len(rows)} predictions, but the result says {task} scored n={record['n']}")
    ids = [row["id"].removeprefix(f"{task}:") for row in rows]
    if record["primary_metric"] in CORPUS_METRICS:
        return {"ids": ids, "answer": [row["answer"] for row in rows], "gold": [row["gold"] for row in rows]}
    is_correct = METRICS[get_task(task).metric].is_correct
    if is_correct is None:  # AlpacaEval: the judge's preference for each output, and the output itself
        return judged_record(task, ids, rows, predictions.parent.parent)
    record = {"ids": ids, "gold": [row["gold"] for row in rows],
              "correct": [int(row["correct"] if row["correct"] is not None
                              else bool(is_correct(row["answer"], row["gold"]))) for row in rows]}
    return {**record, "predicted": [row["answer"] for row in rows]} if with_predictions else record


def judged_record(task: str, ids: list[str], rows: list[dict], run: Path) -> dict:
    """An instruction-following record: ids, each output's text, and, where the run's judge wrote
    per-example annotations (the offline pairwise judges), its preference for each output over the
    reference (p = P(output better), in the predictions' order)."""
    record = {"ids": ids, "output": [row["answer"] for row in rows]}
    annotations = run / "alpaca_eval" / task.replace("/", "__") / "annotations.json"
    if annotations.is_file():
        judged = json.loads(annotations.read_text())
        if len(judged) != len(rows):
            raise ValueError(f"{annotations}: {len(judged)} annotations for {len(rows)} predictions of {task}")
        record["preference"] = [float(row["preference_for_model"]) for row in judged]
    return record


def collect_sweep(root: str | Path, stage: str = "final", out: str | Path = RAW,
                  selections: str | Path | None = None) -> list[Path]:
    """Every finished run of one stage of a sweep (``<sweep root>/<stage>/*/seed*/result.json``),
    and the sweep's selection record (``<selections>/<sweep>.json``, default ``selections/`` next to
    ``out``: space, dev scores, choice). A sweep run for some of its methods (``--methods``) adds
    their choices to the record already there; it does not drop the others'."""
    root = Path(root)
    if (root / "selection.json").is_file():
        record = json.loads((root / "selection.json").read_text())
        target = Path(selections or Path(out).parent / "selections") / f"{root.name}.json"
        if target.is_file():
            record = merged_selection(json.loads(target.read_text()), record)
        atomic_write_json(target, record)
    return [collect_result(path, out) for path in sorted(Path(root, stage).glob("*/seed*/result.json"))]
