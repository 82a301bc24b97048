"""A suite from nothing to tables: dev stage → selection → final stage (+ floors) → results/raw →
tables and plots. ``make reproduce-<suite>`` runs ``reproduce``.

Presets: ``benchmarks/sweeps/<suite>_cpu.yaml`` (a small real model on subsets of the real data,
so the command always does something real on a laptop) and ``<suite>_paper.yaml`` (the paper's
models and settings; needs GPUs). ``auto`` picks ``paper`` when a GPU is present, else ``cpu``.

``quick`` is the documented subset a fresh CPU machine finishes within the hour: the dev stage is
replaced by the committed selection record (``results/selections/<sweep>.json``: the dev scores
and the choice the full run made), and the final stage runs the first seed only. Where committed
results of the same runs exist, it prints how far the rerun lands from them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from benchmarks.sweeps.collect import RAW, collect_result, collect_sweep
from benchmarks.sweeps.launch import launch
from benchmarks.sweeps.reuse import reuse_dev_training
from benchmarks.sweeps.select import SELECTION_FILE, check_dev_isolation, read_selection, select
from benchmarks.sweeps.spec import Run, SweepSpec, expand, experiment, floor_runs, has_search, load_sweep

SWEEPS = Path(__file__).resolve().parent
PRESETS = ("auto", "cpu", "paper")


def run_stages(spec: SweepSpec, stage: str = "all", wait: bool = True, log=print,
               overwrite_stale: bool = False) -> None:
    """Launch ``dev``, ``final`` or ``all`` (dev, select, final; dev skipped without a search). A
    final run that would retrain what a finished dev run trained reuses it (``benchmarks.sweeps.reuse``). The dev
    stage starts only if no row it scores is a row the final stage reports (``check_dev_isolation``)."""
    if spec.tuning is not None:  # an equal-budget Optuna search stands for the grid's dev stage
        _run_search_stages(spec, stage, wait, log, overwrite_stale)
        return
    if stage in ("dev", "all") and has_search(spec):
        runs = expand(spec, "dev")
        check_dev_isolation(spec, runs, log=log)
        log(f"sweep {spec.name}: dev stage, {len(runs)} runs ({spec.executor.kind})")
        launch(spec, runs, wait=wait or stage == "all", overwrite_stale=overwrite_stale, log=log)
    if stage == "all":
        log(f"selected on dev scores only: {select(spec, log=log)['chosen']}")
    if stage in ("final", "all"):
        # seed-major (stable) order: a final stage cut short leaves whole seeds, which tables can show
        runs = sorted(expand(spec, "final", read_selection(spec)) + floor_runs(spec), key=lambda run: run.seed)
        log(f"sweep {spec.name}: final stage, {len(runs)} runs ({spec.executor.kind})")
        if has_search(spec):
            reuse_dev_training(expand(spec, "dev"), runs, log=log)
        launch(spec, runs, wait=wait, overwrite_stale=overwrite_stale, log=log)


def _run_search_stages(spec: SweepSpec, stage: str, wait: bool, log, overwrite_stale: bool) -> None:
    from benchmarks.sweeps.search import run_search
    from benchmarks.sweeps.search_record import select_from_search

    if stage in ("dev", "all"):
        seed = spec.dev.seeds[0]
        representatives = [Run("dev", method, "search", seed, experiment(spec, "dev", method, {}, seed))
                           for method in spec.methods]  # what any trial scores: the same dev sets
        check_dev_isolation(spec, representatives, log=log)
        run_search(spec, log=log)
    if stage == "all":
        log(f"selected on dev scores only (best trial per method): {select_from_search(spec, log=log)['chosen']}")
    if stage in ("final", "all"):
        chosen = read_selection(spec)
        runs = sorted(expand(spec, "final", chosen) + floor_runs(spec), key=lambda run: run.seed)
        log(f"sweep {spec.name}: final stage, {len(runs)} runs ({spec.executor.kind})")
        # the best trial's own run: its point in the search space's key order (the run directory's name)
        trial_point = {m: {k: chosen[m][k] for k in spec.methods[m].search if k in chosen[m]} for m in chosen}
        best_trials = [Run("dev", run.method, run.point, run.seed, experiment(spec, "dev", run.method,
                                                                                trial_point[run.method], run.seed))
                       for run in runs if run.method in chosen and run.seed == spec.dev.seeds[0]]
        reuse_dev_training(best_trials, runs, log=log)  # the best trial trained seed 42's final run already
        launch(spec, runs, wait=wait, overwrite_stale=overwrite_stale, log=log)


def preset_path(suite: str, preset: str = "auto", sweeps: Path = SWEEPS) -> Path:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if preset == "auto":
        import torch

        preset = "paper" if torch.cuda.is_available() else "cpu"
    path = Path(sweeps) / f"{suite}_{preset}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(sweeps).glob("*.yaml"))
        raise FileNotFoundError(f"no {preset} preset for suite {suite!r} ({path}); presets: {known}")
    return path


def primary_scores(result: dict) -> dict[str, float]:
    """``{task: primary metric}`` of one result record."""
    return {task: record["metrics"][record["primary_metric"]] for task, record in result["tasks"].items()}


def compare_with_committed(committed: dict[str, dict], collected: list[Path]) -> list[str]:
    """One line per rerun result that replaced a committed one: the largest per-task difference."""
    lines = []
    for path in collected:
        if path.name not in committed:
            continue
        old, new = committed[path.name], primary_scores(json.loads(path.read_text()))
        diffs = {task: new[task] - old[task] for task in old.keys() & new.keys()}
        if diffs:
            task = max(diffs, key=lambda t: abs(diffs[t]))
            lines.append(f"  {path.stem}: mean {sum(new.values()) / len(new):.4f} "
                         f"(committed {sum(old.values()) / len(old):.4f}); largest task difference "
                         f"{diffs[task]:+.4f} ({task})")
    return lines


def results_home(raw: Path, spec: SweepSpec) -> tuple[Path, str]:
    """Where the sweep's committed results live, and the table-name prefix there: ``raw`` itself, or
    the kept preset folder (``previous/<preset>`` or ``attempts/<preset>`` beside ``raw``) holding
    results of this sweep's runs, since a preset the suite table replaced must not land in ``raw``
    beside the table's own rows (two configurations of one method in one cell)."""
    from benchmarks.report.attempts import kept_presets

    ours = f"{spec.name}-final-"
    if any(p.name.startswith(ours) for p in (raw / spec.suite).glob("*.json")):
        return raw, ""
    for folder in kept_presets(raw.parent):
        if any(p.name.startswith(ours) for p in (folder / spec.suite).glob("*.json")):
            return folder, f"{folder.name}-"
    return raw, ""


