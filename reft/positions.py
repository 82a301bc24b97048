"""Which prompt positions an intervention edits, in the paper's syntax (``f7+l7``, ``f3``, ``l1``).

``fP+lS`` = the first P and the last S positions of the prompt. With **tied** weights (pyreft's
``--share_weights``) one intervention per layer edits both sets; **untied**, the prefix and the
suffix each get their own intervention per layer. The result is a tensor of shape
``[batch, groups, width]`` (``groups`` = 1 tied or one-sided, 2 untied) of absolute token indices
into the padded batch, with ``-1`` marking an unused slot (pyreft points such slots at a masked
"sink" pad token; here they are simply skipped).

Short prompts (n < P + S) follow one of two rules:

* ``"paper"`` (default, the paper's text): P ← min(P, ⌊n/2⌋), S ← min(S, ⌈n/2⌉);
* ``"pyreft"`` (the code behind the paper's numbers): P ← min(P, ⌊n/2⌋), S ← min(S, ⌊n/2⌋) for every
  n, so an odd-length short prompt skips its middle token and a one-sided ``f3`` on n = 4 edits only
  2 positions. ``shared/reference/pyreft_positions.json`` pins this rule.

Padding offsets come from the attention mask (the number of leading zeros), never from a BOS token,
so left- and right-padded batches give the same edited tokens for tokenizers with or without BOS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

SHORT_PROMPT_RULES = ("paper", "pyreft")
_SPEC = re.compile(r"^(?:f(\d+))?(?:\+?l(\d+))?$")


@dataclass(frozen=True)
class PositionSpec:
    """A parsed position string: ``first`` prefix and ``last`` suffix positions."""

    first: int
    last: int

    @classmethod
    def parse(cls, spec: "str | PositionSpec") -> "PositionSpec":
        if isinstance(spec, PositionSpec):
            return spec
        match = _SPEC.match(spec.strip().lower())
        if not spec.strip() or match is None or (match.group(1) is None and match.group(2) is None):
            raise ValueError(f"bad position spec {spec!r}: expected 'fP+lS', 'fP' or 'lS', e.g. 'f7+l7'")
        first, last = int(match.group(1) or 0), int(match.group(2) or 0)
        if first + last == 0:
            raise ValueError(f"position spec {spec!r} selects no positions")
        return cls(first, last)

    def __str__(self) -> str:
        return "+".join(part for part in (self.first and f"f{self.first}", self.last and f"l{self.last}") if part)

    def num_groups(self, tied: bool) -> int:
        """Interventions per layer: 2 when prefix and suffix have untied weights, else 1."""
        return 2 if (self.first and self.last and not tied) else 1

    def group_names(self, tied: bool) -> list[str]:
        if self.num_groups(tied) == 2:
            return ["first", "last"]
        return ["all"]

    def width(self, tied: bool) -> int:
        if self.num_groups(tied) == 2:
            return max(self.first, self.last)
        return self.first + self.last

    def counts(self, n: int, rule: str = "paper") -> tuple[int, int]:
        """How many prefix and suffix positions a prompt of length n gets."""
        if rule == "pyreft":
            return min(self.first, n // 2), min(self.last, n // 2)
        if rule != "paper":
            raise ValueError(f"unknown short-prompt rule {rule!r}; use one of {SHORT_PROMPT_RULES}")
        if n < self.first + self.last:
            return min(self.first, n // 2), min(self.last, (n + 1) // 2)
        return self.first, self.last

    def example_positions(self, n: int, tied: bool, rule: str = "paper") -> list[list[int]]:
        """Per-group positions (relative to the prompt start) for one prompt of length n."""
        n_first, n_last = self.counts(n, rule)
        prefix, suffix = list(range(n_first)), list(range(n - n_last, n))
        groups = [prefix, suffix] if self.num_groups(tied) == 2 else [prefix + suffix]
        width = self.width(tied)
        return [group + [-1] * (width - len(group)) for group in groups]


def padding_offsets(attention_mask: torch.Tensor) -> torch.Tensor:
    """Number of leading padding tokens per row (0 for right padding)."""
    return (attention_mask.cumsum(-1) == 0).sum(-1)


def intervention_locations(spec: "str | PositionSpec", prompt_lengths: torch.Tensor | list[int], *,
                           tied: bool, rule: str = "paper",
                           offsets: torch.Tensor | None = None) -> torch.Tensor:
    """Absolute positions ``[batch, groups, width]`` (``-1`` = unused) for a batch of prompts.

    ``prompt_lengths`` are the unpadded prompt lengths; ``offsets`` the left-padding of each row
    (``padding_offsets(attention_mask)``), zero when omitted.
    """
    spec = PositionSpec.parse(spec)
    lengths = torch.as_tensor(prompt_lengths).tolist()
    rows = torch.tensor([spec.example_positions(int(n), tied, rule) for n in lengths], dtype=torch.long)
    if offsets is not None:
        shift = torch.as_tensor(offsets, dtype=torch.long).cpu().view(-1, 1, 1)
        rows = torch.where(rows >= 0, rows + shift, rows)
    return rows
