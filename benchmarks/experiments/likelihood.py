"""Zero-shot multiple choice by log-likelihood, lm-eval's way: the model is not asked to write the
answer; a continuation per option is scored after the prompt. Two continuations (``eval.scoring``):

* ``likelihood``: the option's target in the trained answer format (``the correct answer is
  answer2``), summed over its tokens (lm-eval's ``acc``):
  answer = argmax_o Σ_t log p(target(o)_t | prompt, target(o)_<t). Fair to a model that learnt the
  format (it compares a trained model's choice without parsing its generation); a model that never
  saw the format must guess what "answer2" points at.
* ``likelihood-text``: lm-eval's zero-shot multiple choice. The context is the question alone,
  ``Question: <question>\nAnswer:`` (the prompt's instruction sentence, option list and answer
  format line dropped), the continuation each option's own text after a space (``Sunlight is the
  source of energy ...``, read from the prompt's ``Answer2: ...``; BoolQ's ``true``/``false`` are
  their own text), its summed log-likelihood divided by its length in characters (lm-eval's
  ``acc_norm``, so long options are not penalised):
  answer = argmax_o Σ_t log p(text(o)_t | context, text(o)_<t) / |text(o)|. The standard zero-shot
  reference for what a base model knows without the answer format, next to the generation-scored
  untrained row (which scores 0 where the model never writes the trigger phrase). Meant for
  untrained models: a ReFT model would be intervened on the question context, not its prompt.

The options are read from the prompt's ``Answer format: a/b/c`` line (every commonsense task), and
an option's target is the gold's target with the gold replaced by the option. Prompt and target are
tokenized as training tokenizes them (``reft.data.split_pair``: one string, split after the
prompt's tokens). With a ReFT model the prompt positions are intervened exactly as in generation (``ReftModel.forward`` places them from
``prompt_lengths``)."""

from __future__ import annotations

import re
import warnings
from typing import Sequence

import torch
from torch import nn
from tqdm import tqdm

from benchmarks.tasks.data import Example
from reft import ReftModel
from reft.data import split_pair

_ANSWER_FORMAT = re.compile(r"Answer format:\s*([\w]+(?:/[\w]+)+)")


def options(example: Example) -> list[str]:
    """The answer options a prompt offers (its ``Answer format: a/b/...`` line)."""
    found = _ANSWER_FORMAT.findall(example.prompt)
    if not found:
        raise ValueError(f"{example.id}: the prompt has no 'Answer format: a/b/...' line, so it offers no options "
                         "to rank by likelihood")
    return found[-1].split("/")


def option_text(example: Example, option: str) -> str:
    """The text the prompt gives ``option`` (``answer2`` → what follows ``Answer2:``), or the option
    itself where the prompt lists no text for it (BoolQ's true/false)."""
    label = option[:1].upper() + option[1:]
    found = re.search(rf"\b{re.escape(label)}:\s*(.*?)\s*(?=\b[A-Z][a-z]+\d+:|Answer format:|$)", example.prompt, re.S)
    if found is None:
        return option
    if not found.group(1):
        raise ValueError(f"{example.id}: option {option!r} has an empty text in the prompt")
    return found.group(1)


_OPTION_LIST = re.compile(r"\n\n(?:[A-Z][a-z]+1:|Answer format:)")
_INSTRUCTION = re.compile(r"^Please [^:]*:\s*")


def question_context(example: Example) -> str:
    """``Question: <the question>\nAnswer:``, the question cut from the prompt (see the module doc)."""
    found = _OPTION_LIST.search(example.prompt)
    question = example.prompt[:found.start()] if found else example.prompt
    return f"Question: {_INSTRUCTION.sub('', question).strip()}\nAnswer:"


def option_target(example: Example, option: str) -> str:
    if str(example.gold) not in example.target:
        raise ValueError(f"{example.id}: target {example.target!r} does not contain its gold {example.gold!r}")
    return example.target.replace(str(example.gold), option)


