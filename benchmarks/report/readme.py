"""The README's result tables: each ``<!-- table:SUITE -->`` ... ``<!-- /table -->`` block is
replaced by the body of ``results/tables/SUITE.md``, so prose and numbers never part; and every
score with an interval that the prose quotes (``82.5 [80.4, 84.6]``) is checked against the
generated tables (:func:`unquoted_intervals`), so a rerun that moves a number cannot leave the old
one in a sentence."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.report.tables import GENERATED

#: a score quoted with its 95% interval in prose: ``mean [low, high]``
QUOTED_INTERVAL = re.compile(r"(?P<mean>-?\d+(?:\.\d+)?) \[(?P<low>-?\d+(?:\.\d+)?), (?P<high>-?\d+(?:\.\d+)?)\]")
README_BLOCK = re.compile(r"(?P<open><!-- table:(?P<suite>[\w-]+) -->\n).*?(?P<close><!-- /table -->)", re.S)


def refresh_readme(readme: str | Path, tables: str | Path = "results/tables") -> list[str]:
    """Replace each ``<!-- table:SUITE -->`` ... ``<!-- /table -->`` block of ``readme`` with the body
    of ``tables/SUITE.md`` (its title and generated-by line dropped), so prose and numbers never part.
    Returns the suites refreshed; a block naming a suite without a table raises FileNotFoundError."""
    from reft.files import atomic_write_text  # imports torch: only when asked

    readme, tables = Path(readme), Path(tables)
    refreshed = []

    def body(match: re.Match) -> str:
        source = tables / f"{match['suite']}.md"
        if not source.exists():
            raise FileNotFoundError(f"{readme} has a table:{match['suite']} block but {source} does not exist")
        text = source.read_text().replace(GENERATED, "\n").strip().split("\n", 1)[1].strip()
        refreshed.append(match["suite"])
        return f"{match['open']}{text}\n{match['close']}"

    text = README_BLOCK.sub(body, readme.read_text())
    atomic_write_text(readme, text)
    return refreshed


def unquoted_intervals(readme: str | Path, results: str | Path = "results") -> list[str]:
    """Every ``mean [low, high]`` the README's prose (outside its generated table blocks) quotes that
    no generated table under ``results`` (a ``**/*.md`` that says it is generated) holds, as a cell
    reads (``mean [low, high]`` or ``mean ± sd [low, high]``): numbers a rerun left stale. [] when
    prose and tables agree."""
    prose = README_BLOCK.sub("", Path(readme).read_text())
    generated = (path.read_text() for path in sorted(Path(results).rglob("*.md")))
    tables = "\n".join(text for text in generated if GENERATED.strip() in text)
    stale = []
    for quote in QUOTED_INTERVAL.finditer(prose):
        cell = re.escape(quote["mean"]) + r"(?: ± \d+(?:\.\d+)?)? \[" + re.escape(f"{quote['low']}, {quote['high']}]")
        if not re.search(r"(?<![\d.])" + cell, tables):
            stale.append(quote[0])
    return stale
