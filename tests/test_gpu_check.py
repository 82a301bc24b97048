"""benchmarks/perf/gpu_check.py (issue 17.5): the CPU dry run of the GPU check (a 2-layer model, the
same code path: floor, LoReFT, DiReFT, LoRA, DoRA steps, plain vs intervened generation), and the
refusal to run the full check without CUDA."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "perf"))
import gpu_check  # noqa: E402


def test_dry_run_measures_every_method_and_generation(tmp_path):
    assert gpu_check.main(["--dry-run", "--steps", "1", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "gpu_check_dry_run.json").read_text())
    results = record["results"]
    assert set(results) == {"floor", "loreft", "direft", "lora", "dora", "generation"}
    assert all(results[name]["seconds"] > 0 for name in ("floor", "loreft", "direft", "lora", "dora"))
    assert 0 < results["loreft"]["trainable"] < results["lora"]["trainable"]
    assert set(results["generation"]) == {"plain", "reft"}
    assert "| loreft |" in (tmp_path / "gpu_check_dry_run.md").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_the_full_check_fails_fast_without_cuda(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
