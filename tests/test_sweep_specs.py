"""Every shipped sweep spec expands into valid runs (dev and final), and every preset exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.sweeps.pipeline import preset_path
from benchmarks.sweeps.spec import expand, floor_runs, has_search, load_sweep, search_points

SPECS = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_shipped_sweep_expands(path):
    spec = load_sweep(path)
    if has_search(spec):
        assert all(run.config.data.eval_split != "test" for run in expand(spec, "dev"))
    final = expand(spec, "final", {name: search_points(m)[0] for name, m in spec.methods.items()})
    assert final and all(run.config.suite == spec.suite for run in final + floor_runs(spec))
    assert {run.config.data.eval_split for run in final} == {"test" if spec.suite != "instruction" else "eval"}


@pytest.mark.parametrize("suite", ["commonsense", "arithmetic", "instruction", "glue"])
def test_every_suite_has_cpu_and_paper_presets(suite):
    assert preset_path(suite, "cpu").is_file() and preset_path(suite, "paper").is_file()
    with pytest.raises(ValueError, match="preset must be one of"):
        preset_path(suite, "gpu")
