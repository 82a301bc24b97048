"""Figures built from raw run results, next to the paper's numbers.

    plot_params_vs_score(df, "commonsense", "results/plots/commonsense_params_vs_score")  # Figure 1's style
    plot_per_task(df, "commonsense", "results/plots/commonsense_per_task")   # bars per task with their intervals
    write_plots("results/raw", "results/plots")   # both figures for every suite, as PNG and SVG

Figures are drawn on the Agg canvas without pyplot (no global state, no display needed) and saved
without timestamps and with a fixed SVG hash salt, so the same results give the same files.
"""

from __future__ import annotations

import argparse
import zlib
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from benchmarks.report.stats import interval
from benchmarks.report.tables import MAJORITY, cell_records, layout, load_results, paper_rows, table_columns, table_rows

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


#: one colour per method in every figure (ours and the paper's rows of the same method)
METHOD_COLORS = {"LoReFT": "tab:red", "DiReFT": "tab:orange", "LoRA": "tab:blue", "DoRA": "tab:cyan",
                 "FT": "tab:green", "PrefT": "tab:olive", "AdapterS": "tab:pink", "AdapterP": "tab:purple",
                 "LoReFT+LoRA": "tab:brown", "untrained": "black", MAJORITY: "0.45"}
#: rows without trained parameters are horizontal lines, told apart by their style
LINE_STYLES = {MAJORITY: "--", "untrained": ":"}
FALLBACK_COLORS = ("tab:brown", "tab:purple", "tab:olive", "tab:pink", "0.2")


def method_color(label: str) -> str:
    """The fixed colour of a method label (``untrained (log-likelihood)`` is ``untrained``'s)."""
    base = label.split(" (")[0].rstrip("*")
    if base == "untrained" and label != base:  # scored another way (log-likelihood): gray, beside black
        return "0.6"
    if base in METHOD_COLORS:
        return METHOD_COLORS[base]
    return FALLBACK_COLORS[zlib.crc32(base.encode()) % len(FALLBACK_COLORS)]  # stable across runs and figures


def line_style(label: str) -> str:
    """``--`` for the majority class, ``:`` for the untrained model, ``-.`` for its other scorings."""
    base = label.split(" (")[0]
    return LINE_STYLES.get(base, "-") if label == base else "-."


def _colors(rows) -> dict[str, str]:
    return {row.method: method_color(row.method) for row in rows}


def error_bar(row, column: str, suite: str) -> tuple[float, float] | None:
    """How far below and above the row's mean its error bar reaches in ``column``: to the 95%
    bootstrap interval where the row has per-example records (the table's interval), else ± the
    sample std over seeds (None with one seed), clipped to the metric's range ([0, 100], or
    [-100, 100] for a negative MCC/Pearson)."""
    values = row.scores[column]
    mean = float(values.mean())
    if np.isnan(mean):
        return None
    cells = cell_records(row, column, layout(suite))
    if cells:
        low, high = interval(*cells)
        return max(mean - 100 * low, 0.0), max(100 * high - mean, 0.0)
    if len(values) < 2:
        return None
    sd, floor = float(values.std(ddof=1)), (-100.0 if mean < 0 else 0.0)
    return min(sd, mean - floor), min(sd, 100 - mean)


def _draw_ours(ax, rows, score: str, colors: dict[str, str], suite: str) -> list[Line2D]:
    """Filled markers with their error bars (:func:`error_bar`); a line for rows without trained
    parameters."""
    handles, placed = [], []
    for row in rows:
        if score not in row.scores:  # e.g. no Avg: the row did not run every task
            continue
        values, color = row.scores[score], colors[row.method]
        label = f"{row.method} (ours, {row.model})"
        if row.params_percent > 0:
            error = error_bar(row, score, suite)
            ax.errorbar(row.params_percent, values.mean(), yerr=None if error is None else [[error[0]], [error[1]]],
                        fmt="o", ms=8, color=color, capsize=3)
            point = (row.params_percent, values.mean())
            near = [(x, y) for x, y in placed if abs(x / point[0] - 1) < 0.2 and abs(y - point[1]) < 3]
            placed.append(point)
            # labels of nearby points stack above the first one's, so they never overprint
            ax.annotate(row.method, near[0] if near else point, xytext=(5, 4 + 10 * len(near)),
                        textcoords="offset points", fontsize=8, weight="bold")
            handles.append(Line2D([], [], color=color, marker="o", linestyle="", label=label))
        else:
            style = line_style(row.method)
            ax.axhline(values.mean(), color=color, linestyle=style, linewidth=1.2)
            label = row.method if row.method == MAJORITY else f"{label}, no trained parameters"
            handles.append(Line2D([], [], color=color, linestyle=style, label=label))
    return handles


