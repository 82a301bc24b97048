"""Figures built from raw run results, next to the paper's numbers.

    plot_params_vs_score(df, "commonsense", "results/plots/commonsense_params_vs_score")  # Figure 1's style
    plot_per_task(df, "commonsense", "results/plots/commonsense_per_task")   # bars per task, std over seeds
    write_plots("results/raw", "results/plots")   # both figures for every suite, as PNG and SVG

Figures are drawn on the Agg canvas without pyplot (no global state, no display needed) and saved
without timestamps and with a fixed SVG hash salt, so the same results give the same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from benchmarks.report.tables import layout, load_results, paper_rows, table_columns, table_rows

PAPER_MARKERS = "sD^vP*Xph"  # one per paper model
OTHER_PAPER_COLOR = "0.6"  # the paper's rows of methods we did not run
HATCHES = ("", "//", "..", "xx")  # one per model of ours
SVG_METADATA = {"Date": None}
PNG_METADATA = {"Software": None}


def save_figure(figure: Figure, path: str | Path) -> list[Path]:
    """``path`` with ``.png`` and ``.svg`` suffixes (any suffix on ``path`` is replaced)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    png, svg = path.with_suffix(".png"), path.with_suffix(".svg")
    with matplotlib.rc_context({"svg.hashsalt": "reft-plots"}):  # stable element ids in the SVG
        figure.savefig(png, dpi=150, metadata=PNG_METADATA)
        figure.savefig(svg, metadata=SVG_METADATA)
    return [png, svg]


def _colors(rows) -> dict[str, str]:
    """One color per method we ran, shared by our markers and the paper's rows of that method."""
    return {method: f"C{i % 10}" for i, method in enumerate(dict.fromkeys(r.method for r in rows))}


def _draw_ours(ax, rows, score: str, colors: dict[str, str]) -> list[Line2D]:
    """Filled markers with the std over seeds; a dashed line for rows without trained parameters."""
    handles, placed = [], []
    for row in rows:
        if score not in row.scores:  # e.g. no Avg: the row did not run every task
            continue
        values, color = row.scores[score], colors[row.method]
        label = f"{row.method} (ours, {row.model})"
        if row.params_percent > 0:
            ax.errorbar(row.params_percent, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else None,
                        fmt="o", ms=8, color=color, capsize=3)
            point = (row.params_percent, values.mean())
            near = [(x, y) for x, y in placed if abs(x / point[0] - 1) < 0.2 and abs(y - point[1]) < 3]
            placed.append(point)
            # labels of nearby points stack above the first one's, so they never overprint
            ax.annotate(row.method, near[0] if near else point, xytext=(5, 4 + 10 * len(near)),
                        textcoords="offset points", fontsize=8, weight="bold")
        else:
            ax.axhline(values.mean(), color=color, linestyle="--", linewidth=1)
            label += ", no trained parameters"
        handles.append(Line2D([], [], color=color, marker="o", linestyle="", label=label))
    return handles


def _draw_paper(ax, paper: pd.DataFrame, score: str, colors: dict[str, str]) -> list[Line2D]:
    """Hollow markers, one shape per paper model, in our color for the methods we ran (gray
    otherwise); a dotted line for rows without a Params% (the paper's API and chat models)."""
    handles = []
    for i, (model, group) in enumerate(paper.groupby("Model", sort=False)):
        marker = PAPER_MARKERS[i % len(PAPER_MARKERS)]
        for row in group.to_dict("records"):
            label = row["Method"] if row["Method"] != "—" else row["Model"]
            color = colors.get(label.rstrip("*"), OTHER_PAPER_COLOR)
            if pd.isna(row["Params%"]):
                ax.axhline(row[score], color=color, linestyle=":", linewidth=1)
                ax.annotate(f"{label} (paper)", (0.01, row[score]), xycoords=("axes fraction", "data"),
                            fontsize=7, va="bottom", color="0.35")
                continue
            ax.scatter(row["Params%"], row[score], marker=marker, s=40, facecolors="none", edgecolors=color)
            if color != OTHER_PAPER_COLOR:  # named where we ran the method; the rest are gray (legend)
                ax.annotate(label, (row["Params%"], row[score]), xytext=(4, -8), textcoords="offset points",
                            fontsize=6, color="0.35")
        if group["Params%"].notna().any():
            handles.append(Line2D([], [], color="0.35", marker=marker, markerfacecolor="none", linestyle="",
                                  label=f"(paper, {model})"))
    handles.append(Line2D([], [], color=OTHER_PAPER_COLOR, marker="s", markerfacecolor="none", linestyle="",
                          label="gray: the paper's other methods"))
    return handles


