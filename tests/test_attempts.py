"""The what-was-tried table (benchmarks/report/attempts.py): each kept preset of a suite beside its
own floors, with a verdict read off the intervals."""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.report.attempts import attempt_suites, attempts, attempts_table, verdict, write_attempts

REPO = Path(__file__).resolve().parents[1]


def test_attempts_verdict_reads_the_intervals_only():
    floors = {"majority": (38.8, 42.0), "untrained": (41.5, 44.6)}
    assert verdict((45.0, 47.0), floors) == "above both"
    assert verdict((40.0, 43.0), floors) == "no difference"      # overlaps both
    assert verdict((30.5, 33.5), floors) == "below majority and untrained"
    assert verdict((37.5, 40.7), floors) == "below untrained"    # overlaps the majority, under the untrained
    assert verdict((45.0, 47.0), {"majority": (38.8, 42.0), "untrained": None}) == "above majority"
    assert verdict(None, floors) == verdict((45.0, 47.0), {"majority": None, "untrained": None}) == "—"


def test_attempts_table_puts_each_kept_preset_beside_its_own_floors(tmp_path):
    """The committed arithmetic results: the suite table's preset (worked solutions, with per-example
    records) and the answers-only preset it replaced (means only), one line per preset and method."""
    (tmp_path / "raw").mkdir()
    (tmp_path / "previous" / "arithmetic-cpu-mawps").mkdir(parents=True)
    shutil.copytree(REPO / "results" / "raw" / "arithmetic", tmp_path / "raw" / "arithmetic")
    shutil.copytree(REPO / "results" / "previous" / "arithmetic-cpu-mawps" / "arithmetic",
                    tmp_path / "previous" / "arithmetic-cpu-mawps" / "arithmetic")
    lines = attempts_table(attempts(tmp_path, "arithmetic"), "arithmetic").splitlines()
    current = {line.split(" | ")[1]: line for line in lines if line.startswith("| suite table |")}
    previous = [line for line in lines if line.startswith("| arithmetic-cpu-mawps |")]
    assert set(current) == {"LoRA", "LoReFT"} and len(previous) == 4  # floors are columns, not lines
    # LoReFT 6.6 [5.3, 8.3] lies under the majority's 10.6 [8.9, 12.4]; LoRA's 8.4 [6.9, 10.3] overlaps it
    # and the untrained 5.9 [4.7, 7.5]
    assert current["LoReFT"].endswith("| below majority |") and "| 395 | 1 | 0.002 | 1 |" in current["LoReFT"]
    assert current["LoRA"].endswith("| no difference |") and "untrained: 5.9 [4.7, 7.5] n=1,092" in current["LoRA"]
    assert all(line.endswith("| — |") and "| 240 |" in line for line in previous)  # no records: no verdict
    assert attempt_suites(tmp_path) == ["arithmetic"]  # glue: one kept preset or none, nothing to set beside
    # a preset tried beside the suite table's (results/attempts/<preset>/) gets lines of its own
    shutil.copytree(tmp_path / "raw" / "arithmetic", tmp_path / "attempts" / "arithmetic-tried" / "arithmetic")
    tried = [line for line in attempts_table(attempts(tmp_path, "arithmetic"), "arithmetic").splitlines()
             if line.startswith("| arithmetic-tried |")]
    assert [line.split(" | ", 1)[1] for line in tried] == [line.split(" | ", 1)[1] for line in current.values()]
    written = write_attempts(attempts(tmp_path, "arithmetic"), "arithmetic", tmp_path / "tables")
    assert [p.name for p in written] == ["arithmetic-attempts.md"] and "| arithmetic-tried |" in written[0].read_text()


def test_attempts_figure_draws_every_preset_from_the_same_entries_as_the_table(tmp_path):
    """The figure's entries are the table's lines (same presets, methods, rows, verdicts), and it is
    written as PNG and SVG, byte for byte the same when drawn twice."""
    from benchmarks.report.attempts_plot import plot_attempts

    shutil.copytree(REPO / "results" / "raw" / "arithmetic", tmp_path / "raw" / "arithmetic")
    shutil.copytree(REPO / "results" / "previous" / "arithmetic-cpu-mawps" / "arithmetic",
                    tmp_path / "previous" / "arithmetic-cpu-mawps" / "arithmetic")
    entries = attempts(tmp_path, "arithmetic")
    assert [(a.preset, a.method, a.train_rows) for a in entries][:2] == [("suite table", "LoRA", 395),
                                                                          ("suite table", "LoReFT", 395)]
    lines = attempts_table(entries, "arithmetic").splitlines()[2:]
    assert [line.rsplit(" | ", 2)[-1].rstrip(" |") for line in lines] == [a.verdict for a in entries]
    loreft = entries[1]
    assert loreft.score.bounds[1] < loreft.majority.bounds[0] and loreft.sd is None  # one seed, records
    assert all(a.sd is not None and a.score.bounds is None for a in entries[2:])  # 3 seeds, no records
    first = plot_attempts(entries, "arithmetic", tmp_path / "a" / "arithmetic-attempts")
    second = plot_attempts(attempts(tmp_path, "arithmetic"), "arithmetic", tmp_path / "b" / "arithmetic-attempts")
    assert [p.name for p in first] == ["arithmetic-attempts.png", "arithmetic-attempts.svg"]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(first, second))
