"""How sure a table is: 95% intervals for every cell and paired tests between two methods.

Both work from the per-example record a collected result carries (``tasks.<task>.examples``:
example ids, and per example either ``correct`` (0/1), a judge's ``preference`` in [0, 1]
(AlpacaEval: the win rate is their mean), or the ``answer`` and ``gold`` a corpus-level metric such
as MCC or Pearson needs), pooled over the seeds of a cell:

* **interval**: a bootstrap over test examples (``scipy.stats.bootstrap``, BCa, 2,000 resamples,
  seeded) of the cell's statistic, the mean over seeds of each seed's metric, each seed's examples
  resampled on their own (GLUE's test halves differ by seed); an Avg cell resamples every task's
  seeds the same way and averages the tasks. The interval shows how much the test sets' size
  leaves undecided; the spread between seeds is the ``± std`` next to it.
* **paired test** of method A against method B on the examples both scored (same seed, same id):
  for 0/1 correctness the exact McNemar test (``scipy.stats.binomtest`` on the discordant pairs);
  for corpus metrics and preferences a paired permutation test (``scipy.stats.permutation_test``,
  swapping A's and B's answers within each example) of the difference in the seed-mean metric.
  Two-sided p-values.

A difference whose interval contains 0, or whose p-value is ≥ 0.05, is "no difference".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0


def _pearson(answer: np.ndarray, gold: np.ndarray) -> float:
    if answer.std() == 0 or gold.std() == 0:
        return 0.0  # a constant prediction carries no correlation (sklearn's MCC says 0 too)
    return float(np.corrcoef(answer, gold)[0, 1])


#: corpus-level metrics computed from (answer, gold) arrays; MCC of binary labels is their Pearson
#: correlation (the phi coefficient), so one function serves both
CORPUS_METRICS = {"mcc": _pearson, "pearson": _pearson}


@dataclass(frozen=True)
class Examples:
    """One cell's per-example record, all seeds pooled: ``seed`` and ``id`` per example, and either
    ``correct`` (0/1) or ``answer`` and ``gold`` (for a corpus metric)."""

    metric: str
    seed: np.ndarray
    id: np.ndarray
    correct: np.ndarray | None = None
    answer: np.ndarray | None = None
    gold: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.id)

    def keys(self) -> list[tuple[int, str]]:
        return list(zip(self.seed.tolist(), self.id.tolist()))

    def subset(self, index: np.ndarray) -> "Examples":
        pick = (lambda a: None if a is None else a[index])
        return Examples(self.metric, self.seed[index], self.id[index], pick(self.correct), pick(self.answer),
                        pick(self.gold))


def pool(metric: str, records: dict[int, dict]) -> Examples:
    """The per-example records of one cell's seeds (``{seed: record}``) as one ``Examples``."""
    seeds, ids, correct, answer, gold = [], [], [], [], []
    for seed, record in sorted(records.items()):
        n = len(record["ids"])
        seeds += [seed] * n
        ids += list(record["ids"])
        if metric in CORPUS_METRICS:
            answer += list(record["answer"])
            gold += list(record["gold"])
        else:  # 0/1 correctness, or a judge's preference in [0, 1] (AlpacaEval)
            correct += list(record["correct"] if "correct" in record else record["preference"])
    array = (lambda values: np.asarray(values, dtype=float))
    if metric in CORPUS_METRICS:
        return Examples(metric, np.asarray(seeds), np.asarray(ids), answer=array(answer), gold=array(gold))
    return Examples(metric, np.asarray(seeds), np.asarray(ids), correct=array(correct))


def _statistic(metric: str):
    """The cell's statistic over pooled examples: the mean over seeds of each seed's metric."""
    corpus = CORPUS_METRICS.get(metric)

    def statistic(seed, *values):
        scores = []
        for s in np.unique(seed):
            mask = seed == s
            scores.append(corpus(values[0][mask], values[1][mask]) if corpus else values[0][mask].mean())
        return float(np.mean(scores))

    return statistic


def _values(examples: Examples) -> tuple[np.ndarray, ...]:
    if examples.metric in CORPUS_METRICS:
        return examples.answer, examples.gold
    return (examples.correct,)


def point(examples: Examples) -> float:
    return _statistic(examples.metric)(examples.seed, *_values(examples))


def _stratum_scorer(examples: Examples, seed) -> tuple[int, object]:
    """One seed's examples of a cell: their count, and the metric of a resample given as indices."""
    mask = examples.seed == seed
    values = [v[mask] for v in _values(examples)]
    corpus = CORPUS_METRICS.get(examples.metric)
    if corpus:
        return int(mask.sum()), lambda index: corpus(values[0][index], values[1][index])
    return int(mask.sum()), lambda index: float(values[0][index].mean())


