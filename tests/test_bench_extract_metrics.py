"""Extractors against golden strings and metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from benchmarks.tasks.extract import after_trigger, argmax, first_letter, first_match, last_number, scalar
from benchmarks.tasks.metrics import METRICS, alpaca_eval_records, exact_match, math_answer, within_tolerance
from benchmarks.tasks.data import Example
from benchmarks.tasks import get_task

COMMONSENSE_TRIGGER = "the correct answer is "


def paper_extract_output(pred: str, trigger: str) -> str:
    """pyreft ``compute_metrics.extract_output``, verbatim in behaviour: the reference to match."""
    start = pred.find(trigger)
    if start < 0:
        return ""
    return pred[start + len(trigger):].lstrip()


@pytest.mark.parametrize("generation, expected", [
    ("the correct answer is true", "true"),
    ("the correct answer is   answer2 ", "answer2 "),
    ("Well, the correct answer is option1. Because", "option1. Because"),
    ("The correct answer is true", ""),          # case matters: trigger missing
    ("true", ""),                                # trigger missing
    ("the correct answer is", ""),               # no trailing space: trigger missing
    ("the correct answer is the correct answer is false", "the correct answer is false"),  # first occurrence
    ("", ""),
])
def test_after_trigger_in_generation(generation, expected):
    assert after_trigger(generation, COMMONSENSE_TRIGGER, trigger_in_prompt=False) == expected
    assert paper_extract_output("Question?\n" + generation, COMMONSENSE_TRIGGER) == expected


@pytest.mark.parametrize("generation", ["\nA: 3 + 4 = 7. The answer is 7.", "  ### Response: 5", "", "7"])
def test_after_trigger_at_end_of_prompt(generation):
    prompt = "### Instruction:\nAdd 3 and 4.\n\n### Response:\n"
    expected = paper_extract_output(prompt + generation, "### Response:")
    assert after_trigger(generation, "### Response:", trigger_in_prompt=True) == expected == generation.lstrip()


@pytest.mark.parametrize("text, expected", [
    ("The answer is 42.", 42.0),
    ("She has 16 - 3 - 4 = 9 eggs, earning 9 * $2 = $18.", 18.0),
    ("The total is 1,234,567 dollars", 1234567.0),        # commas removed first
    ("It costs $1,000.50 in all", 1000.5),
    ("The temperature fell to -5 degrees", -5.0),          # negative
    ("5-3=2", 2.0),                                        # "-3" is a number, but 2 is last
    ("The answer is 3.75", 3.75),                          # decimal
    ("The answer is 7.", 7.0),                              # "7." parses
    ("x = -0.25 and then", -0.25),
    ("1.2.3", 3.0),                                        # "1.2" then ".3" is not a number, "3" is
    ("no digits here", math.inf),
    ("", math.inf),
])
def test_last_number(text, expected):
    assert last_number(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("The answer is (C).", "C"),
    ("Rationale: ... The answer is (D).", "D"),   # 'R' and 'T' are not A-E
    ("A train leaves at noon. The answer is (B).", "A"),  # crude: any capital A-E counts
    ("the answer is d", ""),                      # lowercase never matches
    ("   E", "E"),
    ("", ""),
])
def test_first_letter(text, expected):
    assert first_letter(text) == expected


@pytest.mark.parametrize("text, pattern, expected", [
    ("the correct answer is true", "true|false", "true"),
    ("false, not true", "true|false", "false"),
    ("True", "true|false", ""),
    ("solution2 rather than solution1", "solution1|solution2", "solution2"),
    ("answer10", "answer1|answer2|answer3|answer4|answer5", "answer1"),  # LLM-Adapters' regex quirk
    ("ending3.", "ending1|ending2|ending3|ending4", "ending3"),
    ("I cannot tell", "option1|option2", ""),
])
def test_first_match(text, pattern, expected):
    assert first_match(text, pattern) == expected


def test_classification_extractors():
    assert argmax([0.1, 2.0, -1.0]) == 1
    assert argmax([[0.3, 0.2]]) == 0
    assert scalar([3.5]) == 3.5 and scalar([[4.25]]) == 4.25
    with pytest.raises(ValueError, match="one output, got 2"):
        scalar([1.0, 2.0])


def test_per_example_rules():
    assert exact_match(" true ", "true") and not exact_match("true.", "true") and not exact_match("", "false")
    assert within_tolerance(18.0005, "18.0") and within_tolerance(-5.0, -5)
    assert not within_tolerance(18.002, "18") and not within_tolerance(math.inf, "18")
    assert math_answer("The answer is (C).", "C") and not math_answer("The answer is (C).", "A")
    assert math_answer("500 + 120 = 620. The answer is 620.", "620.0")


def test_generation_accuracy():
    boolq = get_task("commonsense/boolq")
    answers = [boolq.extract(g) for g in ["the correct answer is true", "the correct answer is false",
                                          "I think true", "the correct answer is true "]]
    assert answers == ["true", "false", "", "true "]
    assert boolq.score(answers, ["true", "true", "false", "true"]) == {"accuracy": 0.5}
    gsm8k = get_task("arithmetic/gsm8k")
    answers = [gsm8k.extract(g) for g in ["So 2 + 2 = 4. The answer is 4.", "The answer is 1,000.", "none"]]
    assert answers == [4.0, 1000.0, math.inf]
    assert gsm8k.score(answers, ["4.0", "1000", "3"]) == {"accuracy": 2 / 3}


def test_llm_adapters_variant_reads_the_whole_generation():
    boolq = get_task("commonsense/boolq")
    lenient = boolq.variant(extractor="llm_adapters")
    assert lenient.extract("The answer: true") == "true" and boolq.extract("The answer: true") == ""
    assert lenient.fingerprint() != boolq.fingerprint()


def test_binary_classification_metrics_by_hand():
    golds, answers = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    # TP = 2, FN = 1, TN = 1, FP = 1: MCC = (2·1 − 1·1) / sqrt(3·3·2·2) = 1/6; F1 = 2·2 / (2·2 + 1 + 1) = 2/3
    assert METRICS["mcc"].score(answers, golds) == {"mcc": pytest.approx(1 / 6)}
    assert METRICS["accuracy_f1"].score(answers, golds) == {"accuracy": 0.6, "f1": pytest.approx(2 / 3)}
    assert METRICS["accuracy"].score(answers, golds) == {"accuracy": 0.6}


def test_correlation_metrics_by_hand():
    # deviations (−1.5, −.5, .5, 1.5) and (−3, −1, 0, 4): r = 11 / sqrt(5 · 26)
    scores = METRICS["pearson"].score([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 5.0, 9.0])
    assert scores == {"pearson": pytest.approx(11 / math.sqrt(130)), "spearman": pytest.approx(1.0)}
    # rank differences (0, −1, 1, 0): ρ = 1 − 6·2 / (4·15) = 0.8
    assert METRICS["pearson"].score([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])["spearman"] == pytest.approx(0.8)


def test_glue_task_scores_and_primary_metrics():
    assert get_task("glue/cola").primary_metric == "mcc"
    assert get_task("glue/stsb").primary_metric == "pearson"
    assert get_task("glue/mrpc").primary_metric == "accuracy"
    assert get_task("glue/qqp").score([1, 0], [1, 1]) == {"accuracy": 0.5, "f1": pytest.approx(2 / 3)}
    assert get_task("glue/rte").is_correct(get_task("glue/rte").extract([0.2, 0.9]), 1)
    with pytest.raises(ValueError, match="no per-example correctness"):
        get_task("glue/stsb").is_correct(3.0, 3.0)


def test_score_rejects_mismatched_or_empty_inputs():
    with pytest.raises(ValueError, match="as many answers as golds"):
        get_task("commonsense/boolq").score(["true"], ["true", "false"])
    with pytest.raises(ValueError, match="at least one"):
        get_task("commonsense/boolq").score([], [])


def test_alpaca_eval_is_judged_externally():
    task = get_task("instruction/alpaca_eval")
    assert task.primary_metric == "win_rate" and task.score(["x"], ["y"]) == {}
    assert task.extract("\n  Here is a poem.\n") == "Here is a poem.\n"
    example = Example("instruction/alpaca_eval:eval:0", "p", "ref", "ref",
                      {"instruction": "Write a poem.", "output": "ref", "dataset": "vicuna", "generator": "d"})
    assert alpaca_eval_records([example], ["A poem."], "loreft") == [
        {"instruction": "Write a poem.", "output": "A poem.", "dataset": "vicuna", "generator": "loreft"}]


def test_numeric_golds_with_separators_and_fractions_are_numbers():
    assert within_tolerance(1000.0, "1,000") and within_tolerance(0.75, "3/4") and within_tolerance(5.0, " $5 ")
    assert within_tolerance(-2.5, "-5/2") and not within_tolerance(1.0, "3/4")
    assert math_answer("so 1000 in all. The answer is 1,000.", "1,000")


@pytest.mark.parametrize("gold", ["", "n/a", "3/0", "twelve"])
def test_a_gold_that_is_not_a_number_is_wrong_with_a_warning_not_an_exception(gold):
    with pytest.warns(UserWarning, match="is not a number: scored as wrong"):
        assert not within_tolerance(12.0, gold)


def test_the_evaluator_counts_unscorable_golds_and_names_their_rows():
    from benchmarks.experiments.evaluate import _scored

    gsm8k = get_task("arithmetic/gsm8k")
    examples = [Example(id=f"gsm8k:test:{i}", prompt="q", target="", gold=gold, raw={})
                for i, gold in enumerate(["12", "", "1,000", "n/a"])]
    outputs = ["The answer is 12.", "The answer is 3.", "The answer is 1000.", "The answer is 4."]
    with pytest.warns(UserWarning, match=r"arithmetic/gsm8k: 2 of 4 rows cannot be scored .*gsm8k:test:1: "
                                         r"gold answer '' is not a number; gsm8k:test:3"):
        metrics, predictions = _scored(gsm8k, examples, outputs, [gsm8k.extract(o) for o in outputs])
    assert metrics == {"accuracy": 0.5, "unscorable_gold": 2}
    assert [p.correct for p in predictions] == [True, False, True, False]
