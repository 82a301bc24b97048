"""Dev-set-only hyperparameter selection (the paper's protocol, enforced).

For each method, every search point's dev runs are scored by the mean over their eval tasks of
each task's primary metric, averaged over seeds; the highest wins (ties: the earlier point in the
spec). The selector reads only dev-stage results and refuses any task record whose split is
``test``. The record (space, every dev score, the choice) goes to ``<sweep>/selection.json``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.run import run_dir
from reft.io import atomic_write_json

from .sweep import Run, SweepSpec, expand, has_search, point_label, search_points

SELECTION_FILE = "selection.json"


def dev_score(result: dict, where: str) -> tuple[float, dict]:
    per_task = {}
    for task, record in result["tasks"].items():
        if record["split"] == "test":
            raise ValueError(f"{where}: task {task} was scored on the test split; the selector reads dev scores only")
        per_task[task] = record["metrics"][record["primary_metric"]]
    if not per_task:
        raise ValueError(f"{where}: no dev task was scored")
    return statistics.fmean(per_task.values()), per_task


def select(spec: SweepSpec, runs: list[Run] | None = None) -> dict:
    """Choose each method's point from its dev runs; write and return the selection record."""
    if not has_search(spec):  # one point per method: nothing to choose, no dev runs needed
        chosen = {method: search_points(m)[0] for method, m in spec.methods.items()}
        record = {"sweep": spec.name, "suite": spec.suite, "criterion": "no search: one point per method",
                  "space": {method: [point] for method, point in chosen.items()}, "dev_scores": {},
                  "chosen": chosen}
        atomic_write_json(spec.root / SELECTION_FILE, record)
        return record
    runs = runs if runs is not None else expand(spec, "dev")
    missing = [run.key for run in runs if not (run_dir(run.config) / "result.json").is_file()]
    if missing:
        raise FileNotFoundError(f"sweep {spec.name}: {len(missing)} dev run(s) have no result yet, e.g. {missing[:3]}")
    scores: dict[str, dict[str, dict]] = {}
    for run in runs:
        path = run_dir(run.config) / "result.json"
        score, per_task = dev_score(json.loads(path.read_text()), str(path))
        entry = scores.setdefault(run.method, {}).setdefault(run.point, {"seeds": {}, "per_task": {}})
        entry["seeds"][str(run.seed)] = score
        entry["per_task"][str(run.seed)] = per_task
    chosen, space = {}, {}
    for method, method_spec in spec.methods.items():
        points = search_points(method_spec)
        space[method] = points
        by_label = scores.get(method, {})
        for point_scores in by_label.values():
            point_scores["score"] = statistics.fmean(point_scores["seeds"].values())
        best = max(points, key=lambda p: (by_label[point_label(p)]["score"], -points.index(p)))
        chosen[method] = best
    record = {"sweep": spec.name, "suite": spec.suite,
              "criterion": "mean over dev tasks of the primary metric, mean over seeds; ties: earlier point",
              "space": space, "dev_scores": scores, "chosen": chosen}
    atomic_write_json(spec.root / SELECTION_FILE, record)
    return record


def read_selection(spec: SweepSpec) -> dict[str, dict]:
    path = Path(spec.root) / SELECTION_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the dev stage and `reft select` first")
    return json.loads(path.read_text())["chosen"]