def _draw_paper(ax, paper: pd.DataFrame, score: str, colors: dict[str, str]) -> list[Line2D]:
    """Hollow markers, one shape per paper model, in our color for the methods we ran (gray
    otherwise); a dotted line for rows without a Params% (the paper's API and chat models)."""
    handles, named = [], []
    for i, (model, group) in enumerate(paper.groupby("Model", sort=False)):
        marker = PAPER_MARKERS[i % len(PAPER_MARKERS)]
        for row in group.to_dict("records"):
            label = row["Method"] if row["Method"] != "—" else row["Model"]
            color = colors.get(label.rstrip("*"), OTHER_PAPER_COLOR)
            if pd.isna(row["Params%"]):
                ax.axhline(row[score], color="0.6", linestyle=(0, (1, 3)), linewidth=1)
                named.append((row[score], f"{label} (paper)"))
                continue
            # no per-point labels: the colour is the method (legend), the marker the paper's model
            ax.scatter(row["Params%"], row[score], marker=marker, s=40, facecolors="none", edgecolors=color)
        if group["Params%"].notna().any():
            handles.append(Line2D([], [], color="0.35", marker=marker, markerfacecolor="none", linestyle="",
                                  label=f"(paper, {model})"))
    handles.append(Line2D([], [], color=OTHER_PAPER_COLOR, marker="s", markerfacecolor="none", linestyle="",
                          label="gray: the paper's other methods"))
    last = None
    for value, text in sorted(named):  # the paper's API/chat rows, named at the left, never overprinted
        y = value if last is None else max(value, last + 3.0)
        ax.annotate(text, (0.01, y), xycoords=("axes fraction", "data"), fontsize=7, va="bottom", color="0.35")
        last = y
    return handles


def plot_params_vs_score(df: pd.DataFrame, suite: str, path: str | Path) -> list[Path]:
    """The paper's Figure 1: Params% (log scale) against the average score, our rows filled, the
    paper's rows hollow. Writes ``path`` as PNG and SVG."""
    spec, rows = layout(suite), table_rows(df, suite)
    score = "Avg" if spec.average else next(iter(spec.columns.values()))
    colors = _colors(rows)
    figure = Figure(figsize=(10.5, 5.0), layout="constrained")
    ax = figure.subplots()
    handles = _draw_ours(ax, rows, score, colors, suite) + _draw_paper(ax, paper_rows(suite), score, colors)
    ax.set_xscale("log")
    ax.set_xlabel("Params% (trainable parameters, log scale)")
    ax.set_ylabel(f"{score} (%)")
    ours = ", ".join(dict.fromkeys(r.model for r in rows if r.method != MAJORITY)) + (", Avg over the tasks run" if spec.average else "")
    ax.set_title(f"{spec.title}: parameters vs {score}\nthe models differ. ours (filled): {ours}\n"
                 "paper (hollow): its models, * = copied baselines\nbars: 95% interval over test examples "
                 "where recorded, else ± std over seeds", fontsize=9)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the points
    ax.grid(True, which="both", alpha=0.3)
    return save_figure(figure, path)


def plot_per_task(df: pd.DataFrame, suite: str, path: str | Path) -> list[Path]:
    """Grouped bars: one group per task we ran, one bar per model × method, error bars as
    :func:`error_bar` (the 95% interval where per-example records exist, else ± std over seeds)."""
    rows = table_rows(df, suite)
    averages = ("Avg", *layout(suite).groups)
    tasks = [c for c in table_columns(suite, rows) if c not in averages and any(c in r.scores for r in rows)]
    floors = [row for row in rows if row.method == MAJORITY]
    bars = [row for row in rows if row.method != MAJORITY]
    hatches = {model: HATCHES[i % len(HATCHES)] for i, model in enumerate(dict.fromkeys(r.model for r in bars))}
    figure = Figure(figsize=(max(6.0, 1.1 * len(tasks) + 2), 4.5), layout="constrained")
    ax = figure.subplots()
    width, lowest = 0.8 / max(len(bars), 1), 0.0
    for i, row in enumerate(bars):
        scores, seeds = row.scores.reindex(columns=tasks), len(row.scores)
        mean = scores.mean()
        positions = [k + (i - (len(bars) - 1) / 2) * width for k in range(len(tasks))]
        reach = [error_bar(row, task, suite) if task in row.scores else None for task in tasks]
        error = None
        if any(b is not None for b in reach):
            error = [[b[0] if b else 0.0 for b in reach], [b[1] if b else 0.0 for b in reach]]
            lowest = min(lowest, float(np.nanmin(mean - np.asarray(error[0]))))
        lowest = min(lowest, float(np.nanmin(mean)) if mean.notna().any() else 0.0)
        color = method_color(row.method)
        ax.bar(positions, mean, width, yerr=error, capsize=2, color=color, hatch=hatches[row.model],
               label=f"{row.method} ({row.model}, {seeds} seed{'s' if seeds > 1 else ''})")
        zeros = [x for x, value in zip(positions, mean) if value == 0]
        ax.plot(zeros, [0.4] * len(zeros), linestyle="", marker="_", ms=max(4.0, 60 * width), mew=3, color=color)
    for row in floors:  # the majority class: a dashed segment across each task's group
        for k, value in enumerate(row.scores.reindex(columns=tasks).mean()):
            if not np.isnan(value):
                ax.hlines(value, k - 0.45, k + 0.45, colors="0.2", linestyles="--", linewidth=1.2,
                          label=MAJORITY if k == 0 else None)
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
    ax.set_ylim(min(0.0, 5 * np.floor(lowest / 5)), 100)
    if lowest < 0:
        ax.axhline(0, color="0.2", linewidth=0.8)
    ax.set_ylabel("score (%)")
    ax.set_title(f"{layout(suite).title}: per task\nmean over seeds with its 95% interval over test examples "
                 "where recorded,\nelse ± std over seeds; a score of 0 is a thick tick on the axis", fontsize=9)
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
