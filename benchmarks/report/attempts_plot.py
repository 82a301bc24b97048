"""The what-was-tried figure: each kept preset × trained method of a suite as a point at its training
rows (log scale) and its average score, with its preset's own floors drawn under it.

    plot_attempts(attempts("results", "commonsense"), "commonsense", "results/plots/commonsense-attempts")

Where nothing clears the floors this is the curve the README points at: how the score moved with
more rows and more epochs, and how far the floors are. Points are coloured by method (the colours of
every other figure) and shaped by epochs; error bars reach the 95% interval over test examples where
the runs saved per-example records, else ± the std over seeds. Each preset's floors are short
horizontal segments centred on its training rows, with their intervals shaded: the majority class
dashed, the best untrained row dotted.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from benchmarks.report.attempts import Attempt, Score, score_column
from benchmarks.report.plots import method_color, save_figure
from benchmarks.report.tables import MAJORITY, layout

EPOCH_MARKERS = {"1": "o", "2": "D", "3": "s"}  # any other count: "^"
FLOOR_SPAN = 1.25       # a floor segment reaches from rows / FLOOR_SPAN to rows × FLOOR_SPAN
METHOD_SPREAD = 0.035   # methods of one preset sit this far apart (log-x fraction), never on one another
FLOOR_STYLES = {"majority": ("0.45", "--"), "untrained": ("black", ":")}


def _error(score: Score, sd: float | None) -> list[list[float]] | None:
    """Error bar lengths below and above the mean: to the interval, else ± sd, else none."""
    if score.bounds is not None:
        return [[max(score.mean - score.bounds[0], 0.0)], [max(score.bounds[1] - score.mean, 0.0)]]
    return None if sd is None else [[min(sd, score.mean)], [sd]]


def _floor(ax, floor: Score | None, kind: str, rows: int) -> None:
    if floor is None:
        return
    color, style = FLOOR_STYLES[kind]
    low, high = rows / FLOOR_SPAN, rows * FLOOR_SPAN
    ax.hlines(floor.mean, low, high, colors=color, linestyles=style, linewidth=1.4)
    if floor.bounds is not None:
        ax.fill_between([low, high], *floor.bounds, color=color, alpha=0.12, linewidth=0)


def plot_attempts(entries: list[Attempt], suite: str, path: str | Path) -> list[Path]:
    """Score against training rows for every entry (one point per preset × method), each preset's floors
    beneath. Writes ``path`` as PNG and SVG."""
    figure = Figure(figsize=(9.5, 4.8), layout="constrained")
    ax = figure.subplots()
    presets = list(dict.fromkeys(a.preset for a in entries))
    for preset in presets:
        group = [a for a in entries if a.preset == preset]
        rows = group[0].train_rows
        _floor(ax, group[0].majority, "majority", rows)
        _floor(ax, group[0].untrained, "untrained", rows)
        # presets with the same rows (e.g. more epochs on them) and the methods of one preset sit side by side
        same_rows = [p for p in presets if next(a for a in entries if a.preset == p).train_rows == rows]
        ax.annotate(preset, (rows, 1.0), xycoords=("data", "axes fraction"), ha="center", va="top",
                    xytext=(0, -4 - 10 * same_rows.index(preset)), textcoords="offset points", fontsize=7, color="0.3")
        for j, a in enumerate(group):
            shift = (same_rows.index(preset) * len(group) + j) - (len(same_rows) * len(group) - 1) / 2
            x = a.train_rows * (1 + METHOD_SPREAD) ** shift
            ax.errorbar(x, a.score.mean, yerr=_error(a.score, a.sd), fmt=EPOCH_MARKERS.get(a.epochs, "^"), ms=7,
                        color=method_color(a.method), capsize=3, markeredgecolor="black", markeredgewidth=0.5)
    methods = list(dict.fromkeys(a.method for a in entries))
    epochs = list(dict.fromkeys(a.epochs for a in entries))
    handles = [Patch(color=method_color(m), label=m) for m in methods]
    handles += [Line2D([], [], color="0.3", marker=EPOCH_MARKERS.get(e, "^"), linestyle="",
                       label=f"{e} epoch{'s' if e != '1' else ''}") for e in epochs]
    handles += [Line2D([], [], color=FLOOR_STYLES["majority"][0], linestyle="--", label=MAJORITY),
                Line2D([], [], color="black", linestyle=":", label="best untrained row")]
    ax.set_xscale("log")
    ax.set_xlabel("training rows (log scale)")
    column = score_column(suite)
    ax.set_ylabel(f"{column} (%)")
    ax.set_title(f"{layout(suite).title}: what was tried, {column} against training rows\n"
                 "each preset (named at the top) beside its own floors, shaded: their 95% intervals\n"
                 "bars: 95% interval over test examples where recorded, else ± std over seeds", fontsize=9)
    ax.set_ylim(top=ax.get_ylim()[1] + 0.12 * (ax.get_ylim()[1] - ax.get_ylim()[0]))  # room for the names
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, which="both", alpha=0.3)
    return save_figure(figure, path)


__all__ = ["plot_attempts"]
