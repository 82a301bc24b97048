"""The equal-budget search's results (issue 14): a table and a Pareto figure per search sweep,
from its final runs (``results/searches/<sweep>/<suite>/*.json``, collected with ``reft collect
SWEEP_ROOT --raw results/searches/<sweep>``) and its selection record
(``results/selections/<sweep>.json``, every trial and the budget each method used).

The table puts what each method cost beside what it scored, so a reader can judge the fairness:

    | Method | Params% | Trials | Tuning h | Best dev | Chosen | <task> | Train s/run | Train ex/s | Peak RSS MB | Saved KB | Seeds |

``Trials`` and ``Tuning h`` are the budget counted by the search (equal trials, or equal seconds);
``Best dev`` is the best trial's dev score, ``Chosen`` its point; the task cell is the test score
of the chosen point over the final seeds (mean ± sd [95% bootstrap interval] n). The accounting
columns are means over the final runs as ``result.json`` records them (peak RSS includes loading
the model). The Pareto figure plots the test score (95% intervals) against trainable parameters
and against training seconds per run; the methods that no other method beats on both axes are
joined by a line (the frontier).

    write_searches("results/searches", "results/selections", "results/tables", "results/plots")
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmarks.report.budgets import hours
from benchmarks.report.cells import majority_cells
from benchmarks.report.comparisons import paired_block
from benchmarks.report.plots import method_color, save_figure
from benchmarks.report.stats import interval
from benchmarks.report.tables import (GENERATED, MAJORITY, MISSING, Row, cell_text, format_params, load_results,
                                      table_rows)


def _accounting(files: list[str]) -> dict[str, float | None]:
    """Means over a row's runs of what their ``result.json`` records about cost (None if absent)."""
    records = [json.loads(Path(f).read_text())["train"] for f in sorted(set(files))]

    def mean(key: str) -> float | None:
        values = [r[key] for r in records if r.get(key) is not None]
        return float(np.mean(values)) if values else None

    return {"seconds": mean("seconds"), "examples_per_second": mean("examples_per_second"),
            "peak_rss_mb": mean("peak_rss_mb"), "model_bytes": mean("model_bytes")}


def _key_of(row: Row, record: dict) -> str | None:
    """The search's method key behind a table row (its runs are ``<sweep>-final-<key>-<point>``)."""
    keys = [k for k in record["budget"] if any(n.startswith(f"{record['sweep']}-final-{k}") for n in row.names)]
    return max(keys, key=len) if keys else None


def _number(value: float | None, spec: str) -> str:
    return MISSING if value is None else format(value, spec)


def search_table(df: pd.DataFrame, record: dict) -> pd.DataFrame:
    """One row per method (the majority class first): cost, tuning and the chosen point's test score."""
    suite = df["suite"].iloc[0]
    task = sorted(df["task"].unique())[0]
    rows = [row for row in table_rows(df, suite) if row.method != MAJORITY]
    column = next(iter(rows[0].scores.columns)) if rows else task
    records = []
    scores, examples = majority_cells(df, {task: column})
    if examples:
        records.append({"Method": MAJORITY, column: cell_text(scores[column], [examples[column]]),
                        "Seeds": len(scores)})
    for row in rows:
        key = _key_of(row, record)
        budget = record["budget"].get(key, {}) if key else {}
        best = max((t["value"] for t in record["trials"].get(key, []) if t["value"] is not None), default=None)
        cost = _accounting(df.loc[df["name"].isin(row.names), "file"].tolist())
        records.append({"Method": row.method, "Params%": format_params(row.params_percent),
                        "Trials": budget.get("trials", MISSING), "Tuning h": hours(budget.get("seconds")),
                        "Best dev": _number(None if best is None else 100 * best, ".1f"),
                        "Chosen": json.dumps(record["chosen"].get(key, {})).replace("|", "/") if key else MISSING,
                        column: cell_text(row.scores[column], [row.examples[column]] if column in row.examples
                                          else None),
                        "Train s/run": _number(cost["seconds"], ".0f"),
                        "Train ex/s": _number(cost["examples_per_second"], ".1f"),
                        "Peak RSS MB": _number(cost["peak_rss_mb"], ".0f"),
                        "Saved KB": _number(None if cost["model_bytes"] is None else cost["model_bytes"] / 1024, ".0f"),
                        "Seeds": len(row.scores)})
    columns = ["Method", "Params%", "Trials", "Tuning h", "Best dev", "Chosen", column, "Train s/run", "Train ex/s",
               "Peak RSS MB", "Saved KB", "Seeds"]
    return pd.DataFrame([[record.get(c, MISSING) for c in columns] for record in records], columns=columns,
                        dtype=object)


