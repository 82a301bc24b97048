"""The paper's result tables, built from raw run results (``results/raw/<suite>/<run name>__seed<seed>.json``,
each the ``result.json`` a run writes; see ``benchmarks/experiments/run.py``).

    df = load_results("results/raw")           # one row per run × task
    suite_table(df, "commonsense")             # Table 1's layout, cells "mean ± std [95% interval] n" (×100)
    paper_comparison(df, "commonsense")        # our rows, the paper's rows for the same methods, differences

Writing them to files is ``benchmarks.report.publish``; intervals and paired tests are
``benchmarks.report.stats`` (over the per-example records, ``benchmarks.report.cells``).

Tables are build artifacts: regenerate them from the raw results (``reft tables``), never edit them.
The paper's numbers are data in ``results/paper/`` (see its README).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmarks.report.cells import majority_cells, pooled
from benchmarks.report.stats import Examples, interval

PAPER_DIR = Path(__file__).resolve().parents[2] / "results" / "paper"

# method spec name → the paper's label; also the row order within a model (registry names not
# listed here are shown as they are, after these)
MAJORITY = "majority class"  # the best constant answer: the scored set's most frequent gold
METHOD_LABELS = {"none": "untrained", "full": "FT", "prefix_tuning": "PrefT", "adapter_series": "AdapterS",
                 "adapter_parallel": "AdapterP", "lora": "LoRA", "dora": "DoRA", "reft_lora": "LoReFT+LoRA",
                 "direft": "DiReFT", "loreft": "LoReFT"}
# how a row was scored, when not by generating (benchmarks/experiments/likelihood.py)
SCORING_LABELS = {"likelihood": " (log-likelihood)", "likelihood-text": " (log-likelihood of option text)"}
RESULT_FIELDS = ("name", "suite", "seed", "model", "method", "params", "tasks")
TASK_FIELDS = ("metrics", "primary_metric", "n", "split", "version", "fingerprint")
# the split tables report: test everywhere (GLUE: the held-out half of validation, named "test"),
# except AlpacaEval, whose one evaluation set is named "eval"
REPORTED_SPLIT = {"instruction/alpaca_eval": "eval"}
PERCENT_METRICS = {"win_rate"}  # already in %; every other metric is a fraction shown ×100
MISSING = "—"
GENERATED = "\nGenerated from the raw results by `reft tables` (benchmarks/report/tables.py); do not edit by hand.\n"


@dataclass(frozen=True)
class Layout:
    """One suite's table as the paper prints it."""

    title: str
    columns: dict[str, str]                       # task → the paper's column, in the paper's order
    paper_csv: str
    average: bool = True
    paper_columns: dict[str, str] = field(default_factory=dict)   # the CSV's column → ours
    paper_models: dict[str, str] = field(default_factory=dict)    # the CSV's model → printed name
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # extra averages: column → its columns


LAYOUTS = {
    "commonsense": Layout("Commonsense reasoning (paper Table 1)", {
        "commonsense/boolq": "BoolQ", "commonsense/piqa": "PIQA", "commonsense/social_i_qa": "SIQA",
        "commonsense/hellaswag": "HellaSwag", "commonsense/winogrande": "WinoGrande",
        "commonsense/arc_easy": "ARC-e", "commonsense/arc_challenge": "ARC-c", "commonsense/openbookqa": "OBQA"},
        "table1_commonsense.csv",
        # the CPU presets train on BoolQ, ARC and OBQA (and HellaSwag's part): their answer words are
        # true/false and answer1-5 (ending1-4), which SIQA's answer1-3 share although SIQA is never
        # trained on; PIQA's solution1/2 and WinoGrande's option1/2 appear only at test time
        groups={"Avg trained formats": ("BoolQ", "SIQA", "ARC-e", "ARC-c", "OBQA"),
                "Avg unseen formats": ("PIQA", "WinoGrande")}),
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
                                       "judge_agreement", "comparable_with_paper", "name", "file", "train_seconds", "train_seconds_partial", "eval_seconds", "examples",
                                       "train_rows"])


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
                     "method": METHOD_LABELS.get(result["method"]["name"], result["method"]["name"])
                     + SCORING_LABELS.get(record.get("scoring"), ""),
                     "seed": result["seed"], "task": task, "metric": metric, "value": value,
                     "score": value if metric in PERCENT_METRICS else 100 * value,
                     "params_percent": result["params"]["percent"], "n": record["n"],
                     "version": record["version"], "fingerprint": record["fingerprint"], "split": record["split"],
                     "judge": metrics.get("judge"), "judge_agreement": metrics.get("judge_agreement"),
                     "comparable_with_paper": metrics.get("comparable_with_paper"),
                     "name": result["name"], "file": str(path),
                     **_training_seconds(result["train"]),
                     "eval_seconds": float(record.get("seconds") or 0.0),
                     "examples": record.get("examples"),  # a run that made no step trained on no rows
                     "train_rows": result["train"].get("examples") if result["train"].get("steps") else None})
    return rows


