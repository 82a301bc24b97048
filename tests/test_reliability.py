"""The ways a run could return a wrong or stale result with exit code 0, each refused or handled:
run identity, exact grid labels, dev-only by content, degenerate training, locks and orphaned
jobs, atomic saves. Runs use a tiny random LLaMA with SmolLM2's real tokenizer on real data."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmarks.cli import main
from benchmarks.experiments.run import run_dir

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "benchmarks/experiments/commonsense/smollm2_cpu_loreft.yaml")
GLUE_CONFIG = "benchmarks/experiments/glue/minilm_cpu_loreft.yaml"


def tiny(model_dir: Path, root: Path, steps: int = 3) -> list[str]:
    return [f"model.name={model_dir}", "method.layers=[0,1]", "data.train=[commonsense/arc_easy]",
            "data.train_limit=8", f"train.max_steps={steps}", "train.batch_size=4", "train.grad_accum=1",
            "train.save_every=1", "data.eval=[commonsense/arc_easy]", "data.eval_limit=4", "eval.max_new_tokens=4",
            "wandb.mode=disabled", f"output_root={root}"]


# ---------------------------------------------------------------- 1. run identity
def test_a_changed_override_on_a_finished_run_is_refused(tiny_llama_dir, tmp_path, capsys):
    args = ["train", CONFIG, *tiny(tiny_llama_dir, tmp_path)]
    assert main(args) == 0
    directory = tmp_path / "commonsense-smollm2-cpu-loreft" / "seed42"
    first = json.loads((directory / "result.json").read_text())
    identity = json.loads((directory / "identity.json").read_text())
    assert set(identity["identity"]) == {"config", "tasks", "data"} and len(identity["hash"]) == 16
    assert identity["identity"]["data"]["commonsense/arc_easy:train_minus_dev"].startswith("sha256:")

    assert main(args) == 0  # the same configuration: complete, said so, not rerun
    assert "is complete with this configuration" in capsys.readouterr().out
    assert json.loads((directory / "result.json").read_text()) == first

    assert main([*args, "train.lr=0.5"]) == 2  # the README's `reft train ... train.lr=...` on a finished run
    err = capsys.readouterr().err
    assert "holds a run of another configuration" in err and "config.train.lr: 0.002 → 0.5" in err
    assert main([*args, "method.rank=four"]) == 2
    assert json.loads((directory / "result.json").read_text()) == first  # nothing was touched

    assert main([*args, "train.lr=0.5", "--overwrite"]) == 0
    assert json.loads((directory / "result.json").read_text())["config"]["train"]["lr"] == 0.5


def test_rescoring_on_a_task_changed_since_the_run_is_refused(tiny_llama_dir, tmp_path, capsys, monkeypatch):
    """Issue 16.6: ``reft eval`` compares each task's fingerprint with the run's record."""
    from benchmarks import tasks

    assert main(["train", CONFIG, *tiny(tiny_llama_dir, tmp_path)]) == 0
    directory = tmp_path / "commonsense-smollm2-cpu-loreft" / "seed42"
    rescore = ["eval", str(directory), "data.eval_limit=2", "--label", "again"]
    task = tasks.TASKS["commonsense/arc_easy"]
    monkeypatch.setitem(tasks.TASKS, "commonsense/arc_easy", dataclasses.replace(task, trigger="the answer is"))
    assert main(rescore) == 2
    err = capsys.readouterr().err
    assert "task(s) changed since they were scored: commonsense/arc_easy" in err and "the run recorded" in err
    assert not (directory / "evals" / "again" / "result.json").exists()
    assert main([*rescore, "--allow-changed-task"]) == 0
    monkeypatch.setitem(tasks.TASKS, "commonsense/arc_easy", task)
    assert main(["eval", str(directory), "data.eval_limit=2", "--label", "same"]) == 0  # unchanged: scored


def test_a_killed_run_is_not_resumed_under_another_configuration(tiny_llama_dir, tmp_path):
    from benchmarks.experiments.config import load_experiment
    from benchmarks.experiments.identity import RunConflict
    from benchmarks.experiments.run import run_experiment

    config = load_experiment(CONFIG, tiny(tiny_llama_dir, tmp_path, steps=6))
    directory = run_dir(config)
    directory.mkdir(parents=True)
    from benchmarks.experiments.identity import claim, run_identity
    claim(directory, run_identity(config))  # a run that started (and was killed) with lr 0.002
    (directory / "train" / "checkpoint" / "step-00000002").mkdir(parents=True)
    changed = dataclasses.replace(config, train=dataclasses.replace(config.train, lr=0.5))
    with pytest.raises(RunConflict, match="config.train.lr: 0.002 → 0.5"):
        run_experiment(changed)
    cosmetic = dataclasses.replace(config, wandb=dataclasses.replace(config.wandb, project="elsewhere"),
                                   train=dataclasses.replace(config.train, log_every=1))
    from benchmarks.experiments.identity import matches
    assert matches(directory, run_identity(cosmetic)) == (True, [])  # logging is not identity


# ---------------------------------------------------------------- 1-2. sweeps: stale runs, exact labels
def write_spec(tmp_path: Path, model_dir: Path, grid: dict, extra: list[str] = (), name: str = "rel",
               executor: str = "debug", parallelism: int = 2) -> Path:
    overrides = [o for o in tiny(model_dir, tmp_path) if not o.startswith("output_root")] + list(extra)
    spec = {"name": name, "suite": "commonsense", "output_root": str(tmp_path / "sweeps"),
            "dev": {"overrides": ["data.eval_split=dev"], "seeds": [42]},
            "final": {"overrides": [], "seeds": [42]},
            "methods": {"loreft": {"config": CONFIG, "grid": grid, "overrides": overrides}},
            "executor": {"kind": executor, "parallelism": parallelism, "timeout_min": 10}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_close_learning_rates_are_distinct_points_and_both_train(tiny_llama_dir, tmp_path):
    from benchmarks.sweeps.launch import launch
    from benchmarks.sweeps.select import select
    from benchmarks.sweeps.spec import expand, load_sweep

    spec = load_sweep(write_spec(tmp_path, tiny_llama_dir, {"train.lr": [1.0e-3, 1.2e-3]}))
    runs = expand(spec, "dev")
    assert [r.point for r in runs] == ["lr1e-03", "lr1.2e-03"]  # `:.0e` made both lr1e-03
    assert len({run_dir(r.config) for r in runs}) == 2
    launch(spec, runs, log=lambda _: None)
    results = [json.loads((run_dir(r.config) / "result.json").read_text()) for r in runs]
    assert [r["config"]["train"]["lr"] for r in results] == [1.0e-3, 1.2e-3]
    assert set(select(spec)["dev_scores"]["loreft"]) == {"lr1e-03", "lr1.2e-03"}


def test_an_edited_spec_reports_its_runs_stale_and_reruns_them_only_when_told(tiny_llama_dir, tmp_path, capsys):
    from benchmarks.sweeps.launch import StaleRuns, launch, status
    from benchmarks.sweeps.spec import expand, load_sweep

    path = write_spec(tmp_path, tiny_llama_dir, {"train.lr": [1.0e-3]})
    spec = load_sweep(path)
    launch(spec, expand(spec, "dev"), log=lambda _: None)
    edited = load_sweep(write_spec(tmp_path, tiny_llama_dir, {"train.lr": [1.0e-3]}, extra=["method.rank=2"]))
    runs = expand(edited, "dev")
    assert [r.state for r in status(edited, runs)] == ["stale"]
    assert main(["sweep", "status", str(path)]) == 1
    assert "0 done, 0 running, 0 failed, 0 pending, 1 stale" in capsys.readouterr().out
    with pytest.raises(StaleRuns, match=r"1 run\(s\) of sweep rel hold results of another configuration"):
        launch(edited, runs)
    launch(edited, runs, overwrite_stale=True, log=lambda _: None)
    assert [r.state for r in status(edited, runs)] == ["done"]
    assert json.loads((run_dir(runs[0].config) / "result.json").read_text())["method"]["rank"] == 2


# ---------------------------------------------------------------- 3. dev-only by content
def test_a_glue_dev_stage_on_the_whole_validation_set_is_refused(tmp_path):
    from benchmarks.sweeps.select import DevOverlap, check_dev_isolation
    from benchmarks.sweeps.spec import expand, load_sweep

    spec = {"name": "glue-leak", "suite": "glue", "output_root": str(tmp_path),
            "dev": {"overrides": ["data.resplit=null", "data.eval_split=validation"], "seeds": [42]},
            "final": {"seeds": [42, 43]},
            "methods": {"loreft": {"config": GLUE_CONFIG, "grid": {"train.lr": [1.0e-3, 6.0e-3]}}}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    leaky = load_sweep(path)
    with pytest.raises(DevOverlap, match=r"scores 436 row\(s\) of glue/sst2 that the final stage reports"):
        check_dev_isolation(leaky, expand(leaky, "dev"))

    spec["dev"]["overrides"] = ["data.eval_split=dev"]  # the paper's dev half: accepted, with its one caveat
    path.write_text(yaml.safe_dump(spec))
    lines = []
    check_dev_isolation(load_sweep(path), log=lines.append)
    assert len(lines) == 1 and "resplit=per-seed (the paper's protocol)" in lines[0]
    spec["final"]["overrides"], spec["dev"]["overrides"] = ["data.resplit=fixed"], ["data.resplit=fixed",
                                                                                     "data.eval_split=dev"]
    path.write_text(yaml.safe_dump(spec))
    lines.clear()
    check_dev_isolation(load_sweep(path), log=lines.append)
    assert lines == []


def test_a_dev_split_pointing_at_the_test_file_is_refused_by_content(tmp_path, monkeypatch):
    """The task's dev split renamed onto the test file: split names differ, rows are the same."""
    from benchmarks import tasks
    from benchmarks.tasks.data import SplitSource
    from benchmarks.experiments.run import RunRefused, preflight
    from benchmarks.sweeps.select import DevOverlap, check_dev_isolation
    from benchmarks.sweeps.spec import expand, load_sweep

    task = tasks.TASKS["commonsense/arc_easy"]
    leaky = dataclasses.replace(task, splits={**task.splits, "dev": SplitSource(task.splits["test"].path)})
    monkeypatch.setitem(tasks.TASKS, "commonsense/arc_easy", leaky)
    path = write_spec(tmp_path, Path("unused"), {"train.lr": [1.0e-3, 2.0e-3]})
    spec = load_sweep(path)
    with pytest.raises(DevOverlap, match=r"scores 4 row\(s\) of commonsense/arc_easy"):
        check_dev_isolation(spec, expand(spec, "dev"))
    # and a run of the edited task is refused before training: its fingerprint is not the recorded one
    with pytest.raises(RunRefused, match="commonsense/arc_easy: its template, extractor, metric or data source "
                                         "changed"):
        preflight(expand(spec, "dev")[0].config)