def frontier(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower or equal cost and higher or equal score,
    one of them strictly), ordered by cost: the Pareto frontier."""
    keep = [i for i, (cost, score) in enumerate(points)
            if not any((c <= cost and s >= score) and (c < cost or s > score) for c, s in points)]
    return sorted(keep, key=lambda i: points[i][0])


def plot_pareto(df: pd.DataFrame, title: str, path: Path) -> list[Path]:
    """Test score (95% intervals) against Params% and against training seconds per run, log scales."""
    suite = df["suite"].iloc[0]
    rows = [row for row in table_rows(df, suite) if row.method != MAJORITY]
    column = next(iter(rows[0].scores.columns))
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    costs = {"trainable parameters (% of the model, log scale)": [row.params_percent for row in rows],
             "training seconds per run (log scale)": [_accounting(df.loc[df["name"].isin(row.names), "file"]
                                                                  .tolist())["seconds"] for row in rows]}
    means = [row.scores[column].mean() for row in rows]
    bounds = [[100 * v for v in interval(row.examples[column])] if column in row.examples else [m, m]
              for row, m in zip(rows, means)]
    for ax, (label, xs) in zip(axes, costs.items()):
        for row, x, mean, (low, high) in zip(rows, xs, means, bounds):
            ax.errorbar([x], [mean], yerr=[[mean - low], [high - mean]], marker="o", capsize=3,
                        color=method_color(row.method), label=row.method)
        edge = frontier(list(zip(xs, means)))
        ax.plot([xs[i] for i in edge], [means[i] for i in edge], color="0.5", linewidth=1, zorder=0,
                label="frontier")
        scores, _ = majority_cells(df, {row_task: column for row_task in df["task"].unique()})
        if column in scores:
            ax.axhline(scores[column].mean(), color=method_color(MAJORITY), linestyle="--", linewidth=1.2,
                       label=MAJORITY)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(f"{column} test score (%)")
    axes[0].legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    return save_figure(figure, path)


def write_searches(root: str | Path = "results/searches", selections: str | Path = "results/selections",
                   tables: str | Path = "results/tables", plots: str | Path = "results/plots") -> list[Path]:
    """For every search sweep folder in ``root``: ``<sweep>.md`` in ``tables`` (the table, the
    paired tests, notes) and ``<sweep>_pareto.{png,svg}`` in ``plots``."""
    from reft.files import atomic_write_text  # imports torch: only when asked

    written = []
    for folder in sorted(p for p in Path(root).glob("*") if p.is_dir()) if Path(root).is_dir() else []:
        source = Path(selections) / f"{folder.name}.json"
        if not source.is_file():
            raise FileNotFoundError(f"{source}: the selection record of search {folder.name} is missing "
                                    "(`reft collect` copies it from the sweep)")
        record = json.loads(source.read_text())
        if "trials" not in record:
            raise ValueError(f"{source}: not a search's selection record (no trials)")
        df = load_results(folder)
        table = search_table(df, record)
        models = ", ".join(sorted(df["model"].unique()))
        rows = ", ".join(f"{int(n):,d}" for n in sorted(df["train_rows"].dropna().unique()))
        tuning = record["tuning"]
        budget = f"{tuning['trials']} trials" if tuning.get("trials") else f"{tuning['seconds']:.0f} s"
        lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
        lines += ["| " + " | ".join(map(str, values)) + " |" for values in table.itertuples(index=False)]
        text = (f"# Equal-budget search: {folder.name}\n\n{models}; {rows} training rows per run; {budget} per method "
                f"({tuning['sampler']} sampler, seed {tuning['seed']}, {tuning['workers']} workers), chosen by the "
                "dev score only, then the chosen point over the final seeds on the test split.\n\n"
                + "\n".join(lines) + "\n" + paired_block(df, df["suite"].iloc[0])
                + f"\n- Cells: mean ± sd over seeds ({', '.join(map(str, sorted(df['seed'].unique())))}) [95% bootstrap "
                  "interval over the test examples of all seeds] n = examples scored. Trials and Tuning h: the "
                  "budget the search counted per method (train + eval wall time of its dev runs). Best dev: the "
                  "chosen trial's dev score. Train s/run, Train ex/s, Peak RSS MB (the process's resident peak, "
                  "model loading included) and Saved KB (the trained method on disk): means over the final runs.\n"
                + GENERATED)
        target = Path(tables) / f"{folder.name}.md"
        atomic_write_text(target, text)
        written.append(target)
        written += plot_pareto(df, f"{folder.name} ({models}): score against cost, 95% intervals",
                               Path(plots) / f"{folder.name}_pareto")
    return written


__all__ = ["write_searches", "search_table", "plot_pareto", "frontier"]
