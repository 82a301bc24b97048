"""R ∈ R^{r×d} with orthonormal rows (R Rᵀ = I_r), kept there through any optimizer and resume.

pyreft wraps a d×r matrix in ``torch.nn.utils.parametrizations.orthogonal`` (Householder map with a
random d×d ``base`` buffer). That design has three defects (``shared/reference/PAPER.md`` §1):
AdamW weight decay on the sign diagonal collapses R to exactly 0 after one step; loading a
checkpoint writes into ``base`` so resumed training leaves the manifold; and the d×d buffer costs
O(d²) memory (4 GiB at LLaMA-7B shape) plus a recomputation on every access.

Here R is a plain fp32 parameter (O(d·r) state) optimised as a point on the Stiefel manifold:

* **gradient**: the Euclidean gradient G is projected onto the tangent space at R,
  G ← G − sym(G Rᵀ) R with sym(A) = (A + Aᵀ)/2 (a post-accumulate-grad hook on R);
* **retraction**: after an update R is mapped back by a sign-fixed QR decomposition,
  Rᵀ = Q S, R ← (Q · sign(diag S))ᵀ, which is the identity on matrices already orthonormal.

The retraction runs after every optimizer step (a global ``torch.optim`` step hook, so any
optimizer and any training loop, fused kernels included) and, as a fallback, on first use after
anything else changed R (``load_state_dict``, a manual edit; detected with the version counter).
It costs one small QR per optimizer step. A loaded R already orthonormal to fp32 precision is kept
bit for bit, so save → load reproduces logits exactly. The initial R is drawn exactly as
pyreft draws it (``torch.nn.init.orthogonal_`` on a d×r matrix). The optimisation trajectory is not
bit-identical to pyreft's (whose coordinates depend on its random ``base``); the function class,
init distribution and forward are the same.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook


TOLERANCE = 1e-6  # max |R Rᵀ − I| a loaded R may have and be kept as is (fp32 QR lands near 1e-7)


def _project_to_tangent(rotation: torch.Tensor) -> None:
    """G ← G − sym(G Rᵀ) R, in place on R's accumulated gradient (linear, so safe to repeat)."""
    grad = rotation.grad
    if grad is None:
        return
    with torch.no_grad():
        gr = grad @ rotation.T
        grad.sub_(0.5 * (gr + gr.T) @ rotation)


def orthonormalize_rows(matrix: torch.Tensor) -> torch.Tensor:
    """The sign-fixed QR retraction: nearest-in-QR-sense matrix with orthonormal rows."""
    q, s = torch.linalg.qr(matrix.T.float())
    signs = torch.sign(torch.diagonal(s))
    signs[signs == 0] = 1.0
    return (q * signs).T


def _retract_(weight: torch.Tensor) -> None:
    """Retract in place and remember the version the manifold point was written at."""
    with torch.no_grad():
        weight.copy_(orthonormalize_rows(weight))
    weight._reft_synced_version = weight._version


def _retract_after_optimizer_step(optimizer, args, kwargs) -> None:
    """Global optimizer hook: every R an optimizer just updated goes back onto the manifold.

    Needed because fused optimizers (``AdamW(fused=True)``) update parameters without bumping
    their version counters, so a version check alone would miss the update.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            if getattr(param, "_reft_orthonormal", False):
                _retract_(param)


register_optimizer_step_post_hook(_retract_after_optimizer_step)


class OrthonormalRows(nn.Module):
    """Holds R (r×d, fp32, orthonormal rows); ``module()`` returns it ready for use in a forward."""

    def __init__(self, rank: int, dim: int) -> None:
        super().__init__()
        columns = torch.empty(dim, rank)
        nn.init.orthogonal_(columns)  # pyreft: LowRankRotateLayer weight P (d×r); R = Pᵀ
        self.weight = nn.Parameter(columns.T.contiguous())
        self.weight._reft_orthonormal = True
        self.weight._reft_synced_version = self.weight._version
        self.weight.register_post_accumulate_grad_hook(_project_to_tangent)
        self.register_state_dict_pre_hook(lambda module, *args: module.retract())

    def retract(self) -> None:
        """Bring R back onto the manifold if something other than an optimizer step changed it
        (``load_state_dict``, a manual edit). A matrix still orthonormal to fp32 precision, such as a
        saved checkpoint, is kept bit for bit, so save → load reproduces logits exactly."""
        weight = self.weight
        if weight._version == getattr(weight, "_reft_synced_version", -1):
            return
        with torch.no_grad():
            eye = torch.eye(weight.shape[0], device=weight.device)
            off_manifold = (weight @ weight.T - eye).abs().max() > TOLERANCE
        if off_manifold:
            _retract_(weight)
        else:
            weight._reft_synced_version = weight._version

    def forward(self) -> torch.Tensor:
        self.retract()
        return self.weight

    def orthonormality_error(self) -> float:
        """max |R Rᵀ − I|, the test's criterion."""
        rotation = self().detach()
        eye = torch.eye(rotation.shape[0], device=rotation.device)
        return (rotation @ rotation.T - eye).abs().max().item()
