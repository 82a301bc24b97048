"""The intervention interface and its registry.

An intervention Φ maps the hidden states h ∈ R^d at the intervened positions of one layer to new
hidden states. Every member of the ReFT family writes Φ(h) = h + edit(h) with a rank-r edit; the
subclass supplies ``edit`` and the base class handles dtypes and dropout exactly as pyreft does:

* the edit is computed in fp32 and ``(h + edit)`` is cast back to h's dtype;
* dropout acts on the *output* ``h + edit`` (pyreft's choice, reproduced by default: at training
  time it zeroes coordinates of the residual stream itself); ``dropout_target="edit"`` applies it
  to the edit only, a documented deviation offered for experiments.

Adding a member = one module with a subclass decorated by ``@register_intervention("name")``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from transformers.activations import ACT2FN

INTERVENTIONS: dict[str, type["Intervention"]] = {}
ALIASES: dict[str, str] = {}


def register_intervention(name: str, *aliases: str) -> Callable[[type], type]:
    """Class decorator adding an intervention type to the registry (case-insensitive names)."""

    def wrap(cls: type) -> type:
        key = name.lower()
        if key in INTERVENTIONS:
            raise ValueError(f"intervention {name!r} is registered twice")
        INTERVENTIONS[key] = cls
        cls.registry_name = key
        for alias in aliases:
            ALIASES[alias.lower()] = key
        return cls

    return wrap


def intervention_class(name: str) -> type["Intervention"]:
    """Look up an intervention by its name or a pyreft class name (e.g. ``NodireftIntervention``)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in INTERVENTIONS:
        known = sorted(INTERVENTIONS) + sorted(ALIASES)
        raise ValueError(f"unknown intervention {name!r}; known: {', '.join(known)}")
    return INTERVENTIONS[key]


def resolve_dtype(dtype: str | torch.dtype | None, default: torch.dtype) -> torch.dtype:
    if dtype is None:
        return default
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(names)}")
    return names[dtype]


class Intervention(nn.Module):
    """Base class: Φ(h) = dropout(h + edit(h)), edit computed in fp32.

    Args:
        embed_dim: d, the width of the hidden state.
        rank: r, the dimension of the edited subspace (pyreft's ``low_rank_dimension``).
        dropout: dropout probability (pyreft applies it to ``h + edit``).
        act_fn: optional activation on ``W h + b`` (a ``transformers.activations`` name);
            ``None`` or ``"linear"`` is the identity, pyreft's default.
        dtype: dtype of the learned projection W, b (pyreft: ``dtype`` kwarg, default bf16);
            an orthonormal R is always fp32 (the paper's runs keep it so).
        dropout_target: ``"output"`` (pyreft, default) or ``"edit"``.
        rotation_training: how an orthonormal R trains (members that have one):
            ``"riemannian"`` (default: gradient projected on the Stiefel manifold + QR retraction,
            ``orthonormal.py``) or ``"pyreft"`` (torch's orthogonal parametrization, ``pyreft_rotation.py``).
    """

    registry_name = "base"
    # the paper's parameter count per intervention, as a function of (d, r); see num_parameters()

    def __init__(self, embed_dim: int, rank: int, *, dropout: float = 0.0,
                 act_fn: str | None = None, dtype: torch.dtype | str | None = None,
                 dropout_target: str = "output", rotation_training: str = "riemannian") -> None:
        super().__init__()
        if embed_dim <= 0 or rank <= 0:
            raise ValueError(f"embed_dim and rank must be positive, got d={embed_dim}, r={rank}")
        if rank > embed_dim:
            raise ValueError(f"rank {rank} exceeds the hidden size {embed_dim}")
        if dropout_target not in ("output", "edit"):
            raise ValueError(f"dropout_target must be 'output' or 'edit', got {dropout_target!r}")
        self.embed_dim, self.rank = embed_dim, rank
        self.dtype = resolve_dtype(dtype, torch.float32)
        self.act = nn.Identity() if act_fn in (None, "linear") else ACT2FN[act_fn]
        self.act_fn = act_fn
        self.dropout = nn.Dropout(dropout)
        self.dropout_target = dropout_target
        if rotation_training not in ("riemannian", "pyreft"):
            raise ValueError(f"rotation_training must be 'riemannian' or 'pyreft', got {rotation_training!r}")
        self.rotation_training = rotation_training

    def edit(self, h: torch.Tensor) -> torch.Tensor:
        """The fp32 rank-r edit added to h. Subclasses implement the formula."""
        raise NotImplementedError

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        edit = self.edit(h)
        if self.dropout_target == "edit":
            return (h.float() + self.dropout(edit)).to(h.dtype)
        return self.dropout((h.float() + edit).to(h.dtype))

    def no_weight_decay(self) -> set[str]:
        """Names of parameters weight decay must never touch (an orthonormal R)."""
        return set()

    def extra_repr(self) -> str:
        return f"d={self.embed_dim}, r={self.rank}, dtype={self.dtype}, act={self.act_fn}"

    def hparams(self) -> dict:
        """Constructor arguments, enough to rebuild this intervention (saved with checkpoints)."""
        return {"embed_dim": self.embed_dim, "rank": self.rank, "dropout": self.dropout.p,
                "act_fn": self.act_fn, "dtype": str(self.dtype).removeprefix("torch."),
                "dropout_target": self.dropout_target, "rotation_training": self.rotation_training}


def linear(in_dim: int, out_dim: int, dtype: torch.dtype, bias: bool = True) -> nn.Linear:
    """nn.Linear with PyTorch's default init (as pyreft), created in fp32 then cast like pyreft."""
    return nn.Linear(in_dim, out_dim, bias=bias).to(dtype)
