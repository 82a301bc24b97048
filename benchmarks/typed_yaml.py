"""Typed YAML configs: strict reading, dataclasses built from mappings, ``key=value`` overrides.

Used by every config the harness reads (experiments, sweep specs, tasks): duplicate keys, unknown
keys at any depth and wrongly typed values fail at once, naming the key and the file.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from reft.typed import from_dict  # noqa: F401  (re-exported: the harness's configs are built with it)


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
