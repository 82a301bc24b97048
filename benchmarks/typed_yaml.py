"""Typed YAML configs: strict reading, dataclasses built from mappings, ``key=value`` overrides.

Used by every config the harness reads (experiments, sweep specs, tasks): duplicate keys, unknown
keys at any depth and wrongly typed values fail at once, naming the key and the file.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml


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
