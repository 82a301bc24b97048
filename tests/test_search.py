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