def plot_params_vs_score(df: pd.DataFrame, suite: str, path: str | Path) -> list[Path]:
    """The paper's Figure 1: Params% (log scale) against the average score, our rows filled, the
    paper's rows hollow. Writes ``path`` as PNG and SVG."""
    spec, rows = layout(suite), table_rows(df, suite)
    score = "Avg" if spec.average else next(iter(spec.columns.values()))
    colors = _colors(rows)
    figure = Figure(figsize=(10.5, 5.0), layout="constrained")
    ax = figure.subplots()
    handles = _draw_ours(ax, rows, score, colors) + _draw_paper(ax, paper_rows(suite), score, colors)
    ax.set_xscale("log")
    ax.set_xlabel("Params% (trainable parameters, log scale)")
    ax.set_ylabel(f"{score} (%)")
    ours = ", ".join(dict.fromkeys(r.model for r in rows)) + (", Avg over the tasks run" if spec.average else "")
    ax.set_title(f"{spec.title}: parameters vs {score}\nthe models differ. ours (filled): {ours}\n"
                 "paper (hollow): its models, * = copied baselines", fontsize=9)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the points
    ax.grid(True, which="both", alpha=0.3)
    return save_figure(figure, path)


def plot_per_task(df: pd.DataFrame, suite: str, path: str | Path) -> list[Path]:
    """Grouped bars: one group per task we ran, one bar per model × method, error bars = sample
    std over seeds (none with one seed)."""
    rows = table_rows(df, suite)
    averages = ("Avg", *layout(suite).groups)
    tasks = [c for c in table_columns(suite, rows) if c not in averages and any(c in r.scores for r in rows)]
    colors = _colors(rows)
    hatches = {model: HATCHES[i % len(HATCHES)] for i, model in enumerate(dict.fromkeys(r.model for r in rows))}
    figure = Figure(figsize=(max(6.0, 1.1 * len(tasks) + 2), 4.5), layout="constrained")
    ax = figure.subplots()
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        scores, seeds = row.scores.reindex(columns=tasks), len(row.scores)
        positions = [k + (i - (len(rows) - 1) / 2) * width for k in range(len(tasks))]
        ax.bar(positions, scores.mean(), width, yerr=scores.std(ddof=1) if seeds > 1 else None, capsize=2,
               color=colors[row.method], hatch=hatches[row.model],
               label=f"{row.method} ({row.model}, {seeds} seed{'s' if seeds > 1 else ''})")
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
    ax.set_ylabel("score (%)")
    ax.set_title(f"{layout(suite).title}: per task (mean ± std over seeds)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)
    return save_figure(figure, path)


def write_plots(root: str | Path = "results/raw", out: str | Path = "results/plots") -> list[Path]:
    """``<suite>_params_vs_score`` and ``<suite>_per_task`` (PNG and SVG) for every suite in ``root``."""
    df, out = load_results(root), Path(out)
    written = []
    for suite in sorted(df["suite"].unique()):
        written += plot_params_vs_score(df, suite, out / f"{suite}_params_vs_score")
        written += plot_per_task(df, suite, out / f"{suite}_per_task")
    return written


def main(argv: list[str] | None = None) -> int:
    """``reft plots [--raw DIR] [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="reft plots", description="Figures from raw run results.")
    parser.add_argument("--raw", default="results/raw", help="raw results: <suite>/<run name>__seed<seed>.json")
    parser.add_argument("--out", default="results/plots", help="where the figures go")
    args = parser.parse_args(argv)
    for path in write_plots(args.raw, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
