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


def run(out: Path, method: str, processes: int, batch_size: int, *options: str) -> tuple[dict, list]:
    out.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               str(WORKER), str(out), method, str(batch_size), *options] if processes > 1 else \
        [sys.executable, str(WORKER), str(out), method, str(batch_size), *options]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    if not (out / "params.safetensors").is_file():  # a run that crashed on purpose
        return {}, []
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


@pytest.mark.parametrize("method", ["lora", "full"])
def test_two_fsdp_sharded_processes_match_one_process(method, tmp_path):
    """FSDP2 (train.fsdp) on gloo: every block and the model sharded across two processes; the
    parameters, gathered whole, and the losses equal one unsharded process on the same batches."""
    single, single_losses = run(tmp_path / "one", method, processes=1, batch_size=4)
    sharded, sharded_losses = run(tmp_path / "two", method, 2, 2, "fsdp")
    assert sharded_losses == pytest.approx(single_losses, rel=1e-5)
    assert single.keys() == sharded.keys() and len(single) > 0
    for name in single:
        torch.testing.assert_close(sharded[name], single[name], rtol=1e-4, atol=1e-5, msg=name)


def test_a_sharded_run_resumes_from_its_checkpoint_exactly(tmp_path):
    """FSDP2 checkpoints hold whole tensors (gathered by every process, written by the first); a
    crashed sharded run relaunched resumes from them and ends where an uninterrupted run does."""
    whole, whole_losses = run(tmp_path / "whole", "full", 2, 2, "fsdp")
    crashed = tmp_path / "crashed"
    assert run(crashed, "full", 2, 2, "fsdp", "crash-at=5") == ({}, [])  # after 2 of 4 optimizer steps
    assert sorted(p.name for p in (crashed / "train" / "checkpoint").iterdir()) == ["step-00000001",
                                                                                    "step-00000002"]
    resumed, resumed_losses = run(crashed, "full", 2, 2, "fsdp")
    assert json.loads((crashed / "resumed_from.json").read_text()) == 2
    assert resumed_losses == pytest.approx(whole_losses, rel=1e-6)
    for name in whole:
        torch.testing.assert_close(resumed[name], whole[name], rtol=1e-5, atol=1e-6, msg=name)


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


def test_reft_train_with_fsdp_under_torchrun_evaluates_an_unsharded_copy(tmp_path):
    """`reft train ... train.fsdp=true` in two processes: LoRA on SmolLM2 trains sharded; the first
    process gathers the trained weights into an unsharded copy, evaluates and saves it once."""
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
               "benchmarks.cli", "train", str(root / "benchmarks/experiments/commonsense/smollm2_cpu_lora.yaml"),
               f"output_root={tmp_path}", "data.train=[commonsense/arc_easy]", "data.train_limit=8",
               "train.batch_size=2", "train.grad_accum=1", "train.epochs=1", "data.eval_limit=4", "train.fsdp=true",
               "data.eval=[commonsense/arc_easy]", "eval.max_new_tokens=4", "wandb.mode=disabled"]
    completed = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=root,
                               capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    directory = tmp_path / "commonsense-smollm2-cpu-lora/seed42"
    result = json.loads((directory / "result.json").read_text())
    assert result["environment"]["processes"] == 2 and result["config"]["train"]["fsdp"] is True
    assert result["train"]["steps"] == 2 and result["tasks"]["commonsense/arc_easy"]["n"] == 4
    saved = load_file(next((directory / "model").rglob("*.safetensors")))
    assert saved and all(not t.isnan().any() for t in saved.values())


def test_fsdp_is_refused_for_reft_before_anything_is_created(tmp_path):
    from benchmarks.experiments.config import load_experiment
    from benchmarks.experiments.run import RunRefused, run_experiment

    config = load_experiment("benchmarks/experiments/glue/minilm_cpu_loreft.yaml",
                             [f"output_root={tmp_path}", "train.fsdp=true", "wandb.mode=disabled"])
    with pytest.raises(RunRefused, match="ReFT's interventions are a few thousand numbers and train data-parallel"):
        run_experiment(config)
    assert not any(tmp_path.iterdir())
