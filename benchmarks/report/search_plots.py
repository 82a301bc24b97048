"""Figures of an equal-budget search (issue 14), from its selection record alone
(``results/selections/<sweep>.json``, which ``search_record.select_from_search`` writes with every trial and
``reft collect`` copies), so they regenerate on a fresh clone:

* ``<sweep>_tuning_budget``: the best dev score found so far against the number of trials, per
  method: how much a method's score depends on its tuning budget (a curve still rising at the end
  was not tuned enough);
* ``<sweep>_importances``: Optuna's fANOVA parameter importances per method (which hyperparameters
  the dev score depended on), drawn from an in-memory study rebuilt from the recorded trials.

    write_search_plots("results/selections", "results/plots")
"""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure

from benchmarks.report.plots import method_color, save_figure
from benchmarks.report.tables import METHOD_LABELS


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def best_so_far(trials: list[dict]) -> list[float | None]:
    """The best completed dev value after each counted trial (in trial order); None before the first."""
    best, curve = None, []
    for trial in sorted((t for t in trials if t["counted"]), key=lambda t: t["number"]):
        if trial["state"] == "complete" and trial["value"] is not None:
            best = trial["value"] if best is None else max(best, trial["value"])
        curve.append(best)
    return curve


def plot_tuning_budget(record: dict, path: Path) -> list[Path]:
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    ax = figure.subplots()
    for method, trials in record["trials"].items():
        curve = best_so_far(trials)
        points = [(i + 1, 100 * v) for i, v in enumerate(curve) if v is not None]
        if points:
            ax.plot(*zip(*points), marker="o", ms=3, color=method_color(_label(method)), label=_label(method))
    budget = record.get("tuning", {})
    ax.set_xlabel("trials (counted toward the equal budget)")
    ax.set_ylabel("best dev score so far (%)")
    ax.set_title(f"{record['sweep']}: tuning budget, {budget.get('sampler', '?')} sampler, "
                 f"{budget.get('trials') or budget.get('seconds')} {'trials' if budget.get('trials') else 's'} "
                 "per method", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return save_figure(figure, path)


def _distribution(spec: dict):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if spec["type"] == "float":
        return FloatDistribution(spec["low"], spec["high"], log=spec.get("log", False), step=spec.get("step"))
    if spec["type"] == "int":
        return IntDistribution(spec["low"], spec["high"], log=spec.get("log", False), step=spec.get("step", 1))
    return CategoricalDistribution([json.dumps(c) if isinstance(c, (list, dict)) else c for c in spec["choices"]])


def importances(record: dict, method: str) -> dict[str, float]:
    """fANOVA importances of ``method``'s parameters over its completed trials ({} with fewer than 2
    or when every trial scored the same)."""
    import optuna

    space = record["space"][method]
    study = optuna.create_study(direction="maximize")
    for trial in record["trials"][method]:
        if trial["state"] != "complete" or trial["value"] is None:
            continue
        params = {k: v for k, v in trial["params"].items() if k in space}
        study.add_trial(optuna.trial.create_trial(params=params, value=trial["value"],
                                                  distributions={k: _distribution(space[k]) for k in params}))
    values = {t.value for t in study.trials}
    if len(study.trials) < 2 or len(values) < 2:
        return {}
    return optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))


def plot_importances(record: dict, path: Path) -> list[Path]:
    methods = list(record["trials"])
    figure = Figure(figsize=(4 * len(methods), 3.2), layout="constrained")
    axes = figure.subplots(1, len(methods), squeeze=False)[0]
    for ax, method in zip(axes, methods):
        found = importances(record, method)
        names = list(found)[::-1]
        ax.barh(names, [found[n] for n in names], color=method_color(_label(method)))
        ax.set_xlim(0, 1)
        ax.set_title(f"{_label(method)}" + ("" if found else " (too few distinct trials)"), fontsize=9)
        ax.set_xlabel("fANOVA importance")
    figure.suptitle(f"{record['sweep']}: which hyperparameters the dev score depended on", fontsize=10)
    return save_figure(figure, path)


def write_search_plots(selections: str | Path = "results/selections", plots: str | Path = "results/plots") -> list[Path]:
    """Both figures for every selection record that holds a search's trials."""
    written = []
    for path in sorted(Path(selections).glob("*.json")) if Path(selections).is_dir() else []:
        record = json.loads(path.read_text())
        if "trials" not in record:
            continue
        written += plot_tuning_budget(record, Path(plots) / f"{record['sweep']}_tuning_budget")
        written += plot_importances(record, Path(plots) / f"{record['sweep']}_importances")
    return written
