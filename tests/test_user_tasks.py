"""Tasks from a folder outside the repository (issue 16.8): ``reft --tasks-dir DIR`` and
``$REFT_TASKS_PATH``, a new suite, trained and evaluated end to end through ``reft train``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.cli import main
from benchmarks.tasks import registry

REPO = Path(__file__).resolve().parents[1]
ROWS = [{"instruction": f"What is {a} plus {b}?", "answer": str(a + b)} for a in range(6) for b in range(4)]


def write_task(folder: Path, data: Path, fingerprint: str = "new") -> Path:
    """A generation task ``toy/addition`` (a suite the package does not have) over ``data``."""
    spec = {"name": "addition", "suite": "toy", "version": 1, "fingerprint": fingerprint, "kind": "generate",
            "template": "commonsense", "trigger": "the correct answer is ", "trigger_in_prompt": False,
            "extractor": "paper", "extractors": {"paper": {"fn": "text", "use_trigger": True}},
            "metric": "exact_match", "decoding": "greedy",
            "decodings": {"greedy": {"max_new_tokens": 8, "do_sample": False, "num_beams": 1}},
            "default_split": "test",
            "splits": {"train": {"path": str(data), "rows": ":16"}, "test": {"path": str(data), "rows": "16:"}}}
    path = folder / "toy" / "addition.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture
def task_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "TASKS", dict(registry.TASKS))  # registrations stay inside the test
    import benchmarks.tasks as tasks_package
    monkeypatch.setattr(tasks_package, "TASKS", registry.TASKS)
    data = tmp_path / "data" / "addition.json"
    data.parent.mkdir()
    data.write_text(json.dumps(ROWS))
    folder = tmp_path / "my_tasks"
    path = write_task(folder, data)
    fingerprint = registry.load_task(path, builtin=False).fingerprint()
    write_task(folder, data, fingerprint)  # what `reft tasks` tells the author to record
    return folder


def test_a_task_folder_outside_the_repo_trains_and_evaluates(task_folder, tiny_llama_dir, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.delenv(registry.TASKS_PATH_VARIABLE, raising=False)
    config = tmp_path / "toy_loreft.yaml"
    config.write_text(yaml.safe_dump({
        "name": "toy-loreft", "suite": "toy", "model": {"name": str(tiny_llama_dir)},
        "method": {"name": "loreft", "rank": 2, "layers": "all", "positions": "l1"},
        "data": {"train": ["toy/addition"], "eval": ["toy/addition"], "max_length": 64},
        "train": {"epochs": 1, "batch_size": 4, "lr": 1.0e-3, "max_steps": 3},
        "eval": {"batch_size": 4}, "wandb": {"mode": "disabled"}, "output_root": str(tmp_path / "runs")}))
    assert main(["--tasks-dir", str(task_folder), "tasks"]) == 0
    listed = capsys.readouterr().out
    assert "toy/addition" in listed and "bump the version" not in listed
    assert main(["--tasks-dir", str(task_folder), "train", str(config)]) == 0
    result = json.loads((tmp_path / "runs" / "toy-loreft" / "seed42" / "result.json").read_text())
    assert result["tasks"]["toy/addition"]["n"] == len(ROWS) - 16
    assert result["train"]["steps"] == 3
    # jobs started by this command find the folder through the environment
    import os
    assert str(task_folder.resolve()) in os.environ[registry.TASKS_PATH_VARIABLE]


def test_task_folder_errors_name_the_thing(task_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(registry.TASKS_PATH_VARIABLE, raising=False)
    assert main(["--tasks-dir", str(tmp_path / "missing"), "tasks"]) == 2
    assert "task folder" in capsys.readouterr().err
    clash = tmp_path / "clash" / "commonsense" / "boolq.yaml"  # a user YAML may not shadow a built-in task
    clash.parent.mkdir(parents=True)
    spec = yaml.safe_load((REPO / "benchmarks/tasks/commonsense/boolq.yaml").read_text())
    clash.write_text(yaml.safe_dump({**spec, "version": 9}))
    assert main(["--tasks-dir", str(tmp_path / "clash"), "tasks"]) == 2
    assert "task 'commonsense/boolq' is already registered" in capsys.readouterr().err
    bad = tmp_path / "bad" / "Bad-Suite" / "x.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text("name: x\\nsuite: Bad-Suite\\n")
    with pytest.raises(ValueError, match="x.yaml"):
        registry.include_tasks(tmp_path / "bad")
