"""A run resumed after a kill counts the training time of every process that trained it; one resumed
from a checkpoint that did not record that time shows its training time as a lower bound (≥)."""

from __future__ import annotations

import json

from test_tables import accuracies, write_result

from benchmarks.report.budgets import hours
from benchmarks.report.tables import load_results, suite_table, table_notes


def test_resumed_runs_count_every_process_or_say_at_least(tmp_path):
    raw = tmp_path / "raw"
    whole = write_result(raw, "commonsense", "lora", 42, accuracies(boolq=0.6), 4.7)
    resumed = write_result(raw, "commonsense", "loreft", 42, accuracies(boolq=0.6), 0.2)
    legacy = write_result(raw, "commonsense", "direft", 42, accuracies(boolq=0.6), 0.1)
    for path, train in ((whole, {"seconds": 7200.0, "total_seconds": 7200.0, "resumed_from": 0}),
                        (resumed, {"seconds": 600.0, "total_seconds": 7200.0, "resumed_from": 100}),
                        (legacy, {"seconds": 600.0, "resumed_from": 100})):  # written before total_seconds
        result = json.loads(path.read_text())
        result["train"].update(train)
        path.write_text(json.dumps(result))
    df = load_results(raw)
    table = suite_table(df, "commonsense", budgets={}).set_index("Method")
    assert table.loc["LoRA", "Final h"] == table.loc["LoReFT", "Final h"] == hours(7200 + 1.0)  # + 1 s scoring
    assert table.loc["DiReFT", "Final h"] == "≥ " + hours(600 + 1.0)
    [compute] = [note for note in table_notes(df, "commonsense") if note.startswith("Compute")]
    assert compute.startswith("Compute: 3 runs; training at least 250 min") and "1 run(s) resumed" in compute
