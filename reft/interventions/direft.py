"""DiReFT, the paper's eq. 3: Φ(h) = h + W₂ᵀ act(W₁ h + b).

No orthogonality constraint and no difference term (pyreft's ``NodireftIntervention``; pyreft's
class named ``DireftIntervention`` is the orthogonal ablation, see ``ablations.OrthDiReFT``).
W₂ = ``proj_layer.weight`` (r×d), W₁, b = ``learned_source``. Parameters: 2dr + r. pyreft creates an
unused ``proj_layer.bias`` when ``add_bias=True`` (counted, never trained); it is not created here.
"""

from __future__ import annotations

import torch

from .base import Intervention, linear, register_intervention


@register_intervention("direft", "NodireftIntervention")
class DiReFT(Intervention):
    def __init__(self, embed_dim: int, rank: int, **kwargs) -> None:
        super().__init__(embed_dim, rank, **kwargs)
        self.proj_layer = linear(embed_dim, rank, self.dtype, bias=False)  # pyreft creates W₂ first
        self.learned_source = linear(embed_dim, rank, self.dtype)

    def edit(self, h: torch.Tensor) -> torch.Tensor:
        source = self.act(self.learned_source(h.to(self.dtype)))
        return (source @ self.proj_layer.weight).float()
