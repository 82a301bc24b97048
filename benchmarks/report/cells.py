"""A table cell's per-example records: pooling a cell's seeds, and the majority-class row built
from the golds those records carry (``results/raw``: ``tasks.<task>.examples``, written by
``benchmarks.sweeps.collect``)."""

from __future__ import annotations

import json

import pandas as pd

from benchmarks.report.stats import Examples, point, pool


def pooled(by_task: pd.DataFrame) -> Examples | None:
    """One cell's per-example records (all its seeds), or None if a seed has none (older results)."""
    records = {int(r.seed): r.examples for r in by_task.itertuples()}
    if any(not isinstance(rec, dict) or not ({"correct"} <= set(rec) or {"preference"} <= set(rec)
                                             or {"answer", "gold"} <= set(rec))
           for rec in records.values()):
        return None
    return pool(by_task["metric"].iloc[0], records)


def _mode(values: list) -> object:
    counts: dict[str, tuple[int, object]] = {}
    for value in values:
        key = json.dumps(value, sort_keys=True)
        counts[key] = (counts.get(key, (0, value))[0] + 1, value)
    return max(counts.values(), key=lambda item: item[0])[1]


def majority_answer(gold: list) -> object:
    """The most frequent of ``gold``: the majority class's one answer."""
    return _mode(gold)


def majority_correct(gold: list) -> list[int]:
    """Each example's correctness when every one gets the most frequent of ``gold``."""
    constant = majority_answer(gold)
    return [int(value == constant) for value in gold]


def majority_cells(results: pd.DataFrame, columns: dict[str, str]) -> tuple[pd.DataFrame, dict[str, Examples]]:
    """The majority-class row of one suite's ``results``: per task and seed, the scored set's most
    frequent gold given to every example (the best any constant answer does, whatever the train
    set's balance). Returns its scores (seeds × columns, in %) and per-example records, built from
    the golds in the results' per-example records, over the seeds that have them (none where no
    result carries them)."""
    scores: dict[int, dict[str, float]] = {}
    examples: dict[str, Examples] = {}
    for task, by_task in results.groupby("task"):
        records, metric = {}, by_task["metric"].iloc[0]
        for seed, by_seed in by_task.groupby("seed"):
            record = next((r for r in by_seed["examples"] if isinstance(r, dict) and "gold" in r), None)
            if record is None:  # this seed's results predate per-example records
                continue
            constant = _mode(record["gold"])
            if "answer" in record:  # corpus metric: the constant as every answer
                records[int(seed)] = {"ids": record["ids"], "answer": [constant] * len(record["gold"]),
                                      "gold": record["gold"]}
            else:
                records[int(seed)] = {"ids": record["ids"], "correct": majority_correct(record["gold"])}
        if records:
            cell = pool(metric, {seed: _numeric(record) for seed, record in records.items()})
            column = columns.get(task, task)
            examples[column] = cell
            for seed in records:
                scores.setdefault(seed, {})[column] = 100 * _seed_score(cell, seed)
    return pd.DataFrame.from_dict(scores, orient="index").sort_index(), examples


def _numeric(record: dict) -> dict:
    """A constant corpus-metric answer made numeric (labels are ints or floats already)."""
    return record if "answer" not in record else {**record, "answer": [float(a) for a in record["answer"]],
                                                  "gold": [float(g) for g in record["gold"]]}


def _seed_score(cell: Examples, seed: int) -> float:
    """One seed's metric of a cell."""
    return point(cell.subset(cell.seed == seed))