def _training_seconds(train: dict) -> dict:
    """A run's training wall time over all its processes (``total_seconds``); where it resumed from
    a checkpoint that did not record the time before, only its last process's (``seconds``), marked
    partial: a lower bound."""
    if train.get("total_seconds") is not None:
        return {"train_seconds": float(train["total_seconds"]), "train_seconds_partial": False}
    return {"train_seconds": float(train.get("seconds") or 0.0),
            "train_seconds_partial": bool(train.get("resumed_from"))}


# ---------------------------------------------------------------- aggregation
@dataclass(frozen=True)
class Row:
    """One table row: a model × method, with its scores per seed (seeds × columns, in %)."""

    model: str
    method: str
    params_percent: float
    scores: pd.DataFrame
    examples: dict[str, Examples] = field(default_factory=dict)  # column → pooled per-example record
    names: tuple[str, ...] = ()   # the runs behind the row (their sweeps' selection records give its tuning)
    seconds: float = 0.0          # the row's own runs: train + eval wall seconds, all seeds
    partial_seconds: bool = False  # a run resumed without the earlier processes' time: seconds is a lower bound


def table_rows(df: pd.DataFrame, suite: str) -> list[Row]:
    """Our rows for ``suite``, ordered by model then method; columns named as the paper names them,
    plus ``Avg`` (per seed, over the paper's tasks the table holds; "—" for a row without one of
    them) and tasks outside the paper's table; the majority-class row first."""
    spec = layout(suite)
    results = df[df["suite"] == suite]
    if results.empty:
        raise ValueError(f"no results for suite {suite!r}; suites present: {sorted(df['suite'].unique())}")
    tasks = [column for task, column in spec.columns.items() if task in set(results["task"])]
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
        examples = {spec.columns.get(task, task): cell for task, by_task in group.groupby("task")
                    if (cell := pooled(by_task)) is not None}
        runs = group.drop_duplicates(["name", "seed"])
        seconds = runs["train_seconds"].sum() + group["eval_seconds"].sum()
        rows.append(_with_average(spec, Row(model, method, float(group["params_percent"].mean()),
                                            scores.rename(columns=spec.columns), examples,
                                            tuple(sorted(group["name"].unique())), float(seconds),
                                            bool(runs["train_seconds_partial"].any())), tasks))
    order = list(METHOD_LABELS.values())
    rows = sorted(rows, key=lambda r: (r.model, order.index(r.method) if r.method in order else len(order),
                                       r.method))
    scores, examples = majority_cells(results, spec.columns)
    majority = [_with_average(spec, Row("—", MAJORITY, float("nan"), scores, examples), tasks)] if examples else []
    return majority + rows


def _with_average(spec: Layout, row: Row, tasks: list[str]) -> Row:
    """The row with its ``Avg`` column: per seed, the mean over ``tasks`` (the paper's tasks any row
    of the table ran); a row without one of them gets no Avg ("—"), since an average over fewer
    tasks would not compare with the others."""
    if spec.average and tasks and all(c in row.scores for c in tasks):
        row.scores["Avg"] = row.scores[tasks].mean(axis=1)
    for column, members in spec.groups.items():
        if all(c in row.scores for c in members):
            row.scores[column] = row.scores[list(members)].mean(axis=1)
    return row


def table_columns(suite: str, rows: list[Row]) -> list[str]:
    """The paper's columns (and Avg), then any other task we ran."""
    spec = layout(suite)
    paper = list(spec.columns.values()) + (["Avg"] if spec.average else [])
    groups = [c for c in spec.groups if any(c in row.scores for row in rows)]
    return paper + groups + sorted({c for row in rows for c in row.scores} - set(paper) - set(spec.groups))


