"""Every table and figure from the committed results, in one call (``reft tables``, ``make tables``).

    written = regenerate("results")   # results/tables/*, results/plots/*, results/judges/*

What it writes, from which folder of ``results``:

* ``raw/``: the suite tables and their figures (``publish.py``, ``plots.py``) and LoReFT against
  LoRA across suites (``headline.py``);
* ``judges/raw/``: the judges' agreement with GPT-4 (``judge_agreement.py``);
* ``curves/``: learning curves (``curves.py``); ``selections/`` and ``searches/``: searches
  (``search_plots.py``, ``searches.py``);
* ``previous/*`` and ``attempts/*``: each kept preset's own tables, and per suite what was tried
  (``attempts.py``, ``attempts_plot.py``);
* ``rescored/``: trained runs re-scored on the rows they trained on and on held-out rows
  (``rescored.py``).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.report.attempts import attempt_suites, attempts, kept_presets, write_attempts
from benchmarks.report.attempts_plot import plot_attempts
from benchmarks.report.curves import write_curves
from benchmarks.report.headline import write_headline
from benchmarks.report.judge_agreement import write_agreement
from benchmarks.report.plots import write_plots
from benchmarks.report.publish import write_tables
from benchmarks.report.rescored import write_rescored
from benchmarks.report.search_plots import write_search_plots
from benchmarks.report.searches import write_searches


def regenerate(results: str | Path = "results") -> list[Path]:
    """Write every table and figure of ``results`` (see the module docstring); returns their paths."""
    results = Path(results)
    tables, plots = results / "tables", results / "plots"
    written = write_tables(results / "raw", tables) + write_plots(results / "raw", plots)
    written += write_headline(results / "raw", tables)
    written += write_agreement(results / "judges" / "raw", results / "judges", tables, plots)
    written += write_curves(results / "curves", tables, plots)
    written += write_search_plots(results / "selections", plots)
    written += write_rescored(results / "rescored", tables)
    written += write_searches(results / "searches", results / "selections", tables, plots)
    for kept in kept_presets(results):  # a replaced preset's results, or one tried beside the suite table's
        written += write_tables(kept, tables, results / "selections", prefix=f"{kept.name}-")
    for suite in attempt_suites(results):  # each suite's kept presets side by side: a table and a figure
        entries = attempts(results, suite)
        written += write_attempts(entries, suite, tables) + plot_attempts(entries, suite, plots / f"{suite}-attempts")
    return written


__all__ = ["regenerate"]
