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


def describe_base(model: nn.Module) -> dict:
    """What a save was trained on: the base model's name, type, hidden size and layer count."""
    from .architectures import block_modules, hidden_size, unwrap

    if hasattr(model, "interventions") and isinstance(getattr(model, "model", None), nn.Module):
        model = model.model  # a ReftModel: its base
    config = getattr(unwrap(model), "config", None)
    try:
        layers = len(block_modules(model))
    except (ValueError, KeyError, AttributeError):  # an architecture without a known block list
        layers = None
    try:
        hidden = hidden_size(model)
    except (ValueError, KeyError, AttributeError):
        hidden = None
    return {"name": getattr(config, "_name_or_path", None), "model_type": getattr(config, "model_type", None),
            "hidden_size": hidden, "num_layers": layers}


def check_same_base(saved: dict | None, model: nn.Module, where: str | Path) -> None:
    """``ValueError`` when ``model`` is not the shape of the base ``saved`` describes (a checkpoint
    of a 30-layer, 576-wide model loaded onto a 2-layer, 64-wide one), naming both; saves that
    recorded no base are not checked."""
    if not saved:
        return
    here = describe_base(model)
    keys = [key for key in ("hidden_size", "num_layers") if saved.get(key) is not None and here.get(key) is not None
            and saved[key] != here[key]]
    if keys:
        def shape(base: dict) -> str:
            return f"{base.get('name') or 'a model'} ({base.get('model_type')}, hidden size {base.get('hidden_size')}, " \
                   f"{base.get('num_layers')} layers)"
        raise ValueError(f"{where} was trained on {shape(saved)}; it is being loaded onto {shape(here)}: "
                         "load it onto the model it was trained on")


def read_tensors(path: str | Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """``safetensors.torch.load_file`` with a damaged, truncated or foreign file named as such."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    try:
        return load_file(path, device=device)
    except Exception as error:  # safetensors raises its own SafetensorError (header, metadata, truncation)
        raise ValueError(f"{path} is damaged or not a safetensors file ({type(error).__name__}: {error}); "
                         "save the model again or restore the file") from error


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
        "base": describe_base(base),
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
    model = reft_model.model
    check_same_base(saved.get("base"), model, directory)
    state = read_tensors(weights, device=str(next(model.parameters()).device))
    base_names = saved.get("trainable_base_parameters", [])
    intervention_state = {k: v for k, v in state.items() if not k.startswith(BASE_PREFIX)}
    try:
        reft_model.interventions.load_state_dict(intervention_state, strict=True)
    except RuntimeError as error:  # a save without a recorded base, onto a model of another shape
        raise ValueError(f"{weights} does not fit this model's interventions (trained on "
                         f"{saved.get('base_model') or 'another model'}): {error}") from error
    if base_names:
        params = dict(model.named_parameters())
        missing = [name for name in base_names if name not in params]
        if missing:
            raise KeyError(f"{directory}: base parameters {missing} do not exist in {type(model).__name__}")
        with torch.no_grad():
            for name in base_names:
                params[name].copy_(state[BASE_PREFIX + name])
                params[name].requires_grad_(True)
