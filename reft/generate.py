"""Generation with interventions on the prompt only, through HF ``generate`` and its KV cache.

This is the paper's setting (pyvene ``generate(..., intervene_on_prompt=True)``): the prompt's
prefill forward is intervened; generated tokens are never edited themselves and feel the
intervention only through the keys and values cached for the prompt. Without the cache every step
would recompute the prompt un-intervened, so ``use_cache=False`` is refused.

Positions are computed at the prefill from the attention mask HF passes to the backbone, so left
padding, beam search and ``num_return_sequences`` (which expand the batch before the prefill) all
get the right positions. Explicit ``intervention_locations`` (prompt-batch sized) are repeated to
match an expanded batch, as pyreft does for beams.
"""

from __future__ import annotations

import torch
from torch import nn

from .architectures import base_backbone, model_device


def _prefill_mask(args: tuple, kwargs: dict) -> torch.Tensor:
    mask = kwargs.get("attention_mask")
    ids = kwargs.get("input_ids", args[0] if args else None)
    if ids is None:
        ids = kwargs["inputs_embeds"][..., 0]
    if mask is None or mask.dim() != 2 or mask.shape != ids.shape[:2]:
        return torch.ones(ids.shape[:2], dtype=torch.long)
    return mask


def generate_with_prompt_interventions(reft_model: nn.Module, input_ids: torch.Tensor,
                                       attention_mask: torch.Tensor | None = None,
                                       intervention_locations: torch.Tensor | None = None,
                                       **generate_kwargs) -> torch.Tensor:
    """``reft_model.model.generate`` with ``reft_model``'s (a ``ReftModel``) interventions on the
    prompt's prefill only; called by ``ReftModel.generate``, which is the way in."""
    if generate_kwargs.get("use_cache") is False:
        raise ValueError("use_cache=False would recompute the prompt without interventions at every "
                         "step; ReFT generation intervenes on the prompt through the KV cache")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    calls, hooks = 0, []

    def on_backbone_call(module, args, kwargs):
        nonlocal calls
        calls += 1
        if calls > 1:  # decoding steps: only the cached prompt carries the intervention
            reft_model._active = None
            for handle in hooks:  # so decoding pays nothing for the block hooks
                handle.remove()
            return
        mask = _prefill_mask(args, kwargs)
        if intervention_locations is None:
            locations = reft_model.locations(mask)
        else:
            locations = intervention_locations.repeat_interleave(mask.shape[0] // intervention_locations.shape[0], 0)
        reft_model._active = reft_model._group_index(locations, model_device(reft_model.model))

    handle = base_backbone(reft_model.model).register_forward_pre_hook(on_backbone_call, with_kwargs=True)
    try:
        with reft_model.hooked() as handles:
            hooks.extend(handles)
            return reft_model.model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                             **generate_kwargs)
    finally:
        handle.remove()
        reft_model._active = None
