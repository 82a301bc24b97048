"""Sweep specs: one YAML expands base experiments over a search space and seeds into named runs.

    name: commonsense-cpu
    suite: commonsense
    output_root: sweeps                 # runs go to sweeps/<name>/<stage>/...
    dev:                                # stage 1: the search space, scored on dev splits only
      overrides: ["data.eval=[dev/gsm8k]", "data.eval_split=dev"]
      seeds: [42]
    final:                              # stage 2: the selected setting, test split, the paper's seeds
      overrides: []
      seeds: [42, 43, 44]
    methods:
      loreft:
        config: benchmarks/experiments/commonsense/smollm2_cpu_loreft.yaml
        grid: {train.lr: [9.0e-4, 3.0e-3], method.rank: [4, 8]}     # cartesian product
      lora:
        config: benchmarks/experiments/commonsense/smollm2_cpu_lora.yaml
        points: [{train.lr: 3.0e-4}, {train.lr: 1.0e-3}]           # or an explicit list
    executor: {kind: local, parallelism: 1, timeout_min: 120, partition: null, gpus_per_node: 0,
               mem_gb: null, account: null}

A run is named ``<sweep>-<stage>-<method>-<point>`` where the point label lists its overrides
exactly (``lr9e-04_rank4``; ``lr1.2e-03``, never rounded onto a neighbour; labels that would still
coincide get a short hash of the point), so distinct points never share a directory; its
directory is ``<output_root>/<sweep>/<stage>/<run name>/seed<seed>``.
The dev stage may not score a test split: expansion fails if any dev run's eval split is
``test`` (GLUE's ``dev`` half is the re-split validation set, as in the paper).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.experiments.config import ExperimentConfig, parse_experiment
from benchmarks.typed_yaml import apply_overrides, from_dict, read_yaml
from slurm.executors import ExecutorSpec

STAGES = ("dev", "final")
REPO = Path(__file__).resolve().parents[2]


class RunsFailed(RuntimeError):
    """Runs whose jobs ended without a result (``launch`` raises it once every job has ended)."""


@dataclass
class StageSpec:
    overrides: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [42])


#: a ``search:`` distribution: {type: float|int, low, high, log?, step?} or {type: categorical, choices},
#: each optionally ``when: {other key: value}`` (sampled only when an earlier key has that value)
DISTRIBUTION_KEYS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"},
                     "categorical": {"choices"}}


def check_space(space: dict, where: str) -> None:
    """A method's ``search:`` space: every key a config override, every distribution well formed."""
    for key, dist in space.items():
        if not isinstance(dist, dict) or dist.get("type") not in DISTRIBUTION_KEYS:
            raise ValueError(f"{where}.search.{key}: expected {{type: float|int|categorical, ...}}, got {dist!r}")
        kind, known = dist["type"], DISTRIBUTION_KEYS[dist["type"]]
        unknown = sorted(set(dist) - known - {"type", "when"})
        if unknown:
            raise ValueError(f"{where}.search.{key}: unknown key(s) {unknown} for a {kind} distribution; "
                             f"known: {sorted(known | {'when'})}")
        if kind == "categorical":
            if not isinstance(dist.get("choices"), list) or not dist["choices"]:
                raise ValueError(f"{where}.search.{key}: categorical needs a non-empty list of choices")
        else:
            if not all(isinstance(dist.get(b), (int, float)) and not isinstance(dist.get(b), bool)
                       for b in ("low", "high")) or not dist["low"] < dist["high"]:
                raise ValueError(f"{where}.search.{key}: {kind} needs numbers low < high, got {dist!r}")
            if dist.get("log") and dist["low"] <= 0:
                raise ValueError(f"{where}.search.{key}: a log-scale distribution needs low > 0")
        earlier = list(space)[:list(space).index(key)]
        for other in dist.get("when") or {}:
            if other not in earlier:
                raise ValueError(f"{where}.search.{key}: 'when' names {other!r}, which is not an earlier key")


@dataclass
class MethodSpec:
    config: str
    grid: dict = field(default_factory=dict)
    points: list[dict] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    search: dict = field(default_factory=dict, metadata={
        "help": "key → distribution, searched by Optuna under the sweep's tuning: settings (not with grid/points)"})

    def __post_init__(self) -> None:
        if self.grid and self.points:
            raise ValueError(f"method spec for {self.config}: give grid or points, not both")
        if self.search and (self.grid or self.points):
            raise ValueError(f"method spec for {self.config}: give search or grid/points, not both")
        check_space(self.search, f"method {self.config}")


