"""Writing the tables: ``results/tables/<suite>.md`` / ``.tex`` / ``.csv`` (the paper's layout, the
paired tests under it) and ``<suite>_vs_paper.md``, from the raw results (``reft tables``).

    write_tables("results/raw", "results/tables")
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from benchmarks.report.budgets import load_budgets
from benchmarks.report.comparisons import paired_block
from benchmarks.report.head_to_head import head_to_head_block
from benchmarks.report.tables import (GENERATED, MISSING, format_params, layout, load_results,
                                      paper_comparison, suite_table, table_notes)


def markdown_table(table: pd.DataFrame) -> str:
    """A table as markdown: its columns as the header, each cell as ``str`` gives it."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _paper_note(df: pd.DataFrame, suite: str) -> str:
    comparison = paper_comparison(df, suite)
    ours = ", ".join(sorted(df.loc[df["suite"] == suite, "model"].unique()))
    theirs = ", ".join(comparison.loc[comparison["Source"] == "paper", "Model"].unique()) or "none for our methods"
    return (f"**The models differ.** Our rows ran on {ours}, on the data listed below; the paper's rows ran on "
            f"its own models ({theirs}) and full data (`results/paper/{layout(suite).paper_csv}`; `*` = numbers "
            "the paper copied from other papers). `ours − paper` rows subtract the paper's number from our mean "
            "per task: they show the gap, not a like-for-like comparison.")


def _shown(comparison: pd.DataFrame) -> pd.DataFrame:
    """The comparison as printed: scores to 1 decimal, differences signed, missing values "—"."""
    def number(value, spec: str) -> str:
        return MISSING if pd.isna(value) else format(value, spec)

    shown = comparison.astype(object)
    for column in comparison.columns[4:-1]:
        shown[column] = [number(v, "+.1f" if source.startswith("ours −") else ".1f")
                         for v, source in zip(comparison[column], comparison["Source"])]
    shown["Params%"] = [number(v, "g") if source == "paper" else format_params(v)  # the paper's digits
                        for v, source in zip(comparison["Params%"], comparison["Source"])]
    shown["Seeds"] = [number(v, ".0f") for v in comparison["Seeds"]]
    return shown


TUNING_NOTE = ("Cost: Tuning runs = the dev runs the row's sweep spent choosing its configuration (grid points or "
               "search trials × dev seeds; 0 = no choice made), Tuning h = their train + eval hours, Final h = the "
               "train + eval hours of the row's own runs, all seeds (wall time on the machine that ran them; — = not "
               "recorded, or the run comes from no sweep in results/selections).")


def write_tables(root: str | Path = "results/raw", out: str | Path = "results/tables",
                 selections: str | Path | None = None, prefix: str = "") -> list[Path]:
    """Write ``<prefix><suite>.md``, ``.tex``, ``.csv`` and ``<prefix><suite>_vs_paper.md`` for every
    suite in ``root``; with the sweeps' selection records (``selections``, default ``selections/``
    beside ``root``) the tables show each row's tuning budget."""
    df, out = load_results(root), Path(out)
    selections = Path(selections) if selections is not None else Path(root).parent / "selections"
    budgets = load_budgets(selections) if selections.is_dir() else None
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for suite in sorted(df["suite"].unique()):
        table, notes = suite_table(df, suite, budgets), table_notes(df, suite) + ([TUNING_NOTE] if budgets else [])
        footer = "\n" + "".join(f"- {note}\n" for note in notes) + GENERATED
        paths = {ext: out / f"{prefix}{suite}{ext}" for ext in (".md", ".tex", ".csv")}
        paths[".md"].write_text(f"# {layout(suite).title}\n\n{markdown_table(table)}{paired_block(df, suite)}"
                                     f"{head_to_head_block(df, suite)}{footer}")
        paths[".tex"].write_text(table.style.hide(axis="index").format(escape="latex")
                                 .format_index(escape="latex", axis=1)
                                 .to_latex(hrules=True, column_format="ll" + "r" * (len(table.columns) - 2)))
        table.to_csv(paths[".csv"], index=False)
        paths["_vs_paper"] = out / f"{prefix}{suite}_vs_paper.md"
        paths["_vs_paper"].write_text(f"# {layout(suite).title}: ours next to the paper\n\n{_paper_note(df, suite)}"
                                      f"\n\n{markdown_table(_shown(paper_comparison(df, suite)))}{footer}")
        written += paths.values()
    return written


def main(argv: list[str] | None = None) -> int:
    """``reft tables [--raw DIR] [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="reft tables", description="Paper-layout tables from raw run results.")
    parser.add_argument("--raw", default="results/raw", help="raw results: <suite>/<run name>__seed<seed>.json")
    parser.add_argument("--out", default="results/tables", help="where the tables go")
    args = parser.parse_args(argv)
    for path in write_tables(args.raw, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
