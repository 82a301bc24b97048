"""Trained runs re-scored on other splits: the rows a run trained on beside held-out rows of the
same tasks (``reft eval RUN data.eval_split=train ...``, collected with ``reft collect
RUN/evals/LABEL`` into ``results/rescored/<suite>/``).

Why: a trained row that does not beat the majority answer on the test set has either not fitted
its training data (it underfits: more rows of the same kind will not help, a larger step or model
might) or fitted it without generalising (it overfits). Scoring the run on its own training rows
tells the two apart. A run that scores on the rows it trained on what the most frequent answer
scores there has learnt the label prior, not the examples.

    write_rescored("results/rescored", "results/tables")   # tables/<suite>-rescored.md

One line per re-scored run × split × task: n, how many of the scored rows are training rows (the
re-scoring's own contamination count: the prompt, or at least half of its word 8-grams, among the
training prompts; the n-gram count, since with several training tasks the templates differ and the
exact one misses them), the run's accuracy with its 95% interval, the majority-class accuracy on the
same rows, run − majority with its paired bootstrap interval and McNemar p, and how often the run
gave its most frequent answer. Reading: ``above majority`` / ``below majority`` where p < 0.05;
``majority answer on every example`` where the run gave every row the majority answer; ``scored
alike on every example`` where it scored each row as the majority answer does without giving it
everywhere; else ``no difference`` (not detectably better or worse). A task without per-example
correctness (a corpus metric, a judged win rate) or with no rows gets a line of ``—``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from benchmarks.report.cells import majority_answer, majority_correct
from benchmarks.report.headline import SIGNIFICANCE, identical
from benchmarks.report.publish import markdown_table
from benchmarks.report.stats import difference_interval, interval, paired_test, point, pool
from benchmarks.report.tables import GENERATED, METHOD_LABELS, MISSING, layout

COLUMNS = ["Run", "Method", "Seed", "Split", "Task", "n", "Trained on", "Accuracy [95%]", "Majority class [95%]",
           "Run − majority [95%]", "p", "Most frequent answer", "Reading"]


def _percent_cell(cell) -> str:
    low, high = interval(cell)
    return f"{100 * point(cell):.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def rescored_line(result: dict, task: str, record: dict) -> dict:
    """One table line: a re-scored run's task against the majority class on the same rows."""
    line = {"Run": result["name"], "Method": METHOD_LABELS.get(result["method"]["name"], result["method"]["name"]),
            "Seed": int(result["seed"]), "Split": record["split"],
            "Task": layout(result["suite"]).columns.get(task, task.split("/")[-1]), "n": f"{record['n']:,d}"}
    overlap = (result.get("contamination") or {}).get(f"{task}:{record['split']}")
    line["Trained on"] = MISSING if overlap is None else f"{overlap['ngram']:,d}"
    examples = record.get("examples", {})
    if "correct" not in examples or not examples["correct"]:
        return {**{column: MISSING for column in COLUMNS}, **line, "Reading": "no per-example correctness"}
    run = pool("accuracy", {line["Seed"]: examples})
    majority = pool("accuracy", {line["Seed"]: {"ids": examples["ids"],
                                                "correct": majority_correct(examples["gold"])}})
    test = paired_test(run, majority)
    low, high = (100 * x for x in difference_interval(run, majority))
    predicted = [str(answer) for answer in examples.get("predicted", [])]
    if predicted and set(predicted) == {str(majority_answer(examples["gold"]))}:
        reading = "majority answer on every example"
    elif identical(run, majority):
        reading = "scored alike on every example"
    elif test.p_value < SIGNIFICANCE:
        reading = "above majority" if test.difference > 0 else "below majority"
    else:
        reading = "no difference"
    frequent = MISSING
    if predicted:
        answer, count = Counter(predicted).most_common(1)[0]
        frequent = f"{answer!r}: {count:,d} of {len(predicted):,d}"
    return {**line, "Accuracy [95%]": _percent_cell(run), "Majority class [95%]": _percent_cell(majority),
            "Run − majority [95%]": f"{100 * test.difference:+.1f} [{low:+.1f}, {high:+.1f}]",
            "p": "<0.001" if test.p_value < 0.001 else f"{test.p_value:.3f}", "Most frequent answer": frequent,
            "Reading": reading}


def rescored_table(root: str | Path, suite: str) -> pd.DataFrame:
    """Every re-scored run of ``suite`` under ``root`` (``<root>/<suite>/*.json``), one line per task."""
    lines = []
    for path in sorted(Path(root, suite).glob("*.json")):
        result = json.loads(path.read_text())
        if "rescored" not in result:
            raise ValueError(f"{path}: not a re-scoring (collect `reft eval`'s RUN/evals/LABEL folders here)")
        lines += [rescored_line(result, task, record) for task, record in result["tasks"].items()]
    order = (lambda line: (line["Run"], line["Seed"], line["Split"] != "train", line["Split"], line["Task"]))
    return pd.DataFrame(sorted(lines, key=order), columns=COLUMNS)


def write_rescored(root: str | Path = "results/rescored", out: str | Path = "results/tables") -> list[Path]:
    """``<suite>-rescored.md`` for every suite with re-scored runs under ``root`` ([] where none)."""
    from reft.files import atomic_write_text  # imports torch: only when asked

    written = []
    for folder in sorted(p for p in Path(root).glob("*") if p.is_dir()):
        table = rescored_table(root, folder.name)
        if table.empty:
            continue
        title = layout(folder.name).title.split(" (")[0]
        text = (f"# {title}: trained runs re-scored on the rows they trained on and on held-out rows\n\n"
                + markdown_table(table) + "\n"
                "- Each line: one run re-scored (`reft eval`) on the first n rows of a task's split, the same decoding "
                "and extraction as its test scores. Trained on: how many of those n prompts are among the run's "
                "training prompts (the re-scoring's contamination count: the normalised prompt, or at least half "
                "its word 8-grams, found there).\n"
                "- Majority class: every row given the most frequent gold answer of these rows. Run − majority: "
                "paired percentile bootstrap interval (2,000 resamples) and exact McNemar p on the same rows; "
                "p ≥ 0.05 reads as no difference (not detectably better or worse: the interval says by how much "
                "it could be). A run not detectably better than the majority class on rows it trained on has not "
                "fitted them beyond the answer format and the label prior.\n" + GENERATED)
        target = Path(out) / f"{folder.name}-rescored.md"
        atomic_write_text(target, text)
        written.append(target)
    return written


__all__ = ["rescored_line", "rescored_table", "write_rescored"]
