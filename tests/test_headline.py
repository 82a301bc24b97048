"""The cross-suite LoReFT-against-LoRA table (benchmarks/report/headline.py): every committed suite
with both rows, the difference's interval, and a reading that says how large a difference "no
difference" leaves possible."""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.report.headline import headline_table, reading, write_headline
from benchmarks.report.tables import load_results

REPO = Path(__file__).resolve().parents[1]


def test_reading_names_the_direction_or_the_largest_difference_left_possible():
    assert reading(-3.7, (-5.5, -1.8), 0.0004) == "LoReFT below"
    assert reading(+2.0, (+0.5, +3.5), 0.01) == "LoReFT above"
    assert reading(-1.6, (-3.6, +0.3), 0.123) == "no difference (up to 3.6 either way)"
    assert reading(0.0, (0.0, 0.0), 1.0, same=True) == "scored alike on every example"


def test_headline_on_the_committed_arithmetic_results(tmp_path):
    """Arithmetic's four sets and their pooling: the numbers of the suite table's paired block, and
    the pooled difference's interval holding 0 (p = 0.12)."""
    shutil.copytree(REPO / "results" / "raw" / "arithmetic", tmp_path / "raw" / "arithmetic")
    table = headline_table(load_results(tmp_path / "raw"))
    assert list(table["Task"]) == ["AQuA", "GSM8K", "MAWPS", "SVAMP", "all (pooled)"]
    pooled = table.iloc[-1]
    assert (pooled["n"], pooled["LoReFT"], pooled["LoRA"], pooled["p"]) == ("1,092", "6.3", "8.0", "0.123")
    low, high = (float(x) for x in pooled["LoReFT − LoRA [95% interval]"].split("[")[1].rstrip("]").split(", "))
    assert low < -1.6 < high and low < 0 < high
    assert pooled["Reading"] == f"no difference (up to {max(-low, high):.1f} either way)"
    assert pooled["Params% LoReFT / LoRA"] == "0.205 / 4.701"
    assert [p.name for p in write_headline(tmp_path / "raw", tmp_path / "tables")] == ["reft-vs-lora.md"]
    (tmp_path / "empty").mkdir()
    assert write_headline(tmp_path / "empty", tmp_path / "none") == []  # no suite with both rows: no file


def test_reft_tables_regenerates_everything_and_refuses_a_stale_readme(tmp_path, capsys):
    """`reft tables --readme`: every table and figure of a results folder (here the committed
    arithmetic results and the preset they replaced), the README's blocks refreshed, and exit 1
    naming a quoted score that no generated table holds."""
    from benchmarks.cli import main

    shutil.copytree(REPO / "results" / "raw" / "arithmetic", tmp_path / "raw" / "arithmetic")
    shutil.copytree(REPO / "results" / "previous" / "arithmetic-cpu-mawps" / "arithmetic",
                    tmp_path / "previous" / "arithmetic-cpu-mawps" / "arithmetic")
    readme = tmp_path / "README.md"
    readme.write_text("LoRA 8.4 [6.9, 10.3] on average.\n<!-- table:reft-vs-lora -->\n<!-- /table -->\n")
    assert main(["tables", "--results", str(tmp_path), "--readme", str(readme)]) == 0
    names = {p.name for p in (tmp_path / "tables").iterdir()} | {p.name for p in (tmp_path / "plots").iterdir()}
    assert {"arithmetic.md", "reft-vs-lora.md", "arithmetic-attempts.md", "arithmetic-cpu-mawps-arithmetic.md",
            "arithmetic-attempts.png", "arithmetic_per_task.svg"} <= names
    assert "| Arithmetic reasoning | pypi:smollm2-135m-instruct | all (pooled) | 1,092 |" in readme.read_text()
    readme.write_text(readme.read_text().replace("8.4 [6.9, 10.3]", "9.1 [7.0, 11.0]"))  # a number left behind
    capsys.readouterr()
    assert main(["tables", "--results", str(tmp_path), "--readme", str(readme)]) == 1
    assert "quotes 1 score(s) no generated table holds (stale after a rerun?): 9.1 [7.0, 11.0]" in capsys.readouterr().err
