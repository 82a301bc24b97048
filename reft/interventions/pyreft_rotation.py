"""R trained pyreft's way (``rotation_training="pyreft"``, part of ``compat: pyreft``).

pyreft 0.1.0 holds P ∈ R^{d×r} (R = Pᵀ) in a ``LowRankRotateLayer`` initialised by
``torch.nn.init.orthogonal_`` and wraps it in ``torch.nn.utils.parametrizations.orthogonal``: the
trained parameter is ``original`` (d×r, the Householder reflectors' coordinates, -I at the start)
and P = B · householder(original)[:, :r], where B is a d×d buffer that completes the initial P with
random columns (``torch.randn``) to an orthogonal matrix. Gradient steps move ``original``, so the
trajectory differs from the default Riemannian + QR path (``orthonormal.OrthonormalRows``) although
the function class is the same.

This module reproduces that exactly (same torch code, same random draws in the same order), and
saves in the default format: ``weight`` = R (r×d), so a saved method loads into either mode. A
load does what pyreft's ``load_state_dict`` does: a fresh layer whose B's first r columns are the
loaded Pᵀ (its other columns stay random, no longer orthogonal to them: pyreft's defect, kept; a
training checkpoint restores ``original`` and rebuilds B from the seed instead, so resuming is exact).
Its defects (PAPER.md §1) are reproduced on purpose: weight decay on ``original`` moves its
sign-carrying diagonal, and the d×d buffer costs O(d²) memory.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn.utils import parametrizations


class _Columns(nn.Module):
    """pyreft's ``LowRankRotateLayer``: a d×r parameter from ``orthogonal_``."""

    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, rank))
        nn.init.orthogonal_(self.weight)


class PyreftRotation(nn.Module):
    """Holds R through torch's orthogonal parametrization; ``module()`` returns R (r×d, fp32)."""

    def __init__(self, rank: int, dim: int) -> None:
        super().__init__()
        self.rank, self.dim = rank, dim
        self.layer = parametrizations.orthogonal(_Columns(dim, rank))

    def forward(self) -> torch.Tensor:
        return self.layer.weight.T

    # ------------------------------------------------ the saved format: weight = R (r×d)
    def state_dict(self, *, destination=None, prefix: str = "", keep_vars: bool = False):
        """Only ``weight`` = R (r×d), as the default mode saves it; not the parametrization's parts."""
        destination = OrderedDict() if destination is None else destination
        weight = self.layer.weight.T
        destination[prefix + "weight"] = weight if keep_vars else weight.detach().contiguous()
        return destination

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        """``weight`` (R) → the parametrization's parts, as pyreft's ``load_state_dict`` sets them: a
        fresh layer (``original`` at its start, B completed at random) with Pᵀ in B's first r columns."""
        key = prefix + "weight"
        if key not in state_dict:
            missing_keys.append(key)
            return
        rotation = state_dict.pop(key)
        if tuple(rotation.shape) != (self.rank, self.dim):
            error_msgs.append(f"size mismatch for {key}: copying a param with shape {tuple(rotation.shape)}, "
                              f"the model's is {(self.rank, self.dim)}")
            return
        fresh = parametrizations.orthogonal(_Columns(self.dim, self.rank))
        parts = fresh.parametrizations.weight
        with torch.no_grad():
            parts[0].base[:, :self.rank] = rotation.T.to(parts[0].base)
        state_dict[prefix + "layer.parametrizations.weight.original"] = parts.original.detach()
        state_dict[prefix + "layer.parametrizations.weight.0.base"] = parts[0].base

    def orthonormality_error(self) -> float:
        rotation = self().detach()
        eye = torch.eye(rotation.shape[0], device=rotation.device)
        return (rotation @ rotation.T - eye).abs().max().item()


def rotation_module(rank: int, dim: int, training: str) -> nn.Module:
    """R's holder for ``rotation_training``: ``riemannian`` (default) or ``pyreft``."""
    from .orthonormal import OrthonormalRows

    if training == "riemannian":
        return OrthonormalRows(rank, dim)
    if training == "pyreft":
        return PyreftRotation(rank, dim)
    raise ValueError(f"rotation_training must be 'riemannian' or 'pyreft', got {training!r}")


def rotation_parameter(training: str) -> str:
    """The name (within the rotation module) of the parameter that trains R."""
    return "weight" if training == "riemannian" else "layer.parametrizations.weight.original"
