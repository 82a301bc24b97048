"""Sharded training with FSDP2 (``torch.distributed.fsdp.fully_shard``) for the methods that train
or hold large base weights: LoRA, DoRA and full finetuning at 7B scale (``train.fsdp: true``).

Each transformer block, then the whole model, becomes one FSDP unit: its parameters (frozen and
trainable alike), gradients and optimizer state are split across the W processes along dim 0, and a
block's parameters are gathered whole only while it computes. Gradients are reduce-scattered with
an average, so W sharded processes with batch size b reach the parameters of one process with
batch size W·b (``tests/test_distributed.py``). With ``train.autocast: bfloat16`` the blocks compute
in bf16 through FSDP's ``MixedPrecisionPolicy`` (parameters gathered in bf16, gradients reduced in
fp32, sharded parameters and optimizer state kept fp32) instead of ``torch.autocast``.

ReFT keeps the data-parallel path (``reft.distributed``): its parameters are a few thousand
numbers; sharding them would cost one all-gather per block for nothing.

After training the sharded model is not evaluated as it is (every forward would be a collective):
``gather_trainable`` brings the trained tensors back whole and the first process loads them into a
fresh, unsharded copy of the model (``benchmarks.experiments.run``).
"""

from __future__ import annotations

import torch
from torch import nn

from . import distributed


def shard_model(model: nn.Module, blocks: list[nn.Module], compute_dtype: str | None = None) -> nn.Module:
    """Apply ``fully_shard`` to each block, then to ``model`` (in place; returns ``model``)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=getattr(torch, compute_dtype), reduce_dtype=torch.float32) \
        if compute_dtype else MixedPrecisionPolicy()
    for block in blocks:
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def is_sharded_model(model: nn.Module) -> bool:
    return any(distributed.is_sharded(p) for p in model.parameters())


def gather_trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable parameters, whole, on every process (a collective: every process calls it)."""
    return {name: (p.full_tensor() if distributed.is_sharded(p) else p).detach().clone()
            for name, p in model.named_parameters() if p.requires_grad}
