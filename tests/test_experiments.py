"""Experiment configs (every shipped YAML validated; errors name the key and file) and one small
end-to-end run per suite on real data and real small models, asserting the files a run writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baselines import get_method
from benchmarks.experiments.config import load_experiment, parse_experiment
from benchmarks.experiments.examples import eval_examples
from benchmarks.typed_yaml import apply_overrides, read_yaml
from benchmarks.tasks import get_task

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "experiments").glob("*/*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_experiment_is_valid(path):
    config = load_experiment(path)
    assert config.suite == path.parent.name
    name, options = config.method["name"], {k: v for k, v in config.method.items() if k != "name"}
    get_method(name).parse(options)  # the method's own checks (unknown options, bad values)
    for task_name in [*config.data.train, *config.data.eval]:
        task = get_task(task_name)
        assert task.suite == config.suite, task_name
        if task.kind == "generate" and config.eval.decoding != "default" and task_name in config.data.eval:
            task.decoding_for(config.eval.decoding)
    assert config.train.lr > 0 and isinstance(config.train.lr, float)


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


BASE = """
name: t
suite: commonsense
model: {name: "pypi:smollm2-135m-instruct"}
method: {name: loreft, rank: 2}
data: {train: commonsense/boolq, eval: [commonsense/boolq]}
"""


def test_unknown_duplicate_and_mistyped_keys_name_the_key_and_file(tmp_path):
    with pytest.raises(ValueError, match=r"exp.yaml.*\.train: unknown key\(s\) \['learning_rate'\]"):
        load_experiment(write(tmp_path, BASE + "train: {learning_rate: 0.1}\n"))
    with pytest.raises(ValueError, match=r"exp.yaml: duplicate key\(s\) \['seed'\]"):
        load_experiment(write(tmp_path, BASE + "seed: 1\nseed: 2\n"))
    with pytest.raises(ValueError, match=r"\.train\.batch_size: expected int, got 'eight'"):
        load_experiment(write(tmp_path, BASE + "train: {batch_size: eight}\n"))
    with pytest.raises(ValueError, match=r"missing required key\(s\) \['suite'\]"):
        parse_experiment({k: v for k, v in read_yaml(write(tmp_path, BASE)).items() if k != "suite"})
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_experiment(tmp_path / "nope.yaml")


def test_overrides_are_typed_and_nested(tmp_path):
    config = load_experiment(write(tmp_path, BASE), ["train.lr=3e-4", "seed=43", "data.eval=[commonsense/piqa]",
                                                     "method.rank=4"])
    assert config.train.lr == 3e-4 and config.seed == 43 and config.data.eval == ["commonsense/piqa"]
    assert config.method["rank"] == 4 and config.data.train == ["commonsense/boolq"]
    with pytest.raises(ValueError, match="not key=value"):
        apply_overrides({}, ["seed"])
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['bogus'\]"):
        load_experiment(write(tmp_path, BASE), ["train.bogus=1"])


# ---------------------------------------------------------------- end to end, one per suite
def run(tmp_path, config_path: str, *overrides: str):
    from benchmarks.experiments.run import run_experiment

    root = Path(__file__).resolve().parents[1]
    config = load_experiment(root / config_path, [f"output_root={tmp_path}", *overrides])
    return config, run_experiment(config)


def assert_run_files(directory: Path, tasks: list[str], n: int) -> dict:
    for name in ("config.json", "environment.json", "train.json", "model/method.json", "result.json"):
        assert (directory / name).is_file(), name
    result = json.loads((directory / "result.json").read_text())
    env = json.loads((directory / "environment.json").read_text())
    assert len(env["git_commit"]) == 40 and isinstance(env["git_dirty"], bool) and "torch" in env["packages"]
    for task in tasks:
        record = result["tasks"][task]
        assert record["n"] == n and record["version"] >= 1 and len(record["fingerprint"]) == 16
        lines = (directory / record["predictions"]).read_text().splitlines()
        assert len(lines) == n
        assert {"id", "prompt", "output", "answer", "gold", "correct"} <= set(json.loads(lines[0]))
    assert list((directory / "wandb").glob("offline-run-*/run-*.wandb")), "W&B offline run files"
    return result


def test_commonsense_end_to_end_on_smollm2(tmp_path):
    tasks = ["commonsense/boolq", "commonsense/arc_easy"]
    config, directory = run(tmp_path, "benchmarks/experiments/commonsense/smollm2_cpu_loreft.yaml",
                            "data.train_limit=4", "train.max_steps=3", "train.batch_size=4", "train.grad_accum=1",
                            "data.eval_limit=6", f"data.eval=[{','.join(tasks)}]", "eval.max_new_tokens=8",
                            "train.save_every=1")
    result = assert_run_files(directory, tasks, 6)
    assert result["train"]["steps"] == 3 and len(result["train"]["losses"]) == 3
    assert result["params"]["trainable"] == 30 * (2 * 576 * 8 + 8)
    for task in tasks:
        assert 0.0 <= result["tasks"][task]["metrics"]["accuracy"] <= 1.0
    assert result["tasks"]["commonsense/boolq"]["decoding"]["max_new_tokens"] == 8
    mtime = (directory / "result.json").stat().st_mtime
    from benchmarks.experiments.run import run_experiment
    run_experiment(config)  # complete: not redone
    assert (directory / "result.json").stat().st_mtime == mtime

    from benchmarks.cli import main  # `reft eval`: the saved model re-scored on another task
    assert main(["eval", str(directory), "data.eval=[commonsense/piqa]", "data.eval_limit=3",
                 "eval.max_new_tokens=4", "--label", "piqa"]) == 0
    rescored = json.loads((directory / "evals/piqa/result.json").read_text())
    from conftest import wandb_records  # a re-scoring is its own W&B run, named and typed as an evaluation

    records = wandb_records(next((directory / "evals/piqa/wandb").glob("offline-run-*/run-*.wandb")))
    run_record = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run_record.job_type == "eval" and run_record.display_name.endswith("-eval-piqa")
    assert rescored["tasks"]["commonsense/piqa"]["n"] == 3
    assert len((directory / "evals/piqa/predictions/commonsense__piqa.jsonl").read_text().splitlines()) == 3
    assert rescored["contamination"]["commonsense/piqa:test"]["ngram"] == 0

    # re-scored on the rows it trained on (BoolQ's first 4 train rows; 6 scored): the re-scoring counts
    # them, the collected record keeps each prediction, and the re-scored table sets it beside the majority
    assert main(["eval", str(directory), "data.eval=[commonsense/boolq]", "data.eval_split=train",
                 "data.eval_limit=6", "eval.max_new_tokens=4", "--label", "fit-train"]) == 0
    fit = json.loads((directory / "evals/fit-train/result.json").read_text())
    assert fit["contamination"]["commonsense/boolq:train"]["ngram"] == 4
    assert main(["collect", str(directory / "evals/fit-train/result.json"), "--raw", str(tmp_path / "raw"),
                 "--rescored", str(tmp_path / "rescored")]) == 0
    assert not (tmp_path / "raw").exists()  # a re-scoring never lands among the test-split results
    collected = json.loads((tmp_path / f"rescored/commonsense/{result['name']}__fit-train__seed42.json").read_text())
    assert collected["rescored"] == "fit-train" and collected["method"]["name"] == "loreft"
    assert "losses" not in collected["train"] and collected["train"]["steps"] == 3
    assert len(collected["tasks"]["commonsense/boolq"]["examples"]["predicted"]) == 6
    from benchmarks.report.rescored import write_rescored

    [table] = write_rescored(tmp_path / "rescored", tmp_path / "tables")
    [line] = [row for row in table.read_text().splitlines() if row.startswith(f"| {result['name']} ")]
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[1:7] == ["LoReFT", "42", "train", "BoolQ", "6", "4"]


def test_glue_end_to_end_on_minilm_with_best_epoch(tmp_path, capsys):
    config, directory = run(tmp_path, "benchmarks/experiments/glue/minilm_cpu_loreft.yaml",
                            "data.train_limit=48", "train.epochs=2", "train.batch_size=16", "data.eval_limit=20")
    result = assert_run_files(directory, ["glue/sst2"], 20)
    assert len(result["train"]["epoch_scores"]) == 2 and result["train"]["best_epoch"] in (1, 2)
    # W&B (issue 18.6): the offline run holds the loss, gradient norm and throughput at every step of
    # this 6-step run (about 100 points per run by default), typed by the method
    from conftest import wandb_records

    records = wandb_records(next((directory / "wandb").glob("offline-run-*/run-*.wandb")))
    history = [{item.key or "/".join(item.nested_key) for item in r.history.item} for r in records
               if r.WhichOneof("record_type") == "history"]
    assert sum("loss" in keys for keys in history) == 6
    assert all({"grad_norm", "examples_per_second", "train_seconds", "lr"} <= keys for keys in history if "loss" in keys)
    run_record = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert (run_record.job_type, run_record.run_group) == ("loreft", "glue")
    from benchmarks.cli import main  # one command finds every offline run to sync

    capsys.readouterr()
    assert main(["wandb-sync", str(tmp_path), "--dry-run"]) == 0
    assert "1 offline W&B run(s)" in capsys.readouterr().out
    # per-run accounting (issue 14.4): throughput, peak memory, the saved method's size on disk
    assert result["train"]["examples_per_second"] > 0 and result["train"]["peak_rss_mb"] > 100
    assert result["train"]["model_bytes"] == sum(p.stat().st_size for p in (directory / "model").rglob("*")
                                                 if p.is_file())
    assert result["params"]["head"] > 0 and result["params"]["trainable"] == 6 * (2 * 384 + 1)
    predictions = [json.loads(line) for line in (directory / "predictions/glue__sst2.jsonl").read_text().splitlines()]
    assert all(len(p["output"]) == 2 and p["answer"] in (0, 1) for p in predictions)
    from benchmarks.tasks.data import glue_dev_test_split
    test, _ = glue_dev_test_split(872, 42)
    assert predictions[0]["id"].endswith(f":{test[0]}")  # the seed-42 test half, in split order


def test_arithmetic_end_to_end_on_smollm2(tmp_path):
    _, directory = run(tmp_path, "benchmarks/experiments/arithmetic/smollm2_cpu_loreft.yaml",
                       "data.train_limit=4", "train.max_steps=2", "train.batch_size=4", "train.grad_accum=1",
                       "data.eval_limit=4", "data.eval=[arithmetic/aqua,arithmetic/svamp]", "eval.max_new_tokens=8")
    result = assert_run_files(directory, ["arithmetic/aqua", "arithmetic/svamp"], 4)
    assert result["tasks"]["arithmetic/svamp"]["decoding"]["do_sample"] is False


def test_instruction_end_to_end_with_offline_judge(tmp_path):
    _, directory = run(tmp_path, "benchmarks/experiments/instruction/smollm2_cpu_loreft.yaml",
                       "data.train_limit=4", "train.max_steps=1", "train.batch_size=4", "train.grad_accum=1",
                       "data.eval_limit=null", "data.eval_sample=2", "eval.max_new_tokens=8")
    result = assert_run_files(directory, ["instruction/alpaca_eval"], 2)
    metrics = result["tasks"]["instruction/alpaca_eval"]["metrics"]
    assert metrics["judge"] == "length" and metrics["comparable_with_paper"] is False
    assert metrics["judge_agreement"]["kappa"] > 0  # its measured agreement with GPT-4 travels with it
    assert 0.0 <= metrics["win_rate"] <= 100.0
    outputs = json.loads((directory / "alpaca_eval/instruction__alpaca_eval/model_outputs.json").read_text())
    assert set(outputs[0]) == {"instruction", "output", "dataset", "generator"} and len(outputs) == 2
    # a seeded sample of the 805 instructions, the same for every run; collected with each output
    # and the judge's preference for it, from which the tables draw intervals and the head-to-head
    from benchmarks.sweeps.collect import collect_result

    record = json.loads(collect_result(directory, tmp_path / "raw").read_text())["tasks"]["instruction/alpaca_eval"]
    examples = record["examples"]
    assert examples["ids"] == ["eval:394", "eval:776"] and [o["output"] for o in outputs] == examples["output"]
    assert 100 * sum(examples["preference"]) / 2 == metrics["win_rate"]


def test_eval_sample_draws_the_same_examples_from_the_whole_set_and_excludes_a_limit():
    base = read_yaml(Path(__file__).resolve().parents[1] / "benchmarks/experiments/instruction/smollm2_cpu_loreft.yaml")
    sampled = [eval_examples(parse_experiment(apply_overrides(base, ["data.eval_limit=null", "data.eval_sample=200",
                                                                     f"seed={seed}"]), "x"),
                             "instruction/alpaca_eval", "eval")[1] for seed in (42, 43)]
    assert [e.id for e in sampled[0]] == [e.id for e in sampled[1]] and len(sampled[0]) == 200
    assert {e.raw["dataset"] for e in sampled[0]} == {"helpful_base", "koala", "oasst", "selfinstruct", "vicuna"}
    indices = [int(e.id.rsplit(":", 1)[1]) for e in sampled[0]]
    assert indices == sorted(indices) and indices[-1] > 700   # in the set's order, from all of it
    with pytest.raises(ValueError, match="eval_sample draws from the whole eval set"):
        parse_experiment(apply_overrides(base, ["data.eval_sample=200"]), "x")   # the preset's eval_limit: 40
