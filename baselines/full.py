"""Full finetuning: every parameter of the model trains (the upper bound the paper's PEFT
methods are measured against). Saved and loaded with Hugging Face's ``save_pretrained`` /
``from_pretrained`` (safetensors). No options."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .registry import Method, reject_unknown


class FullFinetuning(Method):
    def parse(self, options: dict) -> dict:
        reject_unknown(options, set(), repr(self.name))
        return {}

    def wrap(self, model: nn.Module, config: dict) -> nn.Module:
        for param in model.parameters():
            param.requires_grad_(True)
        return model

    def save(self, wrapped: nn.Module, directory: Path) -> None:
        wrapped.save_pretrained(str(directory))

    def load(self, model: nn.Module, directory: Path, config: dict) -> nn.Module:
        dtype = next(model.parameters()).dtype
        loaded = type(model).from_pretrained(str(directory), dtype=dtype)
        return loaded.to(next(model.parameters()).device)
