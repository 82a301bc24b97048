"""ReFT (any intervention type) as a method, and ReFT combined with peft LoRA.

Options are ``ReftConfig`` fields (``intervention``, ``rank``, ``layers``, ``positions``, ``tied``,
...). ``loreft`` and ``direft`` are the same method with the intervention preset. The frozen base
model is wrapped in a ``ReftModel``; a sequence-classification head is unfrozen and trained with
the interventions (pyreft's ``--allow_cls_grad``), and saved with them.

``reft_lora`` (pyreft's ``--use_lora``, PR #94): peft LoRA on the base model, then interventions on
the residual stream of the LoRA-adapted blocks; both train. Options: ``reft: {...}`` (ReftConfig)
and ``lora: {...}`` (peft ``LoraConfig``). Saved as ReFT files plus peft's own ``lora/`` folder.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from torch import nn

from reft import ReftConfig, ReftModel, get_reft_model

from .heads import unfreeze_head
from .peft_methods import PeftMethod
from .registry import Method, reject_unknown

LORA_DIR = "lora"


class ReftMethod(Method):
    needs_locations = True

    def __init__(self, intervention: str | None = None) -> None:
        self.intervention = intervention

    def parse(self, options: dict) -> ReftConfig:
        options = dict(options)
        if self.intervention is not None:
            given = options.setdefault("intervention", self.intervention)
            if given != self.intervention:
                raise ValueError(f"method {self.name!r} fixes intervention={self.intervention!r}; "
                                 f"use method 'reft' for intervention={given!r}")
        return ReftConfig.from_dict(options, source=f"method {self.name!r}")

    def wrap(self, model: nn.Module, config: ReftConfig) -> ReftModel:
        wrapped = get_reft_model(model, config)
        unfreeze_head(model)
        return wrapped

    def save(self, wrapped: ReftModel, directory: Path) -> None:
        wrapped.save_pretrained(str(directory))

    def load(self, model: nn.Module, directory: Path, config: ReftConfig) -> ReftModel:
        return ReftModel.from_pretrained(model, str(directory))

    @contextmanager
    def disabled(self, wrapped: ReftModel) -> Iterator[nn.Module]:
        yield wrapped.model  # the base model, called without the intervention hooks


@dataclass
class ReftLoraConfig:
    reft: ReftConfig
    lora: dict


class ReftLoraMethod(Method):
    needs_locations = True
    lora = PeftMethod("LORA")

    def parse(self, options: dict) -> ReftLoraConfig:
        reject_unknown(options, {"reft", "lora"}, repr(self.name))
        lora = dict(options.get("lora", {}))
        self.lora.peft_config(lora, task_type="CAUSAL_LM")  # validate the LoRA options early
        return ReftLoraConfig(ReftConfig.from_dict(dict(options.get("reft", {})), source="reft_lora.reft"), lora)

    def wrap(self, model: nn.Module, config: ReftLoraConfig) -> ReftModel:
        peft_model = self.lora.wrap(model, config.lora)
        return get_reft_model(peft_model, config.reft, freeze_base=False)

    def save(self, wrapped: ReftModel, directory: Path) -> None:
        wrapped.save_pretrained(str(directory), base_parameters=False)
        wrapped.model.save_pretrained(str(directory / LORA_DIR))

    def load(self, model: nn.Module, directory: Path, config: ReftLoraConfig) -> ReftModel:
        peft_model = self.lora.load(model, directory / LORA_DIR, config.lora)
        return ReftModel.from_pretrained(peft_model, str(directory), freeze_base=False)

    @contextmanager
    def disabled(self, wrapped: ReftModel) -> Iterator[nn.Module]:
        with wrapped.model.disable_adapter():
            yield wrapped.model
