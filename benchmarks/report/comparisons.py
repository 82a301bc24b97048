"""Paired tests of each ReFT row against each baseline row of the same model, on the examples both
scored (``benchmarks.report.stats.paired_test``): per task, and over all tasks pooled where their
metric is per-example correctness. Printed under each suite's table."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

from benchmarks.report.stats import CORPUS_METRICS, Examples, paired_test
from benchmarks.report.tables import Row, table_rows

REFT = ("LoReFT", "DiReFT")
BASELINES = ("LoRA", "DoRA", "FT")
POOLED = "all (pooled)"


def pooled_tasks(row: Row, columns: list[str]) -> Examples | None:
    """A row's per-example correctness over ``columns`` as one record (ids prefixed by the column)."""
    cells = [row.examples[c] for c in columns if c in row.examples and row.examples[c].metric not in CORPUS_METRICS]
    if len(cells) < 2:
        return None
    return Examples("accuracy", np.concatenate([c.seed for c in cells]),
                    np.concatenate([np.char.add(f"{column}|", c.id.astype(str)) for column, c in zip(columns, cells)]),
                    correct=np.concatenate([c.correct for c in cells]))


def paired_cells_of(rows: list[Row], reft: tuple[str, ...] = REFT, baselines: tuple[str, ...] = BASELINES
                    ) -> Iterator[tuple[Row, Row, str, Examples, Examples]]:
    """(ReFT row, baseline row of the same model, task, their two cells) for every task both rows
    have per-example records of, then the tasks pooled (:func:`pooled_tasks`) where there are several."""
    for a in (r for r in rows if r.method in reft):
        for b in (r for r in rows if r.method in baselines and r.model == a.model):
            columns = [c for c in a.examples if c in b.examples]
            for column in columns:
                yield a, b, column, a.examples[column], b.examples[column]
            if (pooled_a := pooled_tasks(a, columns)) is not None and (pooled_b := pooled_tasks(b, columns)):
                yield a, b, POOLED, pooled_a, pooled_b


def paired_table(df: pd.DataFrame, suite: str) -> pd.DataFrame:
    """One line per (ReFT row, baseline row, task): n paired examples, both scores (%), A − B, p."""
    records = []
    for a, b, column, cell_a, cell_b in paired_cells_of(table_rows(df, suite)):
        try:
            result = paired_test(cell_a, cell_b)
        except ValueError:  # no example in common (e.g. different seeds)
            continue
        records.append({"Model": a.model, "A": a.method, "B": b.method, "Task": column, "n": result.n,
                        "A %": 100 * result.a, "B %": 100 * result.b, "A − B": 100 * result.difference,
                        "p": result.p_value, "Test": result.test})
    return pd.DataFrame(records, columns=["Model", "A", "B", "Task", "n", "A %", "B %", "A − B", "p", "Test"])


def paired_block(df: pd.DataFrame, suite: str) -> str:
    """The paired tests as a markdown block (empty without pairs that have per-example records)."""
    table = paired_table(df, suite)
    if table.empty:
        return ""
    shown = table.assign(**{"A %": table["A %"].map("{:.1f}".format), "B %": table["B %"].map("{:.1f}".format),
                            "A − B": table["A − B"].map("{:+.1f}".format), "n": table["n"].map("{:,d}".format),
                            "p": table["p"].map(lambda p: "<0.001" if p < 0.001 else f"{p:.3f}")})
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(map(str, values)) + " |" for values in shown.itertuples(index=False)]
    return ("\n**Paired tests** (ReFT row A against baseline row B on the examples both scored, same seed "
            "and example; two-sided; p ≥ 0.05 is no difference):\n\n" + "\n".join(lines) + "\n")
