"""The README's result tables: each ``<!-- table:SUITE -->`` ... ``<!-- /table -->`` block is
replaced by the body of ``results/tables/SUITE.md``, so prose and numbers never part."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.report.tables import GENERATED

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
