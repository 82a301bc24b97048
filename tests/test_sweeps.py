"""Sweeps: expansion, skip-completed, dev-only selection, kill-and-resume equality, and a real
SLURM array job (through submitit on a local single-node cluster)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from benchmarks.experiments.run import run_dir
from benchmarks.sweeps.launch import launch, status
from benchmarks.sweeps.reuse import reuse_dev_training, training_identity
from benchmarks.sweeps.select import read_selection, select
from benchmarks.sweeps.spec import RunsFailed, expand, floor_runs, load_sweep, point_label, restrict_methods

REPO = Path(__file__).resolve().parents[1]
TINY = ["data.train=[commonsense/arc_easy]", "data.train_limit=8", "train.max_steps=3", "train.batch_size=4",
        "train.grad_accum=1", "train.save_every=1", "data.eval_limit=4", "eval.max_new_tokens=4",
        "wandb.mode=disabled", "method.layers=[3,9]"]


def write_spec(tmp_path, name="tiny", grid=None, executor="debug", extra=None) -> Path:
    spec = {
        "name": name, "suite": "commonsense", "output_root": str(tmp_path / "sweeps"),
        "dev": {"overrides": ["data.eval=[commonsense/arc_easy]", "data.eval_split=dev"], "seeds": [42]},
        "final": {"overrides": ["data.eval=[commonsense/arc_easy]"], "seeds": [42, 43]},
        "methods": {"loreft": {"config": "benchmarks/experiments/commonsense/smollm2_cpu_loreft.yaml",
                               "grid": grid or {"train.lr": [1.0e-3, 3.0e-2]}, "overrides": TINY + (extra or [])}},
        "executor": {"kind": executor, "parallelism": 2, "timeout_min": 10},
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_expansion_names_points_and_seeds(tmp_path):
    spec = load_sweep(write_spec(tmp_path, grid={"train.lr": [1.0e-3, 3.0e-3], "method.rank": [4, 8]}))
    runs = expand(spec, "dev")
    assert [r.point for r in runs] == ["lr1e-03_rank4", "lr1e-03_rank8", "lr3e-03_rank4", "lr3e-03_rank8"]
    first = runs[0].config
    assert (first.train.lr, first.method["rank"], first.seed, first.data.eval_split) == (1e-3, 4, 42, "dev")
    assert run_dir(first) == tmp_path / "sweeps/tiny/dev/tiny-dev-loreft-lr1e-03_rank4/seed42"
    final = expand(spec, "final", {"loreft": {"train.lr": 3.0e-3, "method.rank": 8}})
    assert [(r.point, r.seed) for r in final] == [("lr3e-03_rank8", 42), ("lr3e-03_rank8", 43)]
    assert final[0].config.data.eval_split == "test"
    with pytest.raises(ValueError, match="no selection for method 'loreft'"):
        expand(spec, "final", {})
    assert point_label({}) == "default"


def test_restricting_a_sweep_to_some_methods(tmp_path):
    spec = load_sweep(REPO / "benchmarks/sweeps/glue_cpu.yaml")
    assert list(restrict_methods(spec, ["lora_mrpc", "loreft_rte"]).methods) == ["lora_mrpc", "loreft_rte"]
    assert {run.method for run in expand(spec, "dev")} == {"lora_mrpc", "loreft_rte"}
    with pytest.raises(ValueError, match=r"no method\(s\) \['loreft'\]; its methods: \['lora_mrpc'"):
        restrict_methods(spec, ["loreft"])


def test_floor_runs_come_with_a_restricted_sweep_only_when_named():
    """Two launchers beside each other (--methods loreft, --methods lora) must not both claim the
    untrained floor run: it comes with the whole spec, or with --methods ...,floors."""
    path = REPO / "benchmarks/sweeps/commonsense_cpu_5k.yaml"
    assert [run.method for run in floor_runs(load_sweep(path))] == ["none"]
    assert floor_runs(restrict_methods(load_sweep(path), ["loreft"])) == []
    both = restrict_methods(load_sweep(path), ["loreft", "floors"])
    assert list(both.methods) == ["loreft"] and [run.method for run in floor_runs(both)] == ["none"]
    assert floor_runs(restrict_methods(load_sweep(path), ["floors"])) and not restrict_methods(
        load_sweep(path), ["floors"]).methods


def test_dev_stage_may_not_score_the_test_split(tmp_path):
    path = write_spec(tmp_path)
    spec = yaml.safe_load(path.read_text())
    spec["dev"]["overrides"] = ["data.eval=[commonsense/arc_easy]"]  # eval_split stays "test"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ValueError, match="would score the test split"):
        expand(load_sweep(path), "dev")


def fake_result(directory: Path, split: str, accuracy: float) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "result.json").write_text(json.dumps({"train": {"seconds": 10.0}, "tasks": {"commonsense/arc_easy": {
        "split": split, "primary_metric": "accuracy", "metrics": {"accuracy": accuracy}, "seconds": 2.0}}}))


def test_selection_reads_dev_scores_only(tmp_path):
    spec = load_sweep(write_spec(tmp_path))
    runs = expand(spec, "dev")
    with pytest.raises(FileNotFoundError, match="2 dev run"):
        select(spec, runs)
    fake_result(run_dir(runs[0].config), "dev", 0.40)
    fake_result(run_dir(runs[1].config), "dev", 0.55)
    record = select(spec, runs)
    assert record["chosen"] == {"loreft": {"train.lr": 3.0e-2}} == read_selection(spec)
    assert record["dev_scores"]["loreft"]["lr1e-03"]["score"] == 0.40
    assert record["budget"] == {"loreft": {"trials": 2, "seconds": 24.0}}  # dev runs, train + eval seconds
    assert json.loads((spec.root / "selection.json").read_text())["space"]["loreft"] == [
        {"train.lr": 1e-3}, {"train.lr": 3e-2}]
    fake_result(run_dir(runs[1].config), "test", 0.99)  # a leaked test score is refused
    with pytest.raises(ValueError, match="scored on the test split"):
        select(spec, runs)


def test_a_selection_among_tied_dev_scores_says_so(tmp_path):
    spec = load_sweep(write_spec(tmp_path))
    runs = expand(spec, "dev")
    for run in runs:
        fake_result(run_dir(run.config), "dev", 0.0)  # nothing learnt the dev format
    said = []
    record = select(spec, runs, log=said.append)
    assert record["chosen"] == {"loreft": {"train.lr": 1.0e-3}} and record["ties"] == {"loreft": ["lr1e-03", "lr3e-02"]}
    assert len(said) == 1 and "loreft: 2 of 2 points tie at the best dev score 0" in said[0]
    fake_result(run_dir(runs[1].config), "dev", 0.5)
    said.clear()
    assert "ties" not in select(spec, runs, log=said.append) and said == []


def test_debug_sweep_end_to_end_skips_completed_runs(tmp_path):
    spec = load_sweep(write_spec(tmp_path, grid={"train.lr": [1.0e-3]}))
    runs = expand(spec, "dev")
    jobs = launch(spec, runs)
    assert len(jobs) == 1 and all(r.state == "done" for r in status(spec, runs))
    result = json.loads((run_dir(runs[0].config) / "result.json").read_text())
    assert result["tasks"]["commonsense/arc_easy"]["split"] == "dev" and result["train"]["steps"] == 3
    assert launch(spec, runs) == []  # nothing left to do
    chosen = select(spec)["chosen"]
    final = expand(spec, "final", chosen)
    assert [s.state for s in status(spec, final)] == ["pending", "pending"]

    # the first final seed trains exactly what the dev run trained: it only evaluates
    assert reuse_dev_training(runs, final, log=lambda _: None) == [final[0]]
    launch(spec, final[:1])
    reused = json.loads((run_dir(final[0].config) / "result.json").read_text())
    assert reused["train"]["reused_from"] == str(run_dir(runs[0].config))
    assert reused["train"]["losses"] == result["train"]["losses"]
    assert reused["tasks"]["commonsense/arc_easy"]["split"] == "test"
    assert reuse_dev_training(runs, final, log=lambda _: None) == []  # done, and seed 43 never trained
    other = dataclasses.replace(final[0].config, train=dataclasses.replace(final[0].config.train, lr=2e-3))
    assert training_identity(other) != training_identity(runs[0].config)
    scoring = dataclasses.replace(final[0].config, data=dataclasses.replace(final[0].config.data, eval_limit=1))
    assert training_identity(scoring) == training_identity(runs[0].config)


def test_a_failed_run_fails_the_launch_and_the_command(tmp_path, capsys, tiny_llama_dir):
    """Runs that fail inside their jobs (here: a loss that turns NaN at an absurd learning rate)."""
    from benchmarks.cli import main

    path = write_spec(tmp_path, executor="local", grid={"train.lr": [1.0e30, 3.0e30]},
                      extra=[f"model.name={tiny_llama_dir}", "method.layers=[0,1]"])
    spec = load_sweep(path)
    runs = expand(spec, "dev")
    with pytest.raises(RunsFailed, match=r"2 of 2 runs ended without a result") as failure:
        launch(spec, runs)
    assert runs[1].key in str(failure.value) and "TrainingFailed: the loss at optimizer step" in str(failure.value)
    assert [r.state for r in status(spec, runs)] == ["failed", "failed"]
    assert not list((tmp_path / "sweeps").glob("**/result.json"))
    assert main(["sweep", str(path), "--stage", "dev"]) == 1  # not 0 with nothing done
    assert "ended without a result" in capsys.readouterr().err


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its descendants (no chance to checkpoint: a hard preemption)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in (children.read_text().split() if children.exists() else []):
        kill_tree(int(child))
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def checkpoint_step(run_directory: Path) -> int:
    """The newest checkpointed optimizer step of a run (0 if none yet)."""
    steps = [int(p.name[5:]) for p in (run_directory / "train" / "checkpoint").glob("step-*")]
    return max(steps, default=0)


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """A local job SIGKILLed mid-training, relaunched: same losses, outputs and metrics."""
    # one thread per job: with two, a loaded machine can add reductions up in another order (seen: 1e-4)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    steps = ["train.max_steps=8"]
    # the uninterrupted reference runs as the same kind of job (a fresh local process), not in this one
    reference_spec = load_sweep(write_spec(tmp_path / "a", grid={"train.lr": [3.0e-2]}, executor="local", extra=steps))
    reference = expand(reference_spec, "dev")
    launch(reference_spec, reference)

    spec = load_sweep(write_spec(tmp_path / "b", grid={"train.lr": [3.0e-2]}, executor="local", extra=steps))
    runs = expand(spec, "dev")
    [job] = launch(spec, runs, wait=False)
    directory = run_dir(runs[0].config)
    deadline = time.time() + 120
    while time.time() < deadline and checkpoint_step(directory) < 2:
        time.sleep(0.05)
    kill_tree(int(job.job_id))  # submitit's local controller and the task process it runs
    killed_at = checkpoint_step(directory)
    assert 2 <= killed_at < 8 and not (run_dir(runs[0].config) / "result.json").exists()
    deadline = time.time() + 10  # the killed task's lock goes when the kernel has ended it
    while time.time() < deadline and status(spec, runs)[0].state == "running":
        time.sleep(0.1)
    assert [r.state for r in status(spec, runs)] == ["failed"]

    launch(spec, runs)
    resumed = json.loads((run_dir(runs[0].config) / "result.json").read_text())
    whole = json.loads((run_dir(reference[0].config) / "result.json").read_text())
    assert resumed["train"]["resumed_from"] == killed_at and whole["train"]["resumed_from"] == 0
    assert resumed["train"]["losses"] == whole["train"]["losses"]
    assert resumed["tasks"]["commonsense/arc_easy"]["metrics"] == whole["tasks"]["commonsense/arc_easy"]["metrics"]
    outputs = lambda r, c: (run_dir(c) / r["tasks"]["commonsense/arc_easy"]["predictions"]).read_text()  # noqa: E731
    assert outputs(resumed, runs[0].config) == outputs(whole, reference[0].config)


def test_sweep_as_a_slurm_array_with_a_cancelled_and_resumed_job(slurm_cluster, tmp_path, monkeypatch):
    """The dev stage as one SLURM array job; then a final run cancelled mid-training with scancel
    and relaunched ends with the result of an uninterrupted (in-process) run."""
    import subprocess

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # jobs share this machine's 2 cores
    partition = getattr(slurm_cluster, "partition", "debug")
    spec_path = write_spec(tmp_path / "slurm", executor="slurm", extra=["train.max_steps=8"])
    spec = load_sweep(spec_path, [f"executor.partition={partition}", "executor.timeout_min=10"])
    runs = expand(spec, "dev")
    jobs = launch(spec, runs)
    assert len(jobs) == 2 and len({job.job_id.split("_")[0] for job in jobs}) == 1  # one array job
    assert [r.state for r in status(spec, runs)] == ["done", "done"]

    final = expand(spec, "final", {"loreft": {"train.lr": 3.0e-2}})[:1]
    [job] = launch(spec, final, wait=False)
    directory = run_dir(final[0].config)
    deadline = time.time() + 180
    while time.time() < deadline and checkpoint_step(directory) < 2:
        time.sleep(0.1)
    subprocess.run(["scancel", "--signal=KILL", "--full", str(job.job_id)], check=True, timeout=30)
    deadline = time.time() + 60
    while time.time() < deadline and status(spec, final)[0].state == "running":
        time.sleep(0.5)
    killed_at = checkpoint_step(directory)
    assert killed_at < 8 and status(spec, final)[0].state == "failed"

    launch(spec, final)
    resumed = json.loads((run_dir(final[0].config) / "result.json").read_text())
    reference_spec = load_sweep(write_spec(tmp_path / "ref", grid={"train.lr": [3.0e-2]}, extra=["train.max_steps=8"]))
    [reference] = expand(reference_spec, "final", {"loreft": {"train.lr": 3.0e-2}})[:1]
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the jobs' thread count (OMP_NUM_THREADS=1): reductions then add up alike
    try:
        launch(reference_spec, [reference])
    finally:
        torch.set_num_threads(threads)
    whole = json.loads((run_dir(reference.config) / "result.json").read_text())
    assert resumed["train"]["resumed_from"] == killed_at > 0
    assert resumed["train"]["losses"] == whole["train"]["losses"], (killed_at, resumed["train"]["losses"],
                                                                  whole["train"]["losses"])
    assert resumed["tasks"] == {k: {**v, "seconds": resumed["tasks"][k]["seconds"]} for k, v in whole["tasks"].items()}


def test_a_run_as_one_two_task_slurm_job_trains_in_two_processes(slurm_cluster, tmp_path, monkeypatch):
    """executor.tasks_per_node=2 (nodes=1 on the local cluster; the same path spans nodes): one srun
    starts two tasks, both join the run's process group from SLURM's variables and train on half of
    each global batch; the first writes the result once."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    partition = getattr(slurm_cluster, "partition", "debug")
    spec = load_sweep(write_spec(tmp_path, executor="slurm", extra=["train.max_steps=2", "train.batch_size=2"]),
                      [f"executor.partition={partition}", "executor.timeout_min=10", "executor.tasks_per_node=2"])
    [run] = expand(spec, "final", {"loreft": {"train.lr": 3.0e-2}})[:1]
    [job] = launch(spec, [run])
    assert job.num_tasks == 2
    result = json.loads((run_dir(run.config) / "result.json").read_text())
    assert result["environment"]["processes"] == 2 and result["train"]["steps"] == 2
    assert result["tasks"]["commonsense/arc_easy"]["n"] == 4
    with pytest.raises(ValueError, match="start several processes per run on SLURM only"):
        load_sweep(write_spec(tmp_path / "local", executor="local"), ["executor.tasks_per_node=2"])


