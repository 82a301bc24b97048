"""Experiment configs: one YAML per experiment, parsed into typed dataclasses, ``key=value`` overrides.

    experiment = load_experiment("benchmarks/experiments/commonsense/smollm2_loreft_cpu.yaml",
                                 ["train.lr=3e-4", "seed=43"])

Unknown keys (at any depth), duplicate keys and wrongly typed values fail at once, naming the key
and the file. The ``method:`` block is the method registry's options (``baselines``), checked by
the method itself; ``train:`` is ``reft.train.TrainingConfig``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.typed_yaml import apply_overrides, from_dict, read_yaml
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
    eval_sample: int | None = field(default=None, metadata={
        "help": "a seeded random N examples of each eval set, in the set's order (the same N for every run "
                "and seed: drawn with seed 0), where the first N would all come from one part of the set"})
    max_length: int = 512
    data_root: str | None = None
    allow_changed_tasks: bool = field(default=False, metadata={
        "help": "run with tasks whose fingerprint differs from the one their YAML records (edited tasks)"})
    allow_contamination: bool = field(default=False, metadata={
        "help": "train although training prompts occur in a scored set (benchmarks.experiments.contamination)"})
    decontaminate: bool = field(default=False, metadata={
        "help": "drop the training rows that match a scored example (the contamination guard's rules)"})
    drop_truncated: bool = field(default=False, metadata={
        "help": "leave out the training rows whose every target token is cut at max_length (they add no "
                "loss, only dilute their batch; with train.group_by_length a batch of them alone is 0/0)"})
    resplit: str | None = field(default=None, metadata={
        "help": "GLUE: split the validation set into a dev half (best epoch) and a test half (scored); "
                "'per-seed' (the paper: the split follows the seed) or 'fixed' (the seed-42 split for all)"})

    def __post_init__(self) -> None:
        if isinstance(self.train, str):
            self.train = [self.train]
        for key in ("train_limit", "eval_limit", "eval_sample"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"data.{key} must be >= 1 or null, got {getattr(self, key)}")
        if self.resplit not in (None, "per-seed", "fixed"):
            raise ValueError(f"data.resplit must be null, 'per-seed' or 'fixed', got {self.resplit!r}")
        if self.eval_sample is not None and (self.eval_limit is not None or self.resplit):
            raise ValueError("data.eval_sample draws from the whole eval set: leave data.eval_limit and "
                             "data.resplit unset with it")


SCORINGS = ("generate", "likelihood", "likelihood-text")


@dataclass
class EvalConfig:
    batch_size: int = 32
    decoding: str = field(default="default", metadata={
        "help": "'default' = the task's recorded decoding; or a named variant the task offers"})
    sort_by_length: bool = True
    max_new_tokens: int | None = field(default=None, metadata={"help": "override the task's (CPU presets)"})
    scoring: str = field(default="generate", metadata={
        "help": "generate (the paper's: write the answer, extract it), likelihood (rank the prompt's answer "
                "options by the log-likelihood of their trained target, 'the correct answer is answer2'), or "
                "likelihood-text (by the length-normalised log-likelihood of the options' own text, lm-eval's "
                "zero-shot acc_norm); the likelihood scorings are for commonsense tasks"})
    judge: str = field(default="local_lm", metadata={
        "help": "instruction following: alpaca_eval_gpt4 (the paper's; API key), or an offline judge: "
                "length (the presets' choice: it agrees best with GPT-4, see results/tables/judge_agreement.md), "
                "local_lm (the default, kept so recorded runs keep their identity), local_lm_rubric; offline "
                "win rates are not comparable with the paper"})


    def __post_init__(self) -> None:
        from benchmarks.experiments.judges import JUDGES

        if self.judge not in JUDGES:
            raise ValueError(f"eval.judge must be one of {sorted(JUDGES)}, got {self.judge!r}")
        if self.scoring not in SCORINGS:
            raise ValueError(f"eval.scoring must be one of {', '.join(SCORINGS)}, got {self.scoring!r}")


@dataclass
class WandbConfig:
    project: str = "reft-harness"
    mode: str = field(default="offline", metadata={"help": "online | offline | disabled"})
    group: str | None = None
    entity: str | None = None


#: what ``compat: pyreft`` switches back to pyreft 0.1.0's behaviour (README, "Faithfulness"): its
#: short-prompt position rule (a method's own ``short_prompt_rule`` wins), R trained through torch's
#: orthogonal parametrization, intervention dropout left off after the first evaluation, and weight
#: decay that never reaches the interventions
COMPAT = {"pyreft": {"method": {"short_prompt_rule": "pyreft", "rotation_training": "pyreft"},
                     "train": {"pyreft_eval_dropout": True, "decay_interventions": False}}}
REFT_METHODS = {"loreft", "direft", "reft", "reft_lora"}


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
    compat: str | None = field(default=None, metadata={
        "help": "'pyreft': reproduce pyreft 0.1.0 where the paper's numbers depend on it (see COMPAT)"})

    def __post_init__(self) -> None:
        if self.compat is None:
            return
        if self.compat not in COMPAT:
            raise ValueError(f"compat must be one of {sorted(COMPAT)} or null, got {self.compat!r}")
        for key, value in COMPAT[self.compat]["train"].items():
            setattr(self.train, key, value)
        reft_options = self.method.get("reft") if self.method.get("name") == "reft_lora" else self.method
        if self.method.get("name") in REFT_METHODS and isinstance(reft_options, dict):
            for key, value in COMPAT[self.compat]["method"].items():
                reft_options.setdefault(key, value)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def run_name(self) -> str:
        return f"{self.name}/seed{self.seed}"


def parse_experiment(values: dict, source: str = "config") -> ExperimentConfig:
    return from_dict(ExperimentConfig, values, source)


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    values = apply_overrides(read_yaml(path), overrides or [])
    return parse_experiment(values, str(path))
