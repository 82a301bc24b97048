"""The method registry: every way of finetuning a frozen (or not) model is one ``Method`` entry.

A method turns a Hugging Face model and a dict of options (the ``method:`` block of an
experiment config, unknown keys rejected) into a trainable module that the one training loop
(``reft.train.train``) and the one evaluator drive through the same calls:

* ``wrapped(**batch)`` returns outputs with ``.loss`` (and ``.logits``);
* ``wrapped.generate(input_ids=..., attention_mask=..., **decoding)`` generates;
* ``method.locate(wrapped)`` is the collator hook that adds ReFT's ``intervention_locations``
  (``None`` for methods that do not need positions).

Saving writes the method's own format (peft's ``save_pretrained``, ReFT's safetensors + JSON,
HF ``save_pretrained`` for full finetuning) plus ``method.json`` naming the method and options,
so ``load_method(model, directory)`` needs nothing else.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from torch import nn

from reft.files import atomic_directory, atomic_write_json
from reft.io import check_same_base, describe_base

METHOD_FILE = "method.json"
#: what the save was trained on (name, type, hidden size, layers): a load onto another shape is named
BASE_FILE = "base_model.json"


class Method:
    """One finetuning method. Subclasses implement ``wrap``, ``save`` and ``load``."""

    name: str = ""
    #: True for methods whose forward needs ``intervention_locations`` from the collator.
    needs_locations: bool = False
    #: False for a method that learns nothing from the train set (the untrained model)
    trains: bool = True

    def parse(self, options: dict) -> Any:
        """Typed configuration from the ``method:`` options (``ValueError`` on unknown keys)."""
        raise NotImplementedError

    def wrap(self, model: nn.Module, config: Any) -> nn.Module:
        """Attach the method to ``model``; only the method's parameters are left trainable
        (plus a sequence-classification head, which every method trains)."""
        raise NotImplementedError

    def save(self, wrapped: nn.Module, directory: Path) -> None:
        raise NotImplementedError

    def load(self, model: nn.Module, directory: Path, config: Any) -> nn.Module:
        raise NotImplementedError

    def locate(self, wrapped: nn.Module) -> Callable | None:
        return wrapped.locations if self.needs_locations else None

    @contextmanager
    def disabled(self, wrapped: nn.Module) -> Iterator[nn.Module]:
        """Inside the block, ``yield``-ed module computes the base model's outputs."""
        raise NotImplementedError(f"method {self.name!r} cannot be disabled (the base weights changed)")
        yield  # pragma: no cover

    def merge(self, wrapped: nn.Module) -> nn.Module:
        """Fold the method into the base weights and return a plain model."""
        raise NotImplementedError(f"method {self.name!r} cannot be merged into the base weights")


METHODS: dict[str, Method] = {}


def register_method(name: str, method: Method) -> Method:
    if name in METHODS:
        raise KeyError(f"method {name!r} is already registered")
    method.name = name
    METHODS[name] = method
    return method


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; registered: {sorted(METHODS)}") from None


def split_spec(spec: dict | str) -> tuple[str, dict]:
    """``{"name": "lora", "r": 32}`` or ``"lora"`` → ("lora", {"r": 32})."""
    if isinstance(spec, str):
        return spec, {}
    if "name" not in spec:
        raise ValueError(f"method spec {spec!r} has no 'name' (one of {sorted(METHODS)})")
    options = dict(spec)
    return options.pop("name"), options


def build_method(model: nn.Module, spec: dict | str) -> tuple[Method, nn.Module]:
    """Wrap ``model`` with the method ``spec`` names; returns the method and the trainable module."""
    name, options = split_spec(spec)
    method = get_method(name)
    wrapped = method.wrap(model, method.parse(options))
    wrapped._method_spec = {"name": name, **options}
    return method, wrapped


def save_method(wrapped: nn.Module, directory: str | Path, overwrite: bool = False) -> None:
    """Save in the method's own format, plus ``method.json`` (name and options).

    The save is written beside ``directory`` and then put in its place, so ``directory`` holds one
    whole save or its previous content, never a mix. A ``directory`` that holds something else (a
    save of another method, or files that are not a method's save) is refused unless ``overwrite``:
    its files would otherwise be mixed with this save's (a ReFT save next to a LoRA save loads as LoRA).
    """
    spec = getattr(wrapped, "_method_spec", None)
    if spec is None:
        raise ValueError("save_method needs a module returned by build_method or load_method")
    directory = Path(directory)
    name, _ = split_spec(spec)
    if not overwrite and directory.is_dir() and any(directory.iterdir()):
        saved = json.loads((directory / METHOD_FILE).read_text()).get("name") \
            if (directory / METHOD_FILE).is_file() else None
        if saved != name:
            what = f"a save of method {saved!r}" if saved else "files that are not a method's save"
            raise FileExistsError(f"{directory} holds {what}; saving method {name!r} there would mix the two: "
                                  "choose another directory or pass overwrite=True")
    with atomic_directory(directory) as tmp:
        get_method(name).save(wrapped, tmp)
        atomic_write_json(tmp / BASE_FILE, describe_base(wrapped))
        atomic_write_json(tmp / METHOD_FILE, spec)


def read_method_spec(directory: str | Path) -> dict:
    path = Path(directory) / METHOD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a directory written by baselines.save_method")
    return json.loads(path.read_text())


def load_method(model: nn.Module, directory: str | Path) -> tuple[Method, nn.Module]:
    """Re-attach a saved method to a fresh copy of its base ``model``."""
    spec = read_method_spec(directory)
    name, options = split_spec(spec)
    method = get_method(name)
    base_file = Path(directory) / BASE_FILE
    saved_base = json.loads(base_file.read_text()) if base_file.is_file() else None
    check_same_base(saved_base, model, directory)
    try:
        wrapped = method.load(model, Path(directory), method.parse(options))
    except RuntimeError as error:  # torch's "size mismatch" / "Unexpected key(s)" from a save without base.json
        if "size mismatch" not in str(error) and "key(s)" not in str(error):
            raise
        raise ValueError(f"{directory} (method {name!r}) does not fit {type(model).__name__}: it was saved from "
                         f"another model ({str(error).splitlines()[0]})") from error
    wrapped._method_spec = spec
    return method, wrapped


def reject_unknown(options: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for method {where}; known: {sorted(known)}")
