"""Supervised prompt → response data for ReFT, tokenized the way the paper's scripts do it.

For each pair (``examples/loreft/dataset.py::LoReftSupervisedDataset``): the prompt is tokenized
alone to get its length n; ``prompt + response + eos`` is tokenized as one string; labels are -100
on the first n tokens, so the loss is on the response (and EOS) only. Interventions go on the
prompt's positions (``l1`` = token n − 1, the last prompt token; pyreft's library dataset classes
use n − 1 as the length and so edit the second-to-last token, a bug not reproduced here).

pyreft also prepends a masked "sink" pad token so padded location slots have somewhere harmless
to point; this harness skips unused slots instead, so sequences are not shifted by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

IGNORE_INDEX = -100


@dataclass
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]
    prompt_length: int


def split_pair(tokenizer, prompt: str, response: str, max_length: int | None = None) -> tuple[list[int], list[int]]:
    """``(prompt_ids, response_ids)``: the one split of a pair that training, likelihood scoring and
    the lm-eval adapter all use, so a ReFT intervention edits the same tokens everywhere.

    ``prompt_ids`` = tokenize(prompt), exactly what generation sees (special tokens included, trailing
    whitespace kept: lm-eval's ``_encode_pair`` moves it into the continuation, which would shift
    every last-position edit by one). ``response_ids`` = what follows those tokens when
    ``prompt + response`` is tokenized as one string (pyreft's way), or, when the one-string
    tokenization does not start with ``prompt_ids`` (the prompt ends in a space that merges into the
    response's first word), tokenize(response) alone: pyreft would then train on a prompt whose last
    token is the merged word, a state generation never sees, and never learn that word. No template
    here ends that way (all end in ``\n``), so the two agree on every shipped task. ``max_length``
    truncates prompt + response from the right (the response first), as training does.
    """
    prompt_ids = list(tokenizer(prompt)["input_ids"])
    whole = list(tokenizer(prompt + response)["input_ids"])
    n = len(prompt_ids)
    if whole[:n] == prompt_ids:
        response_ids = whole[n:]
    else:
        response_ids = list(tokenizer(response, add_special_tokens=False)["input_ids"])
    if max_length is not None:
        prompt_ids, response_ids = prompt_ids[:max_length], response_ids[:max(0, max_length - n)]
    return prompt_ids, response_ids


def tokenize_pair(tokenizer, prompt: str, response: str, max_length: int = 512,
                  add_eos: bool = True) -> TokenizedExample:
    """Tokenize one pair (``split_pair`` with EOS appended to the response); the response is
    truncated first when the pair exceeds ``max_length``."""
    prompt_ids, response_ids = split_pair(tokenizer, prompt, response + (tokenizer.eos_token if add_eos else ""),
                                          max_length)
    labels = [IGNORE_INDEX] * len(prompt_ids) + response_ids
    return TokenizedExample(prompt_ids + response_ids, labels, len(prompt_ids))


class SupervisedDataset(Dataset):
    """Tokenized prompt/response pairs (all tokenized up front; they are small)."""

    def __init__(self, tokenizer, prompts: Sequence[str], responses: Sequence[str],
                 max_length: int = 512, add_eos: bool = True) -> None:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        self.examples = [tokenize_pair(tokenizer, p, r, max_length, add_eos) for p, r in zip(prompts, responses)]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> TokenizedExample:
        return self.examples[index]


def right_pad(sequences: Sequence[Sequence[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[batch, longest]`` tensor of ``sequences`` padded on the right with ``value``, and the mask."""
    width = max(len(seq) for seq in sequences)
    padded = torch.full((len(sequences), width), value, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        padded[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    return padded, mask


class SupervisedCollator:
    """Right-pads a list of ``TokenizedExample`` into model inputs.

    With ``locate`` (e.g. ``reft_model.locations``) it adds ``intervention_locations``, computed
    on the CPU here so the training step never waits on the device to find positions.
    """

    def __init__(self, pad_token_id: int, locate: Callable | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.locate = locate

    def __call__(self, examples: list[TokenizedExample]) -> dict[str, torch.Tensor]:
        input_ids, mask = right_pad([e.input_ids for e in examples], self.pad_token_id)
        labels, _ = right_pad([e.labels for e in examples], IGNORE_INDEX)
        batch = {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
        if self.locate is not None:
            lengths = torch.tensor([min(e.prompt_length, len(e.input_ids)) for e in examples])
            batch["intervention_locations"] = self.locate(mask, lengths)
        return batch


@dataclass
class ClassificationExample:
    input_ids: list[int]
    label: int | float


class ClassificationDataset(Dataset):
    """Sentence (pair) classification or regression rows, tokenized as the paper's GLUE dataset:
    ``tokenizer(text_a, text_b)`` truncated to ``max_length`` (256 in the paper's runs)."""

    def __init__(self, tokenizer, texts_a: Sequence[str], texts_b: Sequence[str | None] | None,
                 labels: Sequence[int | float], max_length: int = 256) -> None:
        texts_b = texts_b if texts_b is not None else [None] * len(texts_a)
        if not len(texts_a) == len(texts_b) == len(labels):
            raise ValueError(f"{len(texts_a)} texts, {len(texts_b)} second texts, {len(labels)} labels")
        self.examples = [
            ClassificationExample(tokenizer(a, b, truncation=True, max_length=max_length)["input_ids"], label)
            for a, b, label in zip(texts_a, texts_b, labels)]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> ClassificationExample:
        return self.examples[index]


class ClassificationCollator:
    """Right-pads ``ClassificationExample``s; float labels (regression) stay float. With ``locate``
    the whole unpadded input is the "prompt" the positions (``f3``...) refer to."""

    def __init__(self, pad_token_id: int, locate: Callable | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.locate = locate

    def __call__(self, examples: list[ClassificationExample]) -> dict[str, torch.Tensor]:
        input_ids, mask = right_pad([e.input_ids for e in examples], self.pad_token_id)
        regression = any(isinstance(e.label, float) for e in examples)
        labels = torch.tensor([e.label for e in examples], dtype=torch.float if regression else torch.long)
        batch = {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
        if self.locate is not None:
            batch["intervention_locations"] = self.locate(mask)
        return batch