def reproduce(suite: str, preset: str = "auto", overrides: list[str] | None = None,
              raw: Path = RAW, log=print, quick: bool = False, sweeps: Path = SWEEPS) -> Path:
    """Run a suite's preset end to end and regenerate its tables; returns the table's path.
    ``quick``: the committed selection instead of the dev stage, and the first seed only."""
    from benchmarks.report.plots import write_plots
    from benchmarks.report.publish import write_tables

    spec = load_sweep(preset_path(suite, preset, sweeps), overrides)
    stage = "all"
    if quick:
        spec.final.seeds = spec.final.seeds[:1]
        committed_selection = raw.parent / "selections" / f"{spec.name}.json"
        if (spec.root / SELECTION_FILE).is_file():
            stage = "final"
            log(f"quick: final stage, seed {spec.final.seeds[0]}, with the selection in {spec.root / SELECTION_FILE}")
        elif committed_selection.is_file():
            spec.root.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(committed_selection, spec.root / SELECTION_FILE)
            stage = "final"
            log(f"quick: final stage, seed {spec.final.seeds[0]}, with the committed selection {committed_selection}")
        else:
            log(f"quick: no committed selection ({committed_selection}); running the dev stage, then seed "
                f"{spec.final.seeds[0]}")
    home, prefix = results_home(raw, spec)
    committed = {path.name: primary_scores(json.loads(path.read_text()))
                 for path in (home / spec.suite).glob("*.json")}
    run_stages(spec, stage, log=log)
    collected = collect_sweep(spec.root, "final", home, selections=raw.parent / "selections")
    log(f"{len(collected)} results in {home / spec.suite}")
    comparison = compare_with_committed(committed, collected)
    if comparison:
        log("reruns of committed results (primary metric):")
        for line in comparison:
            log(line)
    tables = raw.parent / "tables"
    write_tables(home, tables, raw.parent / "selections", prefix=prefix)
    if home == raw:  # a kept preset's folder has tables only
        write_plots(raw, raw.parent / "plots")
    table = tables / f"{prefix}{spec.suite}.md"
    log(f"table: {table}")
    return table


__all__ = ["run_stages", "reproduce", "results_home", "preset_path", "collect_result", "compare_with_committed"]
