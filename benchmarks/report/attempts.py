"""What was tried, per suite: the suite table's preset (``results/raw``), every preset it replaced
(``results/previous/<preset>/``) and every one tried beside it (``results/attempts/<preset>/``) in
one table, one line per preset and trained method, each beside the floors *its own* test rows give:
the majority-class row and the best untrained row.

A suite whose trained rows never clear those floors has to say what was tried instead (issue 13):
more rows, more epochs, another learning rate. This table is that record, generated from the kept
results, so the README's "what was tried" cannot drift from what ran. Per line: the training rows,
epochs and learning rate the runs recorded, the average over the suite's tasks with its 95%
interval and n, and a verdict read off the intervals only:

* ``above both``: the interval lies above the majority's and the best untrained row's (``above
  majority`` where the untrained row has no interval);
* ``below <floor>``: it lies below that floor's interval;
* ``no difference``: it overlaps a floor and is below none.

    write_attempts("results", "results/tables")  # tables/<suite>-attempts.md for suites with kept presets
"""

from __future__ import annotations

import json
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


def _average(row: Row, column: str, suite: str) -> tuple[str, tuple[float, float] | None]:
    """The row's ``column`` cell text and its 95% interval (in %), or None without per-example records."""
    values = row.scores[column] if column in row.scores else None
    records = cell_records(row, column, layout(suite)) if values is not None else None
    bounds = tuple(100 * b for b in interval(*records)) if records else None
    return cell_text(values, records), bounds


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


def attempts_table(results: Path, suite: str) -> str | None:
    """The markdown table of ``suite``'s kept presets, or None where fewer than two presets are kept."""
    sources = _sources(results, suite)
    if len(sources) < 2:
        return None
    column = "Avg" if layout(suite).average else next(iter(layout(suite).columns.values()))
    lines = [f"| Preset | Method | Training rows | Epochs | LR | Seeds | {column} | Majority class | "
             "Best untrained | Verdict |", "|" + "---|" * 10]
    for label, folder in sources:
        df = load_results(folder)
        df = df[df["suite"] == suite]
        rows = table_rows(df, suite)
        cells = {row.method: _average(row, column, suite) for row in rows}
        floors = [row for row in rows if row.method.startswith(UNTRAINED) and column in row.scores]
        best = max(floors, key=lambda row: row.scores[column].mean(), default=None)
        majority = cells.get(MAJORITY, (MISSING, None))
        untrained = (f"{best.method}: {cells[best.method][0]}", cells[best.method][1]) if best else (MISSING, None)
        for row in rows:
            if row.method == MAJORITY or row.method.startswith(UNTRAINED) or column not in row.scores:
                continue
            runs = df[df["method"] == row.method]
            files = sorted(runs["file"].unique())
            text, bounds = cells[row.method]
            lines.append(f"| {label} | {row.method} | {int(runs['train_rows'].max()):,} | "
                         f"{_recorded(files, 'epochs')} | {_recorded(files, 'lr')} | {len(row.scores)} | {text} | "
                         f"{majority[0]} | {untrained[0]} | "
                         f"{verdict(bounds, {'majority': majority[1], 'untrained': untrained[1]})} |")
    return "\n".join(lines) + "\n"


def write_attempts(results: str | Path = "results", tables: str | Path = "results/tables") -> list[Path]:
    """``tables/<suite>-attempts.md`` for every suite with more than one kept preset."""
    from reft.files import atomic_write_text  # imports torch: only when asked

    results, written = Path(results), []
    for suite in sorted(p.name for p in (Path(results) / "raw").glob("*") if p.is_dir()):
        table = attempts_table(results, suite)
        if table is None:
            continue
        text = (f"# What was tried: {suite}\n\n{table}\n"
                "- One line per kept preset and trained method; the floors are that preset's own (its scored "
                "rows). Cells: mean ± sd over seeds [95% bootstrap interval over the test examples] n = "
                "examples scored. Verdict from the intervals alone: `above both` = above the majority class "
                "and the best untrained row; `no difference` = overlapping one of them.\n" + GENERATED)
        target = Path(tables) / f"{suite}-attempts.md"
        atomic_write_text(target, text)
        written.append(target)
    return written


__all__ = ["KEPT", "attempts_table", "kept_presets", "verdict", "write_attempts"]
