"""Dev-set-only hyperparameter selection (the paper's protocol, enforced).

For each method, every search point's dev runs are scored by the mean over their eval tasks of
each task's primary metric, averaged over seeds; the highest wins (ties: the earlier point in the
spec). The selector reads only dev-stage results and refuses any task record whose split is
``test``. The record (space, every dev score, the choice) goes to ``<sweep>/selection.json``.

Dev-only is checked by content, not by split names (``check_dev_isolation``): the rows every dev
run scores (each row identified by the digest of the file it comes from and its row number) are
compared with the rows every final run reports, and any overlap refuses the sweep, naming the task,
the runs and the count. So a dev stage on GLUE's whole validation set (which holds the reported
half), or a task whose dev split points at the test file (or a copy of it), is refused. One overlap
is the paper's own and is allowed with a warning: under ``data.resplit: per-seed`` each seed draws
its own dev/test halves, so the seed-42 dev half that selects hyperparameters holds rows of the
seed-43 and -44 test halves (``data.resplit: fixed`` avoids it).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.experiments.identity import is_stale, row_keys
from benchmarks.experiments.examples import eval_examples
from benchmarks.experiments.run import run_dir
from reft.files import atomic_write_json

from benchmarks.sweeps.spec import Run, SweepSpec, experiment, expand, floor_runs, has_search, point_labels, search_points

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


def run_seconds(result: dict) -> float:
    """What one run cost: its training plus its scoring, in seconds of wall time."""
    return float(result["train"].get("seconds") or 0.0) + sum(float(t.get("seconds") or 0.0)
                                                               for t in result["tasks"].values())


class DevOverlap(ValueError):
    """A dev run would score rows that the final stage reports."""


def _scored_rows(config, cache: dict) -> dict[str, set[str]]:
    """{task: row keys} of the rows a run scores."""
    split = config.data.eval_split
    rows = {}
    for name in config.data.eval:
        key = (name, split, config.data.data_root, config.data.resplit,
               config.seed if config.data.resplit == "per-seed" else None, config.data.eval_limit)
        if key not in cache:
            task, examples = eval_examples(config, name, split)
            cache[key] = row_keys(task, "validation" if config.data.resplit else split, examples,
                                  config.data.data_root)
        rows[name] = cache[key]
    return rows


def check_dev_isolation(spec: SweepSpec, dev_runs: list[Run] | None = None, log=print) -> None:
    """Refuse (``DevOverlap``) a dev stage that scores any row the final stage reports."""
    dev_runs = dev_runs if dev_runs is not None else expand(spec, "dev")
    final = [(method, seed, experiment(spec, "final", method, search_points(m)[0], seed))
             for method, m in spec.methods.items() for seed in spec.final.seeds]
    final += [(run.method, run.seed, run.config) for run in floor_runs(spec)]
    cache: dict = {}
    reported = [(method, seed, config, _scored_rows(config, cache)) for method, seed, config in final]
    paper_overlaps = 0
    for run in dev_runs:
        for task, rows in _scored_rows(run.config, cache).items():
            for method, seed, config, final_rows in reported:
                shared = rows & final_rows.get(task, set())
                if not shared:
                    continue
                per_seed = run.config.data.resplit == config.data.resplit == "per-seed"
                if per_seed and seed != run.seed:
                    paper_overlaps = max(paper_overlaps, len(shared))
                    continue
                raise DevOverlap(f"sweep {spec.name}: dev run {run.key} scores {len(shared)} row(s) of {task} that "
                                 f"the final stage reports ({method}, seed {seed}); select on rows the final stage "
                                 "never scores (a dev split, or data.resplit's dev half)")
    if paper_overlaps:
        log(f"sweep {spec.name}: warning: with data.resplit=per-seed (the paper's protocol) the dev half that "
            f"selects shares up to {paper_overlaps} rows with other seeds' reported test halves; "
            "data.resplit=fixed keeps them apart")


def select(spec: SweepSpec, runs: list[Run] | None = None, log=print) -> dict:
    """Choose each method's point from its dev runs; write and return the selection record. Where
    the best dev score is shared by several points (e.g. every point scored 0.0), the earlier one
    is chosen as always, but the record lists the tie (``ties``) and a warning says so: the dev
    set did not tell the points apart."""
    if not has_search(spec):  # one point per method: nothing to choose, no dev runs needed
        chosen = {method: search_points(m)[0] for method, m in spec.methods.items()}
        record = {"sweep": spec.name, "suite": spec.suite, "criterion": "no search: one point per method",
                  "space": {method: [point] for method, point in chosen.items()}, "dev_scores": {},
                  "chosen": chosen, "budget": {method: {"trials": 0, "seconds": 0.0} for method in chosen}}
        return write_selection(spec, record)
    runs = runs if runs is not None else expand(spec, "dev")
    check_dev_isolation(spec, runs)
    missing = [run.key for run in runs if not (run_dir(run.config) / "result.json").is_file()]
    if missing:
        raise FileNotFoundError(f"sweep {spec.name}: {len(missing)} dev run(s) have no result yet, e.g. {missing[:3]}")
    stale = [run.key for run in runs if is_stale(run.config, run_dir(run.config))]
    if stale:
        raise ValueError(f"sweep {spec.name}: {len(stale)} dev run(s) hold results of another configuration "
                         f"(stale), e.g. {stale[:3]}; rerun them (reft sweep --stage dev --overwrite-stale)")
    scores: dict[str, dict[str, dict]] = {}
    budget: dict[str, dict] = {}
    for run in runs:
        path = run_dir(run.config) / "result.json"
        result = json.loads(path.read_text())
        score, per_task = dev_score(result, str(path))
        spent = budget.setdefault(run.method, {"trials": 0, "seconds": 0.0})
        spent["trials"] += 1
        spent["seconds"] = round(spent["seconds"] + run_seconds(result), 1)
        entry = scores.setdefault(run.method, {}).setdefault(run.point, {"seeds": {}, "per_task": {}})
        entry["seeds"][str(run.seed)] = score
        entry["per_task"][str(run.seed)] = per_task
    chosen, space, ties = {}, {}, {}
    for method, method_spec in spec.methods.items():
        points = search_points(method_spec)
        space[method] = points
        by_label = scores.get(method, {})
        for point_scores in by_label.values():
            point_scores["score"] = statistics.fmean(point_scores["seeds"].values())
        labels = point_labels(points)
        best = max(points, key=lambda p: (by_label[labels[points.index(p)]]["score"], -points.index(p)))
        chosen[method] = best
        top = by_label[labels[points.index(best)]]["score"]
        tied = [labels[i] for i in range(len(points)) if by_label[labels[i]]["score"] == top]
        if len(tied) > 1:
            ties[method] = tied
            log(f"sweep {spec.name}: warning: {method}: {len(tied)} of {len(points)} points tie at the best dev "
                f"score {top:.4g} ({', '.join(tied)}); the earlier one is chosen, but the dev set does not tell "
                "them apart (widen the grid, train longer or score more dev rows)")
    record = {"sweep": spec.name, "suite": spec.suite,
              "criterion": "mean over dev tasks of the primary metric, mean over seeds; ties: earlier point",
              "space": space, "dev_scores": scores, "chosen": chosen, "budget": budget,
              **({"ties": ties} if ties else {})}
    return write_selection(spec, record)


def write_selection(spec: SweepSpec, record: dict) -> dict:
    """Write ``record`` as the sweep's selection, over the choices already there for methods this
    (``--methods``-restricted) invocation does not hold: a sweep run part by part keeps them all."""
    path = spec.root / SELECTION_FILE
    if path.is_file():
        record = merged_selection(json.loads(path.read_text()), record, spec.methods)
    atomic_write_json(path, record)
    return record


def merged_selection(old: dict, new: dict, methods=None) -> dict:
    """``new``, keeping ``old``'s per-method entries (chosen, space, dev_scores, budget, ties) of the
    methods ``new`` does not cover (``methods``, by default those ``new`` chose), for the same sweep
    (another sweep: ``new`` alone). A covered method's entries are ``new``'s only."""
    if old.get("sweep") != new.get("sweep"):
        return new
    covered = set(methods if methods is not None else new.get("chosen", {}))
    merged = {**old, **new}
    for key, entries in old.items():
        if not isinstance(entries, dict):
            continue
        others = {m: v for m, v in entries.items() if m not in covered}
        if others or key in new:
            merged[key] = dict(sorted({**others, **new.get(key, {})}.items()))
        else:
            del merged[key]
    return merged


def read_selection(spec: SweepSpec) -> dict[str, dict]:
    path = Path(spec.root) / SELECTION_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the dev stage and `reft select` first")
    return json.loads(path.read_text())["chosen"]
