"""``ReftModel``: a frozen Hugging Face model plus ReFT interventions on its residual stream.

Interventions are keyed ``layer{l}`` (tied or one-sided) or ``layer{l}_first`` / ``layer{l}_last``
(untied prefix/suffix), created in pyreft's order (all prefix interventions, then all suffix ones).
Each forward installs hooks on the chosen blocks for exactly the duration of the call; a hook
gathers the hidden states at the intervened positions, applies Φ and writes them back in place.

Positions come from, in order of precedence: ``intervention_locations`` (``[batch, groups, width]``,
-1 = unused, pyreft's ``unit_locations``), or ``prompt_lengths`` (per row, the position spec
is applied to the first ``prompt_lengths`` real tokens), or the whole unpadded input as the prompt.
Padding offsets always come from the attention mask.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from .architectures import block_modules, hidden_size, model_device, model_dtype
from .config import ReftConfig
from .generate import generate_with_prompt_interventions
from .hooks import output_hooks
from .interventions import intervention_class
from .io import check_same_base, load_reft_state, read_reft_config, save_reft_model
from .positions import PositionSpec, intervention_locations, padding_offsets

GroupIndex = tuple[torch.Tensor, torch.Tensor]


def _activation_checkpointing(model: nn.Module) -> bool:
    """transformers 5 renamed ``is_gradient_checkpointing`` (deprecated) to ``is_activation_checkpointing``."""
    flag = getattr(model, "is_activation_checkpointing", None)
    return bool(flag if flag is not None else getattr(model, "is_gradient_checkpointing", False))


class ReftModel(nn.Module):
    """Frozen base model + interventions. Construct with ``get_reft_model(model, config)``.

    ``train()`` / ``eval()`` reach the interventions too, so ``eval()`` switches their dropout off
    (pyvene's toggled only the base model).
    """

    def __init__(self, model: nn.Module, config: ReftConfig, freeze_base: bool = True) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.spec = PositionSpec.parse(config.positions)
        blocks = block_modules(model, config.layer_module)
        self.layers = config.layer_indices(len(blocks))
        self.groups = self.spec.group_names(config.tied)
        if freeze_base:  # pyreft's disable_model_grads; False keeps e.g. LoRA weights trainable
            for param in model.parameters():
                param.requires_grad_(False)
        self.interventions = nn.ModuleDict()
        self._targets: list[tuple[nn.Module, str, int]] = []  # (block, intervention key, group)
        cls = intervention_class(config.intervention)
        dtype = config.dtype or str(model_dtype(model)).removeprefix("torch.")
        for group_index, group in enumerate(self.groups):
            for layer in self.layers:
                key = f"layer{layer}" if len(self.groups) == 1 else f"layer{layer}_{group}"
                self.interventions[key] = cls(
                    hidden_size(model), config.rank, dropout=config.dropout, act_fn=config.act_fn,
                    dtype=dtype, dropout_target=config.dropout_target,
                    rotation_training=config.rotation_training, **config.intervention_kwargs)
                self._targets.append((blocks[layer], key, group_index))
        self.interventions.to(model_device(model))
        self._active: list[GroupIndex] | None = None
        self._scope: bool | None = None  # set inside step_scope

    # ----------------------------------------------------------------- positions and hooks
    def locations(self, attention_mask: torch.Tensor, prompt_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``[batch, groups, width]`` absolute positions for a (left- or right-) padded batch."""
        mask = attention_mask.detach().cpu()
        lengths = mask.sum(-1) if prompt_lengths is None else torch.as_tensor(prompt_lengths).cpu()
        return intervention_locations(self.spec, lengths, tied=self.config.tied,
                                      rule=self.config.short_prompt_rule, offsets=padding_offsets(mask))

    def _group_index(self, locations: torch.Tensor, device: torch.device) -> list[GroupIndex]:
        if locations.dim() != 3 or locations.shape[1] != len(self.groups):
            raise ValueError(f"intervention_locations must have shape [batch, {len(self.groups)}, width] "
                             f"for positions={self.spec} tied={self.config.tied}, got {tuple(locations.shape)}")
        locations = locations.cpu()
        index = []
        for group in range(len(self.groups)):
            rows, slots = (locations[:, group] >= 0).nonzero(as_tuple=True)
            cols = locations[:, group][rows, slots]
            index.append((rows.to(device, non_blocking=True), cols.to(device, non_blocking=True)))
        return index

    def _edit(self, key: str, group: int):
        intervention = self.interventions[key]

        def edit(hidden: torch.Tensor) -> None:
            if self._active is None:
                return
            rows, cols = self._active[group]
            if rows.numel():
                hidden.index_put_((rows, cols), intervention(hidden[rows, cols]))

        return edit

    @contextmanager
    def hooked(self) -> Iterator[list]:
        """Install the intervention hooks (inactive until ``_active`` is set); always removed."""
        with output_hooks([(block, self._edit(key, group)) for block, key, group in self._targets]) as handles:
            yield handles

    @contextmanager
    def intervening(self, locations: torch.Tensor) -> Iterator[None]:
        """Edit the given positions during every forward inside the block."""
        self._active = self._group_index(locations, model_device(self.model))
        try:
            with self.hooked():
                yield
        finally:
            self._active = None

    # ----------------------------------------------------------------- forward / generate
    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                intervention_locations: torch.Tensor | None = None,
                prompt_lengths: torch.Tensor | None = None, **kwargs):
        if attention_mask is None:
            reference = input_ids if input_ids is not None else kwargs["inputs_embeds"][..., 0]
            attention_mask = torch.ones(reference.shape[:2], dtype=torch.long, device=reference.device)
        if intervention_locations is None:
            intervention_locations = self.locations(attention_mask, prompt_lengths)
        if self._scope is not None:  # inside step_scope: the edits stay placed until the backward is done
            self._active = self._group_index(intervention_locations, model_device(self.model))
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        if self.training and _activation_checkpointing(self.model) and torch.is_grad_enabled():
            raise RuntimeError("gradient checkpointing recomputes blocks in the backward pass, after this forward "
                               "has removed its intervention hooks: run the forward and the backward inside "
                               "`with model.step_scope():` (reft.train.train does)")
        with self.intervening(intervention_locations):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    @contextmanager
    def step_scope(self) -> Iterator[None]:
        """One training step: the hooks are installed for the whole block and each forward inside it
        leaves its positions active, so the backward pass, which recomputes checkpointed blocks
        (gradient checkpointing), edits them exactly as the forward did (torch's checkpoint restores
        the RNG state, so intervention dropout draws the same mask). Hooks and positions are gone
        when the block ends. Without checkpointing the scope changes nothing."""
        with self.hooked():
            self._scope = True
            try:
                yield
            finally:
                self._scope, self._active = None, None

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 intervention_locations: torch.Tensor | None = None, **generate_kwargs):
        """HF ``generate`` with the interventions applied to the prompt only (see ``reft.generate``)."""
        return generate_with_prompt_interventions(self, input_ids, attention_mask,
                                                  intervention_locations, **generate_kwargs)

    # ----------------------------------------------------------------- parameters
    def trainable_base_parameters(self) -> dict[str, nn.Parameter]:
        """Base-model parameters a user unfroze (e.g. a GLUE classification head)."""
        return {name: p for name, p in self.model.named_parameters() if p.requires_grad}

    def no_weight_decay(self) -> set[str]:
        """Full names of parameters that must not get weight decay (orthonormal R)."""
        names = set()
        for key, module in self.interventions.items():
            names |= {f"interventions.{key}.{name}" for name in module.no_weight_decay()}
        return names

    def count_parameters(self) -> dict[str, int]:
        intervention = sum(p.numel() for p in self.interventions.parameters())
        base_trainable = sum(p.numel() for p in self.trainable_base_parameters().values())
        base = sum(p.numel() for p in self.model.parameters())
        return {"intervention": intervention, "base_trainable": base_trainable, "base": base}

    def print_trainable_parameters(self) -> str:
        """pyreft's summary: Params% = intervention parameters / base-model parameters."""
        counts = self.count_parameters()
        pct = 100 * counts["intervention"] / counts["base"]
        text = (f"trainable intervention params: {counts['intervention']:,d} || "
                f"trainable model params: {counts['base_trainable']:,d}\n"
                f"model params: {counts['base']:,d} || trainable%: {pct:.4f}")
        print(text)
        return text

    # ----------------------------------------------------------------- save / load
    def save_pretrained(self, directory: str, base_parameters: bool = True, **metadata) -> None:
        """Interventions plus (unless ``base_parameters=False``) the unfrozen base parameters."""
        save_reft_model(self, directory, base_parameters=base_parameters, **metadata)

    @classmethod
    def from_pretrained(cls, model: nn.Module, directory: str, freeze_base: bool = True) -> "ReftModel":
        """Attach the interventions saved in ``directory`` (and its unfrozen base parameters) to ``model``."""
        saved = read_reft_config(directory)
        check_same_base(saved.get("base"), model, directory)  # before the interventions are sized for it
        reft_model = cls(model, ReftConfig.from_dict(saved["config"], source=str(directory)), freeze_base=freeze_base)
        load_reft_state(reft_model, directory)
        return reft_model


def get_reft_model(model: nn.Module, config: ReftConfig, freeze_base: bool = True) -> ReftModel:
    """Freeze ``model`` and attach the interventions ``config`` describes (pyreft's entry point)."""
    return ReftModel(model, config, freeze_base=freeze_base)
