"""The one evaluator: any method's model, any task → per-example predictions and the task's metrics.

Generation (``kind: generate``): prompts are tokenized alone, sorted by length (longest first, so
each batch holds similar lengths and little padding), left-padded, and generated in batches with
the KV cache through the model's own ``generate`` (ReFT models intervene on the prompt only, with
padding offsets from the attention mask; peft models add their adapters or virtual tokens).
Decoding stops at EOS. Only the new tokens are decoded (``skip_special_tokens=True``) and handed
to the task's extractor, which applies the trigger rule. Results come back in the input order.

Classification (``kind: classify``): ``(text_a, text_b)`` tokenized as a pair (as the paper's GLUE
dataset does), right-padded, one forward; the logits go to the task's extractor.

Every prediction is kept: id, prompt, output, extracted answer, gold, correct.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from benchmarks.tasks.data import Example
from benchmarks.experiments.likelihood import rank_options
from benchmarks.tasks.metrics import METRICS


@dataclass
class Prediction:
    id: str
    prompt: str
    output: Any
    answer: Any
    gold: Any
    correct: bool | None

    def to_dict(self) -> dict:
        return asdict(self)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
    return ids, mask


@torch.no_grad()
def generate_texts(model: nn.Module, tokenizer, prompts: Sequence[str], decoding: dict,
                   batch_size: int = 32, sort_by_length: bool = True, max_prompt_length: int | None = None,
                   progress: bool = True, desc: str = "generate") -> list[str]:
    """Decoded continuations (new tokens only) of ``prompts``, in the input order."""
    encoded = [tokenizer(p, truncation=max_prompt_length is not None, max_length=max_prompt_length)["input_ids"]
               for p in prompts]
    order = list(range(len(prompts)))
    if sort_by_length:
        order.sort(key=lambda i: -len(encoded[i]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = _device(model)
    outputs: list[str] = [""] * len(prompts)
    model.eval()
    with tqdm(total=len(prompts), desc=desc, disable=not progress, leave=False) as bar:
        for chunk in _chunks(order, batch_size):
            ids, mask = left_pad([encoded[i] for i in chunk], pad_id)
            generated = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                       pad_token_id=pad_id, eos_token_id=tokenizer.eos_token_id, **decoding)
            texts = tokenizer.batch_decode(generated[:, ids.shape[1]:], skip_special_tokens=True)
            for index, text in zip(chunk, texts):
                outputs[index] = text
            bar.update(len(chunk))
    return outputs


@torch.no_grad()
def classify(model: nn.Module, tokenizer, examples: Sequence[Example], batch_size: int = 32,
             max_length: int = 256, progress: bool = True, desc: str = "classify") -> list[list[float]]:
    """Logits per example (one value for regression)."""
    device = _device(model)
    logits: list[list[float]] = []
    model.eval()
    for start in tqdm(range(0, len(examples), batch_size), desc=desc, disable=not progress, leave=False):
        batch = examples[start:start + batch_size]
        pairs = [e.text_b for e in batch]
        encoded = tokenizer([e.text_a for e in batch], pairs if any(p is not None for p in pairs) else None,
                            truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        out = model(input_ids=encoded["input_ids"].to(device), attention_mask=encoded["attention_mask"].to(device))
        logits.extend(out.logits.float().cpu().tolist())
    return logits


def evaluate_task(model: nn.Module, tokenizer, task, examples: Sequence[Example], *, batch_size: int = 32,
                  decoding: dict | None = None, sort_by_length: bool = True, max_length: int = 512,
                  progress: bool = True, scoring: str = "generate") -> tuple[dict[str, float], list[Prediction]]:
    """Score ``examples`` of ``task``: (metrics, predictions). ``scoring="likelihood"`` or
    ``"likelihood-text"`` ranks a generation task's answer options by log-likelihood instead of
    generating (``benchmarks.experiments.likelihood``); the
    prediction's output is then every option's score and its answer the option chosen."""
    if scoring.startswith("likelihood"):
        if task.kind != "generate":
            raise ValueError(f"{task.key}: likelihood scoring is for generation tasks; {task.kind} tasks are "
                             "scored by their classifier")
        ranked = rank_options(model, tokenizer, examples, batch_size, max_length, progress, desc=task.key,
                              scoring=scoring)
        return _scored(task, examples, [scores for _, scores in ranked], [answer for answer, _ in ranked])
    if task.kind == "generate":
        outputs = generate_texts(model, tokenizer, [e.prompt for e in examples],
                                 task.decoding if decoding is None else decoding, batch_size, sort_by_length,
                                 max_prompt_length=max_length, progress=progress, desc=task.key)
    else:
        outputs = classify(model, tokenizer, examples, batch_size, max_length, progress, desc=task.key)
    return _scored(task, examples, outputs, [task.extract(output) for output in outputs])


def _scored(task, examples: Sequence[Example], outputs: list, answers: list) -> tuple[dict[str, float], list]:
    """Metrics and per-example predictions. Rows whose gold the metric cannot score (e.g. a
    non-numeric gold for ``within_tolerance``) count as wrong; one warning names them (ids, up to 5)
    and ``metrics["unscorable_gold"]`` counts them."""
    golds = [e.gold for e in examples]
    unscorable = METRICS[task.metric].unscorable
    problems = [(e.id, why) for e in examples if unscorable is not None and (why := unscorable(e.gold))]
    judged_per_example = task.kind == "generate" and METRICS[task.metric].is_correct is not None
    with warnings.catch_warnings():
        if problems:  # said once below, with the ids, instead of once per row
            warnings.simplefilter("ignore")
        metrics = task.score(answers, golds)
        predictions = []
        for example, output, answer in zip(examples, outputs, answers):
            correct = task.is_correct(answer, example.gold) if judged_per_example else None
            predictions.append(Prediction(example.id, example.prompt, output, answer, example.gold, correct))
    if problems:
        warnings.warn(f"{task.key}: {len(problems)} of {len(examples)} rows cannot be scored and count as wrong: "
                      + "; ".join(f"{example_id}: {why}" for example_id, why in problems[:5])
                      + (" ..." if len(problems) > 5 else ""), stacklevel=2)
        metrics["unscorable_gold"] = len(problems)
    return metrics, predictions