# ---------------------------------------------------------------- 4. degenerate training
@pytest.mark.parametrize("override, message", [
    ("train.max_steps=-5", "max_steps must be >= 1"), ("train.epochs=0", "epochs must be > 0"),
    ("data.max_length=8", "every training example's target is truncated away at data.max_length=8"),
    ("data.eval_limit=0", "eval_limit must be >= 1")])
def test_a_run_that_cannot_train_fails_and_writes_no_result(tiny_llama_dir, tmp_path, capsys, override, message):
    overrides = tiny(tiny_llama_dir, tmp_path) + [override] + (["train.max_steps=null"] if "epochs" in override else [])
    assert main(["train", CONFIG, *overrides]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("*/seed42/result.json"))


def test_rows_cut_to_no_target_leave_a_length_grouped_run(tiny_llama_dir, tmp_path):
    """data.drop_truncated: at max_length 200, HellaSwag train rows 1 and 3 (prompts of 265 and 270
    tokens) keep no target token; they leave the training set, so the length-grouped batch of the two
    longest rows cannot be all-empty (loss 0/0), and train.json counts the 10 rows that trained."""
    overrides = [o for o in tiny(tiny_llama_dir, tmp_path, steps=4) if not o.startswith("data.train")]
    overrides += ["data.train=[commonsense/arc_easy,commonsense/hellaswag]", "data.train_limit=6",
                  "data.max_length=200", "train.batch_size=2", "train.max_steps=null", "train.epochs=1",
                  "data.drop_truncated=true", "train.group_by_length=true"]
    with pytest.warns(UserWarning, match="left out 2 of 12 training examples"):
        assert main(["train", CONFIG, *overrides]) == 0
    (record,) = [json.loads(p.read_text()) for p in tmp_path.glob("*/seed42/train.json")]
    assert record["examples"] == 10 and record["steps"] == 5 and all(math.isfinite(x) for x in record["losses"])


