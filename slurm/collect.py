"""Copy finished runs' ``result.json`` into ``results/raw/<suite>/<run name>__seed<seed>.json``, the
source of truth that tables, plots and notebooks are built from (and that the repo commits:
run directories with checkpoints and predictions stay out of git)."""

from __future__ import annotations

import json
from pathlib import Path

from reft.io import atomic_write_json

RAW = Path(__file__).resolve().parents[1] / "results" / "raw"


def collect_result(result_path: str | Path, out: str | Path = RAW) -> Path:
    """Copy one run's result (a ``result.json`` or its run directory) into ``out``."""
    path = Path(result_path)
    path = path / "result.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the run has not finished")
    result = json.loads(path.read_text())
    target = Path(out) / result["suite"] / f"{result['name']}__seed{result['seed']}.json"
    atomic_write_json(target, result)
    return target


def collect_sweep(root: str | Path, stage: str = "final", out: str | Path = RAW) -> list[Path]:
    """Every finished run of one stage of a sweep (``<sweep root>/<stage>/*/seed*/result.json``),
    and the sweep's selection record (``results/selections/<sweep>.json``: space, dev scores, choice)."""
    root = Path(root)
    if (root / "selection.json").is_file():
        record = json.loads((root / "selection.json").read_text())
        atomic_write_json(Path(out).parent / "selections" / f"{root.name}.json", record)
    return [collect_result(path, out) for path in sorted(Path(root, stage).glob("*/seed*/result.json"))]
