"""Metrics: extracted answers and golds → scores, as the paper computes them.

Generation tasks score per example (``is_correct``) and report the fraction correct as
``accuracy`` (0–1; the paper's tables show it ×100). GLUE uses what the paper's
``evaluate.load("glue", task)`` reports, via scikit-learn and scipy: MCC for CoLA, Pearson (plus
Spearman) for STS-B, accuracy for the rest, plus F1 for MRPC and QQP. AlpacaEval is judged
outside this harness (see :func:`alpaca_eval_records`). Task YAMLs name their metric in ``METRICS``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from benchmarks.tasks.extract import first_letter, last_number

TOLERANCE = 1e-3


def exact_match(answer: str, gold: str) -> bool:
    """Commonsense and AQuA: ``generation.strip() == answer.strip()``."""
    return str(answer).strip() == str(gold).strip()


FRACTION = re.compile(r"^(-?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)$")


def gold_number(gold: Any) -> float | None:
    """A numeric gold answer as a float, or None where it is not a number. Beyond ``float(gold)``:
    thousands separators and surrounding ``$``/``%``/spaces are dropped (``"1,000"`` → 1000.0, as
    :func:`last_number` drops them from the response) and ``a/b`` is a fraction (``"3/4"`` → 0.75)."""
    if isinstance(gold, (int, float)) and not isinstance(gold, bool):
        return float(gold)
    text = str(gold).strip().strip("$%").replace(",", "").strip()
    try:
        return float(text)
    except ValueError:
        pass
    fraction = FRACTION.match(text)
    if fraction and float(fraction.group(2)) != 0:
        return float(fraction.group(1)) / float(fraction.group(2))
    return None


def not_a_number(gold: Any) -> str | None:
    """Why ``gold`` cannot be scored by :func:`within_tolerance` (None when it can)."""
    return None if gold_number(gold) is not None else f"gold answer {gold!r} is not a number"


def within_tolerance(answer: float, gold: Any) -> bool:
    """Arithmetic: ``abs(gold - pred) <= 0.001``; a missing number (inf) is wrong. A gold that is
    not a number (:func:`gold_number` is None: ``""``, ``"n/a"``) is scored wrong with a warning,
    never an exception: one bad row must not end an evaluation after hours of generation (the
    evaluator counts such rows and names their ids)."""
    value = gold_number(gold)
    if value is None:
        warnings.warn(f"{not_a_number(gold)}: scored as wrong", stacklevel=2)
        return False
    return abs(value - float(answer)) <= TOLERANCE


def math_answer(response: str, gold: str) -> bool:
    """The whole arithmetic rule for mixed sets (MATH-10K): ``if not is_float(answer)`` (AQuA-style
    letter golds) compare :func:`first_letter`, else :func:`last_number` within tolerance."""
    if gold_number(gold) is None:
        return exact_match(first_letter(response), gold)
    return within_tolerance(last_number(response), gold)


def same_label(answer: int, gold: int) -> bool:
    """Classification: the predicted label is the gold label."""
    return int(answer) == int(gold)


def fraction_correct(is_correct: Callable[[Any, Any], bool]) -> Callable[[Sequence, Sequence], dict]:
    """``accuracy`` = correct / total for a per-example rule."""
    def score(answers: Sequence, golds: Sequence) -> dict[str, float]:
        return {"accuracy": sum(map(is_correct, answers, golds)) / len(golds)}
    return score


def label_accuracy(answers: Sequence[int], golds: Sequence[int]) -> dict[str, float]:
    """GLUE accuracy (SST-2, MNLI-m, QNLI, RTE)."""
    return {"accuracy": float(accuracy_score(golds, answers))}


def accuracy_and_f1(answers: Sequence[int], golds: Sequence[int]) -> dict[str, float]:
    """GLUE MRPC and QQP: accuracy and binary F1 of label 1 (paraphrase / duplicate)."""
    return {"accuracy": float(accuracy_score(golds, answers)), "f1": float(f1_score(golds, answers))}


def matthews(answers: Sequence[int], golds: Sequence[int]) -> dict[str, float]:
    """GLUE CoLA: Matthews correlation coefficient."""
    return {"mcc": float(matthews_corrcoef(golds, answers))}


def correlations(answers: Sequence[float], golds: Sequence[float]) -> dict[str, float]:
    """GLUE STS-B: Pearson (model selection and the paper's number) and Spearman correlations."""
    return {"pearson": float(pearsonr(answers, golds)[0]), "spearman": float(spearmanr(answers, golds)[0])}


def judged_externally(answers: Sequence[str], golds: Sequence[str]) -> dict[str, float]:
    """AlpacaEval v1.0: no local score; the win rate comes from the ``alpaca_eval`` judge."""
    return {}


@dataclass(frozen=True)
class Metric:
    """``score(answers, golds)`` → named values; ``primary`` names the one tables and model
    selection use; ``is_correct`` is the per-example rule where there is one."""

    primary: str
    score: Callable[[Sequence, Sequence], dict[str, float]]
    is_correct: Callable[[Any, Any], bool] | None = None
    #: why a gold answer cannot be scored (None when it can): such rows count as wrong
    unscorable: Callable[[Any], str | None] | None = None


METRICS = {
    "exact_match": Metric("accuracy", fraction_correct(exact_match), exact_match),
    "within_tolerance": Metric("accuracy", fraction_correct(within_tolerance), within_tolerance, not_a_number),
    "math_answer": Metric("accuracy", fraction_correct(math_answer), math_answer),
    "accuracy": Metric("accuracy", label_accuracy, same_label),
    "accuracy_f1": Metric("accuracy", accuracy_and_f1, same_label),
    "mcc": Metric("mcc", matthews, same_label),
    "pearson": Metric("pearson", correlations),
    "alpaca_eval": Metric("win_rate", judged_externally),
}


def alpaca_eval_records(examples: Sequence, outputs: Sequence[str], generator: str) -> list[dict]:
    """The records the paper writes for AlpacaEval (``instruction, output, dataset, generator``).

    Judge them as the paper does (v1.0: GPT-4 annotator against text-davinci-003), e.g.
    ``alpaca_eval --model_outputs outputs.json --annotators_config alpaca_eval_gpt4
    --reference_outputs <text_davinci_003 outputs>``.
    """
    if len(examples) != len(outputs):
        raise ValueError(f"{len(examples)} examples but {len(outputs)} outputs")
    return [{"instruction": example.raw["instruction"], "output": output,
             "dataset": example.raw["dataset"], "generator": generator}
            for example, output in zip(examples, outputs)]
