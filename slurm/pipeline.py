"""A suite from nothing to tables: dev stage → selection → final stage (+ floors) → results/raw →
tables and plots. ``make reproduce-<suite>`` runs ``reproduce``.

Presets: ``benchmarks/sweeps/<suite>_cpu.yaml`` (a small real model on subsets of the real data,
so the command always does something real on a laptop) and ``<suite>_paper.yaml`` (the paper's
models and settings; needs GPUs). ``auto`` picks ``paper`` when a GPU is present, else ``cpu``.
"""

from __future__ import annotations

from pathlib import Path

from .collect import RAW, collect_result, collect_sweep
from .launch import launch
from .select import read_selection, select
from .sweep import SweepSpec, expand, floor_runs, has_search, load_sweep

SWEEPS = Path(__file__).resolve().parents[1] / "benchmarks" / "sweeps"
PRESETS = ("auto", "cpu", "paper")


def run_stages(spec: SweepSpec, stage: str = "all", wait: bool = True, log=print) -> None:
    """Launch ``dev``, ``final`` or ``all`` (dev, select, final; dev skipped without a search)."""
    if stage in ("dev", "all") and has_search(spec):
        runs = expand(spec, "dev")
        log(f"sweep {spec.name}: dev stage, {len(runs)} runs ({spec.executor.kind})")
        launch(spec, runs, wait=wait or stage == "all")
    if stage == "all":
        log(f"selected on dev scores only: {select(spec)['chosen']}")
    if stage in ("final", "all"):
        runs = expand(spec, "final", read_selection(spec)) + floor_runs(spec)
        log(f"sweep {spec.name}: final stage, {len(runs)} runs ({spec.executor.kind})")
        launch(spec, runs, wait=wait)


def preset_path(suite: str, preset: str = "auto") -> Path:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if preset == "auto":
        import torch

        preset = "paper" if torch.cuda.is_available() else "cpu"
    path = SWEEPS / f"{suite}_{preset}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SWEEPS.glob("*.yaml"))
        raise FileNotFoundError(f"no {preset} preset for suite {suite!r} ({path}); presets: {known}")
    return path


def reproduce(suite: str, preset: str = "auto", overrides: list[str] | None = None,
              raw: Path = RAW, log=print) -> Path:
    """Run a suite's preset end to end and regenerate its tables; returns the table's path."""
    from benchmarks.plots import write_plots
    from benchmarks.tables import write_tables

    spec = load_sweep(preset_path(suite, preset), overrides)
    run_stages(spec, "all", log=log)
    collected = collect_sweep(spec.root, "final", raw)
    log(f"{len(collected)} results in {raw / spec.suite}")
    tables = raw.parent / "tables"
    write_tables(raw, tables)
    write_plots(raw, raw.parent / "plots")
    table = tables / f"{spec.suite}.md"
    log(f"table: {table}")
    return table


__all__ = ["run_stages", "reproduce", "preset_path", "collect_result"]
