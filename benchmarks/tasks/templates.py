"""Prompt templates: a source row → the prompt, the training target, and the gold answer.

Texts are those of pyreft ``examples/loreft/templates.py`` and ``task_config.py`` (HEAD), the
paper's §3 protocol. A target never includes EOS; the training code appends it. Each template is
a function ``(row, trigger) -> Rendered`` registered in ``TEMPLATES``; a missing field raises
``KeyError`` and a bad one ``ValueError``, which the loader reports with file and row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from benchmarks.tasks.extract import last_number

COMMONSENSE = "%s\n"
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n%s\n\n### Response:\n"
)
ALPACA = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n"
)
GSM8K = "%s\nAnswer the above question. First think step by step and then answer the final number.\n"


@dataclass(frozen=True)
class Rendered:
    prompt: str
    target: str
    gold: Any


def field(row: dict, key: str) -> str:
    """``row[key]``, which must be a string (KeyError when absent)."""
    value = row[key]
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string, got {type(value).__name__} {value!r}")
    return value


def commonsense(row: dict, trigger: str) -> Rendered:
    """Paper: prompt ``"%s\\n" % instruction`` (no Alpaca header); target ``trigger + answer``."""
    answer = field(row, "answer")
    return Rendered(COMMONSENSE % field(row, "instruction"), trigger + answer, answer)


def math(row: dict, trigger: str) -> Rendered:
    """Paper: Alpaca no-input prompt of ``instruction`` (``input`` is ignored, as in pyreft);
    target the LM-generated chain of thought ``output``; gold ``answer`` (a number, or AQuA's letter)."""
    return Rendered(ALPACA_NO_INPUT % field(row, "instruction"), field(row, "output"), field(row, "answer"))


def mawps(row: dict, trigger: str) -> Rendered:
    """MAWPS ``trainset``/``validset`` rows have no worked answer, so the target is the harness's
    ``"The answer is N."`` (not the paper's: it trains on MATH-10K); the prompt is as :func:`math`."""
    try:
        answer = float(row["ans"])
    except (TypeError, ValueError):
        raise ValueError(f"field 'ans' must be a number, got {row['ans']!r}") from None
    number = str(int(answer)) if answer.is_integer() else repr(answer)
    return Rendered(ALPACA_NO_INPUT % field(row, "original_text"), f"The answer is {number}.", answer)


def gsm8k(row: dict, trigger: str) -> Rendered:
    """GSM8K dev, pyreft HEAD (LoftQ setup): prompt ``question + "\\nAnswer the above question...\\n"``,
    target ``answer.replace("####", "The final answer is: ")``, gold the number after ``####``
    read with :func:`last_number` (commas removed), as ``compute_metrics.py`` does."""
    answer = field(row, "answer")
    if "####" not in answer:
        raise ValueError("field 'answer' has no '#### <number>' line")
    gold = last_number(answer.split("####")[-1].strip())
    if gold == float("inf"):
        raise ValueError(f"field 'answer' has no number after '####': {answer.split('####')[-1]!r}")
    return Rendered(GSM8K % field(row, "question"), answer.replace("####", "The final answer is: "), gold)


_CALCULATOR = re.compile(r"<<[^>]*>>")


def gsm8k_solution(row: dict, trigger: str) -> Rendered:
    """GSM8K train in the paper's arithmetic format (MATH-10K's): the Alpaca no-input prompt of
    ``question`` (as the arithmetic test sets are prompted), target the worked solution with
    GSM8K's calculator annotations (``<<48/2=24>>``) removed, then ``The answer is N.``; gold N."""
    answer = field(row, "answer")
    if "####" not in answer:
        raise ValueError("field 'answer' has no '#### <number>' line")
    steps, final = answer.rsplit("####", 1)
    gold = last_number(final.strip())
    if gold == float("inf"):
        raise ValueError(f"field 'answer' has no number after '####': {final!r}")
    number = final.strip().replace(",", "")
    target = f"{_CALCULATOR.sub('', steps).strip()}\nThe answer is {number}."
    return Rendered(ALPACA_NO_INPUT % field(row, "question"), target, gold)


def alpaca(row: dict, trigger: str) -> Rendered:
    """Instruction tuning: Alpaca with-input template, or no-input when ``input`` is absent or
    empty (pyreft ``LoReftSupervisedDataset``); target and gold the reference ``output``."""
    instruction, user_input = field(row, "instruction"), row.get("input", "")
    prompt = ALPACA % (instruction, user_input) if user_input else ALPACA_NO_INPUT % instruction
    output = field(row, "output")
    return Rendered(prompt, output, output)


TEMPLATES = {
    "commonsense": commonsense,
    "math": math,
    "mawps": mawps,
    "gsm8k": gsm8k,
    "gsm8k_solution": gsm8k_solution,
    "alpaca": alpaca,
}
