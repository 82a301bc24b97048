"""Zero-shot multiple choice by log-likelihood, lm-eval's way: the model is not asked to write the
answer; each option's target text (``the correct answer is answer2``) is scored after the prompt,

    answer = argmax_o  Σ_t log p(target(o)_t | prompt, target(o)_<t)

(the sum over the target's tokens, lm-eval's ``acc``). It is the standard reference for what a
base model knows without having learnt the answer format, next to the generation-scored untrained
row (which scores 0 where the model never writes the trigger phrase).

The options are read from the prompt's ``Answer format: a/b/c`` line (every commonsense task), and
an option's target is the gold's target with the gold replaced by the option. With a ReFT model the
prompt positions are intervened exactly as in generation (``ReftModel.forward`` places them from
``prompt_lengths``)."""

from __future__ import annotations

import re
from typing import Sequence

import torch
from torch import nn
from tqdm import tqdm

from benchmarks.tasks.data import Example
from reft import ReftModel

_ANSWER_FORMAT = re.compile(r"Answer format:\s*([\w]+(?:/[\w]+)+)")


def options(example: Example) -> list[str]:
    """The answer options a prompt offers (its ``Answer format: a/b/...`` line)."""
    found = _ANSWER_FORMAT.findall(example.prompt)
    if not found:
        raise ValueError(f"{example.id}: the prompt has no 'Answer format: a/b/...' line, so it offers no options "
                         "to rank by likelihood")
    return found[-1].split("/")


def option_target(example: Example, option: str) -> str:
    if str(example.gold) not in example.target:
        raise ValueError(f"{example.id}: target {example.target!r} does not contain its gold {example.gold!r}")
    return example.target.replace(str(example.gold), option)


@torch.no_grad()
def rank_options(model: nn.Module, tokenizer, examples: Sequence[Example], batch_size: int = 8,
                 max_length: int = 512, progress: bool = True, desc: str = "likelihood") -> list[tuple[str, list[float]]]:
    """Per example, the option of highest summed log-likelihood and every option's score."""
    requests = [(i, option, e.prompt, option_target(e, option)) for i, e in enumerate(examples) for option in options(e)]
    scores: list[float] = []
    device = next(model.parameters()).device
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in tqdm(range(0, len(requests), batch_size), desc=desc, disable=not progress, leave=False):
        batch = requests[start:start + batch_size]
        prompts = [tokenizer(p, add_special_tokens=True)["input_ids"][-max_length:] for _, _, p, _ in batch]
        targets = [tokenizer(t, add_special_tokens=False)["input_ids"] for _, _, _, t in batch]
        width = max(len(p) + len(t) for p, t in zip(prompts, targets))
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, (p, t) in enumerate(zip(prompts, targets)):  # right padding: prompt, target, pad
            ids[row, :len(p) + len(t)] = torch.tensor(p + t)
            mask[row, :len(p) + len(t)] = 1
        kwargs = {"prompt_lengths": torch.tensor([len(p) for p in prompts])} if isinstance(model, ReftModel) else {}
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1).cpu()
        for row, (p, t) in enumerate(zip(prompts, targets)):
            positions = torch.arange(len(p) - 1, len(p) + len(t) - 1)
            scores.append(float(logprobs[row, positions, torch.tensor(t)].sum()))
    ranked: dict[int, list[tuple[str, float]]] = {}
    for (i, option, _, _), score in zip(requests, scores):
        ranked.setdefault(i, []).append((option, score))
    return [(max(ranked[i], key=lambda item: item[1])[0], [s for _, s in ranked[i]]) for i in range(len(examples))]

