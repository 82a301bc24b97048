"""The project's tasks exported for lm-eval (benchmarks/lm_eval_tasks.py) and ``reft lm-eval``.

Real lm-eval, real SmolLM2, the real BoolQ / ARC-Easy / GSM8K test rows, offline. A LoReFT with a
random initialisation (so its interventions change what is generated) is saved and scored twice:
by the project's evaluator (``evaluate_task``) and by lm-eval on the exported task through the
``reft`` model class. The generations and the per-example correctness must be the same, example
for example. The default run scores 4 rows per task with generation capped at 16 tokens on both
sides; the slow run scores 20 rows with each task's own decoding (GSM8K capped at 96 tokens).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # before datasets is imported (lm-eval imports it)
lm_eval = pytest.importorskip("lm_eval", reason="the lm-eval extra: pip install -e '.[lm-eval]'")

from conftest import SMOLLM2, saved_smollm2_method  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TASK_KEYS = ["commonsense/boolq", "commonsense/arc_easy", "arithmetic/gsm8k"]
LOREFT = {"name": "loreft", "rank": 2, "positions": "f1+l1", "tied": False, "layers": [3, 15]}


@pytest.fixture(scope="module")
def loreft(tmp_path_factory):
    """(wrapped model, tokenizer, checkpoint directory): a random-init LoReFT on SmolLM2."""
    from reft.pretrained import load_tokenizer

    wrapped, directory = saved_smollm2_method(LOREFT, tmp_path_factory.mktemp("loreft"))
    return wrapped, load_tokenizer(SMOLLM2), directory


def test_export_writes_a_task_per_generation_task_and_refuses_classification(tmp_path):
    from benchmarks.lm_eval_tasks import export_tasks

    written = export_tasks(tmp_path, TASK_KEYS, limit=3)
    assert [p.name for p in written] == ["commonsense_boolq.yaml", "commonsense_arc_easy.yaml",
                                         "arithmetic_gsm8k.yaml"]
    text = written[0].read_text()
    assert "process_results: !function reft_lm_eval_tasks.process_results" in text  # the tag unquoted
    assert "until: []" in text and "max_gen_toks: 32" in text
    rows = [json.loads(line) for line in (tmp_path / "data" / "commonsense_boolq.test.jsonl").open()]
    assert len(rows) == 3 and rows[0]["reft_task"] == "commonsense/boolq"
    assert (tmp_path / "reft_lm_eval_tasks.py").is_file()
    with pytest.raises(ValueError, match="glue/sst2 cannot run under lm-eval: a classification task"):
        export_tasks(tmp_path / "glue", ["glue/sst2"])
    with pytest.raises(ValueError, match="metric .* has no per-example rule"):
        export_tasks(tmp_path / "alpaca", ["instruction/alpaca_eval"])


def test_scoring_refuses_a_row_whose_task_changed_since_the_export(tmp_path):
    from benchmarks.lm_eval_tasks import process_results
    from benchmarks.lm_eval_tasks import export_tasks

    export_tasks(tmp_path, ["commonsense/boolq"], limit=1)
    row = json.loads((tmp_path / "data" / "commonsense_boolq.test.jsonl").read_text())
    assert process_results(row, [f"the correct answer is {row['gold']}"]) == {"accuracy": 1.0}
    assert process_results(row, ["I do not know"]) == {"accuracy": 0.0}
    with pytest.raises(ValueError, match="changed since it was exported"):
        process_results({**row, "reft_fingerprint": "0" * 12}, ["the correct answer is true"])


def _project_scores(wrapped, tokenizer, key: str, limit: int, max_new_tokens: int | None):
    from benchmarks.experiments.evaluate import evaluate_task
    from benchmarks.tasks import get_task

    task = get_task(key)
    decoding = task.decoding if max_new_tokens is None else {**task.decoding, "max_new_tokens": max_new_tokens}
    _, predictions = evaluate_task(wrapped, tokenizer, task, task.load(None, None, limit), batch_size=4,
                                   decoding=decoding, progress=False)
    return {p.id: (p.output, bool(p.correct)) for p in predictions}


def _lm_eval_scores(checkpoint, task_dir: Path, key: str, limit: int, max_new_tokens: int | None):
    from benchmarks.lm_eval_adapter import evaluate_checkpoint
    from benchmarks.lm_eval_tasks import lm_eval_name
    from benchmarks.tasks import get_task

    name = lm_eval_name(get_task(key))
    results = evaluate_checkpoint(SMOLLM2, checkpoint, [name], task_dir=task_dir, limit=limit,
                                  include_defaults=False, batch_size=4, device="cpu", bootstrap_iters=0,
                                  log_samples=True,
                                  gen_kwargs=None if max_new_tokens is None else {"max_gen_toks": max_new_tokens})
    samples = {s["doc"]["id"]: (s["resps"][0][0], s["accuracy"] == 1.0) for s in results["samples"][name]}
    return results["results"][name]["accuracy,none"], samples


def _compare(loreft, tmp_path, limit: int, caps: dict[str, int | None]) -> None:
    from benchmarks.lm_eval_tasks import export_tasks

    wrapped, tokenizer, checkpoint = loreft
    export_tasks(tmp_path, TASK_KEYS, limit=limit)
    for key in TASK_KEYS:
        ours = _project_scores(wrapped, tokenizer, key, limit, caps[key])
        accuracy, theirs = _lm_eval_scores(checkpoint, tmp_path, key, limit, caps[key])
        assert len(theirs) == len(ours) == limit, key
        for example_id, (output, correct) in ours.items():
            assert theirs[example_id][0].strip() == output.strip(), (key, example_id)
            assert theirs[example_id][1] == correct, (key, example_id)
        assert accuracy == pytest.approx(sum(c for _, c in ours.values()) / limit), key


def test_exported_tasks_score_as_the_projects_evaluator(loreft, tmp_path):
    _compare(loreft, tmp_path, limit=4, caps=dict.fromkeys(TASK_KEYS, 16))


@pytest.mark.slow
def test_exported_tasks_score_as_the_projects_evaluator_on_20_rows(loreft, tmp_path):
    _compare(loreft, tmp_path, limit=20, caps={"commonsense/boolq": None, "commonsense/arc_easy": None,
                                                "arithmetic/gsm8k": 96})


def test_reft_lm_eval_command_runs_an_exported_task(loreft, tmp_path):
    """``reft lm-eval`` is lm-eval's own CLI with ``--model reft`` as the default and ``pretrained=``."""
    from benchmarks.lm_eval_tasks import export_tasks

    _, _, checkpoint = loreft
    export_tasks(tmp_path / "tasks", ["commonsense/boolq"], limit=2)
    out = tmp_path / "out"
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "benchmarks.cli", "lm-eval", "--model_args",
               f"pretrained={SMOLLM2},checkpoint={checkpoint},batch_size=2,device=cpu",
               "--include_path", str(tmp_path / "tasks"), "--tasks", "reft_commonsense_boolq", "--limit", "2",
               "--gen_kwargs", "max_gen_toks=8", "--output_path", str(out)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in out.rglob("results_*.json")]
    assert len(results) == 1
    assert 0.0 <= results[0]["results"]["reft_commonsense_boolq"]["accuracy,none"] <= 1.0
    assert "reft_commonsense_boolq" in done.stdout  # lm-eval's own results table
