"""Learning-curve tables and plots (benchmarks/report/curves.py) and collecting a curve sweep."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.report.curves import write_curves
from benchmarks.sweeps.collect import collect_sweep
from benchmarks.sweeps.select import merged_selection

REPO = Path(__file__).resolve().parents[1]
SST2_8K = sorted((REPO / "results" / "raw" / "glue").glob("glue-sst2-curve-final-*_n8000-*.json"))


def _as_size(source: Path, folder: Path, rows: int) -> None:
    """The run recorded at ``source`` filed as if it had trained on ``rows`` rows (a second curve point)."""
    result = json.loads(source.read_text())
    result["name"] = result["name"].replace("_n8000", f"_n{rows}")
    result["train"]["examples"] = rows
    (folder / f"{result['name']}__seed{result['seed']}.json").write_text(json.dumps(result))


@pytest.fixture
def curve(tmp_path) -> Path:
    folder = tmp_path / "curves" / "glue-sst2-curve" / "glue"
    folder.mkdir(parents=True)
    for path in SST2_8K:
        shutil.copy(path, folder)
        if "loreft" in path.name or "lora" in path.name:
            _as_size(path, folder, 500)
    return tmp_path


@pytest.mark.skipif(len(SST2_8K) < 12, reason="needs the committed SST-2 8k results")
def test_curve_table_has_one_column_per_size_the_majority_row_and_paired_tests(curve):
    written = write_curves(curve / "curves", curve / "tables", curve / "plots")
    text = (curve / "tables" / "glue-sst2-curve.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    assert header == "| Method | Params% | 500 rows | 8,000 rows |"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert rows["majority class"].count("52.6 ± 1.3 [50.0, 55.4] n=1,308") == 2  # the same scored sets
    assert rows["FT"].split(" | ")[2] == "—" and "85.7 ± 1.3 [83.6, 87.5] n=1,308" in rows["FT"]
    assert "| 8,000 | LoReFT | LoRA | 1,308 | 78.8 | 82.5 | -3.7 | <0.001 |" in text
    assert "| 500 | LoReFT | LoRA |" in text and "| 500 | LoReFT | FT |" not in text  # FT has no 500 point
    assert {p.name for p in written} >= {"glue-sst2-curve.png", "glue-sst2-curve.svg", "glue-sst2-curve.md"}


@pytest.mark.skipif(len(SST2_8K) < 12, reason="needs the committed SST-2 8k results")
def test_two_runs_of_one_method_at_one_size_are_refused(curve):
    folder = curve / "curves" / "glue-sst2-curve" / "glue"
    result = json.loads(next(folder.glob("*loreft_n500*seed42.json")).read_text())
    result["name"] = result["name"].replace("lr5e-03", "lr1e-03")
    (folder / f"{result['name']}__seed42.json").write_text(json.dumps(result))
    with pytest.raises(ValueError, match=r"both LoReFT at 500 rows"):
        write_curves(curve / "curves", curve / "tables", curve / "plots")


def test_collecting_some_methods_of_a_sweep_keeps_the_others_selection(tmp_path):
    old = {"sweep": "s", "suite": "glue", "criterion": "c", "chosen": {"a": {"lr": 1}, "b": {"lr": 2}},
           "dev_scores": {"a": {}, "b": {}}, "space": {"a": [], "b": []}}
    new = {"sweep": "s", "suite": "glue", "criterion": "c", "chosen": {"b": {"lr": 3}, "c": {"lr": 4}},
           "dev_scores": {"b": {"x": 1}, "c": {}}, "space": {"b": [1], "c": []}}
    merged = merged_selection(old, new)
    assert merged["chosen"] == {"a": {"lr": 1}, "b": {"lr": 3}, "c": {"lr": 4}}
    assert merged["dev_scores"]["b"] == {"x": 1} and set(merged["space"]) == {"a", "b", "c"}
    assert merged_selection({**old, "sweep": "other"}, new) == new
    # a method chosen again keeps none of its old entries (a tie the new dev scores no longer show)
    assert "ties" not in merged_selection({**old, "ties": {"b": ["x", "y"]}}, new)
    root = tmp_path / "sweeps" / "s"
    (root / "final").mkdir(parents=True)
    (root / "selection.json").write_text(json.dumps(new))
    selections = tmp_path / "selections"
    selections.mkdir()
    (selections / "s.json").write_text(json.dumps(old))
    assert collect_sweep(root, out=tmp_path / "curves" / "s", selections=selections) == []
    assert set(json.loads((selections / "s.json").read_text())["chosen"]) == {"a", "b", "c"}


def test_collect_files_a_finished_result_under_the_folder_named(tmp_path):
    source = SST2_8K[0] if SST2_8K else pytest.skip("needs the committed SST-2 8k results")
    assert main(["collect", str(source), "--raw", str(tmp_path / "curve")]) == 0
    assert (tmp_path / "curve" / "glue" / source.name).read_bytes() == source.read_bytes()


def test_status_of_a_sweep_selected_part_by_part(tmp_path, capsys):
    """A sweep run with --methods has a selection for some methods only: status shows their final
    runs and names the methods not selected yet, instead of failing on the first unselected one."""
    spec = REPO / "benchmarks" / "sweeps" / "glue_sst2_curve.yaml"
    root = tmp_path / "glue-sst2-curve"
    root.mkdir()
    (root / "selection.json").write_text(json.dumps({"sweep": "glue-sst2-curve",
                                                     "chosen": {"loreft_n500": {"train.lr": 5.0e-3}}}))
    assert main(["sweep", "status", str(spec), f"output_root={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "final stage not selected yet for: loreft_n8000" in out
    assert "pending  final/loreft_n500/lr5e-03/seed44" in out and "final/lora_n500" not in out
    assert main(["sweep", "status", str(spec), f"output_root={tmp_path}", "--methods", "lora_n500"]) == 0
    out = capsys.readouterr().out
    assert "dev/lora_n500/lr5e-04/seed42" in out and "loreft" not in out


def test_a_sweep_selected_part_by_part_keeps_every_methods_choice(tmp_path, monkeypatch):
    """`reft sweep SPEC --methods a` then `--methods b` (e.g. one per core): the selection holds both."""
    from benchmarks.sweeps.select import select
    from benchmarks.sweeps.spec import load_sweep, restrict_methods

    monkeypatch.chdir(tmp_path)
    spec_path = REPO / "benchmarks/sweeps/arithmetic_cpu_cot.yaml"
    first = select(restrict_methods(load_sweep(spec_path, [f"output_root={tmp_path}"]), ["loreft", "lora"]), log=None)
    assert set(first["chosen"]) == {"loreft", "lora"}
    second = select(restrict_methods(load_sweep(spec_path, [f"output_root={tmp_path}"]), ["untrained"]), log=None)
    assert set(second["chosen"]) == {"loreft", "lora", "untrained"} == set(second["budget"])
