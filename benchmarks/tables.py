"""The paper's result tables, built from raw run results (``results/raw/<suite>/<run name>__seed<seed>.json``,
each the ``result.json`` a run writes; see ``benchmarks/run.py``).

    df = load_results("results/raw")           # one row per run × task
    suite_table(df, "commonsense")             # Table 1's layout, cells "mean ± std" over seeds (×100)
    paper_comparison(df, "commonsense")        # our rows, the paper's rows for the same methods, differences
    write_tables("results/raw", "results/tables")   # <suite>.md / .tex / .csv and <suite>_vs_paper.md

Tables are build artifacts: regenerate them from the raw results (``reft tables``), never edit them.
The paper's numbers are data in ``results/paper/`` (see its README).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

PAPER_DIR = Path(__file__).resolve().parents[1] / "results" / "paper"

# method spec name → the paper's label; also the row order within a model (registry names not
# listed here are shown as they are, after these)
METHOD_LABELS = {"none": "untrained", "full": "FT", "prefix_tuning": "PrefT", "adapter_series": "AdapterS",
                 "adapter_parallel": "AdapterP", "lora": "LoRA", "dora": "DoRA", "reft_lora": "LoReFT+LoRA",
                 "direft": "DiReFT", "loreft": "LoReFT"}
RESULT_FIELDS = ("name", "suite", "seed", "model", "method", "params", "tasks")
TASK_FIELDS = ("metrics", "primary_metric", "n", "split", "version", "fingerprint")
# the split tables report: test everywhere (GLUE: the held-out half of validation, named "test"),
# except AlpacaEval, whose one evaluation set is named "eval"
REPORTED_SPLIT = {"instruction/alpaca_eval": "eval"}
PERCENT_METRICS = {"win_rate"}  # already in %; every other metric is a fraction shown ×100
MISSING = "—"
GENERATED = "\nGenerated from the raw results by `reft tables` (benchmarks/tables.py); do not edit by hand.\n"


@dataclass(frozen=True)
class Layout:
    """One suite's table as the paper prints it."""

    title: str
    columns: dict[str, str]                       # task → the paper's column, in the paper's order
    paper_csv: str
    average: bool = True
    paper_columns: dict[str, str] = field(default_factory=dict)   # the CSV's column → ours
    paper_models: dict[str, str] = field(default_factory=dict)    # the CSV's model → printed name


LAYOUTS = {
    "commonsense": Layout("Commonsense reasoning (paper Table 1)", {
        "commonsense/boolq": "BoolQ", "commonsense/piqa": "PIQA", "commonsense/social_i_qa": "SIQA",
        "commonsense/hellaswag": "HellaSwag", "commonsense/winogrande": "WinoGrande",
        "commonsense/arc_easy": "ARC-e", "commonsense/arc_challenge": "ARC-c", "commonsense/openbookqa": "OBQA"},
        "table1_commonsense.csv"),
    "arithmetic": Layout("Arithmetic reasoning (paper Table 2)", {
        "arithmetic/aqua": "AQuA", "arithmetic/gsm8k": "GSM8K", "arithmetic/mawps": "MAWPS",
        "arithmetic/svamp": "SVAMP"}, "table2_arithmetic.csv"),
    "instruction": Layout("Instruction following (paper Table 3)", {"instruction/alpaca_eval": "Win rate"},
                          "table3_instruction.csv", average=False, paper_columns={"win_rate": "Win rate"}),
    "glue": Layout("GLUE (paper Table 4)", {
        "glue/mnli": "MNLI", "glue/sst2": "SST-2", "glue/mrpc": "MRPC", "glue/cola": "CoLA", "glue/qnli": "QNLI",
        "glue/qqp": "QQP", "glue/rte": "RTE", "glue/stsb": "STS-B"},
        "table4_glue.csv", paper_models={"base": "RoBERTa-base", "large": "RoBERTa-large"}),
}


def layout(suite: str) -> Layout:
    if suite not in LAYOUTS:
        raise ValueError(f"no table layout for suite {suite!r}; known: {', '.join(LAYOUTS)}")
    return LAYOUTS[suite]