@dataclass
class TuningSpec:
    """How the ``search:`` spaces are searched: an equal budget per method (``trials``, or
    ``seconds`` of training + evaluation), Optuna's seeded TPE or random sampler, ``workers``
    processes sharing one study per method (a journal file in ``<sweep>/search/``); ``pruner``
    stops trials early on their per-epoch dev scores (Optuna's ``median`` or successive-``halving``
    pruner; runs with ``data.resplit`` have them), ``none`` trains every trial to the end."""

    trials: int | None = None
    seconds: float | None = None
    sampler: str = "tpe"
    seed: int = 0
    workers: int = 1
    pruner: str = "none"

    def __post_init__(self) -> None:
        if (self.trials is None) == (self.seconds is None):
            raise ValueError("tuning: give the budget per method as trials or as seconds (one of them)")
        if self.trials is not None and self.trials < 1 or self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"tuning: the budget must be positive, got trials={self.trials} seconds={self.seconds}")
        if self.sampler not in ("tpe", "random"):
            raise ValueError(f"tuning.sampler must be 'tpe' or 'random', got {self.sampler!r}")
        if self.workers < 1:
            raise ValueError(f"tuning.workers must be >= 1, got {self.workers}")
        if self.pruner not in ("none", "median", "halving"):
            raise ValueError(f"tuning.pruner must be 'none', 'median' or 'halving', got {self.pruner!r}")


@dataclass
class SweepSpec:
    name: str
    suite: str
    methods: dict[str, MethodSpec]
    dev: StageSpec = field(default_factory=StageSpec)
    final: StageSpec = field(default_factory=lambda: StageSpec(seeds=[42, 43, 44]))
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    output_root: str = "sweeps"
    floors: list[str] = field(default_factory=list, metadata={
        "help": "experiment configs run once (first final seed) next to the final stage, e.g. the untrained model"})
    tuning: TuningSpec | None = None

    def __post_init__(self) -> None:
        self.methods = {name: m if isinstance(m, MethodSpec) else from_dict(MethodSpec, m, f"methods.{name}")
                        for name, m in self.methods.items()}
        searched = [name for name, m in self.methods.items() if m.search]
        if searched and self.tuning is None:
            raise ValueError(f"sweep {self.name}: methods {searched} have a search: space but the sweep has no "
                             "tuning: block (budget per method, sampler, workers)")
        if self.tuning is not None and len(searched) != len(self.methods):
            others = sorted(set(self.methods) - set(searched))
            raise ValueError(f"sweep {self.name}: with tuning:, every method needs a search: space (an equal "
                             f"budget for each); {others} have none")

    @property
    def root(self) -> Path:
        return Path(self.output_root) / self.name


@dataclass(frozen=True)
class Run:
    """One (stage, method, search point, seed)."""

    stage: str
    method: str
    point: str
    seed: int
    config: ExperimentConfig = field(compare=False)

    @property
    def key(self) -> str:
        return f"{self.stage}/{self.method}/{self.point}/seed{self.seed}"


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    values = apply_overrides(read_yaml(path), overrides or [])
    return from_dict(SweepSpec, values, str(path))


FLOORS = "floors"  # the --methods key that selects a spec's floor runs


def restrict_methods(spec: SweepSpec, names: list[str] | None) -> SweepSpec:
    """The sweep limited to ``names`` (its methods' keys), e.g. to finish part of a sweep first. Its
    ``floors`` come along only when ``names`` holds ``floors``, so two launchers of other methods
    beside each other do not both claim the floor runs."""
    if not names:
        return spec
    unknown = [name for name in names if name not in spec.methods and name != FLOORS]
    if unknown:
        raise ValueError(f"sweep {spec.name} has no method(s) {unknown}; its methods: {list(spec.methods)}"
                         f" (and '{FLOORS}' for its floor runs)")
    spec.methods = {name: spec.methods[name] for name in names if name != FLOORS}
    if FLOORS not in names:
        spec.floors = []
    return spec


def search_points(spec: MethodSpec) -> list[dict]:
    if spec.points:
        return [dict(point) for point in spec.points]
    keys = list(spec.grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(spec.grid[k] for k in keys))] or [{}]


