"""Save and load ReFT models: safetensors weights + a JSON config; nothing is ever unpickled.

A saved directory holds ``reft_config.json`` (the ``ReftConfig``, the library version, the base
model's name and the keys of trainable base parameters) and ``interventions.safetensors``
(every intervention tensor, plus unfrozen base parameters such as a GLUE head under
``base_model.``). R is stored materialised (r×d, orthonormal), so loading and *continuing to
train* keeps it orthonormal, unlike pyreft's load path. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ReftConfig
from .version import __version__

CONFIG_NAME = "reft_config.json"
WEIGHTS_NAME = "interventions.safetensors"
BASE_PREFIX = "base_model."


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: permissions of written files: what ``open()`` would give (0o666 minus the umask), not mkstemp's 0o600
FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: str | Path, write) -> None:
    """Run ``write(tmp_path)`` then rename onto ``path``: readers see the old or the new file, never
    half. The file gets the umask's permissions (``FILE_MODE``), as a plain ``open()`` would."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Fill a fresh directory beside ``path`` inside the block, then put it in ``path``'s place
    (an existing ``path`` is replaced). A kill inside the block leaves ``path`` as it was; only
    a hidden ``.<name>.*.tmp`` folder remains, which the next write of ``path`` removes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old.tmp")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_json(path: str | Path, data) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")

    atomic_write(path, write)


def atomic_save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


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


def load_reft_model(model: nn.Module, directory: str | Path, freeze_base: bool = True):
    """Attach the saved interventions (and unfrozen base parameters) to ``model``."""
    from .model import ReftModel

    saved = read_reft_config(directory)
    reft_model = ReftModel(model, ReftConfig.from_dict(saved["config"], source=str(directory)),
                           freeze_base=freeze_base)
    weights = Path(directory) / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} not found")
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
    return reft_model
