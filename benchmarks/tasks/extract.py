"""Answer extractors: a model's output → the answer a metric compares with the gold.

The paper (``examples/loreft/compute_metrics.py``) decodes prompt + generation, cuts it at the
task's *trigger* (``extract_output``), then applies a per-suite rule to what follows. Here the
evaluator passes only the generated continuation; :func:`after_trigger` gives exactly the text
the paper's ``extract_output`` would (see its docstring for the equivalence), and the extractors
below are applied to that text. Each task YAML names its extractors in ``EXTRACTORS``.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

NUMBER = re.compile(r"-?\d+\.?\d*")
AQUA_LETTER = re.compile(r"A|B|C|D|E")


def after_trigger(generation: str, trigger: str, trigger_in_prompt: bool) -> str:
    """The paper's ``extract_output(prompt + generation, trigger)``, computed from the generation.

    Paper rule: ``start = pred.find(trigger)``; if absent the output is empty ("generation is too
    long"), else ``pred[start + len(trigger):].lstrip()``. ``find`` takes the *first* occurrence
    in prompt + generation, so:

    * trigger at the end of the prompt (arithmetic ``"### Response:"``, GSM8K dev): the text after
      it is the generation, possibly after prompt whitespace, so the result is ``generation.lstrip()``;
    * trigger produced by the model (commonsense ``"the correct answer is "``, absent from every
      prompt): the first occurrence is in the generation, so searching the generation is the same.

    Both cases are checked on every real prompt by ``tests/test_bench_tasks.py``. The one
    difference left: the paper decodes the whole sequence at once, a tokenizer could join the last
    prompt token and the first generated token differently; the evaluator should decode the new
    tokens on their own and accept that.
    """
    if trigger_in_prompt:
        return generation.lstrip()
    start = generation.find(trigger)
    if start < 0:
        return ""
    return generation[start + len(trigger):].lstrip()


def text(response: str) -> str:
    """The response itself; commonsense then requires ``gen.strip() == answer.strip()``."""
    return response


def last_number(response: str) -> float:
    """LLM-Adapters' ``extract_answer_number``: drop commas, take the last ``-?\\d+\\.?\\d*``; inf if none."""
    numbers = NUMBER.findall(response.replace(",", ""))
    return float(numbers[-1]) if numbers else float("inf")


def first_letter(response: str) -> str:
    """LLM-Adapters' ``extract_answer_letter`` (AQuA): the first ``A|B|C|D|E`` anywhere; '' if none.

    Crude by the authors' own comment (the "A" of "A train..." counts); kept for parity.
    """
    letters = AQUA_LETTER.findall(response.strip())
    return letters[0] if letters else ""


def first_match(response: str, pattern: str) -> str:
    """LLM-Adapters' commonsense ``extract_answer``: the first ``re.findall(pattern, ...)``; '' if none.

    Their patterns are ``true|false``, ``solution1|solution2``, ``answer1|...|answer5``,
    ``ending1|...|ending4`` and ``option1|option2``; applied to the whole response, no trigger.
    """
    matches = re.findall(pattern, response.strip())
    return matches[0] if matches else ""


def argmax(logits: Sequence[float]) -> int:
    """Classification: the index of the highest logit (``logits.argmax(dim=-1)`` in the paper)."""
    return int(np.argmax(np.asarray(logits, dtype=float)))


def scalar(logits: Sequence[float]) -> float:
    """Regression (STS-B): the single output (``logits.squeeze(dim=1)`` in the paper)."""
    values = np.asarray(logits, dtype=float).reshape(-1)
    if values.size != 1:
        raise ValueError(f"a regression head has one output, got {values.size}")
    return float(values[0])


EXTRACTORS = {
    "text": text,
    "last_number": last_number,
    "first_letter": first_letter,
    "first_match": first_match,
    "argmax": argmax,
    "scalar": scalar,
}