def _float_text(value: float) -> str:
    """The shortest ``e`` notation that reads back as exactly ``value``: 9e-04, 1.2e-03."""
    for digits in range(17):
        text = f"{value:.{digits}e}"
        if float(text) == value:
            return text
    return repr(value)


def point_label(point: dict) -> str:
    """``{"train.lr": 0.0009, "method.rank": 4}`` → ``lr9e-04_rank4`` (``default`` when empty)."""
    parts = []
    for key, value in point.items():
        short = key.rsplit(".", 1)[-1]
        text = _float_text(value) if isinstance(value, float) else str(value)
        parts.append(re.sub(r"[^A-Za-z0-9.+-]", "", f"{short}{text}"))
    return "_".join(parts) or "default"


def point_labels(points: list[dict]) -> list[str]:
    """Labels of a method's points, one per point and all distinct: where two points' labels would
    coincide (``layers: [2, 4]`` and ``[24]``), each of them gets a hash of its point."""
    plain = [point_label(point) for point in points]
    labels = list(plain)
    for i, label in enumerate(plain):
        if plain.count(label) > 1:
            digest = hashlib.sha256(json.dumps(points[i], sort_keys=True).encode()).hexdigest()[:6]
            labels[i] = f"{label}-{digest}"
    if len(set(labels)) != len(labels):
        raise ValueError(f"the search space lists a point twice: {points}")
    return labels


def label_of(method_spec: "MethodSpec", point: dict) -> str:
    """The label ``point`` has among its method's search points (as the dev stage named it)."""
    points = search_points(method_spec)
    return point_labels(points)[points.index(point)] if point in points else point_label(point)


def _as_override(key: str, value) -> str:
    import yaml

    return f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"


def experiment(spec: SweepSpec, stage: str, method: str, point: dict, seed: int) -> ExperimentConfig:
    """The resolved experiment config of one run."""
    method_spec = spec.methods[method]
    stage_spec = getattr(spec, stage)
    label = label_of(method_spec, point)
    base = Path(method_spec.config)
    base = base if base.is_absolute() else REPO / base
    overrides = [*method_spec.overrides, *stage_spec.overrides, *(_as_override(k, v) for k, v in point.items()),
                 f"name={spec.name}-{stage}-{method}-{label}", f"seed={seed}",
                 f"output_root={spec.root / stage}", f"wandb.group={spec.name}-{stage}"]
    config = parse_experiment(apply_overrides(read_yaml(base), overrides), f"{base} (sweep {spec.name})")
    if stage == "dev" and config.data.eval_split == "test":
        raise ValueError(f"sweep {spec.name}: dev run {method}/{label} would score the test split; "
                         "set dev.overrides to a dev split (e.g. data.eval_split=dev)")
    return config


def has_search(spec: SweepSpec) -> bool:
    """Whether any method has more than one point (else the dev stage has nothing to choose)."""
    return any(len(search_points(m)) > 1 for m in spec.methods.values())


def floor_runs(spec: SweepSpec) -> list[Run]:
    """The ``floors`` experiments, once each, in the final stage's folder."""
    runs = []
    seed = spec.final.seeds[0]
    for path in spec.floors:
        base = Path(path) if Path(path).is_absolute() else REPO / path
        overrides = [*spec.final.overrides, f"seed={seed}", f"output_root={spec.root / 'final'}",
                     f"wandb.group={spec.name}-final"]
        config = parse_experiment(apply_overrides(read_yaml(base), overrides), f"{base} (sweep {spec.name})")
        config.name = f"{spec.name}-final-{config.name}"
        runs.append(Run("final", config.method["name"], "floor", seed, config))
    return runs


def expand(spec: SweepSpec, stage: str, chosen: dict[str, dict] | None = None) -> list[Run]:
    """Runs of ``stage``: the whole search space (dev), or each method's chosen point (final)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    runs = []
    for method, method_spec in spec.methods.items():
        if stage == "dev":
            points = search_points(method_spec)
        else:
            if chosen is None or method not in chosen:
                raise ValueError(f"final stage of {spec.name}: no selection for method {method!r}; run `reft select`")
            points = [chosen[method]]
        for point in points:
            label = label_of(method_spec, point)
            for seed in getattr(spec, stage).seeds:
                runs.append(Run(stage, method, label, seed, experiment(spec, stage, method, point, seed)))
    return runs
