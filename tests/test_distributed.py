"""Data parallelism on CPU: two processes on the gloo backend train to the same parameters and
losses as one process seeing the same global batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("ddp_worker.py")


def run(out: Path, method: str, processes: int, batch_size: int) -> tuple[dict, list]:
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               str(WORKER), str(out), method, str(batch_size)] if processes > 1 else \
        [sys.executable, str(WORKER), str(out), method, str(batch_size)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return load_file(out / "params.safetensors"), json.loads((out / "losses.json").read_text())


@pytest.mark.parametrize("method", ["loreft", "lora"])
def test_two_gloo_processes_match_one_process(method, tmp_path):
    single, single_losses = run(tmp_path / "one", method, processes=1, batch_size=4)
    double, double_losses = run(tmp_path / "two", method, processes=2, batch_size=2)
    assert len(single_losses) == len(double_losses) == 4  # 2 epochs · ⌊4 global batches / 2⌋
    assert double_losses == pytest.approx(single_losses, rel=1e-5)
    assert single.keys() == double.keys()
    for name in single:
        torch.testing.assert_close(double[name], single[name], rtol=1e-4, atol=1e-5, msg=name)


def test_reft_train_under_torchrun_writes_one_run(tmp_path):
    """`reft train` in two processes: both train, the first evaluates and writes the run."""
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
               "benchmarks.cli", "train", str(root / "benchmarks/experiments/commonsense/smollm2_cpu_loreft.yaml"),
               f"output_root={tmp_path}", "data.train=[commonsense/arc_easy]", "data.train_limit=8",
               "train.batch_size=2", "train.grad_accum=1", "train.epochs=1", "data.eval_limit=4",
               "data.eval=[commonsense/arc_easy]", "eval.max_new_tokens=4", "wandb.mode=disabled"]
    completed = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=root,
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((tmp_path / "commonsense-smollm2-cpu-loreft/seed42/result.json").read_text())
    assert result["environment"]["processes"] == 2
    assert result["train"]["steps"] == 2  # 8 examples / (2 per process · 2 processes)
    assert result["tasks"]["commonsense/arc_easy"]["n"] == 4
