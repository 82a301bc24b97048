"""Experiment configs: one YAML per experiment, parsed into typed dataclasses, ``key=value`` overrides.

    experiment = load_experiment("benchmarks/experiments/commonsense/smollm2_loreft_cpu.yaml",
                                 ["train.lr=3e-4", "seed=43"])

Unknown keys (at any depth), duplicate keys and wrongly typed values fail at once, naming the key
and the file. The ``method:`` block is the method registry's options (``baselines``), checked by
the method itself; ``train:`` is ``reft.train.TrainingConfig``.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reft.train import TrainingConfig

MODEL_TASKS = ("causal-lm", "sequence-classification")


@dataclass
class ModelConfig:
    name: str = field(metadata={"help": "hub id, local folder, or pypi:smollm2-135m-instruct / pypi:all-minilm-l6-v2"})
    task: str = "causal-lm"
    dtype: str = field(default="float32", metadata={"help": "float32 | bfloat16 | float16"})
    revision: str | None = None

    def __post_init__(self) -> None:
        if self.task not in MODEL_TASKS:
            raise ValueError(f"model.task must be one of {MODEL_TASKS}, got {self.task!r}")


@dataclass
class DataConfig:
    train: str | list[str] = field(metadata={"help": "registered task(s) whose train splits are concatenated"})
    eval: list[str] = field(default_factory=list, metadata={"help": "registered tasks to score"})
    train_split: str = "train"
    eval_split: str = "test"
    dev_split: str | None = field(default=None, metadata={
        "help": "split of the eval tasks used for selection (stage 1); never scored with the test split"})
    train_limit: int | None = field(default=None, metadata={"help": "first N examples of each train task"})
    eval_limit: int | None = field(default=None, metadata={"help": "first N examples of each eval set"})
    max_length: int = 512
    data_root: str | None = None
    allow_changed_tasks: bool = field(default=False, metadata={
        "help": "run with tasks whose fingerprint differs from the one their YAML records (edited tasks)"})
    resplit: str | None = field(default=None, metadata={
        "help": "GLUE: split the validation set into a dev half (best epoch) and a test half (scored); "
                "'per-seed' (the paper: the split follows the seed) or 'fixed' (the seed-42 split for all)"})

    def __post_init__(self) -> None:
        if isinstance(self.train, str):
            self.train = [self.train]
        for key in ("train_limit", "eval_limit"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"data.{key} must be >= 1 or null, got {getattr(self, key)}")
        if self.resplit not in (None, "per-seed", "fixed"):
            raise ValueError(f"data.resplit must be null, 'per-seed' or 'fixed', got {self.resplit!r}")


@dataclass
class EvalConfig:
    batch_size: int = 32
    decoding: str = field(default="default", metadata={
        "help": "'default' = the task's recorded decoding; or a named variant the task offers"})
    sort_by_length: bool = True
    max_new_tokens: int | None = field(default=None, metadata={"help": "override the task's (CPU presets)"})
    judge: str = field(default="local_lm", metadata={
        "help": "instruction following: alpaca_eval_gpt4 (the paper's; API key) or local_lm (offline, "
                "not comparable with the paper)"})


@dataclass
class WandbConfig:
    project: str = "reft-harness"
    mode: str = field(default="offline", metadata={"help": "online | offline | disabled"})
    group: str | None = None
    entity: str | None = None


@dataclass
class ExperimentConfig:
    name: str
    suite: str
    model: ModelConfig
    method: dict
    data: DataConfig
    train: TrainingConfig = field(default_factory=TrainingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    seed: int = 42
    output_root: str = "runs"
    notes: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def run_name(self) -> str:
        return f"{self.name}/seed{self.seed}"


# ---------------------------------------------------------------- parsing
class StrictLoader(yaml.SafeLoader):
    """YAML loader that rejects duplicate keys instead of keeping the last one (configs, tasks)."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"duplicate key(s) {duplicates} at line {node.start_mark.line + 1}")
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"experiment config {path} not found")
    try:
        values = yaml.load(path.read_text(), Loader=StrictLoader)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return values


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check/convert one value against a dataclass field annotation (nested dataclasses too)."""
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing) | vars(types) | globals())  # noqa: S307 (own annotations)
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(value, option, where)
            except ValueError:
                continue
        raise ValueError(f"{where}: {value!r} matches none of {annotation}")
    if annotation is Any:
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(annotation)
        item = args[0] if args else Any
        return origin(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):  # YAML reads 9e-4 as a string (YAML 1.1)
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise ValueError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value


def from_dict(cls, values: dict, where: str):
    """Build dataclass ``cls`` from ``values``: unknown keys and wrong types name the key."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping for {cls.__name__}, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; {cls.__name__} has {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(value, hints[name], f"{where}.{name}") for name, value in values.items()}
    missing = [name for name, f in fields.items() if name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{where}: missing required key(s) {missing}")
    return cls(**kwargs)


def apply_overrides(values: dict, overrides: list[str], source: str = "command line") -> dict:
    """``train.lr=3e-4`` → values["train"]["lr"] = 3e-4 (values parsed as YAML scalars/lists)."""
    values = copy.deepcopy(values)
    for override in overrides:
        if "=" not in override:
            raise ValueError(f"override {override!r} from {source} is not key=value")
        key, raw = override.split("=", 1)
        node = values
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {key!r}: {part!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return values


def parse_experiment(values: dict, source: str = "config") -> ExperimentConfig:
    return from_dict(ExperimentConfig, values, source)


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    values = apply_overrides(read_yaml(path), overrides or [])
    return parse_experiment(values, str(path))