# ---------------------------------------------------------------- loading
def load_results(root: str | Path = "results/raw") -> pd.DataFrame:
    """One row per run × task: the primary metric's ``value`` and ``score`` (as tables show it, in %)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no raw results folder (expected <suite>/<run name>__seed<seed>.json)")
    rows = [row for path in sorted(root.glob("*/*.json")) for row in _result_rows(path)]
    return pd.DataFrame(rows, columns=["suite", "model", "method", "seed", "task", "metric", "value", "score",
                                       "params_percent", "n", "version", "fingerprint", "split", "judge",
                                       "comparable_with_paper", "name", "file", "train_seconds", "eval_seconds"])


def _require(record: dict, fields: tuple[str, ...], path: Path, prefix: str = "") -> None:
    missing = [f"{prefix}{name}" for name in fields if name not in record]
    if missing:
        raise ValueError(f"{path}: result is missing {', '.join(missing)}")


def _result_rows(path: Path) -> list[dict]:
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    _require(result, RESULT_FIELDS, path)
    _require(result["method"], ("name",), path, "method.")
    _require(result["params"], ("percent",), path, "params.")
    expected = Path(result["suite"]) / f"{result['name']}__seed{result['seed']}.json"
    if path.parent.name != result["suite"] or path.name != expected.name:
        raise ValueError(f"{path}: a result of run {result['name']!r}, seed {result['seed']}, belongs at {expected}")
    if not result["tasks"]:
        raise ValueError(f"{path}: result has no tasks")
    rows = []
    for task, record in result["tasks"].items():
        _require(record, TASK_FIELDS, path, f"tasks.{task}.")
        split = REPORTED_SPLIT.get(task, "test")
        if record["split"] != split:
            raise ValueError(f"{path}: {task} was scored on the {record['split']!r} split; tables report the "
                             f"{split!r} split only (dev scores are for model selection)")
        metric, metrics = record["primary_metric"], record["metrics"]
        _require(metrics, (metric,), path, f"tasks.{task}.metrics.")
        value = float(metrics[metric])
        rows.append({"suite": result["suite"], "model": result["model"],
                     "method": METHOD_LABELS.get(result["method"]["name"], result["method"]["name"]),
                     "seed": result["seed"], "task": task, "metric": metric, "value": value,
                     "score": value if metric in PERCENT_METRICS else 100 * value,
                     "params_percent": result["params"]["percent"], "n": record["n"],
                     "version": record["version"], "fingerprint": record["fingerprint"], "split": record["split"],
                     "judge": metrics.get("judge"), "comparable_with_paper": metrics.get("comparable_with_paper"),
                     "name": result["name"], "file": str(path),
                     "train_seconds": float(result["train"].get("seconds") or 0.0),
                     "eval_seconds": float(record.get("seconds") or 0.0)})
    return rows


# ---------------------------------------------------------------- aggregation
@dataclass(frozen=True)
class Row:
    """One table row: a model × method, with its scores per seed (seeds × columns, in %)."""

    model: str
    method: str
    params_percent: float
    scores: pd.DataFrame


def table_rows(df: pd.DataFrame, suite: str) -> list[Row]:
    """Our rows for ``suite``, ordered by model then method; columns named as the paper names them,
    plus ``Avg`` (per seed, over the paper's tasks present) and tasks outside the paper's table."""
    spec = layout(suite)
    results = df[df["suite"] == suite]
    if results.empty:
        raise ValueError(f"no results for suite {suite!r}; suites present: {sorted(df['suite'].unique())}")
    rows = []
    for (model, method), group in results.groupby(["model", "method"]):
        for task, by_task in group.groupby("task"):  # a row may join per-task runs (GLUE), one per task
            names = sorted(by_task["name"].unique())
            if len(names) > 1:
                raise ValueError(f"{suite}: runs {' and '.join(names)} are both {method} on {model} scoring {task}, "
                                 "and a table cell is one run configuration: keep one of them in the raw results")
            versions = by_task.drop_duplicates(["version", "fingerprint"])
            if len(versions) > 1:
                scored = "; ".join(f"seed {r.seed}: v{r.version} {r.fingerprint} ({r.file})"
                                   for r in by_task.sort_values("seed").itertuples())
                raise ValueError(f"{suite}: {method} on {model}: the seeds of {task} were scored by different task "
                                 f"versions ({scored}); a cell averages one version: rescore or rerun the others")
        present = group.pivot(index="seed", columns="task", values="n")
        if present.isna().any().any():
            raise ValueError(f"{suite}: {method} on {model}: seeds {list(present.index)} scored different tasks "
                             f"({', '.join(present.columns)}); rerun the incomplete seeds or remove them")
        scores = group.pivot(index="seed", columns="task", values="score")
        scores = scores.rename(columns=spec.columns)
        paper_tasks = [c for c in spec.columns.values() if c in scores]
        if spec.average:
            scores["Avg"] = scores[paper_tasks].mean(axis=1)
        rows.append(Row(model, method, float(group["params_percent"].mean()), scores))
    order = list(METHOD_LABELS.values())
    return sorted(rows, key=lambda r: (r.model, order.index(r.method) if r.method in order else len(order),
                                       r.method))


def table_columns(suite: str, rows: list[Row]) -> list[str]:
    """The paper's columns (and Avg), then any other task we ran."""
    spec = layout(suite)
    paper = list(spec.columns.values()) + (["Avg"] if spec.average else [])
    return paper + sorted({c for row in rows for c in row.scores} - set(paper))


def format_params(percent: float) -> str:
    """Params% to three decimals as the paper prints it; two significant digits below 0.01 (0.0039)."""
    if pd.isna(percent):
        return MISSING
    return f"{percent:.3f}" if percent == 0 or percent >= 0.01 else f"{percent:.2g}"


def _cell(values: pd.Series | None) -> str:
    if values is None:
        return MISSING
    if values.isna().any():  # a metric that came out NaN (e.g. Pearson of constant predictions): named, not hidden
        return "NaN (seed " + ", ".join(map(str, values.index[values.isna()])) + ")"
    mean = values.mean()
    return f"{mean:.1f}" if len(values) < 2 else f"{mean:.1f} ± {values.std(ddof=1):.1f}"


def suite_table(df: pd.DataFrame, suite: str) -> pd.DataFrame:
    """The paper's layout: Model, Method, Params%, each task, Avg, Seeds; cells "mean ± sample std"
    over seeds (one seed: the mean), tasks we did not run "—"."""
    rows = table_rows(df, suite)
    columns = table_columns(suite, rows)
    records = [{"Model": row.model, "Method": row.method, "Params%": format_params(row.params_percent),
                **{c: _cell(row.scores.get(c)) for c in columns}, "Seeds": len(row.scores)} for row in rows]
    return pd.DataFrame(records, columns=["Model", "Method", "Params%", *columns, "Seeds"])


# ---------------------------------------------------------------- the paper
def paper_rows(suite: str) -> pd.DataFrame:
    """The paper's table for ``suite`` (``results/paper/``), columns named as in :func:`suite_table`;
    ``Method`` keeps the paper's ``*`` (numbers copied from other papers)."""
    spec = layout(suite)
    path = PAPER_DIR / spec.paper_csv
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the paper's table is missing (copy it from the paper, see README.md there)")
    paper = pd.read_csv(path, na_values={"params_pct": [MISSING]}).rename(
        columns={"model": "Model", "method": "Method", "params_pct": "Params%", **spec.paper_columns})
    paper["Model"] = paper["Model"].replace(spec.paper_models)
    return paper


def _comparable(df: pd.DataFrame, suite: str) -> bool:
    """False where a judge says its scores are not on the paper's scale (the offline instruction judge)."""
    return not any(flag is False for flag in df.loc[df["suite"] == suite, "comparable_with_paper"])


def paper_comparison(df: pd.DataFrame, suite: str) -> pd.DataFrame:
    """Each of our rows (means over seeds, %), then the paper's rows for the same method (any model),
    then ``ours − paper (<paper model>)`` per task both have. The models differ (ours are CPU-scale),
    so the differences are a reference, not a like-for-like comparison; where a judge is not
    comparable with the paper's, no difference rows are given."""
    rows, paper = table_rows(df, suite), paper_rows(suite)
    columns = table_columns(suite, rows)
    paper_tasks = [c for c in columns if c in paper and c != "Avg"]
    records = []
    for row in rows:
        ours = row.scores.mean()
        records.append({"Source": "ours", "Model": row.model, "Method": row.method,
                        "Params%": row.params_percent, **ours.to_dict(), "Seeds": len(row.scores)})
        matches = paper[paper["Method"].str.rstrip("*") == row.method]
        records += [{"Source": "paper", **match} for match in matches.to_dict("records")]
        if not _comparable(df, suite):
            continue
        for match in matches.to_dict("records"):
            difference = {c: ours[c] - match[c] for c in paper_tasks if c in ours}
            if "Avg" in ours and all(c in ours for c in paper_tasks):  # averages over the same tasks only
                difference["Avg"] = ours["Avg"] - match["Avg"]
            records.append({"Source": f"ours − paper ({match['Model']})", "Model": row.model,
                            "Method": row.method, **difference})
    return pd.DataFrame(records, columns=["Source", "Model", "Method", "Params%", *columns, "Seeds"])


# ---------------------------------------------------------------- writing
def _markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def table_notes(df: pd.DataFrame, suite: str) -> list[str]:
    """What a reader needs to read the table: models, data subsets, seeds, metrics, judge."""
    spec, results = layout(suite), df[df["suite"] == suite]

    def name(task: str) -> str:
        return spec.columns.get(task, task)

    sizes = ", ".join(f"{name(t)} {'/'.join(map(str, sorted(g['n'].unique())))}" for t, g in results.groupby("task"))
    absent = [c for t, c in spec.columns.items() if t not in set(results["task"])]
    metrics = "; ".join(f"{m} ({', '.join(name(t) for t in sorted(g['task'].unique()))})"
                        for m, g in results.groupby("metric"))
    notes = [f"Models: {', '.join(sorted(results['model'].unique()))}.",
             f"Data: examples scored per task (split {', '.join(sorted(results['split'].unique()))}): {sizes}."
             + (f" Not run: {', '.join(absent)} (—)." if absent else ""),
             f"Seeds: {', '.join(map(str, sorted(results['seed'].unique())))}; each row's count is its Seeds column. "
             "Cells are the mean ± sample standard deviation over seeds (one seed: the mean).",
             f"Metrics (primary, shown in %): {metrics}."
             + (" Avg: per seed, the mean over the paper's tasks present; tasks after Avg are not in the "
                "paper's table and not in Avg." if spec.average else "")]
    undefined = results[results["value"].isna()]
    if not undefined.empty:
        notes.append("NaN: " + "; ".join(f"{r.method} {name(r.task)} {r.metric}, seed {r.seed} ({Path(r.file).name})"
                                         for r in undefined.itertuples())
                     + ". The metric is undefined for these runs' predictions (e.g. a constant prediction); "
                     "a row's Avg is NaN where a task is.")
    runs = results.drop_duplicates(["name", "seed"])
    notes.append(f"Compute: {len(runs)} runs; training {runs['train_seconds'].sum() / 60:.0f} min and evaluation "
                 f"{results['eval_seconds'].sum() / 60:.0f} min in all, as recorded in the results (wall time "
                 "of each run's own process).")
    judges = sorted(j for j in results["judge"].dropna().unique())
    if judges:
        notes.append(f"Judge: {', '.join(judges)}; " + ("comparable with the paper." if _comparable(df, suite) else
                     "**not comparable with the paper's numbers** (the paper's judge is GPT-4 on AlpacaEval v1.0); "
                     "use it to compare runs of this harness with each other."))
    return notes


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


def write_tables(root: str | Path = "results/raw", out: str | Path = "results/tables") -> list[Path]:
    """Write ``<suite>.md``, ``.tex``, ``.csv`` and ``<suite>_vs_paper.md`` for every suite in ``root``."""
    df, out = load_results(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for suite in sorted(df["suite"].unique()):
        table, notes = suite_table(df, suite), table_notes(df, suite)
        footer = "\n" + "".join(f"- {note}\n" for note in notes) + GENERATED
        paths = {ext: out / f"{suite}{ext}" for ext in (".md", ".tex", ".csv")}
        paths[".md"].write_text(f"# {layout(suite).title}\n\n{_markdown(table)}{footer}")
        paths[".tex"].write_text(table.style.hide(axis="index").format(escape="latex")
                                 .format_index(escape="latex", axis=1)
                                 .to_latex(hrules=True, column_format="ll" + "r" * (len(table.columns) - 2)))
        table.to_csv(paths[".csv"], index=False)
        paths["_vs_paper"] = out / f"{suite}_vs_paper.md"
        paths["_vs_paper"].write_text(f"# {layout(suite).title}: ours next to the paper\n\n{_paper_note(df, suite)}"
                                      f"\n\n{_markdown(_shown(paper_comparison(df, suite)))}{footer}")
        written += paths.values()
    return written


README_BLOCK = re.compile(r"(?P<open><!-- table:(?P<suite>[\w-]+) -->\n).*?(?P<close><!-- /table -->)", re.S)


def refresh_readme(readme: str | Path, tables: str | Path = "results/tables") -> list[str]:
    """Replace each ``<!-- table:SUITE -->`` ... ``<!-- /table -->`` block of ``readme`` with the body
    of ``tables/SUITE.md`` (its title and generated-by line dropped), so prose and numbers never part.
    Returns the suites refreshed; a block naming a suite without a table raises FileNotFoundError."""
    from reft.io import atomic_write  # imports torch: only when asked

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
    atomic_write(readme, lambda tmp: Path(tmp).write_text(text))
    return refreshed


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