@pytest.mark.parametrize("override, message", [
    ("method.rank=four", "method 'loreft'.rank: expected int, got 'four'"),
    ("method.layers=[0,9]", "does not fit model"),   # the tiny model has 2 layers
    ("method.positions=f7+x3", "bad position spec 'f7+x3'"),
    ("method.ranks=8", "unknown ReftConfig key(s) ['ranks']")])
def test_a_bad_method_block_is_refused_before_anything_is_created(tiny_llama_dir, tmp_path, capsys, override,
                                                                  message):
    """Issue 16: method options are typed and checked against the model's architecture (built on the
    meta device) before the run directory, its config.json, environment.json or W&B run exist."""
    overrides = [o.replace("wandb.mode=disabled", "wandb.mode=offline")  # a W&B run would be a leftover too
                 for o in tiny(tiny_llama_dir, tmp_path)] + [override]
    assert main(["train", CONFIG, *overrides]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), sorted(str(p) for p in tmp_path.rglob("*"))


def test_unscorable_golds_fail_before_training(tmp_path, monkeypatch):
    from benchmarks import tasks
    from benchmarks.experiments.config import load_experiment
    from benchmarks.experiments.run import RunRefused, preflight

    task = tasks.TASKS["arithmetic/svamp"]
    original = task.load

    def with_bad_gold(*args, **kwargs):
        examples = original(*args, **kwargs)
        return [dataclasses.replace(examples[0], gold="n/a"), *examples[1:]]

    monkeypatch.setattr(type(task), "load", lambda self, *a, **k: with_bad_gold(*a, **k) if self is task
                        else original.__func__(self, *a, **k))
    config = load_experiment(REPO / "benchmarks/experiments/arithmetic/smollm2_cpu_loreft.yaml",
                             ["data.eval=[arithmetic/svamp]", "data.eval_limit=5"])
    with pytest.raises(RunRefused, match=r"arithmetic/svamp: 1 gold answer\(s\) its metric cannot score, "
                                         r"e\.g\. arithmetic/svamp:test:0 \(gold 'n/a'\)"):
        preflight(config)


