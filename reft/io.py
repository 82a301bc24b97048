"""Save and load ReFT models: safetensors weights + a JSON config; nothing is ever unpickled.

A saved directory holds ``reft_config.json`` (the ``ReftConfig``, the library version, the base
model's name and the keys of trainable base parameters) and ``interventions.safetensors``
(every intervention tensor, plus unfrozen base parameters such as a GLUE head under
``base_model.``). R is stored materialised (r×d, orthonormal), so loading and *continuing to
train* keeps it orthonormal, unlike pyreft's load path. Files are written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from .files import atomic_save_tensors, atomic_write_json
from .version import __version__

CONFIG_NAME = "reft_config.json"
WEIGHTS_NAME = "interventions.safetensors"
BASE_PREFIX = "base_model."


def reft_state_dict(reft_model: nn.Module, base_parameters: bool = True) -> dict[str, torch.Tensor]:
    state = dict(reft_model.interventions.state_dict())
    if base_parameters:
        for name, param in reft_model.trainable_base_parameters().items():
            state[BASE_PREFIX + name] = param
    return state


def save_reft_model(reft_model: nn.Module, directory: str | Path, base_parameters: bool = True,
                    **metadata) -> None:
    directory = Path(directory)
    state = reft_state_dict(reft_model, base_parameters)
    base = reft_model.model
    config = {
        "reft_version": __version__,
        "config": reft_model.config.to_dict(),
        "base_model": getattr(getattr(base, "config", None), "_name_or_path", None),
        "base_model_type": getattr(getattr(base, "config", None), "model_type", None),
        "trainable_base_parameters": sorted(k[len(BASE_PREFIX):] for k in state if k.startswith(BASE_PREFIX)),
        "metadata": metadata,
    }
    atomic_save_tensors(directory / WEIGHTS_NAME, state, metadata={"format": "pt", "reft_version": __version__})
    atomic_write_json(directory / CONFIG_NAME, config)


def read_reft_config(directory: str | Path) -> dict:
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a directory written by ReftModel.save_pretrained")
    return json.loads(path.read_text())


def load_reft_state(reft_model: nn.Module, directory: str | Path) -> None:
    """Load the saved intervention tensors (and unfrozen base parameters) into ``reft_model``, a
    ``ReftModel`` built from the directory's config (``ReftModel.from_pretrained`` does both)."""
    saved = read_reft_config(directory)
    weights = Path(directory) / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found")
    model = reft_model.model
    state = load_file(weights, device=str(next(model.parameters()).device))
    base_names = saved.get("trainable_base_parameters", [])
    intervention_state = {k: v for k, v in state.items() if not k.startswith(BASE_PREFIX)}
    reft_model.interventions.load_state_dict(intervention_state, strict=True)
    if base_names:
        params = dict(model.named_parameters())
        missing = [name for name in base_names if name not in params]
        if missing:
            raise KeyError(f"{directory}: base parameters {missing} do not exist in {type(model).__name__}")
        with torch.no_grad():
            for name in base_names:
                params[name].copy_(state[BASE_PREFIX + name])
                params[name].requires_grad_(True)