def interval(*cells: Examples, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The ``confidence`` bootstrap interval of one cell, or of the average of several cells (a
    table's Avg column): the mean over cells of the mean over seeds of the metric. Each seed of each
    cell is resampled on its own (a stratified bootstrap: ``scipy.stats.bootstrap`` with one sample
    of example indices per stratum); BCa, or percentile where BCa is undefined."""
    strata = [_stratum_scorer(cell, seed) for cell in cells for seed in np.unique(cell.seed)]
    owners = [i for i, cell in enumerate(cells) for _ in np.unique(cell.seed)]
    if any(n < 2 for n, _ in strata):
        value = float(np.mean([point(cell) for cell in cells]))
        return value, value

    def statistic(*indices):
        per_cell: dict[int, list[float]] = {}
        for owner, (_, score), index in zip(owners, strata, indices):
            per_cell.setdefault(owner, []).append(score(np.asarray(index, dtype=int)))
        return float(np.mean([np.mean(scores) for scores in per_cell.values()]))

    return _bootstrap([n for n, _ in strata], statistic, confidence,
                      float(np.mean([point(cell) for cell in cells])))


def _bootstrap(counts: list[int], statistic, confidence: float, fallback: float,
               methods: tuple[str, ...] = ("BCa", "percentile")) -> tuple[float, float]:
    """``scipy.stats.bootstrap`` over one sample of example indices per stratum (``counts``): the
    first of ``methods`` that gives finite ends, else (none does) ``fallback`` at both ends."""
    data = tuple(np.arange(n) for n in counts)
    for method in methods:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa on a degenerate sample (all correct) warns, then falls back
            result = stats.bootstrap(data, statistic, paired=False, vectorized=False, n_resamples=RESAMPLES,
                                     confidence_level=confidence, method=method, random_state=SEED)
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high)
    return fallback, fallback


@dataclass(frozen=True)
class Paired:
    """A against B on the examples both scored."""

    n: int
    a: float
    b: float
    p_value: float
    test: str

    @property
    def difference(self) -> float:
        return self.a - self.b


def _binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


def paired_cells(a: Examples, b: Examples) -> tuple[Examples, Examples]:
    """A and B restricted to their common (seed, id) examples, in the same order."""
    if a.metric != b.metric:
        raise ValueError(f"cannot pair a {a.metric} cell with a {b.metric} cell")
    index_b = {key: i for i, key in enumerate(b.keys())}
    common = [(i, index_b[key]) for i, key in enumerate(a.keys()) if key in index_b]
    if not common:
        raise ValueError("the two cells share no scored example (same seed and id): nothing to pair")
    return a.subset(np.array([i for i, _ in common])), b.subset(np.array([j for _, j in common]))


def difference_interval(a: Examples, b: Examples, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The ``confidence`` interval of A − B on their common examples: a paired bootstrap (the same
    resampled examples score both; each seed resampled on its own), percentile: a difference of two
    means over hundreds of paired examples is close to symmetric, and BCa's jackknife would cost a
    pass per example (half a minute for a pooled 3,500-example cell). Where it
    holds 0 ("no difference"), its ends say how large a difference the data still leave possible:
    the sense in which "no difference" may or may not read as "matches"."""
    a, b = paired_cells(a, b)
    seeds = np.unique(a.seed)
    scorers = [(_stratum_scorer(a, s)[1], _stratum_scorer(b, s)[1]) for s in seeds]
    counts = [int(np.sum(a.seed == s)) for s in seeds]
    if any(n < 2 for n in counts):
        value = point(a) - point(b)
        return value, value

    def statistic(*indices):
        pairs = [(score_a(np.asarray(i, dtype=int)), score_b(np.asarray(i, dtype=int)))
                 for (score_a, score_b), i in zip(scorers, indices)]
        return float(np.mean([x for x, _ in pairs]) - np.mean([y for _, y in pairs]))

    return _bootstrap(counts, statistic, confidence, point(a) - point(b), methods=("percentile",))


def paired_test(a: Examples, b: Examples) -> Paired:
    """Two-sided paired test of A against B on their common (seed, id) examples."""
    a, b = paired_cells(a, b)
    if a.metric not in CORPUS_METRICS and _binary(a.correct) and _binary(b.correct):
        only_a = int(np.sum((a.correct == 1) & (b.correct == 0)))
        only_b = int(np.sum((a.correct == 0) & (b.correct == 1)))
        p = 1.0 if only_a + only_b == 0 else stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
        return Paired(a.n, point(a), point(b), float(p), "McNemar (exact)")
    statistic, seed, gold = _statistic(a.metric), a.seed, a.gold
    a_values, b_values = (a.answer, b.answer) if a.metric in CORPUS_METRICS else (a.correct, b.correct)

    def difference(x, y):
        return statistic(seed, x, gold) - statistic(seed, y, gold)

    result = stats.permutation_test((a_values, b_values), difference, permutation_type="samples",
                                    vectorized=False, n_resamples=RESAMPLES, alternative="two-sided",
                                    random_state=SEED)
    return Paired(a.n, point(a), point(b), float(result.pvalue), "paired permutation")