def format_params(percent: float) -> str:
    """Params% to three decimals as the paper prints it; two significant digits below 0.01 (0.0039)."""
    if pd.isna(percent):
        return MISSING
    return f"{percent:.3f}" if percent == 0 or percent >= 0.01 else f"{percent:.2g}"


def cell_text(values: pd.Series | None, cells: list[Examples] | None = None,
              bounds: tuple[float, float] | None = None) -> str:
    """``mean ± std over seeds [95% interval over test examples] n=examples scored``; the interval
    and n where per-example records exist (``cells``: one, or the tasks an Avg averages; ``bounds``:
    their interval where the caller has it already, so it is not bootstrapped twice)."""
    if values is None:
        return MISSING
    if values.isna().any():  # a metric that came out NaN (e.g. Pearson of constant predictions): named, not hidden
        return "NaN (seed " + ", ".join(map(str, values.index[values.isna()])) + ")"
    mean = values.mean()
    text = f"{mean:.1f}" if len(values) < 2 else f"{mean:.1f} ± {values.std(ddof=1):.1f}"
    if cells:  # per-example records hold fractions (a win rate's: preferences in [0, 1])
        low, high = bounds if bounds is not None else interval(*cells)
        text += f" [{100 * low:.1f}, {100 * high:.1f}] n={sum(cell.n for cell in cells):,d}"
    return text


def cell_records(row: Row, column: str, spec: Layout) -> list[Examples] | None:
    """The per-example records behind one cell: the task's, or every task an average covers (None
    where any is missing)."""
    if column not in ("Avg", *spec.groups):
        return [row.examples[column]] if column in row.examples else None
    tasks = list(spec.groups[column]) if column in spec.groups else [c for c in spec.columns.values()
                                                                       if c in row.scores]
    return [row.examples[c] for c in tasks] if tasks and all(c in row.examples for c in tasks) else None


TUNING_COLUMNS = ("Tuning runs", "Tuning h", "Final h")


def suite_table(df: pd.DataFrame, suite: str, budgets: dict[str, dict] | None = None) -> pd.DataFrame:
    """The paper's layout: Model, Method, Params%, each task, Avg, Seeds; cells "mean ± sample std"
    over seeds (one seed: the mean) and, from per-example records, "[95% interval] n=examples",
    tasks we did not run "—"; the majority-class row first. With ``budgets``
    (``benchmarks.report.budgets.load_budgets``), what each row cost after Params%: the dev runs
    that chose its configuration, their hours, and the hours of its own (final) runs."""
    from benchmarks.report.budgets import hours, row_budget

    rows = table_rows(df, suite)
    columns = table_columns(suite, rows)
    spec = layout(suite)
    cost = {}
    for row in rows if budgets is not None else []:
        spent = row_budget(row.names, budgets)
        cost[id(row)] = dict(zip(TUNING_COLUMNS, (MISSING, MISSING, MISSING) if row.method == MAJORITY else
                                 (MISSING if spent is None else spent["trials"],
                                  hours(None if spent is None else spent["seconds"]),
                                  ("≥ " if row.partial_seconds else "") + hours(row.seconds))))
    records = [{"Model": row.model, "Method": row.method, "Params%": format_params(row.params_percent),
                **cost.get(id(row), {}),
                **{c: cell_text(row.scores.get(c), cell_records(row, c, spec)) for c in columns}, "Seeds": len(row.scores)}
               for row in rows]
    shown = list(TUNING_COLUMNS) if budgets is not None else []
    return pd.DataFrame(records, columns=["Model", "Method", "Params%", *shown, *columns, "Seeds"])


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


def comparable(df: pd.DataFrame, suite: str) -> bool:
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
        if not comparable(df, suite):
            continue
        for match in matches.to_dict("records"):
            difference = {c: ours[c] - match[c] for c in paper_tasks if c in ours}
            if "Avg" in ours and all(c in ours for c in paper_tasks):  # averages over the same tasks only
                difference["Avg"] = ours["Avg"] - match["Avg"]
            records.append({"Source": f"ours − paper ({match['Model']})", "Model": row.model,
                            "Method": row.method, **difference})
    return pd.DataFrame(records, columns=["Source", "Model", "Method", "Params%", *columns, "Seeds"])


