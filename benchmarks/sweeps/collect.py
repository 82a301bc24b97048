"""Copy finished runs' ``result.json`` into ``results/raw/<suite>/<run name>__seed<seed>.json``, the
source of truth that tables, plots and notebooks are built from (and that the repo commits:
run directories with checkpoints and predictions stay out of git).

Each task of a collected result carries a compact per-example record built from the run's saved
predictions, so intervals and paired tests (``benchmarks.report.stats``) regenerate from
``results/raw`` alone: ``examples: {ids: [...], correct: [0/1 ...], gold: [...]}``; for a
corpus-level metric (MCC, Pearson) ``{ids, answer, gold}`` (the golds give the majority-class row);
for AlpacaEval ``{ids, output, preference}`` (each output's text, and the offline judge's preference
for it over the reference). Ids drop the task prefix (``validation:120``).
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


def collect_result(result_path: str | Path, out: str | Path = RAW) -> Path:
    """Copy one run's result (a ``result.json`` or its run directory) into ``out``."""
    path = Path(result_path)
    path = path / "result.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the run has not finished")
    result = json.loads(path.read_text())
    for task, record in result["tasks"].items():
        if "examples" not in record and record.get("predictions"):
            record["examples"] = example_record(task, record, path.parent / record["predictions"])
    target = Path(out) / result["suite"] / f"{result['name']}__seed{result['seed']}.json"
    atomic_write_json(target, result)
    return target


def example_record(task: str, record: dict, predictions: Path) -> dict:
    """The per-example record of one scored task from its predictions file (see the module docstring)."""
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
    return {"ids": ids, "gold": [row["gold"] for row in rows],
            "correct": [int(row["correct"] if row["correct"] is not None
                            else bool(is_correct(row["answer"], row["gold"]))) for row in rows]}


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
