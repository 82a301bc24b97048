"""``ReftConfig``: where to intervene (layers, positions) and with what (type, rank, dropout...)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .interventions import intervention_class
from .positions import SHORT_PROMPT_RULES, PositionSpec
from .typed import check_types


@dataclass
class ReftConfig:
    """Everything needed to attach ReFT interventions to a frozen model (saved with checkpoints).

    The paper's commonsense LoReFT is ``ReftConfig("loreft", rank=8, layers="all",
    positions="f7+l7", tied=True)``; its GLUE RoBERTa runs use ``rank=1, positions="f3"``.
    """

    intervention: str = field(default="loreft", metadata={
        "help": "registry name (loreft, direft, noreft, orthdireft, consreft, lobireft) or a pyreft class name"})
    rank: int = field(default=4, metadata={"help": "r, pyreft's low_rank_dimension"})
    layers: Any = field(default="all", metadata={
        "help": "'all', a list of 0-indexed layers, or pyreft's '3;9;18;24' string"})
    positions: str = field(default="l1", metadata={"help": "paper syntax: f7+l7, f3, l1"})
    tied: bool = field(default=False, metadata={
        "help": "one intervention per layer for prefix and suffix (pyreft --share_weights)"})
    dropout: float = field(default=0.0, metadata={"help": "intervention dropout probability"})
    act_fn: str | None = field(default=None, metadata={"help": "activation on Wh+b; None = identity"})
    dtype: str | None = field(default=None, metadata={
        "help": "dtype of W, b (R is always fp32); None = the base model's dtype"})
    dropout_target: str = field(default="output", metadata={
        "help": "'output': dropout on h + edit (pyreft); 'edit': on the edit only"})
    short_prompt_rule: str = field(default="paper", metadata={
        "help": "'paper': p<=floor(n/2), s<=ceil(n/2) when n < p+s; 'pyreft': floor for both, always"})
    rotation_training: str = field(default="riemannian", metadata={
        "help": "how an orthonormal R trains: 'riemannian' (Stiefel gradient + QR retraction) or 'pyreft' "
                "(torch's orthogonal parametrization, as pyreft 0.1.0)"})
    layer_module: str | None = field(default=None, metadata={
        "help": "override the architecture table: 'path.to.blocks.{layer}' relative to the model"})
    intervention_kwargs: dict = field(default_factory=dict, metadata={
        "help": "extra constructor arguments of the intervention type (e.g. add_bias for noreft)"})

    def __post_init__(self) -> None:
        intervention_class(self.intervention)  # raises on an unknown type
        PositionSpec.parse(self.positions)
        if self.short_prompt_rule not in SHORT_PROMPT_RULES:
            raise ValueError(f"short_prompt_rule must be one of {SHORT_PROMPT_RULES}, got {self.short_prompt_rule!r}")
        if self.rotation_training not in ("riemannian", "pyreft"):
            raise ValueError(f"rotation_training must be 'riemannian' or 'pyreft', got {self.rotation_training!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.rank < 1:
            raise ValueError(f"rank must be >= 1, got {self.rank}")

    def layer_indices(self, num_layers: int) -> list[int]:
        """Resolve ``layers`` against a model with ``num_layers`` blocks."""
        layers = self.layers
        if isinstance(layers, str):
            if layers.strip().lower() == "all":
                return list(range(num_layers))
            layers = [int(part) for part in layers.replace(",", ";").split(";") if part.strip()]
        layers = [int(layer) for layer in layers]
        bad = [layer for layer in layers if not 0 <= layer < num_layers]
        if bad:
            raise ValueError(f"layers {bad} out of range for a model with {num_layers} layers")
        if len(set(layers)) != len(layers):
            raise ValueError(f"duplicate layers in {self.layers!r}")
        return layers

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "ReftConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ReftConfig key(s) {unknown} in {source}; known: {sorted(known)}")
        return cls(**check_types(cls, values, source))
