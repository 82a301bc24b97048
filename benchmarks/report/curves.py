"""Learning curves: a task's score against the number of training rows, per method, from a sweep
that trains each method at several sizes (``benchmarks/sweeps/glue_sst2_curve.yaml``).

Its results live apart from the suite tables' (``results/curves/<sweep>/<suite>/*.json``, collected
with ``reft collect SWEEP_ROOT --raw results/curves/<sweep>``), since a suite table has one cell per
method and task. Each curve point is the cell a suite table would print (mean ± sd over seeds, the
95% bootstrap interval over the test examples of all seeds, n); the majority-class row is the
scored sets' most frequent label, the same at every size. Under the table, per size, each ReFT
method is paired with LoRA and full finetuning on the same examples (McNemar, two-sided).

    write_curves("results/curves", "results/tables", "results/plots")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmarks.report.cells import majority_cells, pooled
from benchmarks.report.comparisons import BASELINES, REFT
from benchmarks.report.plots import method_color, save_figure
from benchmarks.report.stats import interval, paired_test
from benchmarks.report.tables import GENERATED, MAJORITY, METHOD_LABELS, cell_text, format_params, load_results


def curve_points(df: pd.DataFrame, task: str) -> dict[tuple[str, int], dict]:
    """(method, training rows) → its scores per seed (%), per-example record and Params%."""
    points = {}
    for (method, rows), group in df[df["task"] == task].groupby(["method", "train_rows"]):
        names = sorted(group["name"].unique())
        if len(names) > 1:
            raise ValueError(f"curve {task}: runs {' and '.join(names)} are both {method} at {int(rows):,} rows")
        points[method, int(rows)] = {"scores": group.set_index("seed")["score"].sort_index(),
                                     "examples": pooled(group), "params": float(group["params_percent"].mean())}
    return points


def _order(method: str) -> int:
    order = list(METHOD_LABELS.values())
    return order.index(method) if method in order else len(order)


def majority(df: pd.DataFrame, task: str) -> tuple[pd.Series, object] | None:
    """The majority-class scores per seed (%) and per-example record of ``task``, if recorded."""
    scores, examples = majority_cells(df[df["task"] == task], {task: task})
    return (scores[task], examples[task]) if task in examples else None


def curve_table(df: pd.DataFrame, task: str, points: dict, floor) -> str:
    """The markdown table (methods × sizes) of ``points``, the majority class (``floor``) first."""
    sizes = sorted({rows for _, rows in points})
    methods = sorted({method for method, _ in points}, key=_order)
    header = ["Method", "Params%", *(f"{rows:,} rows" for rows in sizes)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    if floor is not None:
        majority = cell_text(floor[0], [floor[1]])
        lines.append(f"| {MAJORITY} | — | " + " | ".join([majority] * len(sizes)) + " |")
    seeds = df["seed"].nunique()

    def shown(point: dict | None) -> str:
        if point is None:
            return "—"
        text = cell_text(point["scores"], [point["examples"]] if point["examples"] else None)
        return text + (f" ({len(point['scores'])} of {seeds} seeds)" if len(point["scores"]) < seeds else "")

    for method in methods:
        cells = [shown(points.get((method, s))) for s in sizes]
        params = next(p["params"] for (m, _), p in points.items() if m == method)
        lines.append(f"| {method} | {format_params(params)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_lines(points: dict) -> str:
    """Per size, each ReFT method against each baseline on the examples both scored."""
    lines = ["| Rows | A | B | n | A % | B % | A − B | p |", "|---|---|---|---|---|---|---|---|"]
    for rows in sorted({r for _, r in points}):
        for a in REFT:
            for b in BASELINES:
                pa, pb = points.get((a, rows)), points.get((b, rows))
                if not (pa and pb and pa["examples"] and pb["examples"]):
                    continue
                test = paired_test(pa["examples"], pb["examples"])
                p = "<0.001" if test.p_value < 0.001 else f"{test.p_value:.3f}"
                lines.append(f"| {rows:,} | {a} | {b} | {test.n:,} | {100 * test.a:.1f} | {100 * test.b:.1f} | "
                             f"{100 * test.difference:+.1f} | {p} |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def plot_curve(points: dict, floor, title: str, path: Path) -> list[Path]:
    """Score against training rows (log scale), 95% intervals as error bars, the majority class dashed."""
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    ax = figure.subplots()
    for method in sorted({m for m, _ in points}, key=_order):
        sizes = sorted(r for m, r in points if m == method)
        means = np.array([points[method, r]["scores"].mean() for r in sizes])
        bounds = np.array([[100 * v for v in interval(points[method, r]["examples"])]
                           if points[method, r]["examples"] else [m, m] for r, m in zip(sizes, means)])
        ax.errorbar(sizes, means, yerr=[means - bounds[:, 0], bounds[:, 1] - means], marker="o", capsize=3,
                    color=method_color(method), label=method)
    if floor is not None:
        ax.axhline(floor[0].mean(), color=method_color(MAJORITY), linestyle="--", linewidth=1.2, label=MAJORITY)
    ax.set_xscale("log")
    ax.set_xlabel("training rows (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return save_figure(figure, path)


def write_curves(root: str | Path = "results/curves", tables: str | Path = "results/tables",
                 plots: str | Path = "results/plots") -> list[Path]:
    """For every sweep folder in ``root`` and every task it scored: ``<sweep>.md`` in ``tables`` (one
    section per task) and ``<sweep>[_<task>].{png,svg}`` in ``plots``."""
    from reft.files import atomic_write_text  # imports torch: only when asked

    written = []
    for folder in sorted(p for p in Path(root).glob("*") if p.is_dir()) if Path(root).is_dir() else []:
        df = load_results(folder)
        tasks = sorted(df["task"].unique())
        sections = []
        for task in tasks:
            points, floor = curve_points(df, task), majority(df, task)
            text, paired = curve_table(df, task, points, floor), paired_lines(points)
            models = ", ".join(sorted(df["model"].unique()))
            sections.append(f"**{task}** ({models})\n\n{text}"
                            + (f"\n**Paired tests** (ReFT A against baseline B at the same size, on the examples "
                               f"both scored; McNemar, two-sided; p ≥ 0.05 is no difference):\n\n{paired}"
                               if paired else ""))
            name = folder.name if len(tasks) == 1 else f"{folder.name}_{task.replace('/', '_')}"
            written += plot_curve(points, floor, f"{task} on {models}: learning curve (95% intervals)",
                                  Path(plots) / name)
        seeds = ", ".join(map(str, sorted(df["seed"].unique())))
        text = (f"# Learning curve: {folder.name}\n\n" + "\n".join(sections)
                + f"\n- Cells: mean ± sd over seeds ({seeds}) [95% bootstrap interval over the test examples of all "
                  "seeds] n = examples scored, all seeds together. Columns: training rows per run.\n" + GENERATED)
        target = Path(tables) / f"{folder.name}.md"
        atomic_write_text(target, text)
        written.append(target)
    return written
