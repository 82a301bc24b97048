"""NoReFT (paper Table 17): Φ(h) = h + W₂ᵀ(act(W₁ h + b) − W₂ h − b₂), LoReFT without orthogonality.

W₂ = ``proj_layer`` (bias b₂ only with ``add_bias=True``, pyreft's flag, default off here since
pyreft made it a required key), W₁, b = ``learned_source``. Parameters: 2dr + r (+ r with b₂).
"""

from __future__ import annotations

import torch

from .base import Intervention, linear, register_intervention


@register_intervention("noreft", "NoreftIntervention")
class NoReFT(Intervention):
    def __init__(self, embed_dim: int, rank: int, *, add_bias: bool = False, **kwargs) -> None:
        super().__init__(embed_dim, rank, **kwargs)
        self.add_bias = add_bias
        self.proj_layer = linear(embed_dim, rank, self.dtype, bias=add_bias)
        self.learned_source = linear(embed_dim, rank, self.dtype)

    def edit(self, h: torch.Tensor) -> torch.Tensor:
        h_cast = h.to(self.dtype)
        delta = self.act(self.learned_source(h_cast)) - self.proj_layer(h_cast)
        return (delta @ self.proj_layer.weight).float()

    def hparams(self) -> dict:
        return {**super().hparams(), "add_bias": self.add_bias}
