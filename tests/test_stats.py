"""Intervals and paired tests (benchmarks/report/stats.py) against what they must say."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from benchmarks.report.stats import Examples, difference_interval, interval, paired_test, point, pool


def _accuracy(correct: list[int], seed: int = 42, prefix: str = "") -> Examples:
    return pool("accuracy", {seed: {"ids": [f"{prefix}{i}" for i in range(len(correct))], "correct": correct}})


def test_interval_of_a_proportion_matches_the_binomial_interval():
    rng = np.random.default_rng(1)
    correct = (rng.random(400) < 0.7).astype(int).tolist()
    low, high = interval(_accuracy(correct))
    exact = scipy_stats.binomtest(sum(correct), len(correct)).proportion_ci(0.95, method="wilson")
    assert low == pytest.approx(exact.low, abs=0.01) and high == pytest.approx(exact.high, abs=0.01)
    assert low < point(_accuracy(correct)) < high


def test_interval_narrows_with_more_examples():
    rng = np.random.default_rng(2)
    small = interval(_accuracy((rng.random(40) < 0.5).astype(int).tolist()))
    large = interval(_accuracy((rng.random(4000) < 0.5).astype(int).tolist()))
    assert small[1] - small[0] > 0.25          # 40 rows: about ±15 points
    assert large[1] - large[0] < 0.04          # 4,000 rows: about ±1.5


def test_seeds_are_pooled_and_averaged():
    cell = pool("accuracy", {42: {"ids": ["a", "b"], "correct": [1, 1]}, 43: {"ids": ["a", "b", "c", "d"],
                                                                          "correct": [0, 0, 0, 1]}})
    assert cell.n == 6
    assert point(cell) == pytest.approx((1.0 + 0.25) / 2)  # the mean over seeds, as the table's cell


def test_all_correct_gives_a_degenerate_interval_not_nan():
    assert interval(_accuracy([1] * 30)) == (1.0, 1.0)


def test_corpus_metric_interval_covers_the_metric():
    rng = np.random.default_rng(3)
    gold = rng.normal(size=300)
    answer = gold + rng.normal(scale=1.0, size=300)
    cell = pool("pearson", {42: {"ids": list(map(str, range(300))), "answer": answer.tolist(), "gold": gold.tolist()}})
    low, high = interval(cell)
    assert low < np.corrcoef(answer, gold)[0, 1] < high
    assert 0.5 < low < high < 0.85


def test_mcnemar_finds_a_real_difference_and_not_a_fake_one():
    rng = np.random.default_rng(4)
    better = (rng.random(500) < 0.80).astype(int)
    worse = np.where(rng.random(500) < 0.25, 0, better)  # B loses a quarter of A's right answers
    result = paired_test(_accuracy(better.tolist()), _accuracy(worse.tolist()))
    assert result.test.startswith("McNemar") and result.n == 500 and result.p_value < 1e-6
    same = paired_test(_accuracy(better.tolist()), _accuracy(better.tolist()))
    assert same.p_value == 1.0 and same.difference == 0


def test_pairs_only_examples_both_scored():
    a = pool("accuracy", {42: {"ids": ["x", "y", "z"], "correct": [1, 0, 1]}})
    b = pool("accuracy", {42: {"ids": ["z", "y"], "correct": [1, 1]}, 43: {"ids": ["x"], "correct": [0]}})
    result = paired_test(a, b)
    assert result.n == 2  # (42, z) and (42, y); (43, x) is another seed's example
    with pytest.raises(ValueError, match="share no scored example"):
        paired_test(a, pool("accuracy", {44: {"ids": ["x"], "correct": [1]}}))


def test_permutation_test_on_a_corpus_metric():
    rng = np.random.default_rng(5)
    gold = rng.integers(0, 2, 300)
    good = np.where(rng.random(300) < 0.85, gold, 1 - gold)
    bad = np.where(rng.random(300) < 0.55, gold, 1 - gold)
    ids = list(map(str, range(300)))
    a = pool("mcc", {42: {"ids": ids, "answer": good.tolist(), "gold": gold.tolist()}})
    b = pool("mcc", {42: {"ids": ids, "answer": bad.tolist(), "gold": gold.tolist()}})
    result = paired_test(a, b)
    assert result.test == "paired permutation" and result.difference > 0.4 and result.p_value < 0.01


def test_average_interval_resamples_each_task_on_its_own():
    rng = np.random.default_rng(6)
    easy = _accuracy((rng.random(300) < 0.9).astype(int).tolist(), prefix="e")
    hard = _accuracy((rng.random(300) < 0.3).astype(int).tolist(), prefix="h")
    low, high = interval(easy, hard)
    assert low < (point(easy) + point(hard)) / 2 < high
    single = interval(easy)
    assert (high - low) < (interval(hard)[1] - interval(hard)[0])  # averaging two tasks narrows
    assert single[0] < point(easy) < single[1]


def test_difference_interval_is_paired():
    """A paired bootstrap of A − B: B is A with 10% of its right answers lost, so the difference
    (about +0.08) is clear of 0 though each cell alone spans ±4 points; the order of the examples in B
    does not matter (pairs go by seed and id); identical cells give exactly 0."""
    rng = np.random.default_rng(5)
    a = (rng.random(400) < 0.8).astype(int)
    b = np.where(rng.random(400) < 0.1, 0, a)
    cell_a, cell_b = _accuracy(a.tolist()), _accuracy(b.tolist())
    low, high = difference_interval(cell_a, cell_b)
    assert 0 < low <= point(cell_a) - point(cell_b) <= high < 0.15
    # unpaired, the difference of two such cells would span about √2 × one cell's width; paired, less than one
    assert high - low < interval(cell_a)[1] - interval(cell_a)[0]
    shuffled = pool("accuracy", {42: {"ids": [str(i) for i in range(400)][::-1], "correct": b[::-1].tolist()}})
    assert difference_interval(cell_a, shuffled) == (low, high)
    assert difference_interval(cell_a, cell_a) == (0.0, 0.0)
