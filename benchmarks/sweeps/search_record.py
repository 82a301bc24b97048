"""What an equal-budget search (``benchmarks.sweeps.search``) leaves: every trial as ``reft sweep
status`` lists it, and the selection record (``<sweep>/selection.json``) whose best trial per method
becomes the final stage's point, with the budget each method used and every trial (for the tables
and figures: ``benchmarks.report.search_plots``, ``benchmarks.report.searches``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from benchmarks.sweeps.search import counted_numbers, killed, study_of
from benchmarks.sweeps.select import SELECTION_FILE
from benchmarks.sweeps.spec import SweepSpec, point_label
from reft.files import atomic_write_json


def trials_table(spec: SweepSpec) -> list[dict]:
    """Every trial of every method: number, state, point, dev score, seconds (``reft sweep status``)."""
    rows = []
    for method in spec.methods:
        study = study_of(spec, method)
        everything = study.get_trials(deepcopy=False)
        lost, numbers = killed(everything), counted_numbers(everything)
        for trial in everything:
            rows.append({"method": method, "trial": trial.number, "state": trial.state.name.lower()
                         + (" (killed)" if trial.number in lost else "")
                         + (f" (repeats #{trial.user_attrs['duplicate_of']})" if "duplicate_of" in trial.user_attrs
                            else " (repeat)" if trial.number not in numbers | lost and trial.state.name in ("COMPLETE", "FAIL")
                            and "refused" not in trial.user_attrs else ""),
                         "point": trial.user_attrs.get("point", trial.params), "dev": trial.value,
                         "seconds": trial.user_attrs.get("seconds"), "counted": trial.number in numbers})
    return rows


def trials_report(spec: SweepSpec) -> str:
    """The search's trials per method, as ``reft sweep status`` prints them: counted trials and
    seconds per method; per trial its state, dev score, seconds and point."""
    rows = trials_table(spec)
    budget = f"{spec.tuning.trials} trials" if spec.tuning.trials is not None else f"{spec.tuning.seconds:.0f} s"
    lines = [f"search of sweep {spec.name}: {budget} per method, {spec.tuning.sampler} sampler"]
    for method in spec.methods:
        mine = [row for row in rows if row["method"] == method]
        used = sum(row["counted"] for row in mine)
        lines.append(f"  {method}: {used} counted trial(s), "
                     f"{sum(row['seconds'] or 0 for row in mine if row['counted']):.0f} s")
        for row in mine:
            dev = "" if row["dev"] is None else f"dev {row['dev']:.4f}"
            seconds = "" if row["seconds"] is None else f"{row['seconds']:.0f} s"
            lines.append(f"    #{row['trial']:<3} {row['state']:<18} {dev:<12} {seconds:<7} {row['point']}")
    return "\n".join(lines)


def select_from_search(spec: SweepSpec, log=print) -> dict:
    """Each method's best completed trial (highest dev score; ties: the earliest, with a warning)
    becomes its final point; writes the sweep's selection record as ``select`` does."""
    from optuna.trial import TrialState

    chosen, scores, budget, trials = {}, {}, {}, {}
    for method in spec.methods:
        study = study_of(spec, method)
        counted = counted_numbers(study.get_trials(deepcopy=False))
        done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE and t.number in counted]
        if not done:
            raise FileNotFoundError(f"sweep {spec.name}: method {method} has no completed trial; run the search")
        top = max(t.value for t in done)
        best = min((t for t in done if t.value == top), key=lambda t: t.number)
        tied = [t.number for t in done if t.value == top]
        if len(tied) > 1:
            log(f"sweep {spec.name}: warning: {method}: trials {tied} tie at the best dev score {top:.4g}; the "
                "earliest is chosen, but the dev set does not tell them apart")
        chosen[method] = best.user_attrs["point"]
        scores[method] = {point_label(t.user_attrs["point"]): {"trial": t.number, "score": t.value}
                          for t in done}
        everything = study.get_trials(deepcopy=False)
        numbers = counted_numbers(everything)
        used = [t for t in everything if t.number in numbers]
        budget[method] = {"trials": len(used), "seconds": round(sum(t.user_attrs.get("seconds", 0.0)
                                                                      for t in used), 1)}
        trials[method] = [{"number": t.number, "state": t.state.name.lower(), "value": t.value,
                           "params": t.params, "point": t.user_attrs.get("point"), "counted": t.number in numbers,
                           "seconds": t.user_attrs.get("seconds")} for t in everything]
    record = {"sweep": spec.name, "suite": spec.suite,
              "criterion": f"best dev score of an equal budget per method ({dataclasses.asdict(spec.tuning)})",
              "tuning": dataclasses.asdict(spec.tuning),
              "space": {method: m.search for method, m in spec.methods.items()},
              "dev_scores": scores, "chosen": chosen, "budget": budget, "trials": trials}
    atomic_write_json(Path(spec.root) / SELECTION_FILE, record)
    return record


__all__ = ["trials_table", "trials_report", "select_from_search"]
