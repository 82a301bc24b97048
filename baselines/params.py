"""Parameter accounting for any method, counted the way the paper's tables do.

    Params% = 100 · trainable / total

* ``trainable``: parameters that receive gradients, each counted once (a tied intervention, or a
  weight shared between modules, is one tensor);
* ``total``: every parameter of the adapted model: the frozen base plus what the method added.
  This is peft's ``print_trainable_parameters`` convention, which the copied baseline rows use:
  LoRA r=32 on LLaMA-7B adds 56,098,816 parameters, 0.826% of 6,794,514,432 (Table 1), where
  dividing by the base alone would give 0.833%. For ReFT the two conventions agree to the
  three decimals the paper prints (pyreft divides by the base only);
* a sequence-classification head (GLUE) is left out of both (Table 13 caption).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .heads import head_names, is_head_parameter


@dataclass(frozen=True)
class ParamCount:
    trainable: int
    total: int
    head: int  # classification-head parameters, excluded from both counts

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        head = f" (classification head of {self.head:,d} excluded)" if self.head else ""
        return f"trainable {self.trainable:,d} of {self.total:,d} ({self.percent:.4f}%){head}"


def count_parameters(wrapped: nn.Module) -> ParamCount:
    """Trainable / total parameters of a model with a method attached (works on meta tensors)."""
    heads = head_names(wrapped)
    trainable = total = head = 0
    for name, param in wrapped.named_parameters():  # named_parameters yields a shared tensor once
        if is_head_parameter(name, heads):
            head += param.numel()
            continue
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return ParamCount(trainable, total, head)
