"""Does ReFT match LoRA? The project's question answered in one generated table across suites:
LoReFT against LoRA on the same model and the same test examples, per task and pooled over a
suite's tasks, with the difference's 95% interval.

    write_headline("results/raw", "results/tables")   # results/tables/reft-vs-lora.md

Per line: n paired examples (same seed and example id), both scores, LoReFT − LoRA with its paired
bootstrap interval (``benchmarks.report.stats.difference_interval``), the paired test's p
(``paired_test``: exact McNemar for correctness, permutation otherwise), both Params%, and a
reading: ``LoReFT below`` / ``LoReFT above`` where p < 0.05, else ``no difference`` with the
largest difference the interval leaves possible, since "no difference found" only reads as "they
match" when that bound is small; ``scored alike on every example`` where the two rows' per-example
scores are identical (both answered one constant, say), which is no evidence of a match either.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.report.comparisons import paired_cells_of
from benchmarks.report.publish import markdown_table
from benchmarks.report.stats import Examples, difference_interval, paired_cells, paired_test
from benchmarks.report.tables import GENERATED, format_params, layout, load_results, table_rows

A, B = "LoReFT", "LoRA"
COLUMNS = ["Suite", "Model", "Task", "n", A, B, f"{A} − {B} [95% interval]", "p", f"Params% {A} / {B}", "Reading"]
SIGNIFICANCE = 0.05


def identical(a: Examples, b: Examples) -> bool:
    """Whether A and B scored every common example the same (e.g. both gave one constant answer)."""
    a, b = paired_cells(a, b)
    values = (a.answer, b.answer) if a.correct is None else (a.correct, b.correct)
    return bool(np.array_equal(*values))


def reading(difference: float, bounds: tuple[float, float], p: float, same: bool = False) -> str:
    """``LoReFT below``/``above`` where the paired test rejects (p < 0.05), else ``no difference``
    with the largest |difference| the interval leaves possible (in the score's points); ``scored
    alike on every example`` where nothing differs to test (``same``)."""
    if same:
        return "scored alike on every example"
    if p < SIGNIFICANCE:
        return f"{A} {'below' if difference < 0 else 'above'}"
    return f"no difference (up to {max(abs(bounds[0]), abs(bounds[1])):.1f} either way)"


def headline_table(df: pd.DataFrame) -> pd.DataFrame:
    """One line per suite × model × task (and the pooled tasks) where both LoReFT and LoRA scored
    the same examples with per-example records."""
    records = []
    for suite in sorted(df["suite"].unique()):
        for a, b, task, cell_a, cell_b in paired_cells_of(table_rows(df[df["suite"] == suite], suite), (A,), (B,)):
            try:
                test = paired_test(cell_a, cell_b)
            except ValueError:  # no example in common (e.g. different seeds)
                continue
            low, high = (100 * x for x in difference_interval(cell_a, cell_b))
            difference = 100 * test.difference
            records.append({
                "Suite": layout(suite).title.split(" (")[0], "Model": a.model, "Task": task,
                "n": f"{test.n:,d}", A: f"{100 * test.a:.1f}", B: f"{100 * test.b:.1f}",
                f"{A} − {B} [95% interval]": f"{difference:+.1f} [{low:+.1f}, {high:+.1f}]",
                "p": "<0.001" if test.p_value < 0.001 else f"{test.p_value:.3f}",
                f"Params% {A} / {B}": f"{format_params(a.params_percent)} / {format_params(b.params_percent)}",
                "Reading": reading(difference, (low, high), test.p_value, identical(cell_a, cell_b))})
    return pd.DataFrame(records, columns=COLUMNS)


def write_headline(root: str | Path = "results/raw", out: str | Path = "results/tables") -> list[Path]:
    """``reft-vs-lora.md`` from the raw results ([] where no suite has both rows with records)."""
    from reft.files import atomic_write_text  # imports torch: only when asked

    table = headline_table(load_results(root))
    if table.empty:
        return []
    text = ("# Does ReFT match LoRA? LoReFT against LoRA, every suite\n\n" + markdown_table(table) + "\n"
            "- Same model, same test examples (seed and id), each suite's own table rows. Scores in % (MCC and "
            "Pearson × 100; win rate against text-davinci-003 for instruction following). All (pooled): the "
            "suite's per-example correctness over its tasks as one sample (corpus metrics left out).\n"
            "- Interval: paired percentile bootstrap of the difference (2,000 resamples, each seed's examples "
            "resampled on its own). p: exact McNemar for correctness, paired permutation otherwise; p ≥ 0.05 "
            "reads as no difference, and then the interval's far end is the largest difference the data leave "
            "possible: a small bound reads as a match, a large one as not knowing.\n" + GENERATED)
    target = Path(out) / "reft-vs-lora.md"
    atomic_write_text(target, text)
    return [target]


__all__ = ["headline_table", "identical", "reading", "write_headline"]
