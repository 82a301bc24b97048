"""Equal-budget Optuna search (benchmarks/sweeps/search.py, issue 14): spec checks, two local
workers sharing one journal storage, exact budgets, a killed worker's trial re-run, the best trial
as the final stage's point. Real Optuna and real runs on a tiny LLaMA with SmolLM2's tokenizer."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from benchmarks.cli import main
from benchmarks.experiments.run import run_dir
from benchmarks.sweeps.select import read_selection
from benchmarks.sweeps.spec import expand, load_sweep

optuna = pytest.importorskip("optuna")

CONFIG = "benchmarks/experiments/commonsense/smollm2_cpu_loreft.yaml"
LORA = "benchmarks/experiments/commonsense/smollm2_cpu_lora.yaml"


def tiny(model_dir: Path) -> list[str]:
    return [f"model.name={model_dir}", "data.train=[commonsense/arc_easy]", "data.train_limit=8", "train.max_steps=2",
            "train.batch_size=4", "train.grad_accum=1", "train.save_every=1", "data.eval_limit=4",
            "eval.max_new_tokens=4", "wandb.mode=disabled"]


def write_spec(tmp_path: Path, model_dir: Path, trials: int = 3, workers: int = 2, executor: str = "local",
               methods: dict | None = None, **tuning) -> Path:
    methods = methods or {
        "loreft": {"config": CONFIG, "overrides": [*tiny(model_dir), "method.layers=[0,1]"],
                   "search": {"train.lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
                              "method.rank": {"type": "int", "low": 1, "high": 4}}},
        "lora": {"config": LORA, "overrides": tiny(model_dir),
                 "search": {"train.lr": {"type": "float", "low": 1.0e-5, "high": 1.0e-3, "log": True},
                            "method.r": {"type": "categorical", "choices": [2, 4]},
                            "method.lora_dropout": {"type": "float", "low": 0.0, "high": 0.1,
                                                    "when": {"method.r": 4}}}}}
    spec = {"name": "search", "suite": "commonsense", "output_root": str(tmp_path / "sweeps"),
            "dev": {"overrides": ["data.eval=[commonsense/arc_easy]", "data.eval_split=dev"], "seeds": [42]},
            "final": {"overrides": ["data.eval=[commonsense/arc_easy]"], "seeds": [42, 43]},
            "methods": methods, "tuning": {"trials": trials, "workers": workers, "seed": 0, **tuning},
            "executor": {"kind": executor, "parallelism": 2, "timeout_min": 10}}
    path = tmp_path / "search.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda s: s["methods"]["loreft"]["search"].update({"train.lr": {"type": "uniform", "low": 0, "high": 1}}),
     "expected {type: float|int|categorical"),
    (lambda s: s["methods"]["loreft"]["search"].update({"train.lr": {"type": "float", "low": 0.0, "high": 1.0,
                                                                     "log": True}}), "needs low > 0"),
    (lambda s: s["methods"]["loreft"].update({"grid": {"train.lr": [1.0e-3]}}), "give search or grid/points"),
    (lambda s: s["tuning"].update({"seconds": 60}), "as trials or as seconds"),
    (lambda s: s["methods"]["lora"].pop("search"), "every method needs a search: space"),
    (lambda s: s["methods"]["lora"]["search"]["method.lora_dropout"].update({"when": {"method.rank": 4}}),
     "not an earlier key"),
    (lambda s: s["dev"].update({"overrides": ["data.eval=[commonsense/arc_easy]"]}), "would score the test split"),
    (lambda s: s["tuning"].update({"pruner": "hyperband"}), "tuning.pruner must be"),
])
def test_a_bad_search_spec_names_the_problem(tmp_path, tiny_llama_dir, edit, message):
    path = write_spec(tmp_path, tiny_llama_dir)
    spec = yaml.safe_load(path.read_text())
    edit(spec)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ValueError, match=message):
        from benchmarks.sweeps.pipeline import run_stages
        run_stages(load_sweep(path), "dev")


def test_two_workers_share_one_study_per_method_with_equal_budgets(tmp_path, tiny_llama_dir, capsys):
    path = write_spec(tmp_path, tiny_llama_dir, trials=3, workers=2)
    assert main(["sweep", str(path), "--stage", "all"]) == 0
    spec = load_sweep(path)
    record = json.loads((spec.root / "selection.json").read_text())
    assert record["budget"]["loreft"]["trials"] == record["budget"]["lora"]["trials"] == 3
    for method in ("loreft", "lora"):
        study = optuna.load_study(study_name=f"search-{method}", storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(spec.root / "search" / "journal.log"))))
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        assert len(study.trials) == 3 and len(complete) == 3
        assert len({t.user_attrs["pid"] for t in study.trials}) >= 1
        best = max(complete, key=lambda t: (t.value, -t.number))
        assert read_selection(spec)[method] == best.user_attrs["point"]
        for trial in complete:  # every trial is a dev run of the point it reports
            result = json.loads((Path(trial.user_attrs["run_dir"]) / "result.json").read_text())
            assert result["config"]["data"]["eval_split"] == "dev"
            assert result["config"]["train"]["lr"] == trial.user_attrs["point"]["train.lr"]
    for run in expand(spec, "final", read_selection(spec)):  # stage 2: the best points on the test split, seeds
        assert (run_dir(run.config) / "result.json").is_file() and run.config.data.eval_split == "test"
        reused = json.loads((run_dir(run.config) / "result.json").read_text())["train"].get("reused_from")
        assert (reused is not None) == (run.seed == 42)  # seed 42 is the best trial's training, scored on test
    assert len(record["trials"]["loreft"]) == 3 and record["space"]["lora"]["method.r"]["type"] == "categorical"
    from benchmarks.report.search_plots import best_so_far, importances, write_search_plots

    selections = tmp_path / "selections"  # as `reft collect` copies it; `reft tables` draws from there
    selections.mkdir()
    (selections / "search.json").write_text(json.dumps(record))
    written = write_search_plots(selections, tmp_path / "plots")
    assert sorted(p.name for p in written) == ["search_importances.png", "search_importances.svg",
                                               "search_tuning_budget.png", "search_tuning_budget.svg"]
    curve = best_so_far(record["trials"]["loreft"])
    assert len(curve) == 3 and curve == sorted(curve) and curve[-1] == max(
        t["value"] for t in record["trials"]["loreft"])
    found = importances(record, "loreft")
    assert found == {} or set(found) == {"train.lr", "method.rank"}
    capsys.readouterr()
    assert main(["sweep", "status", str(path)]) == 0
    out = capsys.readouterr().out
    assert "loreft: 3 counted trial(s)" in out and "complete" in out and "dev " in out

    # every run accounts for its cost, plausibly
    finals = [json.loads((run_dir(run.config) / "result.json").read_text())
              for run in expand(spec, "final", read_selection(spec))]
    for result in finals:
        train = result["train"]
        assert train["seconds"] > 0 and train["examples_per_second"] > 0 and train["model_bytes"] > 0
        assert train["peak_rss_mb"] * 2**20 > 4 * result["params"]["total"]  # holds at least the fp32 model
        assert all(task["seconds"] > 0 for task in result["tasks"].values())

    # the search's table and Pareto figure, from the collected final runs and the selection record
    from benchmarks.report.searches import write_searches
    from benchmarks.sweeps.collect import collect_sweep

    collect_sweep(spec.root, out=tmp_path / "searches" / spec.name, selections=selections)
    written = write_searches(tmp_path / "searches", selections, tmp_path / "tables", tmp_path / "plots")
    assert sorted(p.name for p in written) == ["search.md", "search_pareto.png", "search_pareto.svg"]
    table = (tmp_path / "tables" / "search.md").read_text()
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines() if line.startswith("| ")]
    lines = {row[0]: row for row in cells}
    header = lines["Method"]
    for label, method in (("LoReFT", "loreft"), ("LoRA", "lora")):
        row = dict(zip(header, lines[label]))
        assert row["Trials"] == "3" and row["Seeds"] == "2"
        assert float(row["Best dev"]) == pytest.approx(100 * max(t["value"] for t in record["trials"][method]), abs=0.05)
        assert json.loads(row["Chosen"]) == record["chosen"][method]
        assert float(row["Train s/run"]) >= 0 and float(row["Peak RSS MB"]) > 0
    assert "majority class" in lines


def test_the_same_seed_and_storage_give_the_same_trials(tmp_path, tiny_llama_dir):
    """Sampler determinism: two fresh studies with the same tuning seed propose the same points
    when told the same values; another seed proposes others."""
    from benchmarks.sweeps.search import sample, study_of

    space = {"train.lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
             "method.rank": {"type": "int", "low": 1, "high": 8},
             "method.positions": {"type": "categorical", "choices": ["f1", "f3", "f5"]}}

    def proposals(folder: str, seed: int) -> list[dict]:
        spec = load_sweep(write_spec(tmp_path / folder, tiny_llama_dir, seed=seed))
        study, points = study_of(spec, "loreft"), []
        for _ in range(14):  # past TPE's 10 random start-up trials
            trial = study.ask()
            points.append(sample(trial, space))
            study.tell(trial, points[-1]["method.rank"] - abs(points[-1]["train.lr"] - 3.0e-3))
        return points

    first = proposals("a", 0)
    assert proposals("b", 0) == first
    assert proposals("c", 1) != first


def test_a_killed_workers_trial_is_marked_failed_and_run_again(tmp_path, tiny_llama_dir):
    from benchmarks.sweeps.search import study_of, work

    path = write_spec(tmp_path, tiny_llama_dir, trials=2, workers=1, executor="debug",
                      methods={"loreft": {"config": CONFIG, "overrides": [*tiny(tiny_llama_dir), "method.layers=[0,1]"],
                                          "search": {"train.lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-2,
                                                                  "log": True}}}})
    spec = load_sweep(path)
    study = study_of(spec, "loreft")
    dead = subprocess.Popen(["true"])
    dead.wait()
    lost = study.ask({"train.lr": optuna.distributions.FloatDistribution(1.0e-4, 1.0e-2, log=True)})
    lost.set_user_attr("point", {"train.lr": float(f"{lost.params['train.lr']:.3g}")})
    lost.set_user_attr("host", __import__("socket").gethostname())
    lost.set_user_attr("pid", dead.pid)  # its worker is gone: no heartbeat, pid not alive
    assert work(spec, log=lambda *a: None) == 2
    trials = study_of(spec, "loreft").trials
    assert trials[0].state.name == "FAIL"
    rerun = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert len(rerun) == 1 and rerun[0].state.name == "COMPLETE"
    assert rerun[0].params == trials[0].params  # the same parameters, in the same run directory
    assert sum(t.state.name == "COMPLETE" for t in trials) == 2  # the killed trial did not use budget


@pytest.mark.slow  # about 3.5 min, most of it waiting on SLURM and submitit
def test_a_search_as_one_slurm_array_survives_a_killed_worker(slurm_cluster, tmp_path, tiny_llama_dir):
    """Two search workers as one SLURM array job; one is killed (scancel --signal=KILL) mid-trial.
    The trial is marked failed and its parameters re-run; the launcher reports the lost worker, and
    rerunning the same command completes the study and the final stage with equal budgets."""
    import os
    import sys
    import time

    from benchmarks.sweeps.search import study_of

    partition = getattr(slurm_cluster, "partition", "debug")
    long = [o for o in tiny(tiny_llama_dir) if not o.startswith("train.max_steps")] + ["train.max_steps=150"]
    path = write_spec(tmp_path, tiny_llama_dir, trials=3, workers=2, executor="slurm", methods={
        "loreft": {"config": CONFIG, "overrides": [*long, "method.layers=[0,1]"],
                   "search": {"train.lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True}}}})
    spec = yaml.safe_load(path.read_text())
    spec["executor"].update(partition=partition, timeout_min=10)
    spec["final"]["seeds"] = [42]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    command = [sys.executable, "-c", "import sys; from benchmarks.cli import main; sys.exit(main(sys.argv[1:]))",
               "sweep", str(path), "--stage", "all"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}  # the jobs share this machine's 2 cores
    repo = Path(__file__).resolve().parents[1]
    first = subprocess.Popen(command, cwd=repo, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    sweep = load_sweep(path)
    deadline, victim = time.time() + 240, None
    while victim is None and time.time() < deadline and first.poll() is None:
        running = [t for t in study_of(sweep, "loreft").trials if t.state.name == "RUNNING" and "job" in t.user_attrs]
        victim = running[0] if running else None
        time.sleep(0.2)
    assert victim is not None, "no trial was seen running in a SLURM job"
    subprocess.run(["scancel", "--signal=KILL", "--full", victim.user_attrs["job"]], check=True, timeout=30)
    out, _ = first.communicate(timeout=600)
    assert first.returncode != 0 and "1 search worker(s) failed" in out, out

    second = subprocess.run(command, cwd=repo, env=environment, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    trials = study_of(sweep, "loreft").trials
    assert trials[victim.number].state.name == "FAIL"
    rerun = [t for t in trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(rerun) == 1 and rerun[0].state.name == "COMPLETE" and rerun[0].params == victim.params
    record = json.loads((sweep.root / "selection.json").read_text())
    assert record["budget"]["loreft"]["trials"] == 3 and sum(t.state.name == "COMPLETE" for t in trials) == 3
    [final] = expand(sweep, "final", read_selection(sweep))
    assert (run_dir(final.config) / "result.json").is_file()


def test_a_pruned_trial_stops_after_its_epoch_and_uses_budget(tmp_path):
    """``tuning.pruner``: the training loop reports each epoch's dev score to the trial, and the
    pruner's verdict stops the run after that epoch. Optuna's ThresholdPruner (accuracy can never
    reach 2.0) makes the verdict certain; MiniLM on 16 SST-2 rows, 2 epochs."""
    from benchmarks.sweeps.search import budget_left, pruner_of, run_trial, study_of

    spec_dict = {"name": "prune", "suite": "glue", "output_root": str(tmp_path / "sweeps"),
                 "dev": {"overrides": ["data.eval_split=dev"], "seeds": [42]}, "final": {"seeds": [42]},
                 "tuning": {"trials": 2, "pruner": "median"},
                 "methods": {"loreft": {"config": "benchmarks/experiments/glue/minilm_cpu_loreft.yaml",
                                        "overrides": ["data.train_limit=16", "train.epochs=2", "train.batch_size=8",
                                                      "data.eval_limit=10", "wandb.mode=disabled", "train.save_every=2"],
                                        "search": {"train.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2,
                                                                "log": True}}}}}
    path = tmp_path / "prune.yaml"
    path.write_text(yaml.safe_dump(spec_dict, sort_keys=False))
    spec = load_sweep(path)
    assert type(pruner_of(spec)).__name__ == "MedianPruner"
    study = optuna.create_study(study_name="prune-loreft", storage=study_of(spec, "loreft")._storage,
                                direction="maximize", load_if_exists=True,
                                pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    trial = study.ask()
    point = {"train.lr": 3.0e-3}
    trial.set_user_attr("point", point)
    messages = []
    run_trial(spec, "loreft", study, trial, point, log=messages.append)
    [done] = study.trials
    assert done.state.name == "PRUNED" and list(done.intermediate_values) == [1], messages
    assert 0.0 <= done.intermediate_values[1] <= 1.0 and done.user_attrs["seconds"] > 0
    assert "pruned: dev score" in messages[0] and "after epoch 1" in done.user_attrs["pruned"]
    from benchmarks.sweeps.spec import experiment

    stopped = run_dir(experiment(spec, "dev", "loreft", point, 42))
    assert not (stopped / "result.json").exists() and (stopped / "train" / "checkpoint").is_dir()
    assert budget_left(spec, study)  # 1 of 2 trials used: a pruned trial counts
    trial = study.ask()
    trial.set_user_attr("point", {"train.lr": 5.0e-3})
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert not budget_left(spec, study)


def test_a_refused_trial_stops_the_search_without_using_budget(tmp_path, tiny_llama_dir):
    """A run refused before training (here: layers the model does not have) fails every trial alike:
    the worker stops with the reason instead of spending the budget on refusals."""
    from benchmarks.sweeps.search import SearchRefused, budget_left, study_of, work

    path = write_spec(tmp_path, tiny_llama_dir, trials=3, workers=1, executor="debug",
                      methods={"loreft": {"config": CONFIG, "overrides": [*tiny(tiny_llama_dir), "method.layers=[0,9]"],
                                          "search": {"train.lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-2,
                                                                  "log": True}}}})
    spec = load_sweep(path)
    with pytest.raises(SearchRefused, match=r"was refused before training \(method .* does not fit model"):
        work(spec, log=lambda *a: None)
    [trial] = study_of(spec, "loreft").trials
    assert trial.state.name == "FAIL" and "layers [9] out of range" in trial.user_attrs["refused"]
    assert budget_left(spec, study_of(spec, "loreft"))  # it did not count


def test_repeated_points_use_no_budget_and_an_exhausted_space_stops(tmp_path, tiny_llama_dir):
    """A sampler may propose a point already tried (floats keep 3 digits; a categorical space is
    small): the repeat is told its original's score at once and uses no budget; a space with fewer
    distinct points than the budget stops the search instead of repeating forever."""
    from benchmarks.sweeps.search import REPEATS, SearchRefused, _new_point, counted_numbers, study_of

    spec = load_sweep(write_spec(tmp_path, tiny_llama_dir, sampler="random"))
    study = study_of(spec, "loreft")
    space = {"method.rank": {"type": "categorical", "choices": [1, 2]}}
    for _ in range(2):
        trial, point = _new_point(study, space)
        trial.set_user_attr("point", point)
        study.tell(trial, float(point["method.rank"]))
    assert sorted(t.user_attrs["point"]["method.rank"] for t in study.trials if "duplicate_of" not in t.user_attrs) \
        == [1, 2]
    with pytest.raises(SearchRefused, match="fewer distinct points than the budget"):
        _new_point(study, space)
    originals = {t.number for t in study.trials if "duplicate_of" not in t.user_attrs}
    assert counted_numbers(study.trials) == originals and len(originals) == 2
    repeats = [t for t in study.trials if "duplicate_of" in t.user_attrs]
    assert len(repeats) >= REPEATS and all(t.value == t.user_attrs["point"]["method.rank"] for t in repeats)
