"""LoReFT, the paper's main method (eq. 2): Φ(h) = h + Rᵀ(act(W h + b) − R h).

R ∈ R^{r×d} has orthonormal rows (``orthonormal.OrthonormalRows``, fp32; or trained through torch's
orthogonal parametrization as pyreft does, ``rotation_training="pyreft"``); W ∈ R^{r×d}, b ∈ R^r form
``learned_source`` in the intervention dtype. Trainable parameters: 2dr + r. Initialisation as in
pyreft: R from ``orthogonal_``, then W, b from nn.Linear's default, so the edit is non-zero at step 0.
"""

from __future__ import annotations

import torch

from .base import Intervention, linear, register_intervention
from .pyreft_rotation import rotation_module, rotation_parameter


@register_intervention("loreft", "LoreftIntervention")
class LoReFT(Intervention):
    def __init__(self, embed_dim: int, rank: int, **kwargs) -> None:
        super().__init__(embed_dim, rank, **kwargs)
        self.rotation = rotation_module(rank, embed_dim, self.rotation_training)
        self.learned_source = linear(embed_dim, rank, self.dtype)

    def edit(self, h: torch.Tensor) -> torch.Tensor:
        rotation = self.rotation()
        source = self.act(self.learned_source(h.to(self.dtype))).float()
        return (source - h.float() @ rotation.T) @ rotation

    def no_weight_decay(self) -> set[str]:
        return {f"rotation.{rotation_parameter(self.rotation_training)}"}