# ---------------------------------------------------------------- notes
def table_notes(df: pd.DataFrame, suite: str) -> list[str]:
    """What a reader needs to read the table: models, data subsets, seeds, metrics, judge."""
    spec, results = layout(suite), df[df["suite"] == suite]

    def name(task: str) -> str:
        return spec.columns.get(task, task)

    sizes = ", ".join(f"{name(t)} {'/'.join(map(str, sorted(g['n'].unique())))}" for t, g in results.groupby("task"))
    absent = [c for t, c in spec.columns.items() if t not in set(results["task"])]
    metrics = "; ".join(f"{m} ({', '.join(name(t) for t in sorted(g['task'].unique()))})"
                        for m, g in results.groupby("metric"))
    ran_per_row = [{name(t) for t in g["task"]} for _, g in results.groupby(["model", "method"])]
    trained = results[results["method"] != METHOD_LABELS["none"]].dropna(subset=["train_rows"])
    rows_per_task = "; ".join(f"{name(task)} {', '.join(f'{int(n):,d}' for n in sorted(g['train_rows'].unique()))}"
                              for task, g in trained.groupby("task"))
    notes = [f"Models: {', '.join(sorted(results['model'].unique()))}.",
             f"Data: examples scored per task (split {', '.join(sorted(results['split'].unique()))}): {sizes}."
             + (f" Not run: {', '.join(absent)} (—)." if absent else "")
             + (f" Training rows per run, by scored task: {rows_per_task}." if rows_per_task else ""),
             f"Seeds: {', '.join(map(str, sorted(results['seed'].unique())))}; each row's count is its Seeds column. "
             "Cells are the mean ± sample standard deviation over seeds (one seed: the mean)"
             + ("; where the results carry per-example records, [low, high] is the 95% bootstrap interval over "
                "the test examples of all seeds (each seed resampled on its own) and n the examples scored, all "
                "seeds together." if results["examples"].notna().any() else ".")
             + (" The majority-class row gives every example the scored set's most frequent answer: the best a "
                "constant answer does." if any(isinstance(e, dict) and "gold" in e for e in results["examples"])
                else ""),
             f"Metrics (primary, shown in %): {metrics}."
             + (" Avg: per seed, the mean over the paper's tasks present, for rows that ran all of them; tasks "
                "after Avg are not in the paper's table and not in Avg." if spec.average else "")
             + "".join(f" {column}: the same mean over {', '.join(members)} only." for column, members
                       in spec.groups.items() if any(set(members) <= ran for ran in ran_per_row))]
    undefined = results[results["value"].isna()]
    if not undefined.empty:
        notes.append("NaN: " + "; ".join(f"{r.method} {name(r.task)} {r.metric}, seed {r.seed} ({Path(r.file).name})"
                                         for r in undefined.itertuples())
                     + ". The metric is undefined for these runs' predictions (e.g. a constant prediction); "
                     "a row's Avg is NaN where a task is.")
    runs = results.drop_duplicates(["name", "seed"])
    partial = int(runs["train_seconds_partial"].sum())
    notes.append(f"Compute: {len(runs)} runs; training {'at least ' if partial else ''}"
                 f"{runs['train_seconds'].sum() / 60:.0f} min and evaluation {results['eval_seconds'].sum() / 60:.0f} "
                 "min in all, as recorded in the results (wall time of the runs' processes"
                 + (f"; {partial} run(s) resumed after a kill from a checkpoint that did not record the training time "
                    "before it, so their training counts only the last process: ≥ in Final h" if partial else "")
                 + ").")
    judges = sorted(j for j in results["judge"].dropna().unique())
    if judges:
        agreements = {r.judge: r.judge_agreement for r in results.itertuples() if isinstance(r.judge_agreement, dict)}
        named = [j + (f" (agreement with GPT-4 on n = {agreements[j]['n']:,d} AlpacaEval pairs: accuracy "
                      f"{agreements[j]['accuracy']:.1f}, Cohen's κ {agreements[j]['kappa']:.2f})" if j in agreements else "")
                 for j in judges]
        notes.append(f"Judge: {', '.join(named)}; " + ("comparable with the paper." if comparable(df, suite) else
                     "**not comparable with the paper's numbers** (the paper's judge is GPT-4 on AlpacaEval v1.0); "
                     "use it to compare runs of this harness with each other."))
    return notes
