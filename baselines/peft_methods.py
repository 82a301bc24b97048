"""Baselines from ``peft``: LoRA, DoRA, prefix tuning, and any other peft method by name.

Options are the peft config's own fields (``LoraConfig(r=32, lora_alpha=64, ...)``), passed
through unchanged, so peft's documentation is the reference; ``task_type`` is filled in from the
model (``CAUSAL_LM``, or ``SEQ_CLS``, where peft trains and saves the classification head through
``modules_to_save``: ``baselines.heads.head_names``, BERT's pooler included). Defaults are peft's;
the paper's baseline settings live in the experiment configs and ``baselines.paper``. Saved with
peft's ``save_pretrained`` (``adapter_config.json`` + ``adapter_model.safetensors``), loaded with
``PeftModel.from_pretrained``.

A new peft method costs one line: ``register_method("vera", PeftMethod("VERA"))``; every type
peft knows is also reachable without one as ``{"name": "peft", "peft_type": "OFT", ...}``.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from torch import nn

from reft.typed import check_types

from .heads import head_names, peft_task_type
from .registry import Method


def _peft_config_class(peft_type: str):
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
    from peft.utils import PeftType

    try:
        return PEFT_TYPE_TO_CONFIG_MAPPING[PeftType(peft_type.upper())]
    except (ValueError, KeyError):
        known = sorted(t.value for t in PEFT_TYPE_TO_CONFIG_MAPPING)
        raise ValueError(f"unknown peft_type {peft_type!r}; peft knows {known}") from None


class PeftMethod(Method):
    """A peft method of one ``peft_type`` with optional fixed defaults (DoRA = LoRA + use_dora)."""

    def __init__(self, peft_type: str, **defaults) -> None:
        self.peft_type = peft_type
        self.defaults = defaults

    def parse(self, options: dict) -> dict:
        options = {**self.defaults, **options}
        self.peft_config(options, task_type=options.get("task_type", "CAUSAL_LM"))  # fail fast
        return options

    def peft_config(self, options: dict, task_type: str):
        cls = _peft_config_class(self.peft_type)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for peft {cls.__name__} (method {self.name!r}); "
                             f"see peft's documentation of {cls.__name__}")
        return cls(**{"task_type": task_type, **check_types(cls, options, f"method {self.name!r}")})

    def wrap(self, model: nn.Module, options: dict) -> nn.Module:
        from peft import get_peft_model

        task_type = options.get("task_type", peft_task_type(model))
        if task_type == "SEQ_CLS" and "modules_to_save" not in options:  # the head, BERT's pooler included
            options = {**options, "modules_to_save": sorted(head_names(model))}
        return get_peft_model(model, self.peft_config(options, task_type))

    def save(self, wrapped: nn.Module, directory: Path) -> None:
        wrapped.save_pretrained(str(directory))

    def load(self, model: nn.Module, directory: Path, options: dict) -> nn.Module:
        from peft import PeftModel

        return PeftModel.from_pretrained(model, str(directory))

    @contextmanager
    def disabled(self, wrapped: nn.Module) -> Iterator[nn.Module]:
        with wrapped.disable_adapter():
            yield wrapped

    def merge(self, wrapped: nn.Module) -> nn.Module:
        config = wrapped.peft_config[wrapped.active_adapter]
        if config.is_prompt_learning:
            raise NotImplementedError(f"{config.peft_type.value} adds virtual tokens; there are no weights to merge into")
        return wrapped.merge_and_unload()


class AnyPeftMethod(PeftMethod):
    """``{"name": "peft", "peft_type": "OFT", ...}``: any method peft implements, by its type."""

    def __init__(self) -> None:
        super().__init__(peft_type="")

    def _typed(self, options: dict) -> tuple[PeftMethod, dict]:
        options = dict(options)
        if "peft_type" not in options:
            raise ValueError("method 'peft' needs a peft_type option (e.g. 'LORA', 'VERA', 'OFT')")
        typed = PeftMethod(options.pop("peft_type"))
        typed.name = self.name
        return typed, options

    def parse(self, options: dict) -> dict:
        typed, rest = self._typed(options)
        typed.parse(rest)
        return dict(options)

    def wrap(self, model: nn.Module, options: dict) -> nn.Module:
        typed, rest = self._typed(options)
        return typed.wrap(model, rest)
