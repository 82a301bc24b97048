"""What was tried, per suite: the suite table's preset (``results/raw``), every preset it replaced
(``results/previous/<preset>/``) and every one tried beside it (``results/attempts/<preset>/``) in
one table and one figure, one entry per preset and trained method, each beside the floors *its own*
test rows give: the majority-class row and the best untrained row.

A suite whose trained rows never clear those floors has to say what was tried instead (issue 13):
more rows, more epochs, another learning rate, and the curve that shows where it stands. This table
and figure are that record, generated from the kept results, so the README's "what was tried"
cannot drift from what ran. Per entry: the training rows, epochs and learning rate the runs
recorded, the average over the suite's tasks with its 95% interval and n, and a verdict read off
the intervals only:

* ``above both``: the interval lies above the majority's and the best untrained row's (``above
  majority`` where the untrained row has no interval);
* ``below <floor>``: it lies below that floor's interval;
* ``no difference``: it overlaps a floor and is below none.

    entries = attempts("results", "commonsense")          # one per kept preset × trained method
    write_attempts(entries, "commonsense", "results/tables")  # tables/commonsense-attempts.md
    # attempt_suites("results"): the suites with more than one kept preset
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report.stats import interval
from benchmarks.report.tables import (GENERATED, MAJORITY, MISSING, Row, cell_records, cell_text, layout,
                                      load_results, table_rows)

#: the label of the suite table's own preset (``results/raw``); a replaced one is named by its folder
CURRENT = "suite table"
UNTRAINED = "untrained"
#: where kept presets live: ``previous/`` (a preset the suite table's replaced) and ``attempts/`` (one
#: tried beside it that did not replace it, e.g. more epochs on the same rows)
KEPT = ("previous", "attempts")


@dataclass(frozen=True)
class Score:
    """One row's average: its cell text, mean (%) and 95% interval (%, None without per-example records)."""

    label: str
    text: str
    mean: float
    bounds: tuple[float, float] | None


@dataclass(frozen=True)
class Attempt:
    """One preset × trained method, beside its preset's own floors."""

    preset: str
    method: str
    train_rows: int
    epochs: str
    lr: str
    seeds: int
    score: Score
    sd: float | None           # std over seeds (None with one seed): the error bar without records
    majority: Score | None
    untrained: Score | None    # the best untrained row of the preset

    @property
    def verdict(self) -> str:
        floors = {"majority": self.majority, "untrained": self.untrained}
        return verdict(self.score.bounds, {name: f.bounds if f else None for name, f in floors.items()})


def kept_presets(results: str | Path) -> list[Path]:
    """Every kept preset's results folder (``<results>/previous/*``, ``<results>/attempts/*``), sorted."""
    return sorted(p for folder in KEPT for p in (Path(results) / folder).glob("*") if p.is_dir())


def _sources(results: Path, suite: str) -> list[tuple[str, Path]]:
    """(preset label, results folder) of every kept preset that scored ``suite``: the current one first."""
    kept = [p for p in kept_presets(results) if (p / suite).is_dir()]
    return [(CURRENT, results / "raw")] * (results / "raw" / suite).is_dir() + [(p.name, p) for p in kept]


def _recorded(files: list[str], key: str) -> str:
    """The training setting ``key`` (``epochs``, ``lr``) the runs behind a row recorded, one value or several."""
    values = sorted({json.loads(Path(f).read_text())["config"]["train"][key] for f in files}, key=float)
    return " / ".join(f"{v:g}" for v in values)


def _score(row: Row, column: str, suite: str) -> Score:
    """The row's ``column`` cell: text, mean and 95% interval (in %), the interval bootstrapped once."""
    values = row.scores[column]
    records = cell_records(row, column, layout(suite))
    bounds = interval(*records) if records else None
    return Score(row.method, cell_text(values, records, bounds), float(values.mean()),
                 tuple(100 * b for b in bounds) if bounds else None)


