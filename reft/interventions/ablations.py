"""The paper's remaining ablations of LoReFT (Table 17), each with an orthonormal R (fp32).

* ``OrthDiReFT``  Φ(h) = h + Rᵀ act(W h + b)      pyreft ``DireftIntervention``; 2dr + r params
* ``ConsReFT``    Φ(h) = h + Rᵀ(b − R h)           constant source b ~ U[0, 1); dr + r params
* ``LobiReFT``    Φ(h) = h + Rᵀ b                  a learned bias in the subspace; dr + r params

pyreft's ConsReFT applies no dropout at all; here every member honours ``dropout`` (set it to 0 to
reproduce Table 17's ConsReFT row).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Intervention, linear, register_intervention
from .pyreft_rotation import rotation_module, rotation_parameter


@register_intervention("orthdireft", "DireftIntervention")
class OrthDiReFT(Intervention):
    def __init__(self, embed_dim: int, rank: int, **kwargs) -> None:
        super().__init__(embed_dim, rank, **kwargs)
        self.rotation = rotation_module(rank, embed_dim, self.rotation_training)
        self.learned_source = linear(embed_dim, rank, self.dtype)

    def edit(self, h: torch.Tensor) -> torch.Tensor:
        source = self.act(self.learned_source(h.to(self.dtype))).float()
        return source @ self.rotation()

    def no_weight_decay(self) -> set[str]:
        return {f"rotation.{rotation_parameter(self.rotation_training)}"}


class _ConstantSource(Intervention):
    """Shared parts of ConsReFT and LobiReFT: R and a constant source b ∈ R^r (fp32, U[0,1))."""

    def __init__(self, embed_dim: int, rank: int, **kwargs) -> None:
        super().__init__(embed_dim, rank, **kwargs)
        self.rotation = rotation_module(rank, embed_dim, self.rotation_training)
        self.learned_source = nn.Parameter(torch.rand(rank))

    def no_weight_decay(self) -> set[str]:
        return {f"rotation.{rotation_parameter(self.rotation_training)}"}


@register_intervention("consreft", "ConsreftIntervention")
class ConsReFT(_ConstantSource):
    def edit(self, h: torch.Tensor) -> torch.Tensor:
        rotation = self.rotation()
        return (self.learned_source - h.float() @ rotation.T) @ rotation


@register_intervention("lobireft", "LobireftIntervention")
class LobiReFT(_ConstantSource):
    def edit(self, h: torch.Tensor) -> torch.Tensor:
        return (self.learned_source @ self.rotation()).expand(*h.shape[:-1], self.embed_dim)
