"""Dataclasses built from plain mappings with their field types checked (configs, method options).

``from_dict(Config, {"rank": "four"}, "method 'loreft'")`` fails with ``method 'loreft'.rank:
expected int, got 'four'`` instead of a ``TypeError`` deep inside the code that first uses the
value. Unknown keys name the known ones; nested dataclasses, lists, unions and ``Any`` are
understood; an int is accepted where a float is expected, and a YAML 1.1 string such as ``9e-4``
is read as the float it means.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def coerce(value: Any, annotation: Any, where: str) -> Any:
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
        real = [o for o in options if o is not type(None)]
        if len(real) == 1:  # `X | None`: X's own error says what is wrong
            return coerce(value, real[0], where)
        for option in (o for o in options if o is not type(None)):
            try:
                return coerce(value, option, where)
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
        return origin(coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
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
    if annotation is int and isinstance(value, bool):  # bool is an int subclass; `rank: true` is a mistake
        raise ValueError(f"{where}: expected int, got {value!r}")
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
    kwargs = {name: coerce(value, hints[name], f"{where}.{name}") for name, value in values.items()}
    missing = [name for name, f in fields.items() if name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{where}: missing required key(s) {missing}")
    return cls(**kwargs)



def check_types(cls, values: dict, where: str) -> dict:
    """``values`` coerced to the annotated types of dataclass ``cls``'s fields, without building it
    (for classes whose constructor is not ours, e.g. peft's configs). Keys that are not fields and
    fields whose annotation cannot be resolved are left as they are (the constructor judges them)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that names something not importable here: nothing to check
        return dict(values)
    return {key: coerce(value, hints[key], f"{where}.{key}") if key in hints else value
            for key, value in values.items()}
