"""Bottleneck adapters: the paper's AdapterS (series) and AdapterP (parallel), as in LLM-Adapters.

An adapter is a two-layer bottleneck around a frozen linear layer f(x) = Wx + c:

    A(z)      = s · W_up σ(W_down dropout(z)),   W_down: m×k, W_up: k×m', no biases
    series    (placement "input")   x ↦ f(x + A(x))       (LLM-Adapters' ``mh_adapter``)
              (placement "output")  x ↦ f(x) + A(f(x))    (``output_adapter``)
    parallel                        x ↦ f(x) + A(x)       (``parallel_adapter``, m = in, m' = out)

σ = tanh, s = 1, k = 256, initialisation N(0, 0.02²) for both matrices ("bert"), the adapter
computed in fp32: LLM-Adapters' defaults (``peft/tuners/bottleneck.py`` of their fork). A series
adapter sits on the side of the layer with the model's width: ``input`` for expanding layers
(``gate_proj``, ``up_proj``), ``output`` for contracting ones (``down_proj``), LLM-Adapters' table.

Default targets reproduce the paper's Params% (Table 1): series on ``gate_proj`` and ``up_proj``
(two d×256 + 256×d adapters per layer: 1.953% of LLaMA-7B), parallel on ``up_proj`` and
``down_proj`` (256·(d + d_ff) each: 3.542%). The commonsense series target was cut off in the
LLM-Adapters issue the settings come from; ``down_proj`` alone would give 0.98%, so the Params%
identifies the math setting (``gate_proj``/``up_proj``) as the one in the table.

Why not a peft method or AdapterHub: peft has no bottleneck adapter and its registry
(``register_peft_method``) only accepts members of the closed ``PeftType`` enum, so a custom
method would mean patching peft; AdapterHub's ``adapters`` pins transformers 4.57 while this
harness runs transformers 5. The module below is small, exact to LLM-Adapters' forward, and
saved as safetensors + the options in ``method.json``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file
from torch import nn
from transformers.activations import ACT2FN

from reft.files import atomic_save_tensors
from reft.typed import check_types

from .heads import unfreeze_head
from .registry import Method, reject_unknown

WEIGHTS = "adapter_model.safetensors"
KINDS = ("series", "parallel")
PLACEMENTS = ("input", "output")  # a series adapter's side of the layer; parallel ones are "parallel"
DEFAULT_TARGETS = {"series": ["gate_proj", "up_proj"], "parallel": ["up_proj", "down_proj"]}


@dataclass
class BottleneckConfig:
    kind: str = "series"
    bottleneck_size: int = 256
    non_linearity: str = "tanh"
    dropout: float = 0.0
    scaling: float = 1.0
    target_modules: list[str] | None = field(default=None, metadata={
        "help": "module-name suffixes; default: series gate_proj, up_proj; parallel up_proj, down_proj"})
    placement: dict[str, str] = field(default_factory=dict, metadata={
        "help": "series only: target -> 'input' | 'output' (default: by the layer's shape)"})
    init: str = field(default="bert", metadata={"help": "'bert': N(0, 0.02²); 'mam_adapter': kaiming / zeros"})

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"adapter kind must be one of {KINDS}, got {self.kind!r}")
        if self.non_linearity not in ACT2FN:
            raise ValueError(f"unknown non_linearity {self.non_linearity!r}")
        if self.init not in ("bert", "mam_adapter"):
            raise ValueError(f"init must be 'bert' or 'mam_adapter', got {self.init!r}")
        bad = {k: v for k, v in self.placement.items() if v not in PLACEMENTS}
        if bad:
            raise ValueError(f"placement values must be in {PLACEMENTS}, got {bad}")
        if self.target_modules is None:
            self.target_modules = list(DEFAULT_TARGETS[self.kind])


class BottleneckLinear(nn.Module):
    """A frozen ``nn.Linear`` with a bottleneck adapter (see the module docstring)."""

    def __init__(self, base: nn.Linear, config: BottleneckConfig, placement: str) -> None:
        super().__init__()
        self.base = base
        self.placement = placement
        width_in = base.out_features if placement == "output" else base.in_features
        width_out = base.out_features if config.kind == "parallel" else width_in
        self.adapter_down = nn.Linear(width_in, config.bottleneck_size, bias=False,
                                      device=base.weight.device, dtype=torch.float32)
        self.adapter_up = nn.Linear(config.bottleneck_size, width_out, bias=False,
                                    device=base.weight.device, dtype=torch.float32)
        self.act = ACT2FN[config.non_linearity]
        self.dropout = nn.Dropout(config.dropout) if config.dropout else nn.Identity()
        self.scaling = config.scaling
        self.enabled = True
        if config.init == "bert":
            nn.init.normal_(self.adapter_down.weight, std=0.02)
            nn.init.normal_(self.adapter_up.weight, std=0.02)
        else:
            nn.init.kaiming_uniform_(self.adapter_down.weight, a=math.sqrt(5))
            nn.init.zeros_(self.adapter_up.weight)

    def adapter(self, z: torch.Tensor) -> torch.Tensor:
        out = self.adapter_up(self.act(self.adapter_down(self.dropout(z.float()))))
        return (out * self.scaling).to(z.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return self.base(x)
        if self.placement == "input":
            return self.base(x + self.adapter(x))
        y = self.base(x)
        return y + self.adapter(y if self.placement == "output" else x)


def _targets(model: nn.Module, suffixes: list[str]) -> list[str]:
    return [name for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and any(name == s or name.endswith("." + s) for s in suffixes)]


def _placement(config: BottleneckConfig, name: str, linear: nn.Linear) -> str:
    if config.kind == "parallel":
        return "parallel"
    for suffix, placement in config.placement.items():
        if name == suffix or name.endswith("." + suffix):
            return placement
    return "input" if linear.in_features <= linear.out_features else "output"


def add_bottleneck_adapters(model: nn.Module, config: BottleneckConfig) -> nn.Module:
    """Freeze ``model`` and replace each target linear layer by a ``BottleneckLinear``, in place."""
    names = _targets(model, config.target_modules)
    if not names:
        raise ValueError(f"no nn.Linear named {config.target_modules} in {type(model).__name__}; "
                         "set target_modules to module-name suffixes of this architecture")
    for param in model.parameters():
        param.requires_grad_(False)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        linear = getattr(parent, child)
        setattr(parent, child, BottleneckLinear(linear, config, _placement(config, name, linear)))
    unfreeze_head(model)
    return model


class BottleneckMethod(Method):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def parse(self, options: dict) -> BottleneckConfig:
        reject_unknown(options, {f.name for f in fields(BottleneckConfig)} - {"kind"}, repr(self.name))
        return BottleneckConfig(kind=self.kind, **check_types(BottleneckConfig, options, f"method {self.name!r}"))

    def wrap(self, model: nn.Module, config: BottleneckConfig) -> nn.Module:
        return add_bottleneck_adapters(model, config)

    def save(self, wrapped: nn.Module, directory: Path) -> None:
        state = {name: p for name, p in wrapped.named_parameters() if p.requires_grad}
        atomic_save_tensors(directory / WEIGHTS, state, metadata={"format": "pt"})

    def load(self, model: nn.Module, directory: Path, config: BottleneckConfig) -> nn.Module:
        path = directory / WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found")
        wrapped = add_bottleneck_adapters(model, config)
        params = dict(wrapped.named_parameters())
        state = load_file(path, device=str(next(wrapped.parameters()).device))
        expected = {name for name, p in params.items() if p.requires_grad}
        if set(state) != expected:
            raise KeyError(f"{path}: saved {sorted(set(state) - expected)[:5]} not in the model, "
                           f"missing {sorted(expected - set(state))[:5]}")
        with torch.no_grad():
            for name, value in state.items():
                params[name].copy_(value)
        return wrapped

    @contextmanager
    def disabled(self, wrapped: nn.Module) -> Iterator[nn.Module]:
        layers = [m for m in wrapped.modules() if isinstance(m, BottleneckLinear)]
        for layer in layers:
            layer.enabled = False
        try:
            yield wrapped
        finally:
            for layer in layers:
                layer.enabled = True
