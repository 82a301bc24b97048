"""Benchmark tasks, declared once in ``benchmarks/tasks/<suite>/<task>.yaml`` and loaded into ``TASKS``.

    task = get_task("commonsense/boolq")
    examples = task.load()                           # the YAML's default split, here "test"
    answers = [task.extract(g) for g in generations]  # g = the new tokens only, decoded
    task.score(answers, [e.gold for e in examples])  # {"accuracy": ...}; task.primary_metric

YAML keys (unknown, duplicate or missing keys are errors naming the key and the file):

* every task: ``name``, ``suite`` (folder and file name must agree), ``version``, ``fingerprint``,
  ``kind`` (``generate`` or ``classify``), ``splits`` (per split: ``path`` under the data root,
  ``hub`` = ``datasets.load_dataset`` arguments, optional ``rows`` slice such as ``"-300:"``),
  ``default_split``, ``metric`` (a ``metrics.METRICS`` name), ``extractors`` (named configs
  ``{fn: <extract.EXTRACTORS name>, use_trigger: bool, **parameters}``) and ``extractor`` (the
  default one; ``Task.variant`` picks another);
* generate: ``template`` (a ``templates.TEMPLATES`` name), ``trigger`` and ``trigger_in_prompt``
  (see ``extract.after_trigger``), ``decodings`` (named HF ``generate`` arguments) and ``decoding``;
* classify: ``labels`` (class names in HF order; null = regression), ``columns`` / ``hub_columns``
  (``text_a``, optional ``text_b``, ``label``), optional ``tsv_header``.

``fingerprint`` hashes everything that changes scores: the YAML's content and the source of the
template, extractor and metric code it names. ``tests/test_bench_tasks.py`` recomputes it, so a
changed prompt or extractor fails until the version is bumped and the new fingerprint recorded.

Suites: ``commonsense`` and ``arithmetic`` (paper Tables 1–2), ``dev`` (the paper's GSM8K
hyperparameter-selection task), ``instruction`` (UltraFeedback → AlpacaEval) and ``glue``.
Training-only sets (COMMONSENSE-170K, MATH-10K, MAWPS train, UltraFeedback) have
``default_split: train``; every other task is an evaluation task.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import os
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any, Sequence

import yaml

from benchmarks.tasks import data
from benchmarks.typed_yaml import StrictLoader
from benchmarks.tasks.data import Example, SplitSource, classification_fields, read_split
from benchmarks.tasks.extract import EXTRACTORS, after_trigger
from benchmarks.tasks.metrics import METRICS
from benchmarks.tasks.templates import TEMPLATES

SUITES = ("commonsense", "arithmetic", "dev", "instruction", "glue")
TASK_DIR = Path(__file__).resolve().parent

COMMON_KEYS = {"name", "suite", "version", "fingerprint", "kind", "default_split", "splits",
               "metric", "extractor", "extractors"}
KIND_KEYS = {
    "generate": {"template", "trigger", "trigger_in_prompt", "decoding", "decodings"},
    "classify": {"labels", "columns", "hub_columns", "tsv_header"},
}
OPTIONAL_KEYS = {"tsv_header"}
SPLIT_KEYS = {"path", "hub", "rows"}


@dataclass(frozen=True, eq=False)
class Task:
    """One benchmark task; build it with :func:`get_task`, not directly."""

    name: str
    suite: str
    version: int
    kind: str
    splits: dict[str, SplitSource]
    default_split: str
    metric: str
    extractor: str
    extractors: dict[str, dict]
    recorded_fingerprint: str
    template: str | None = None
    trigger: str | None = None
    trigger_in_prompt: bool = False
    decoding_name: str | None = None
    decodings: dict[str, dict] = field(default_factory=dict)
    labels: list[str] | None = None
    columns: dict | None = None
    hub_columns: dict | None = None
    tsv_header: bool = True

    @property
    def key(self) -> str:
        """``suite/name``, unique across suites (``arithmetic/gsm8k`` vs ``dev/gsm8k``)."""
        return f"{self.suite}/{self.name}"

    def load(self, split: str | None = None, data_root: str | Path | None = None,
             limit: int | None = None) -> list[Example]:
        """Examples of ``split`` (default: the YAML's ``default_split``), the first ``limit`` only."""
        split = split or self.default_split
        if split not in self.splits:
            raise ValueError(f"{self.key} has no split {split!r}; it has {sorted(self.splits)}")
        root = Path(data_root) if data_root is not None else data.data_root()
        rows, where, from_hub = read_split(self.splits[split], root, self.tsv_header)
        columns = self.hub_columns if from_hub else self.columns
        examples = []
        for number, row in rows[:limit]:
            try:
                examples.append(self._example(f"{self.key}:{split}:{number}", row, columns))
            except KeyError as error:
                raise ValueError(f"{where}, row {number}: missing field {error.args[0]!r}") from None
            except (TypeError, ValueError) as error:
                raise ValueError(f"{where}, row {number}: {error}") from None
        return examples

    def _example(self, example_id: str, row: dict, columns: dict | None) -> Example:
        if self.kind == "generate":
            rendered = TEMPLATES[self.template](row, self.trigger)
            return Example(example_id, rendered.prompt, rendered.target, rendered.gold, row)
        text_a, text_b, label = classification_fields(row, columns, self.labels)
        prompt = text_a if text_b is None else f"{text_a}\n{text_b}"
        return Example(example_id, prompt, str(label), label, row, text_a, text_b, label)

    def extract(self, generation: str | Sequence[float]) -> Any:
        """The answer in a decoded generation (new tokens only), or in a classifier's logits."""
        params = dict(self.extractors[self.extractor])
        function = EXTRACTORS[params.pop("fn")]
        if params.pop("use_trigger", False):
            generation = after_trigger(generation, self.trigger, self.trigger_in_prompt)
        return function(generation, **params)

    def is_correct(self, answer: Any, gold: Any) -> bool:
        rule = METRICS[self.metric].is_correct
        if rule is None:
            raise ValueError(f"{self.key}: metric {self.metric!r} has no per-example correctness")
        return rule(answer, gold)

    def score(self, answers: Sequence, golds: Sequence) -> dict[str, float]:
        if len(answers) != len(golds) or not golds:
            raise ValueError(f"{self.key}: need as many answers as golds, at least one; "
                             f"got {len(answers)} and {len(golds)}")
        return METRICS[self.metric].score(list(answers), list(golds))

    @property
    def primary_metric(self) -> str:
        return METRICS[self.metric].primary

    @property
    def decoding(self) -> dict:
        """HF ``generate`` keyword arguments of the YAML's default decoding ({} for classification)."""
        return self.decoding_for(self.decoding_name) if self.kind == "generate" else {}

    def decoding_for(self, name: str) -> dict:
        if name not in self.decodings:
            raise ValueError(f"{self.key} has no decoding {name!r}; it has {sorted(self.decodings)}")
        return dict(self.decodings[name])

    @property
    def num_labels(self) -> int | None:
        """Classifier outputs: the number of classes, 1 for regression; None for generation tasks."""
        if self.kind != "classify":
            return None
        return len(self.labels) if self.labels else 1

    def variant(self, extractor: str | None = None, decoding: str | None = None) -> Task:
        """The task with another named extractor or decoding (e.g. ``extractor="llm_adapters"``);
        its fingerprint differs, so results record which one was used."""
        if extractor is not None and extractor not in self.extractors:
            raise ValueError(f"{self.key} has no extractor {extractor!r}; it has {sorted(self.extractors)}")
        if decoding is not None:
            self.decoding_for(decoding)
        return dataclasses.replace(self, extractor=extractor or self.extractor,
                                   decoding_name=decoding or self.decoding_name)

    def fingerprint(self) -> str:
        """Short sha256 of the task's content and of the code its scores depend on."""
        content = dataclasses.asdict(self)
        del content["version"], content["recorded_fingerprint"]
        functions = [EXTRACTORS[params["fn"]] for params in self.extractors.values()]
        functions += [f for f in (METRICS[self.metric].score, METRICS[self.metric].is_correct) if f]
        if self.kind == "generate":
            functions += [TEMPLATES[self.template], after_trigger]
        else:
            functions.append(classification_fields)
        payload = json.dumps({"task": content, "code": code_digest(functions)}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def code_digest(functions: Sequence) -> list[str]:
    """The source (docstrings, comments and blank lines dropped) of ``functions`` and of every
    function and constant of this package they reach, sorted: the code a score depends on."""
    parts, seen, stack = set(), set(), list(functions)
    while stack:
        function = stack.pop()
        name = f"{function.__module__}.{function.__qualname__}"
        if name in seen:
            continue
        seen.add(name)
        parts.add(_bare_source(function))
        namespace = vars(sys.modules[function.__module__])
        reached = [namespace.get(n) for n in _names(function.__code__)]
        reached += [cell.cell_contents for cell in function.__closure__ or ()]
        for value in reached:
            if inspect.isfunction(value) and value.__module__.startswith(f"{__package__}."):
                stack.append(value)
        for constant in _names(function.__code__):
            if not constant.startswith("__") and isinstance(namespace.get(constant), (str, int, float, re.Pattern)):
                parts.add(f"{_digest_module(function.__module__)}.{constant} = {namespace[constant]!r}")
    return sorted(parts)


def _digest_module(module: str) -> str:
    """A module as the digest names it: ``benchmarks.<file>``, whichever package the file sits in, so
    a fingerprint depends on what the code does, not on where it lives (the tasks' recorded
    fingerprints predate the ``benchmarks/tasks/`` package and stay valid)."""
    return "benchmarks." + module.rsplit(".", 1)[-1]


def _names(code: CodeType) -> set[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names |= _names(constant)
    return names


_SOURCES: dict[Any, str] = {}


def _bare_source(function) -> str:
    """The function's source without docstring, comments and blank lines, read once per process:
    ``inspect`` reads source files, not the code in memory, so a file edited while a long-lived
    process runs (a search worker) would otherwise give that process another fingerprint than the
    code it runs, and refuse its runs."""
    if function not in _SOURCES:
        _SOURCES[function] = _read_bare_source(function)
    return _SOURCES[function]


def _read_bare_source(function) -> str:
    source = textwrap.dedent(inspect.getsource(function))
    lines = source.splitlines()
    body = ast.parse(source).body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        del lines[body[0].lineno - 1:body[0].end_lineno]
    return "\n".join(line.rstrip() for line in lines if line.strip() and not line.strip().startswith("#"))


def load_task(path: Path, builtin: bool = True) -> Task:
    """Parse and check one task YAML; every error names the file. A task from a user's folder
    (``builtin=False``) may name a suite of its own."""
    try:
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader)
        return _build(spec, path, builtin)
    except (ValueError, TypeError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: {error}") from None


def _build(spec: Any, path: Path, builtin: bool = True) -> Task:
    if not isinstance(spec, dict):
        raise ValueError("expected a mapping of task fields")
    kind = spec.get("kind")
    if kind not in KIND_KEYS:
        raise ValueError(f"kind must be one of {sorted(KIND_KEYS)}, got {kind!r}")
    allowed = COMMON_KEYS | KIND_KEYS[kind]
    unknown, missing = sorted(set(spec) - allowed), sorted(allowed - OPTIONAL_KEYS - set(spec))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; a {kind} task takes {sorted(allowed)}")
    if missing:
        raise ValueError(f"missing key(s) {missing}")
    if (spec["suite"], spec["name"]) != (path.parent.name, path.stem):
        raise ValueError(f"suite/name {spec['suite']}/{spec['name']} must match the file's folder/name")
    values = {k: v for k, v in spec.items() if k not in ("fingerprint", "decoding", "splits")}
    task = Task(**values, recorded_fingerprint=str(spec["fingerprint"]), decoding_name=spec.get("decoding"),
                splits={name: _split(name, value) for name, value in spec["splits"].items()})
    _check(task, builtin)
    return task


def _split(name: str, value: Any) -> SplitSource:
    if not isinstance(value, dict) or "path" not in value or set(value) - SPLIT_KEYS:
        raise ValueError(f"split {name!r} must be a mapping with 'path' and optionally 'hub', 'rows'; got {value!r}")
    if value.get("hub") is not None and not {"path", "split"} <= set(value["hub"]):
        raise ValueError(f"split {name!r}: hub needs 'path' and 'split' (datasets.load_dataset arguments)")
    return SplitSource(**value)


def _check(task: Task, builtin: bool = True) -> None:
    """Every name in the YAML resolves, and every extractor's parameters fit its function."""
    if builtin and task.suite not in SUITES:
        raise ValueError(f"suite {task.suite!r} is not one of {SUITES}")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", task.suite):
        raise ValueError(f"suite {task.suite!r} must be a lowercase identifier (letters, digits, _)")
    if not isinstance(task.version, int) or task.version < 1:
        raise ValueError(f"version must be a positive integer, got {task.version!r}")
    if task.default_split not in task.splits:
        raise ValueError(f"default_split {task.default_split!r} is not among the splits {sorted(task.splits)}")
    if task.metric not in METRICS:
        raise ValueError(f"unknown metric {task.metric!r}; known: {sorted(METRICS)}")
    if task.extractor not in task.extractors:
        raise ValueError(f"extractor {task.extractor!r} is not among the extractors {sorted(task.extractors)}")
    for name, params in task.extractors.items():
        params = dict(params)
        function = EXTRACTORS.get(params.pop("fn", None))
        if function is None:
            raise ValueError(f"extractor {name!r} needs fn: one of {sorted(EXTRACTORS)}")
        if params.pop("use_trigger", False) and task.trigger is None:
            raise ValueError(f"extractor {name!r} uses the trigger but the task has none")
        inspect.signature(function).bind("", **params)
    if task.kind == "generate":
        if task.template not in TEMPLATES:
            raise ValueError(f"unknown template {task.template!r}; known: {sorted(TEMPLATES)}")
        task.decoding_for(task.decoding_name)
    else:
        for columns in (task.columns, task.hub_columns):
            if not isinstance(columns, dict) or not {"text_a", "label"} <= set(columns):
                raise ValueError(f"columns and hub_columns need 'text_a' and 'label' (and 'text_b' for pairs), "
                                 f"got {columns!r}")


def _load_all() -> dict[str, Task]:
    tasks = [load_task(path) for path in sorted(TASK_DIR.glob("*/*.yaml"))]
    return {task.key: task for task in tasks}


TASKS: dict[str, Task] = _load_all()
#: folders of user tasks (``<suite>/<task>.yaml``), separated by ``os.pathsep``; read at import, so
#: the jobs a sweep starts see the same tasks as the process that started them
TASKS_PATH_VARIABLE = "REFT_TASKS_PATH"


def include_tasks(directory: str | Path) -> list[str]:
    """Register every ``<suite>/<task>.yaml`` under ``directory`` (a user's task folder, outside the
    package; new suites allowed) and return their keys. A task whose key a registered task already
    has is refused: shadowing a built-in task would change its scores silently. Split paths are
    relative to the data root (``$REFT_DATA_ROOT``) or absolute."""
    directory = Path(directory).expanduser().resolve()
    if not directory.is_dir():
        raise FileNotFoundError(f"task folder {directory} not found")
    paths = sorted(directory.glob("*/*.yaml"))
    if not paths:
        raise FileNotFoundError(f"task folder {directory} holds no <suite>/<task>.yaml")
    tasks = [load_task(path, builtin=False) for path in paths]
    for task, path in zip(tasks, paths):
        known = TASKS.get(task.key)
        if known is not None and (known.version, known.fingerprint()) != (task.version, task.fingerprint()):
            raise ValueError(f"{path}: task {task.key!r} is already registered (another YAML); rename it")
    TASKS.update({task.key: task for task in tasks})
    return [task.key for task in tasks]


for _folder in filter(None, os.environ.get(TASKS_PATH_VARIABLE, "").split(os.pathsep)):
    include_tasks(_folder)


def get_task(name: str) -> Task:
    """The task called ``suite/name``, e.g. ``commonsense/boolq``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def tasks_in_suite(suite: str) -> list[Task]:
    if suite not in SUITES and not any(task.suite == suite for task in TASKS.values()):
        raise ValueError(f"unknown suite {suite!r}; suites: {', '.join(SUITES)}")
    return [task for task in TASKS.values() if task.suite == suite]
