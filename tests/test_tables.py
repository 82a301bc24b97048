"""Tables, plots and the results notebook, built from synthetic raw results with hand-computed values."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.report.plots import write_plots
from benchmarks.report.readme import refresh_readme
from benchmarks.report.publish import write_tables
from benchmarks.report.tables import GENERATED, load_results, paper_comparison, suite_table, table_notes, table_rows

REPO = Path(__file__).resolve().parents[1]
SEEDS = (42, 43, 44)


def task_record(metrics: dict, primary: str = "accuracy", split: str = "test", n: int = 40) -> dict:
    return {"metrics": metrics, "primary_metric": primary, "n": n, "split": split, "version": 2,
            "fingerprint": "0123456789abcdef", "extractor": "paper", "decoding": {}, "seconds": 1.0,
            "predictions": "predictions/x.jsonl"}


def write_result(raw: Path, suite: str, method: str, seed: int, tasks: dict, percent: float,
                 model: str = "pypi:smollm2-135m-instruct", name: str | None = None) -> Path:
    name = name or f"{suite}-cpu-final-{method}"
    result = {"name": name, "suite": suite, "seed": seed, "model": model, "method": {"name": method, "rank": 8},
              "params": {"trainable": 1, "total": 100, "percent": percent, "head": 0},
              "train": {"steps": 1, "seconds": 1.0, "losses": [1.0], "best_epoch": None, "epoch_scores": [],
                        "examples": 8},
              "tasks": tasks, "config": {}, "environment": {}}
    path = raw / suite / f"{name}__seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return path


def accuracies(**per_task: float) -> dict:
    return {f"commonsense/{task}": task_record({"accuracy": value}) for task, value in per_task.items()}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """commonsense: LoReFT and LoRA × 3 seeds on BoolQ and PIQA; glue: LoReFT × 2 seeds on SST-2, STS-B."""
    raw = tmp_path_factory.mktemp("results") / "raw"
    for seed, boolq, piqa in zip(SEEDS, (0.5, 0.6, 0.7), (0.7, 0.8, 0.9)):
        write_result(raw, "commonsense", "loreft", seed, accuracies(boolq=boolq, piqa=piqa), 0.2053)
    for seed, boolq in zip(SEEDS, (0.5, 0.6, 0.8)):
        write_result(raw, "commonsense", "lora", seed, accuracies(boolq=boolq, piqa=0.6), 0.5)
    for seed, sst2, pearson in zip(SEEDS[:2], (0.9, 0.8), (0.8, 0.9)):
        write_result(raw, "glue", "loreft", seed, {
            "glue/sst2": task_record({"accuracy": sst2}, n=436),
            "glue/stsb": task_record({"pearson": pearson, "spearman": 0.1}, primary="pearson", n=750)},
            0.0123, model="pypi:all-minilm-l6-v2")
    return raw


def test_suite_table_means_stds_and_layout(raw):
    df = load_results(raw)
    assert len(df) == 3 * 2 * 2 + 2 * 2
    table = suite_table(df, "commonsense").set_index("Method")
    assert list(table.columns) == ["Model", "Params%", "BoolQ", "PIQA", "SIQA", "HellaSwag", "WinoGrande",
                                   "ARC-e", "ARC-c", "OBQA", "Avg", "Seeds"]
    assert list(table.index) == ["LoRA", "LoReFT"]
    loreft, lora = table.loc["LoReFT"], table.loc["LoRA"]
    assert (loreft["Params%"], loreft["BoolQ"], loreft["PIQA"], loreft["Avg"], loreft["Seeds"]) == \
        ("0.205", "60.0 ± 10.0", "80.0 ± 10.0", "70.0 ± 10.0", 3)
    # sample std (ddof=1): BoolQ 50, 60, 80 → 63.3 ± 15.3; per-seed Avg 55, 60, 70 → 61.7 ± 7.6
    assert (lora["Params%"], lora["BoolQ"], lora["PIQA"], lora["Avg"]) == ("0.500", "63.3 ± 15.3", "60.0 ± 0.0",
                                                                         "61.7 ± 7.6")
    assert set(loreft[["SIQA", "HellaSwag", "WinoGrande", "ARC-e", "ARC-c", "OBQA"]]) == {"—"}

    glue = suite_table(df, "glue").iloc[0]
    assert (glue["Method"], glue["SST-2"], glue["STS-B"], glue["Avg"], glue["MNLI"], glue["Seeds"]) == \
        ("LoReFT", "85.0 ± 7.1", "85.0 ± 7.1", "85.0 ± 0.0", "—", 2)  # STS-B: Pearson, not Spearman


def test_paper_comparison_shows_the_papers_rows(raw):
    comparison = paper_comparison(load_results(raw), "commonsense")
    paper = comparison[(comparison.Source == "paper") & (comparison.Method == "LoReFT")].set_index("Model")
    assert paper.loc["LLaMA-7B", ["Params%", "BoolQ", "PIQA", "HellaSwag", "OBQA", "Avg"]].tolist() == \
        [0.031, 69.3, 84.4, 93.1, 78.9, 80.2]
    assert set(comparison[comparison.Method == "LoRA*"].Model) == {"LLaMA-7B", "LLaMA-13B", "Llama-2-7B",
                                                                   "Llama-3-8B"}
    gap = comparison[comparison.Source == "ours − paper (LLaMA-7B)"].set_index("Method")
    assert gap.loc["LoReFT", "BoolQ"] == pytest.approx(60.0 - 69.3)
    assert pd.isna(gap.loc["LoReFT", "Avg"])  # our Avg covers 2 tasks, the paper's 8


def test_write_tables_markdown_latex_csv(raw, tmp_path):
    written = write_tables(raw, tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{suite}{ext}" for suite in ("commonsense", "glue")
                                                     for ext in (".md", ".tex", ".csv", "_vs_paper.md"))
    markdown = (tmp_path / "commonsense.md").read_text()
    assert "| pypi:smollm2-135m-instruct | LoReFT | 0.205 | 60.0 ± 10.0 | 80.0 ± 10.0 | — |" in markdown
    assert "BoolQ 40" in markdown and "Seeds: 42, 43, 44" in markdown and "Not run: SIQA" in markdown
    assert "Compute: 6 runs; training 0 min and evaluation 0 min" in markdown  # 1 s each, as recorded
    assert "pearson (STS-B)" in (tmp_path / "glue.md").read_text()
    latex = (tmp_path / "commonsense.tex").read_text()
    assert "\\toprule" in latex and "\\bottomrule" in latex and "Params\\%" in latex
    table = suite_table(load_results(raw), "commonsense")
    assert pd.read_csv(tmp_path / "commonsense.csv", dtype=str, keep_default_na=False).equals(table.astype(str))
    versus = (tmp_path / "commonsense_vs_paper.md").read_text()
    assert "The models differ" in versus and "| paper | LLaMA-7B | LoReFT | 0.031 | 69.3 | 84.4 |" in versus
    assert "| ours − paper (LLaMA-7B) | pypi:smollm2-135m-instruct | LoReFT | — | -9.3 | -4.4 |" in versus
    # a superseded preset's results (results/previous/<preset>/) keep tables of their own, named by it
    previous = write_tables(raw, tmp_path / "previous", prefix="old-preset-")
    assert (tmp_path / "previous" / "old-preset-commonsense.md").read_text().split("\n")[2:] == markdown.split("\n")[2:]
    assert len(previous) == len(written)


def test_refresh_readme_replaces_only_the_marked_blocks(raw, tmp_path):
    write_tables(raw, tmp_path / "tables")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- table:glue -->\nstale numbers\n<!-- /table -->\nprose stays\n")
    assert refresh_readme(readme, tmp_path / "tables") == ["glue"]
    text = readme.read_text()
    assert text.startswith("intro\n<!-- table:glue -->\n| Model | Method | Params% |") and text.endswith("<!-- /table -->\nprose stays\n")
    assert "stale numbers" not in text and "do not edit by hand" not in text and "# GLUE" not in text
    assert "\n- Models: " in text and "\n- Compute: " in text
    before = text
    refresh_readme(readme, tmp_path / "tables")
    assert readme.read_text() == before  # idempotent
    readme.write_text("<!-- table:arithmetic -->\n<!-- /table -->\n")
    with pytest.raises(FileNotFoundError, match="table:arithmetic block but .*arithmetic.md does not exist"):
        refresh_readme(readme, tmp_path / "tables")


def test_refuses_dev_splits_incomplete_results_and_mixed_runs(tmp_path):
    dev = write_result(tmp_path / "dev", "commonsense", "loreft", 42,
                       {"commonsense/boolq": task_record({"accuracy": 0.5}, split="dev")}, 0.2)
    with pytest.raises(ValueError, match=f"{dev}.*'dev' split"):
        load_results(tmp_path / "dev")
    broken = write_result(tmp_path / "broken", "commonsense", "loreft", 42, accuracies(boolq=0.5), 0.2)
    result = json.loads(broken.read_text())
    del result["params"]
    broken.write_text(json.dumps(result))
    with pytest.raises(ValueError, match=f"{broken}: result is missing params"):
        load_results(tmp_path / "broken")
    for name in ("rank4", "rank8"):  # two LoReFT configurations would be averaged into one row
        write_result(tmp_path / "mixed", "commonsense", "loreft", 42, accuracies(boolq=0.5), 0.2, name=name)
    with pytest.raises(ValueError, match="runs rank4 and rank8 are both LoReFT .* scoring commonsense/boolq"):
        suite_table(load_results(tmp_path / "mixed"), "commonsense")
    for name, task in (("loreft_boolq", "boolq"), ("loreft_piqa", "piqa")):  # per-task runs join into one row
        write_result(tmp_path / "per_task", "commonsense", "loreft", 42, accuracies(**{task: 0.5}), 0.2, name=name)
    table = suite_table(load_results(tmp_path / "per_task"), "commonsense")
    assert list(table["Method"]) == ["LoReFT"] and (table["BoolQ"].iloc[0], table["PIQA"].iloc[0]) == ("50.0", "50.0")


def test_instruction_table_names_the_judge(tmp_path):
    judged = {"win_rate": 47.5, "n": 40, "judge": "local_lm", "comparable_with_paper": False}
    for seed in (42, 43):
        write_result(tmp_path / "raw", "instruction", "loreft", seed,
                     {"instruction/alpaca_eval": task_record(judged, primary="win_rate", split="eval")}, 0.01)
    df = load_results(tmp_path / "raw")
    assert suite_table(df, "instruction").loc[0, "Win rate"] == "47.5 ± 0.0"  # win rate is already in %
    assert not paper_comparison(df, "instruction").Source.str.startswith("ours −").any()
    write_tables(tmp_path / "raw", tmp_path / "tables")
    assert "local_lm; **not comparable" in (tmp_path / "tables" / "instruction.md").read_text()


def test_write_plots_png_and_svg(raw, tmp_path):
    written = write_plots(raw, tmp_path / "a")
    assert sorted(p.name for p in written) == sorted(f"{suite}_{kind}.{ext}" for suite in ("commonsense", "glue")
                                                     for kind in ("params_vs_score", "per_task")
                                                     for ext in ("png", "svg"))
    assert all(p.stat().st_size > 1000 for p in written)
    again = write_plots(raw, tmp_path / "b")
    assert [p.read_bytes() for p in written] == [p.read_bytes() for p in again]  # deterministic files


def test_notebook_regenerates_everything(raw, tmp_path, monkeypatch):
    """Runs notebooks/results.ipynb on a copy of the synthetic results, in a kernel on this interpreter
    (a kernelspec written to a temporary JUPYTER_PATH, so no `ipykernel install` is needed)."""
    import nbformat
    from nbclient import NotebookClient

    shutil.copytree(raw, tmp_path / "raw")
    kernels = tmp_path / "jupyter" / "kernels" / "reft-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "reft test", "language": "python"}))
    for variable, value in {"JUPYTER_PATH": tmp_path / "jupyter", "JUPYTER_RUNTIME_DIR": tmp_path / "runtime",
                            "IPYTHONDIR": tmp_path / "ipython", "REFT_RESULTS_RAW": tmp_path / "raw",
                            "REFT_RESULTS_OUT": tmp_path / "out"}.items():
        monkeypatch.setenv(variable, str(value))
    notebook = nbformat.read(REPO / "notebooks" / "results.ipynb", as_version=4)
    NotebookClient(notebook, kernel_name="reft-test", timeout=120,
                   resources={"metadata": {"path": str(REPO)}}).execute()
    assert (tmp_path / "out" / "tables" / "glue.md").is_file()
    assert (tmp_path / "out" / "plots" / "commonsense_per_task.png").stat().st_size > 0
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_refuses_seeds_scored_by_different_task_versions_and_names_nan_cells(tmp_path):
    """Seeds scored with different task versions/fingerprints are not averaged into one cell; a NaN
    metric is shown as NaN with its seed and named in the notes (not "seeds scored different tasks")."""
    for seed, fingerprint in ((42, "0123456789abcdef"), (43, "fedcba9876543210")):
        record = {**task_record({"accuracy": 0.5}), "fingerprint": fingerprint}
        write_result(tmp_path / "mixed", "commonsense", "loreft", seed, {"commonsense/boolq": record}, 0.2)
    with pytest.raises(ValueError, match=r"seeds of commonsense/boolq were scored by different task versions "
                                         r"\(seed 42: v2 0123456789abcdef .*seed 43: v2 fedcba9876543210"):
        suite_table(load_results(tmp_path / "mixed"), "commonsense")

    for seed, pearson in ((42, 0.8), (43, float("nan"))):
        write_result(tmp_path / "nan", "glue", "loreft", seed, {
            "glue/stsb": task_record({"pearson": pearson}, primary="pearson", n=750)}, 0.01)
    df = load_results(tmp_path / "nan")
    assert suite_table(df, "glue").loc[0, "STS-B"] == "NaN (seed 43)"
    write_tables(tmp_path / "nan", tmp_path / "tables")
    assert "NaN: LoReFT STS-B pearson, seed 43 (glue-cpu-final-loreft__seed43.json)" in \
        (tmp_path / "tables" / "glue.md").read_text()


def _with_examples(record: dict, correct: list[int], gold: list) -> dict:
    return {**record, "examples": {"ids": [str(i) for i in range(len(correct))], "correct": correct, "gold": gold}}


def test_cells_carry_an_interval_and_n_and_the_majority_row_comes_first(tmp_path):
    """Per-example records give each cell a bootstrap interval and n, and the majority-class row."""
    raw = tmp_path / "raw"
    gold = ["true"] * 60 + ["false"] * 40                      # the most frequent answer scores 60%
    for seed in SEEDS:
        correct = [1] * 80 + [0] * 20                          # LoReFT: 80% on every seed
        record = task_record({"accuracy": 0.8}, n=100)
        write_result(raw, "commonsense", "loreft", seed, {"commonsense/boolq": _with_examples(record, correct, gold)},
                     0.2)
    table = suite_table(load_results(raw), "commonsense")
    assert list(table["Method"]) == ["majority class", "LoReFT"]
    majority, loreft = table.iloc[0], table.iloc[1]
    assert majority["BoolQ"].startswith("60.0 ± 0.0 [") and majority["BoolQ"].endswith("n=300")
    assert loreft["BoolQ"].startswith("80.0 ± 0.0 [") and loreft["BoolQ"].endswith("n=300")
    low, high = (float(x) for x in loreft["BoolQ"].split("[")[1].split("]")[0].split(", "))
    assert 74 < low < 80 < high < 85                           # ±4.5 points at n=300
    assert loreft["Avg"].endswith("n=300") and majority["Params%"] == "—"


def test_results_without_per_example_records_keep_their_old_cells(raw):
    table = suite_table(load_results(raw), "commonsense")
    assert "majority class" not in set(table["Method"])
    assert "[" not in "".join(table["BoolQ"])


def test_paired_tests_are_printed_under_the_table(tmp_path):
    raw = tmp_path / "raw"
    gold = ["true"] * 100
    for seed in SEEDS:
        for method, right in (("loreft", 90), ("lora", 60)):
            record = task_record({"accuracy": right / 100}, n=100)
            tasks = {f"commonsense/{task}": _with_examples(record, [1] * right + [0] * (100 - right), gold)
                     for task in ("boolq", "piqa")}
            write_result(raw, "commonsense", method, seed, tasks, 0.2)
    write_tables(raw, tmp_path / "tables")
    text = (tmp_path / "tables" / "commonsense.md").read_text()
    assert "**Paired tests**" in text
    lines = [line for line in text.splitlines() if line.startswith("| pypi:smollm2-135m-instruct | LoReFT | LoRA |")]
    assert [line.split(" | ")[3] for line in lines] == ["BoolQ", "PIQA", "all (pooled)"]
    assert all("<0.001" in line and "+30.0" in line for line in lines)
    assert "| 600 |" in lines[-1]  # 2 tasks × 3 seeds × 100 examples


def test_commonsense_averages_trained_and_unseen_answer_formats_apart(tmp_path):
    raw = tmp_path / "raw"
    trained = dict(boolq=0.8, social_i_qa=0.6, arc_easy=0.6, arc_challenge=0.4, openbookqa=0.6)  # mean 60
    unseen = dict(piqa=0.1, winogrande=0.3)                                                        # mean 20
    for seed in SEEDS:
        write_result(raw, "commonsense", "loreft", seed, accuracies(**trained, **unseen), 0.2)
    write_result(raw, "commonsense", "lora", 42, accuracies(boolq=0.5, piqa=0.5), 0.5)
    table = suite_table(load_results(raw), "commonsense").set_index("Method")
    assert list(table.columns[-3:]) == ["Avg trained formats", "Avg unseen formats", "Seeds"]
    assert table.loc["LoReFT", "Avg trained formats"] == "60.0 ± 0.0"
    assert table.loc["LoReFT", "Avg unseen formats"] == "20.0 ± 0.0"
    assert table.loc["LoRA", "Avg trained formats"] == "—"  # not every member task ran


def test_the_training_rows_note_counts_only_runs_that_trained(tmp_path):
    """A zero-shot run records the rows its config names but makes no step: it trained on none."""
    raw = tmp_path / "raw"
    write_result(raw, "commonsense", "loreft", 42, accuracies(boolq=0.6), 0.2)
    untrained = json.loads(write_result(raw, "commonsense", "none", 42, accuracies(boolq=0.4), 0.0).read_text())
    untrained["train"].update(steps=0, examples=400)
    (raw / "commonsense" / "commonsense-cpu-final-none__seed42.json").write_text(json.dumps(untrained))
    notes = " ".join(table_notes(load_results(raw), "commonsense"))
    assert "Training rows per run, by scored task: BoolQ 8." in notes


def test_plots_keep_one_colour_per_method_clip_error_bars_and_show_zeros(monkeypatch, tmp_path):
    """Issue 18.8 on the committed results: a method has the same colour in every figure, ± sd bars
    stay inside [0, 100], a zero score is drawn, and the majority class is a dashed line."""
    from matplotlib.colors import to_rgba

    from benchmarks.report import plots

    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: figures.append(figure) or [])

    def legend_of(results: Path) -> dict:
        plots.plot_per_task(load_results(results), "commonsense", tmp_path / "x")
        ax = figures[-1].axes[0]
        return {text.get_text().split(" (")[0] + (" (ll)" if "log-likelihood" in text.get_text() else ""): handle
                for text, handle in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles)}

    results = Path(__file__).resolve().parents[1] / "results"
    previous = legend_of(results / "previous" / "commonsense-cpu-400")  # four methods, three seeds
    df = load_results(results / "raw")
    legend = legend_of(results / "raw")
    ax = figures[-1].axes[0]
    for method in ("LoRA", "DoRA", "LoReFT", "DiReFT", "untrained"):
        assert to_rgba(previous[method].get_facecolor()) == to_rgba(plots.method_color(method)), method
    for method in ("LoRA", "LoReFT", "untrained"):
        assert to_rgba(legend[method].get_facecolor()) == to_rgba(previous[method].get_facecolor()), method
    assert legend["untrained (ll)"].get_facecolor() != legend["untrained"].get_facecolor()
    assert plots.line_style("majority class") == "--" and "majority class" in legend
    for collection in ax.collections:  # error bars and the majority segments
        for segment in collection.get_segments():
            assert all(-1e-9 <= y <= 100 + 1e-9 for _, y in segment)
    zero_ticks = [line for line in ax.lines if line.get_marker() == "_" and len(line.get_xdata())]
    assert zero_ticks, "the untrained model's 0 scores must be visible"
    assert plots.method_color("LoRA") == "tab:blue" and plots.method_color("LoRA*") == "tab:blue"
    # a row with per-example records (one seed, 500 rows per task) reaches to its 95% interval
    zeroshot = next(row for row in table_rows(df, "commonsense") if "option text" in row.method)
    below, above = plots.error_bar(zeroshot, "PIQA", "commonsense")
    assert suite_table(df, "commonsense").set_index("Method").loc[zeroshot.method, "PIQA"].startswith(
        f"66.4 [{66.4 - below:.1f}, {66.4 + above:.1f}]")


def test_tables_show_each_rows_tuning_budget_from_the_selection_records(raw, tmp_path):
    """A grid selection with its recorded budget, an older one without (its dev runs counted from its
    dev scores, hours unknown), and a row from no sweep."""
    from benchmarks.report.budgets import load_budgets, row_budget

    selections = tmp_path / "selections"
    selections.mkdir()
    (selections / "commonsense-cpu.json").write_text(json.dumps({
        "sweep": "commonsense-cpu", "chosen": {"loreft": {"train.lr": 0.01}, "lora": {"train.lr": 0.001}},
        "dev_scores": {"lora": {"lr1e-03": {"seeds": {"42": 0.5}}, "lr1e-04": {"seeds": {"42": 0.4}}}},
        "budget": {"loreft": {"trials": 4, "seconds": 5400.0}}}))
    budgets = load_budgets(selections)
    assert budgets["commonsense-cpu-final-loreft"] == {"trials": 4, "seconds": 5400.0}
    assert budgets["commonsense-cpu-final-lora"] == {"trials": 2, "seconds": None}
    assert row_budget(["commonsense-cpu-final-loreft-lr1e-02"], budgets) == {"trials": 4, "seconds": 5400.0}
    assert row_budget(["hand-trained"], budgets) is None

    table = suite_table(load_results(raw), "commonsense", budgets).set_index("Method")
    assert list(table.columns[:5]) == ["Model", "Params%", "Tuning runs", "Tuning h", "Final h"]
    assert table.loc["LoReFT", ["Tuning runs", "Tuning h", "Final h"]].tolist() == [4, "1.50", "0.00"]
    assert table.loc["LoRA", ["Tuning runs", "Tuning h"]].tolist() == [2, "—"]
    glue = suite_table(load_results(raw), "glue", budgets).iloc[0]
    assert (glue["Tuning runs"], glue["Tuning h"]) == ("—", "—")  # glue-cpu-final-loreft: no record of its sweep

    written = write_tables(raw, tmp_path / "tables", selections=selections)
    assert "| LoReFT | 0.205 | 4 | 1.50 | 0.00 |" in (tmp_path / "tables" / "commonsense.md").read_text()
    assert "Tuning runs = the dev runs" in written[0].read_text()


def test_instruction_rows_carry_intervals_and_are_judged_against_the_untrained_model(tmp_path):
    """AlpacaEval records (outputs, the judge's preferences over the reference) give the win rates
    an interval, a LoReFT-vs-LoRA paired test, and a head-to-head with the untrained model's outputs."""
    raw, ids = tmp_path / "raw", [f"eval:{i}" for i in range(100)]
    outputs = {"none": ["short"] * 100,                                    # the untrained model
               "loreft": ["a longer answer"] * 80 + ["s"] * 20,            # longer on 80 instructions
               "lora": ["a longer answer"] * 50 + ["tiny"] * 50}
    for method, texts in outputs.items():
        preference = [1.0 if len(t) > 10 else 0.0 for t in texts]
        record = task_record({"win_rate": 100 * sum(preference) / 100, "n": 100, "judge": "length",
                              "comparable_with_paper": False}, primary="win_rate", split="eval", n=100)
        record["examples"] = {"ids": ids, "output": texts, "preference": preference}
        write_result(raw, "instruction", method, 42, {"instruction/alpaca_eval": record}, 0.0 if method == "none" else 0.01)
    write_tables(raw, tmp_path / "tables")
    text = (tmp_path / "tables" / "instruction.md").read_text()
    loreft_row = next(line for line in text.splitlines() if line.startswith("| pypi:smollm2-135m-instruct | LoReFT | 0.010"))
    assert "80.0 [" in loreft_row and "n=100" in loreft_row
    assert "| LoReFT | LoRA | Win rate | 100 | 80.0 | 50.0 | +30.0 |" in text   # the paired test
    assert "**Against the untrained model**" in text
    assert "| pypi:smollm2-135m-instruct | LoReFT | length | 100 | 80 | 0 | 20 | 80.0 [" in text
    lora = next(line for line in text.splitlines() if "| LoRA | length |" in line)
    assert lora.endswith("| 1.000 |")                                       # 50 wins, 50 losses: no difference


def test_readme_prose_quotes_only_generated_scores(tmp_path):
    """Every ``mean [low, high]`` in the committed README's prose is a cell of a generated table; a
    sentence left behind by a rerun is named."""
    from benchmarks.report.readme import unquoted_intervals

    assert unquoted_intervals(REPO / "README.md", REPO / "results") == []
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "glue.md").write_text("| LoRA | 82.5 ± 1.1 [80.4, 84.6] n=2,616 |\n| FT | 5.9 [4.7, 7.5] |\n"
                                                 + GENERATED)
    (tmp_path / "tables" / "notes.md").write_text("hand-written: 81.0 [79.0, 83.0]\n")  # not a generated table
    readme = tmp_path / "README.md"
    readme.write_text("LoRA 82.5 [80.4, 84.6] and FT 5.9 [4.7, 7.5]; once 81.0 [79.0, 83.0], and 2.5 [4.7, 7.5]\n"
                      "<!-- table:glue -->\n| 7.0 [1.0, 9.0] |\n<!-- /table -->\n")
    assert unquoted_intervals(readme, tmp_path) == ["81.0 [79.0, 83.0]", "2.5 [4.7, 7.5]"]  # "2.5" is not "5.9"'s tail
