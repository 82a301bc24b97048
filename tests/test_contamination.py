"""The contamination guard (benchmarks/experiments/contamination.py) on the real offline data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.experiments.config import load_experiment
from benchmarks.experiments.contamination import contamination_report, cores
from benchmarks.experiments.examples import contamination, train_examples
from benchmarks.experiments.run import RunRefused, preflight

REPO = Path(__file__).resolve().parents[1]
ARITHMETIC = str(REPO / "benchmarks/experiments/arithmetic/smollm2_cpu_loreft.yaml")
COMMONSENSE = str(REPO / "benchmarks/experiments/commonsense/smollm2_cpu_loreft.yaml")
TEST_SETS = "data.eval=[arithmetic/gsm8k,arithmetic/svamp,arithmetic/aqua,arithmetic/mawps]"


def test_training_on_math_data_for_a_gsm8k_score_is_refused():
    config = load_experiment(ARITHMETIC, ["data.train=[arithmetic/math_data]", "data.train_limit=null",
                                          "data.eval=[arithmetic/gsm8k]", "data.eval_limit=null"])
    with pytest.raises(RunRefused, match=r"arithmetic/gsm8k:test: 1055 of 1319 \(1055 exactly\)"):
        preflight(config)


def test_allowed_contamination_runs_and_reports_the_counts():
    config = load_experiment(ARITHMETIC, ["data.train=[arithmetic/math_data]", "data.train_limit=null", TEST_SETS,
                                          "data.eval_limit=null", "data.allow_contamination=true"])
    report = preflight(config)
    # the shared data README's counts of math_data.json questions that are test questions
    assert {k: v["exact"] for k, v in report.items()} == {
        "arithmetic/gsm8k:test": 1055, "arithmetic/svamp:test": 800, "arithmetic/aqua:test": 203,
        "arithmetic/mawps:test": 131}
    assert report["arithmetic/gsm8k:test"]["n"] == 1319 and len(report["arithmetic/gsm8k:test"]["examples"]) == 5


def test_math_1k_meets_mawps_test_through_normalised_text():
    """MAWPS is stored tokenised ("cards . She"), math_1k is not ("cards. She"): a raw comparison
    finds 6 shared questions, the normalised one 20 (and 25 with 8-grams), none in the other sets."""
    config = load_experiment(ARITHMETIC, ["data.train=[arithmetic/math_1k]", "data.train_limit=null", TEST_SETS,
                                          "data.eval_limit=null"])
    report = contamination(config)
    assert {k: (v["exact"], v["ngram"]) for k, v in report.items()} == {
        "arithmetic/gsm8k:test": (0, 0), "arithmetic/svamp:test": (0, 0), "arithmetic/aqua:test": (0, 0),
        "arithmetic/mawps:test": (20, 25)}
    with pytest.raises(RunRefused, match="arithmetic/mawps:test: 25 of 238"):
        preflight(config)


def test_cores_drop_the_template_and_ngrams_catch_a_changed_number():
    question = ("Tom has 3 apples and buys 4 more at the shop on the corner of the street where his aunt lives "
                "with her two dogs and a cat. How many apples does he have now?")
    train = [f"### Q: {question} ### A:", "### Q: A train leaves at noon. ### A:"]
    scored = [f"Question: {question.lower().replace('.', '')}\nAnswer:",
              f"Question: {question.replace('4 more', '5 more')}\nAnswer:",
              "Question: Something else entirely happens here at the market.\nAnswer:"]
    assert cores(train)[1] == ("a", "train", "leaves", "at", "noon")
    report = contamination_report(train, [("set", ["a", "b", "c"], scored)])["set"]
    assert (report["exact"], report["ngram"], report["examples"]) == (1, 2, ["a", "b"])


def test_an_untrained_floor_is_not_checked():
    config = load_experiment(ARITHMETIC, ["method={name: none}", "data.train=[arithmetic/math_data]", TEST_SETS])
    assert contamination(config) == {}


def test_the_counts_are_recorded_in_the_result(tiny_llama_dir, tmp_path):
    args = ["train", COMMONSENSE, f"model.name={tiny_llama_dir}", "method.layers=[0,1]",
            "data.train=[commonsense/arc_easy]", "data.train_limit=8", "train.max_steps=1", "train.batch_size=4",
            "data.eval=[commonsense/arc_easy]", "data.eval_limit=4", "eval.max_new_tokens=2",
            "wandb.mode=disabled", f"output_root={tmp_path}"]
    assert main(args) == 0
    result = json.loads((tmp_path / "commonsense-smollm2-cpu-loreft/seed42/result.json").read_text())
    assert result["contamination"] == {"commonsense/arc_easy:test": {"n": 4, "exact": 0, "ngram": 0, "examples": []}}


def test_decontamination_drops_the_training_rows_that_match_a_scored_example():
    """GSM8K's own train set holds a templated variant of one test question ("A train travels 270
    miles in 3 hours. At the same rate, how many additional hours ..."; test: "A plane travels 1200
    miles ..."): found by 8-grams, and dropped by data.decontaminate, which leaves a clean run."""
    overrides = ["data.train=[arithmetic/gsm8k_train]", "data.train_limit=null", TEST_SETS, "data.eval_limit=null"]
    report = contamination(load_experiment(ARITHMETIC, overrides))
    assert {k: (v["exact"], v["ngram"]) for k, v in report.items()} == {
        "arithmetic/gsm8k:test": (0, 1), "arithmetic/svamp:test": (0, 0), "arithmetic/aqua:test": (0, 0),
        "arithmetic/mawps:test": (0, 0)}
    clean = load_experiment(ARITHMETIC, overrides + ["data.decontaminate=true"])
    # two rows go: the variant, and one whose own 8-grams lie mostly inside a test question (a row is
    # dropped when it matches read from the training side, the stricter direction)
    assert len(train_examples(clean)) == 7173 - 2
    assert all(v["ngram"] == 0 for v in contamination(clean).values())
    preflight(clean)  # not refused


def test_decontaminating_a_multi_task_train_set_leaves_a_clean_guard_and_keeps_the_rest():
    """Five commonsense train sets together against seven scored sets: the guard flags five test
    questions by 8-grams; decontamination drops the few training rows behind them (each train task
    compared with each scored set, so the tasks' templates do not match each other), and the
    guard then finds nothing."""
    overrides = ["data.train=[commonsense/boolq,commonsense/arc_easy,commonsense/arc_challenge,commonsense/openbookqa,"
                 "commonsense/hellaswag]", "data.train_limit=1000", "data.eval_limit=500"]
    report = contamination(load_experiment(COMMONSENSE, overrides))
    assert sum(v["ngram"] for v in report.values()) == 5 and sum(v["exact"] for v in report.values()) == 0
    clean = load_experiment(COMMONSENSE, overrides + ["data.decontaminate=true"])
    kept = {e.id.rsplit(":", 2)[0] for e in train_examples(clean)}
    assert len(train_examples(clean)) == 4919 - 5 and "commonsense/hellaswag" in kept
    assert all(v["ngram"] == 0 for v in contamination(clean).values())
