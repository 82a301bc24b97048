"""Activation (gradient) checkpointing for every method: the backward pass recomputes each block's
activations instead of keeping them. ReFT's interventions are forward hooks, so they must still be
installed, at the same positions, when the backward recomputes a block: the training loop runs each
forward and backward inside the model's ``step_scope`` (``ReftModel.step_scope``; a no-op for models
without one).
"""

from __future__ import annotations

import contextlib

from torch import nn


def step_scope(model: nn.Module):
    """The model's scope for one forward + backward (``ReftModel.step_scope``), or a no-op."""
    scope = getattr(model, "step_scope", None)
    return scope() if callable(scope) else contextlib.nullcontext()


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Activation checkpointing on the Hugging Face model inside ``model`` (a ReftModel's base, a peft
    model's, or the model itself), non-reentrant: inputs need no ``requires_grad`` and block hooks
    fire again in the recompute."""
    target = model.model if hasattr(model, "interventions") else model
    enable = getattr(target, "gradient_checkpointing_enable", None)
    if enable is None:
        raise ValueError(f"{type(target).__name__} has no gradient_checkpointing_enable: it cannot checkpoint")
    enable(gradient_checkpointing_kwargs={"use_reentrant": False})