def verdict(bounds: tuple[float, float] | None, floors: dict[str, tuple[float, float] | None]) -> str:
    """``above both`` / ``below <floor>`` / ``no difference``, from the intervals alone; ``—`` where a
    row or every floor lacks one."""
    known = {name: b for name, b in floors.items() if b is not None}
    if bounds is None or not known:
        return MISSING
    below = [name for name, (low, _) in known.items() if bounds[1] < low]
    if below:
        return "below " + " and ".join(below)
    if any(bounds[0] <= high for _, high in known.values()):
        return "no difference"
    return "above both" if len(known) == len(floors) else "above " + " and ".join(known)


def score_column(suite: str) -> str:
    """The column an attempt is judged by: Avg, or the suite's only column."""
    return "Avg" if layout(suite).average else next(iter(layout(suite).columns.values()))


def attempts(results: str | Path, suite: str) -> list[Attempt]:
    """Every kept preset × trained method of ``suite`` (the suite table's preset first), in table order."""
    column, found = score_column(suite), []
    for label, folder in _sources(Path(results), suite):
        df = load_results(folder)
        df = df[df["suite"] == suite]
        rows = [row for row in table_rows(df, suite) if column in row.scores]
        majority = next((_score(r, column, suite) for r in rows if r.method == MAJORITY), None)
        floors = [row for row in rows if row.method.startswith(UNTRAINED)]
        best = max(floors, key=lambda row: row.scores[column].mean(), default=None)
        untrained = _score(best, column, suite) if best else None
        for row in rows:
            if row.method == MAJORITY or row.method.startswith(UNTRAINED):
                continue
            runs = df[df["method"] == row.method]
            files = sorted(runs["file"].unique())
            values = row.scores[column]
            found.append(Attempt(label, row.method, int(runs["train_rows"].max()), _recorded(files, "epochs"),
                                 _recorded(files, "lr"), len(values), _score(row, column, suite),
                                 float(values.std(ddof=1)) if len(values) > 1 else None, majority, untrained))
    return found


def attempt_suites(results: str | Path) -> list[str]:
    """The suites with more than one kept preset (the suite table's included)."""
    return [suite for suite in sorted(p.name for p in (Path(results) / "raw").glob("*") if p.is_dir())
            if len(_sources(Path(results), suite)) > 1]


def attempts_table(entries: list[Attempt], suite: str) -> str:
    """The markdown table of a suite's entries (:func:`attempts`)."""
    lines = [f"| Preset | Method | Training rows | Epochs | LR | Seeds | {score_column(suite)} | Majority class | "
             "Best untrained | Verdict |", "|" + "---|" * 10]
    for a in entries:
        untrained = f"{a.untrained.label}: {a.untrained.text}" if a.untrained else MISSING
        lines.append(f"| {a.preset} | {a.method} | {a.train_rows:,} | {a.epochs} | {a.lr} | {a.seeds} | "
                     f"{a.score.text} | {a.majority.text if a.majority else MISSING} | {untrained} | {a.verdict} |")
    return "\n".join(lines) + "\n"


def write_attempts(entries: list[Attempt], suite: str, tables: str | Path = "results/tables") -> list[Path]:
    """``tables/<suite>-attempts.md`` from a suite's entries (:func:`attempts`)."""
    from reft.files import atomic_write_text  # imports torch: only when asked

    text = (f"# What was tried: {suite}\n\n{attempts_table(entries, suite)}\n"
            "- One line per kept preset and trained method; the floors are that preset's own (its scored "
            "rows). Cells: mean ± sd over seeds [95% bootstrap interval over the test examples] n = "
            "examples scored. Verdict from the intervals alone: `above both` = above the majority class "
            "and the best untrained row; `no difference` = overlapping one of them.\n" + GENERATED)
    target = Path(tables) / f"{suite}-attempts.md"
    atomic_write_text(target, text)
    return [target]


__all__ = ["Attempt", "KEPT", "Score", "attempt_suites", "attempts", "attempts_table", "kept_presets", "verdict", "write_attempts"]