#: scoring → (context, continuation) of one option's request
REQUESTS = {"likelihood": lambda example, option: (example.prompt, option_target(example, option)),
            "likelihood-text": lambda example, option: (question_context(example), " " + option_text(example, option))}


@torch.no_grad()
def score_pairs(model: nn.Module, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 8,
                max_length: int = 512, progress: bool = False, desc: str = "likelihood") -> list[float]:
    """Σ_t log p(target_t | prompt, target_<t) per ``(prompt, target)``, tokenized as training
    tokenizes a pair (``reft.data.split_pair``; the prompt is left-truncated to ``max_length``).

    Right-padded batches; a ``ReftModel`` is intervened on the prompt positions only
    (``prompt_lengths``), as in training and generation. The lm-eval adapter's loglikelihood equals
    this on the same pair (tests/test_lm_eval_adapter.py)."""
    scores: list[float] = []
    device = next(model.parameters()).device
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in tqdm(range(0, len(pairs), batch_size), desc=desc, disable=not progress, leave=False):
        batch = pairs[start:start + batch_size]
        split = [split_pair(tokenizer, prompt, target) for prompt, target in batch]
        prompts, targets = [p[-max_length:] for p, _ in split], [t for _, t in split]
        if empty := [target for (_, target), t in zip(batch, targets) if not t]:
            raise ValueError(f"target {empty[0]!r} tokenizes into the prompt's last token: nothing to score")
        # the input is prompt + target[:-1] (the last target token is only predicted), right-padded
        width = max(len(p) + len(t) - 1 for p, t in zip(prompts, targets))
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, (p, t) in enumerate(zip(prompts, targets)):
            ids[row, :len(p) + len(t) - 1] = torch.tensor((p + t)[:-1])
            mask[row, :len(p) + len(t) - 1] = 1
        kwargs = {"prompt_lengths": torch.tensor([len(p) for p in prompts])} if isinstance(model, ReftModel) else {}
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs).logits
        for row, (p, t) in enumerate(zip(prompts, targets)):
            logprobs = torch.log_softmax(logits[row, len(p) - 1:len(p) + len(t) - 1], dim=-1, dtype=torch.float32)
            scores.append(float(logprobs.gather(-1, torch.tensor(t, device=logprobs.device)[:, None]).sum()))
    return scores


def rank_options(model: nn.Module, tokenizer, examples: Sequence[Example], batch_size: int = 8,
                 max_length: int = 512, progress: bool = True, desc: str = "likelihood",
                 scoring: str = "likelihood") -> list[tuple[str, list[float]]]:
    """Per example, the option of highest score and every option's score (see the module docstring:
    ``likelihood`` sums over the target's tokens, ``likelihood-text`` divides by the text's length)."""
    if scoring not in REQUESTS:
        raise ValueError(f"unknown likelihood scoring {scoring!r}; known: {sorted(REQUESTS)}")
    if scoring == "likelihood-text" and isinstance(model, ReftModel):
        warnings.warn("likelihood-text scores a question-only context, not the prompt the interventions were "
                      "trained on: a ReFT model's score here does not measure what it learnt (use "
                      "eval.scoring=likelihood or generate)", stacklevel=2)
    requests = [(i, option, *REQUESTS[scoring](e, option)) for i, e in enumerate(examples) for option in options(e)]
    sums = score_pairs(model, tokenizer, [(prompt, target) for _, _, prompt, target in requests], batch_size,
                       max_length, progress, desc)
    scores = [total / len(target.strip()) if scoring == "likelihood-text" else total
              for (_, _, _, target), total in zip(requests, sums)]
    ranked: dict[int, list[tuple[str, float]]] = {}
    for (i, option, _, _), score in zip(requests, scores):
        ranked.setdefault(i, []).append((option, score))
    return [(max(ranked[i], key=lambda item: item[1])[0], [s for _, s in ranked[i]]) for i in range(len(examples))]
