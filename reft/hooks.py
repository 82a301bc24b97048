"""Forward hooks that live exactly as long as a ``with`` block, even when the forward raises."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from torch.utils.hooks import RemovableHandle

import torch
from torch import nn

OutputEdit = Callable[[torch.Tensor], None]


def _edit_output_in_place(edit: OutputEdit):
    """Wrap an in-place edit of a block's hidden states as a forward hook.

    Blocks return a tensor (transformers 5) or a tuple whose first item is the hidden states; the
    edit writes into that tensor, so the block's output object is returned unchanged.
    """

    def hook(module: nn.Module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        if not isinstance(hidden, torch.Tensor):
            raise TypeError(f"{type(module).__name__} returned {type(hidden).__name__}, "
                            "expected the hidden states tensor")
        edit(hidden)
        return output

    return hook


@contextmanager
def output_hooks(edits: list[tuple[nn.Module, OutputEdit]]) -> Iterator[list[RemovableHandle]]:
    """Install ``edit(hidden_states)`` after each module's forward; remove every handle on exit.

    Yields the handles, so a caller may remove them early (removing twice is harmless).
    """
    handles = []
    try:
        for module, edit in edits:
            handles.append(module.register_forward_hook(_edit_output_in_place(edit)))
        yield handles
    finally:
        for handle in handles:
            handle.remove()
