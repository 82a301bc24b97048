"""Training state on disk and in memory, for the one training loop (``reft.train``).

``TrainingCheckpoint``: every ``save_every`` optimizer steps one directory ``checkpoint/step-<N>/``
with the trainable parameters, the optimizer and scheduler state and every RNG state, as
safetensors and JSON (no pickle), and a manifest of file hashes written last; resuming takes the
newest one that verifies. ``BestEpoch``: a copy of the trainable parameters of the epoch that scored
best (HF's ``load_best_model_at_end``).

Parameters sharded by FSDP2 (DTensors, ``reft.sharding``) are saved whole: every process gathers
them (``full_tensor``, a collective, so ``save`` runs on every process) and the first writes; on
load each process takes its own shard of the whole tensor it read (no communication).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from . import distributed
from .files import atomic_directory, atomic_save_tensors, atomic_write_json, file_sha256


def whole(tensor: torch.Tensor) -> torch.Tensor:
    """The full tensor of a sharded one (a collective: every process calls it), else the tensor."""
    return tensor.full_tensor() if distributed.is_sharded(tensor) else tensor


def like(value: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``value`` (a full tensor) sharded as ``reference`` is, where ``reference`` is sharded; each
    process slices its own shard from the full tensor it holds (no communication)."""
    if not distributed.is_sharded(reference) or distributed.is_sharded(value):
        return value
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(value.to(reference.dtype), reference.device_mesh, reference.placements,
                             src_data_rank=None)


class CheckpointDamaged(ValueError):
    """A checkpoint directory whose manifest or files do not check out."""


class TrainingCheckpoint:
    """Trainable params + optimizer + scheduler + RNG, as safetensors and JSON (no pickle).

    Each save is one directory ``checkpoint/step-<N>/`` holding ``state.safetensors``,
    ``trainer_state.json`` and, written last, ``manifest.json`` (the step and each file's size and
    sha256); it is filled aside and renamed into place, so a kill leaves either the whole
    checkpoint or none. Resume takes the newest checkpoint that verifies and says which damaged
    ones it passed over; the two newest are kept.
    """

    FILES = ("state.safetensors", "trainer_state.json")
    KEEP = 2

    def __init__(self, directory: Path, log: Callable[[str], None] = print) -> None:
        self.directory = directory
        self.log = log

    def steps(self) -> list[Path]:
        """Checkpoint directories, newest first."""
        found = [p for p in self.directory.glob("step-*") if p.is_dir() and p.name[5:].isdigit()]
        return sorted(found, key=lambda p: int(p.name[5:]), reverse=True)

    def exists(self) -> bool:
        return bool(self.steps())

    def save(self, model: nn.Module, optimizer, scheduler, step: int, losses: list[float],
             selection: "BestEpoch", seconds: float | None = None) -> None:
        """Write the checkpoint of ``step``; ``seconds``: the training wall time that produced it, over
        every process that trained this run (None: not known). Every process calls it (sharded
        tensors are gathered whole, a collective); the first process writes."""
        tensors = {f"param.{n}": whole(p) for n, p in model.named_parameters() if p.requires_grad}
        tensors.update({f"best.{n}": whole(t) for n, t in selection.state.items()})
        opt = optimizer.state_dict()
        opt_meta = {"param_groups": opt["param_groups"], "scalars": {}}
        for index, state in opt["state"].items():
            for key, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{index}.{key}"] = whole(value)
                else:
                    opt_meta["scalars"][f"{index}.{key}"] = value
        if not distributed.is_main():
            return
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        np_state = np.random.get_state()
        with atomic_directory(self.directory / f"step-{step:08d}") as tmp:
            atomic_save_tensors(tmp / "state.safetensors", tensors)
            atomic_write_json(tmp / "trainer_state.json", {
                "step": step, "losses": losses, "train_seconds": seconds, "optimizer": opt_meta,
                "scheduler": scheduler.state_dict(),
                "epoch_scores": selection.scores, "best_epoch": selection.best_epoch,
                "rng_python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
                "rng_numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            })
            atomic_write_json(tmp / "manifest.json", {"step": step, "files": {
                name: {"bytes": (tmp / name).stat().st_size, "sha256": file_sha256(tmp / name)}
                for name in self.FILES}})
        for old in self.steps()[self.KEEP:]:
            shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def verify(path: Path) -> dict:
        """The checkpoint's trainer state, or ``CheckpointDamaged`` saying what is wrong."""
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise CheckpointDamaged(f"no readable manifest.json ({error})") from None
        for name, expected in manifest.get("files", {}).items():
            file = path / name
            if not file.is_file():
                raise CheckpointDamaged(f"{name} is missing")
            if file.stat().st_size != expected["bytes"] or file_sha256(file) != expected["sha256"]:
                raise CheckpointDamaged(f"{name} does not match its manifest (truncated or changed)")
        meta = json.loads((path / "trainer_state.json").read_text())
        if meta.get("step") != manifest.get("step"):
            raise CheckpointDamaged(f"trainer_state.json is at step {meta.get('step')}, the manifest at "
                                    f"{manifest.get('step')}")
        return meta

    def load(self, model: nn.Module, optimizer, scheduler,
             selection: "BestEpoch") -> tuple[int, list[float], float | None]:
        """Restore the newest good checkpoint; returns (step, losses, training seconds so far: None
        from a checkpoint that did not record them), (0, [], 0.0) when none is good."""
        for path in self.steps():
            try:
                meta = self.verify(path)
                tensors = load_file(path / "state.safetensors")
            except (CheckpointDamaged, OSError, json.JSONDecodeError, SafetensorError) as error:
                self.log(f"checkpoint {path} is damaged ({error}); passing over it (delete it to silence this)")
                continue
            self._restore(meta, tensors, model, optimizer, scheduler, selection)
            return meta["step"], meta["losses"], meta.get("train_seconds")
        if self.steps():
            self.log(f"no good checkpoint in {self.directory}: training starts from step 0")
        return 0, [], 0.0

    @staticmethod
    def _restore(meta: dict, tensors: dict, model: nn.Module, optimizer, scheduler, selection: "BestEpoch") -> None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for key, value in tensors.items():
                if key.startswith("param."):
                    params[key[len("param."):]].copy_(like(value, params[key[len("param."):]]))
        ordered = [p for group in optimizer.param_groups for p in group["params"]]  # the state's indices
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                index, name = key[len("optim."):].split(".", 1)
                param = ordered[int(index)]
                state.setdefault(int(index), {})[name] = like(value, param) if value.shape == param.shape else value
        for key, value in meta["optimizer"]["scalars"].items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
        scheduler.load_state_dict(meta["scheduler"])
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        version, internal, gauss = meta["rng_python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, pos, has_gauss, cached = meta["rng_numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
        selection.scores, selection.best_epoch = meta.get("epoch_scores", []), meta.get("best_epoch")
        selection.state = {k[len("best."):]: like(v, params[k[len("best."):]]) for k, v in tensors.items()
                           if k.startswith("best.")}


class BestEpoch:
    """Keeps a copy of the trainable parameters of the epoch that scored best (HF's
    ``load_best_model_at_end``, which the paper's GLUE runs use); ties keep the earlier epoch."""

    def __init__(self) -> None:
        self.scores: list[float] = []
        self.best_epoch: int | None = None
        self.state: dict[str, torch.Tensor] = {}

    def update(self, model: nn.Module, score: float) -> None:
        self.scores.append(float(score))
        if self.best_epoch is None or score > self.scores[self.best_epoch - 1]:
            self.best_epoch = len(self.scores)
            self.state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    def restore(self, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in self.state.items():
                params[name].copy_(value)