# ---------------------------------------------------------------- 5. locks, concurrent launchers, orphans
def reft(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "benchmarks.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def job_folders(root: Path) -> list[Path]:
    return [p for p in (root / "jobs").iterdir() if p.name.isdigit()] if (root / "jobs").is_dir() else []


def test_two_concurrent_sweeps_run_each_run_once(tiny_llama_dir, tmp_path):
    path = write_spec(tmp_path, tiny_llama_dir, {"train.lr": [1.0e-3, 2.0e-3]}, executor="local")
    first, second = reft("sweep", str(path), "--stage", "dev"), reft("sweep", str(path), "--stage", "dev")
    outputs = [(p.wait(timeout=300), *p.communicate()) for p in (first, second)]
    root = tmp_path / "sweeps" / "rel"
    assert len(job_folders(root)) == 2, outputs  # one job per run: never both launchers' copies
    assert sorted(code for code, *_ in outputs) in ([0, 0], [0, 1]), outputs
    refused = [err for code, _, err in outputs if code == 1]
    assert all("launch of sweep rel stage dev" in err and "is held by pid" in err for err in refused), outputs
    assert len(list((root / "dev").glob("*/seed42/result.json"))) == 2


def test_launchers_of_different_methods_run_side_by_side(tiny_llama_dir, tmp_path):
    """`reft sweep SPEC --methods a` beside `--methods b` (one per core): both launch, each run once,
    and the jobs record keeps both launchers' jobs."""
    path = write_spec(tmp_path, tiny_llama_dir, {"train.lr": [1.0e-3, 2.0e-3]}, executor="local")
    spec = yaml.safe_load(path.read_text())
    spec["methods"]["other"] = spec["methods"]["loreft"]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    launchers = [reft("sweep", str(path), "--stage", "dev", "--methods", method) for method in ("loreft", "other")]
    outputs = [(p.wait(timeout=300), *p.communicate()) for p in launchers]
    root = tmp_path / "sweeps" / "rel"
    assert [code for code, *_ in outputs] == [0, 0], outputs
    assert len(job_folders(root)) == 4 and len(list((root / "dev").glob("*/seed42/result.json"))) == 4
    assert len(json.loads((root / "jobs.json").read_text())) == 4


def test_a_relaunch_adopts_the_job_a_killed_launcher_left_running(tiny_llama_dir, tmp_path):
    """Only the launcher is killed (SIGKILL): its local job goes on as an orphan; a relaunch waits
    for it instead of starting the run a second time, and ends with its result."""
    path = write_spec(tmp_path, tiny_llama_dir, {"train.lr": [1.0e-3, 2.0e-3]}, executor="local",
                      extra=["train.max_steps=300", "data.train_limit=16"])
    launcher = reft("sweep", str(path), "--stage", "dev", start_new_session=True)
    root = tmp_path / "sweeps" / "rel"
    run = root / "dev" / "rel-dev-loreft-lr1e-03" / "seed42"
    deadline = time.time() + 120
    while time.time() < deadline and not list((run / "train" / "checkpoint").glob("step-*")):
        time.sleep(0.1)
    assert list((run / "train" / "checkpoint").glob("step-*")), launcher.communicate()
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    from benchmarks.experiments.locks import DirectoryLock
    holder = DirectoryLock(run, "run").holder()
    assert holder is not None and holder["pid"] != launcher.pid  # the orphaned job still runs it

    relaunch = reft("sweep", str(path), "--stage", "dev")
    out, err = relaunch.communicate(timeout=300)
    assert relaunch.returncode == 0, err
    assert "already running" in out and "waiting for it instead of starting it twice" in out
    assert len(job_folders(root)) == 2  # the two orphans' jobs, none new
    result = json.loads((run / "result.json").read_text())
    assert result["train"]["steps"] == 300 and result["train"]["resumed_from"] == 0


@pytest.mark.parametrize("parallelism, background", [(2, False), (1, True)])
def test_a_launcher_stopped_by_sigterm_cancels_its_local_jobs(tiny_llama_dir, tmp_path, parallelism, background):
    """Also for a launcher started as the README says (``nohup ... &``: the shell starts it with
    SIGINT ignored, which its jobs would inherit, and submitit cancels a local job with SIGINT),
    stopped while it waits to start its next job."""
    from benchmarks.experiments.locks import DirectoryLock

    path = write_spec(tmp_path, tiny_llama_dir, {"train.lr": [1.0e-3, 2.0e-3]}, executor="local",
                      extra=["train.max_steps=150", "data.train_limit=16"], parallelism=parallelism)
    ignore_sigint = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None
    launcher = reft("sweep", str(path), "--stage", "dev", preexec_fn=ignore_sigint)
    runs = [tmp_path / "sweeps" / "rel" / "dev" / f"rel-dev-loreft-{label}" / "seed42" for label in ("lr1e-03", "lr2e-03")]
    deadline = time.time() + 120
    while time.time() < deadline and not list((runs[0] / "train" / "checkpoint").glob("step-*")):
        time.sleep(0.1)
    launcher.send_signal(signal.SIGTERM)
    launcher.communicate(timeout=60)
    deadline = time.time() + 30
    while time.time() < deadline and any(DirectoryLock(run, "run").holder() for run in runs):
        time.sleep(0.2)
    assert not any(DirectoryLock(run, "run").holder() for run in runs)  # no job left running
    assert not any((run / "result.json").exists() for run in runs)


def test_a_second_process_on_a_running_run_is_told_who_holds_it(tmp_path):
    from benchmarks.experiments.locks import DirectoryLock, LockHeld

    with DirectoryLock(tmp_path, "run"):
        child = subprocess.run([sys.executable, "-c", "import sys; from benchmarks.experiments.locks import DirectoryLock; "
                                f"DirectoryLock({str(tmp_path)!r}, 'run').acquire()"], cwd=REPO,
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert f"LockHeld: run {tmp_path} is held by pid {os.getpid()}" in child.stderr
    assert DirectoryLock(tmp_path, "run").holder() is None  # released on exit
    with pytest.raises(LockHeld):
        with DirectoryLock(tmp_path, "run"):
            DirectoryLock(tmp_path, "run").acquire()


# ---------------------------------------------------------------- 6. saves, permissions, the CLI
def test_save_method_refuses_a_directory_holding_another_method(tmp_path):
    from baselines import build_method, load_method, save_method

    from conftest import tiny_llama

    _, lora = build_method(tiny_llama(), {"name": "lora", "r": 2, "target_modules": ["q_proj"]})
    save_method(lora, tmp_path / "out")
    _, reft_model = build_method(tiny_llama(), {"name": "loreft", "rank": 2, "layers": [1], "positions": "l1"})
    with pytest.raises(FileExistsError, match="holds a save of method 'lora'; saving method 'loreft' there"):
        save_method(reft_model, tmp_path / "out")
    save_method(reft_model, tmp_path / "out", overwrite=True)
    assert not (tmp_path / "out" / "adapter_config.json").exists()  # the whole directory was replaced
    method, _ = load_method(tiny_llama(), tmp_path / "out")
    assert method.name == "loreft"
    save_method(reft_model, tmp_path / "out")  # the same method again: replaces its own save


def test_written_files_get_the_umasks_permissions(tmp_path):
    from reft.files import atomic_write_json

    atomic_write_json(tmp_path / "x.json", {"a": 1})
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o666 & ~mask  # 0o644 under umask 022


def test_sweep_overrides_may_follow_the_options(tiny_llama_dir, tmp_path):
    """The README's `reft sweep SPEC --executor slurm key=value` form: overrides after options."""
    path = write_spec(tmp_path, tiny_llama_dir, {"train.lr": [1.0e-3, 2.0e-3]}, executor="local")
    assert main(["sweep", str(path), "--stage", "dev", "executor.kind=debug", "dev.seeds=[43]"]) == 0
    jobs = json.loads((tmp_path / "sweeps" / "rel" / "jobs.json").read_text())
    assert sorted((k, v["executor"]) for k, v in jobs.items()) == [("dev/loreft/lr1e-03/seed43", "debug"),
                                                                   ("dev/loreft/lr2e-03/seed43", "debug")]
