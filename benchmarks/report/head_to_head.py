"""Instruction following against the untrained model: each trained row's AlpacaEval outputs judged
pairwise against the untrained model's outputs for the same instructions, by the judge the runs
recorded. A win rate against text-davinci-003 says how a run compares with a fixed reference; this
says whether training changed the model's answers for the better, by the same judge.

Per instruction the judge gives p = P(trained output better than the untrained one) (1, 0, or 0.5
for the length judge); the win rate is 100 · mean p over the instructions of all the row's seeds,
its 95% interval the stratified bootstrap of ``benchmarks.report.stats.interval``, and p-value an
exact two-sided sign test of wins against losses (ties left out): does the judge prefer one side
more often than a coin would? The untrained model decodes greedily, so its outputs are the same
for every seed; a trained seed is paired with the untrained run of the same seed where there is one,
else with the untrained run's first seed.

Only judges that read the two texts alone (``benchmarks.experiments.judges.TEXT_ONLY_JUDGES``, the
length judge) are re-run here; a model judge's rows are left out with a note, since tables must not
load a language model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from benchmarks.report.stats import Examples, interval, point

TASK = "instruction/alpaca_eval"
UNTRAINED = "untrained"
COLUMNS = ["Model", "Method", "Judge", "n", "Wins", "Ties", "Losses", "Win rate vs untrained", "p"]


def _outputs(group: pd.DataFrame) -> dict[int, dict[str, str]]:
    """``{seed: {id: output}}`` of one row's AlpacaEval results (seeds without outputs left out)."""
    outputs = {}
    for r in group.itertuples():
        if isinstance(r.examples, dict) and "output" in r.examples:
            outputs[int(r.seed)] = dict(zip(r.examples["ids"], r.examples["output"]))
    return outputs


def head_to_head_table(df: pd.DataFrame, suite: str) -> tuple[pd.DataFrame, list[str]]:
    """One line per trained row of ``suite`` with an untrained row of the same model and judge,
    and notes naming the rows left out."""
    from benchmarks.experiments.judges import TEXT_ONLY_JUDGES, get_judge

    results = df[(df["suite"] == suite) & (df["task"] == TASK)]
    records, notes = [], []
    for (model, judge), by_judge in results.groupby(["model", "judge"]):
        untrained = _outputs(by_judge[by_judge["method"] == UNTRAINED])
        if not untrained:
            continue
        for method, group in by_judge[by_judge["method"] != UNTRAINED].groupby("method"):
            if judge not in TEXT_ONLY_JUDGES:
                notes.append(f"{method} on {model}: judge {judge} needs its model; not re-judged here")
                continue
            scorer, seeds, ids, preference = get_judge(judge), [], [], []
            for seed, outputs in sorted(_outputs(group).items()):
                against = untrained.get(seed, untrained[min(untrained)])
                for example_id in (i for i in outputs if i in against):
                    seeds.append(seed)
                    ids.append(example_id)
                    preference.append(scorer.preference("", outputs[example_id], against[example_id]))
            if not preference:
                continue
            cell = Examples("win_rate", np.asarray(seeds), np.asarray(ids), correct=np.asarray(preference))
            wins, losses = int(np.sum(cell.correct == 1)), int(np.sum(cell.correct == 0))
            low, high = interval(cell)
            p = 1.0 if wins + losses == 0 else stats.binomtest(wins, wins + losses, 0.5).pvalue
            records.append({"Model": model, "Method": method, "Judge": judge, "n": cell.n, "Wins": wins,
                            "Ties": cell.n - wins - losses, "Losses": losses,
                            "Win rate vs untrained": f"{100 * point(cell):.1f} [{100 * low:.1f}, {100 * high:.1f}]",
                            "p": "<0.001" if p < 0.001 else f"{p:.3f}"})
    return pd.DataFrame(records, columns=COLUMNS), notes


def head_to_head_block(df: pd.DataFrame, suite: str) -> str:
    """The table as a markdown block under the suite's table (empty where nothing pairs)."""
    if suite != "instruction":
        return ""
    table, notes = head_to_head_table(df, suite)
    if table.empty and not notes:
        return ""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(f"{v:,d}" if isinstance(v, (int, np.integer)) else str(v) for v in values) + " |"
              for values in table.itertuples(index=False)]
    return ("\n**Against the untrained model** (each trained row's outputs judged against the untrained "
            "model's for the same instructions; 50 = no better; exact sign test of wins against losses, "
            "two-sided):\n\n" + "\n".join(lines) + "\n" + "".join(f"\n- {note}" for note in notes)
            + ("\n" if notes else ""))