def test_quick_reproduce_uses_the_committed_selection_and_reports_reruns(tmp_path):
    """`make reproduce-SUITE` (quick): no dev runs, the committed choice, the first seed only; a
    rerun of a committed result lands on it (printed as the largest per-task difference)."""
    from benchmarks.sweeps.pipeline import reproduce

    write_spec(tmp_path / "presets", name="commonsense_cpu", extra=["method.rank=2"])
    results = tmp_path / "results"
    committed = {"sweep": "commonsense_cpu", "chosen": {"loreft": {"train.lr": 3.0e-2}}}
    (results / "selections").mkdir(parents=True)
    (results / "selections" / "commonsense_cpu.json").write_text(json.dumps(committed))
    lines = []
    table = reproduce("commonsense", "cpu", raw=results / "raw", log=lines.append, quick=True,
                      sweeps=tmp_path / "presets")
    root = tmp_path / "presets" / "sweeps" / "commonsense_cpu"
    assert not (root / "dev").exists()
    assert [p.name for p in (results / "raw" / "commonsense").iterdir()] == [
        "commonsense_cpu-final-loreft-lr3e-02__seed42.json"]
    assert table == results / "tables" / "commonsense.md" and table.is_file()
    assert not any("reruns of committed" in line for line in lines)

    import shutil

    shutil.rmtree(root)  # a fresh machine: nothing but the committed files
    lines.clear()
    reproduce("commonsense", "cpu", raw=results / "raw", log=lines.append, quick=True, sweeps=tmp_path / "presets")
    rerun = [line for line in lines if "commonsense_cpu-final-loreft-lr3e-02__seed42" in line]
    assert len(rerun) == 1 and "largest task difference +0.0000" in rerun[0], lines

    # the suite table moved on: this preset's results were kept in results/previous/<preset>/; a rerun
    # lands there (and its table there), not in raw/ beside the new preset's rows of the same methods
    kept = results / "previous" / "old-preset" / "commonsense"
    kept.parent.mkdir(parents=True)
    (results / "raw" / "commonsense").rename(kept)
    shutil.rmtree(root)
    lines.clear()
    table = reproduce("commonsense", "cpu", raw=results / "raw", log=lines.append, quick=True,
                      sweeps=tmp_path / "presets")
    assert table == results / "tables" / "old-preset-commonsense.md" and table.is_file()
    assert not (results / "raw" / "commonsense").exists()
    assert [p.name for p in kept.iterdir()] == ["commonsense_cpu-final-loreft-lr3e-02__seed42.json"]
    assert any("largest task difference +0.0000" in line for line in lines), lines
