"""The untrained base model as a method (``name: none``): the floor every table row is compared
with. Nothing trains (a classification head, if any, stays frozen and random) and nothing is saved
but ``method.json``."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from torch import nn

from .registry import Method, reject_unknown


class Untrained(Method):
    trains = False

    def parse(self, options: dict) -> dict:
        reject_unknown(options, set(), repr(self.name))
        return {}

    def wrap(self, model: nn.Module, config: dict) -> nn.Module:
        for param in model.parameters():
            param.requires_grad_(False)
        return model

    def save(self, wrapped: nn.Module, directory: Path) -> None:
        pass

    def load(self, model: nn.Module, directory: Path, config: dict) -> nn.Module:
        return self.wrap(model, config)

    @contextmanager
    def disabled(self, wrapped: nn.Module) -> Iterator[nn.Module]:
        yield wrapped
