"""What each table row's tuning cost: the dev runs its sweep spent choosing the row's
configuration and their train + eval hours, read from the sweeps' selection records
(``results/selections/<sweep>.json``; ``benchmarks.sweeps.select`` and ``.search`` write the
``budget`` entry). A comparison is only as fair as its tuning budget (issue 14), so the tables show
it next to Params% and the score.

    budgets = load_budgets("results/selections")   # '<sweep>-final-<method key>' → {trials, seconds}
    row_budget(["glue-cpu-final-lora_mrpc-lr5e-04"], budgets)   # {"trials": 2, "seconds": 250.0}

Records written before the budget was kept give the number of dev runs (from their dev scores)
and no seconds (None: shown "—").
"""

from __future__ import annotations

import json
from pathlib import Path


def load_budgets(selections: str | Path) -> dict[str, dict]:
    """Final-run name prefix (``<sweep>-final-<method key>``) → ``{"trials": dev runs, "seconds": s | None}``."""
    budgets = {}
    folder = Path(selections)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = json.loads(path.read_text())
        for key in record.get("chosen", {}):
            spent = record.get("budget", {}).get(key)
            if spent is None:  # an older record: count the dev runs its scores name
                spent = {"trials": sum(len(entry.get("seeds", {None: 0}))
                                       for entry in record.get("dev_scores", {}).get(key, {}).values()),
                         "seconds": None}
            budgets[f"{record['sweep']}-final-{key}"] = {"trials": int(spent["trials"]), "seconds": spent["seconds"]}
    return budgets


def _prefix(name: str, budgets: dict[str, dict]) -> str | None:
    """The longest budget prefix that ``name`` is a final run of (the prefix, or it then ``-<point>``)."""
    matches = [p for p in budgets if name == p or name.startswith(p + "-")]
    return max(matches, key=len) if matches else None


def row_budget(names: list[str] | tuple[str, ...], budgets: dict[str, dict]) -> dict | None:
    """The summed budget of the sweep methods behind a row's runs (a GLUE row joins one per task);
    None where a run comes from no known sweep (e.g. a run trained by hand)."""
    prefixes = {_prefix(name, budgets) for name in names}
    if not names or None in prefixes:
        return None
    spent = [budgets[p] for p in sorted(prefixes)]
    seconds = [b["seconds"] for b in spent]
    return {"trials": sum(b["trials"] for b in spent),
            "seconds": None if any(s is None for s in seconds) else float(sum(seconds))}


def hours(seconds: float | None) -> str:
    """Seconds as hours to two decimals ("—" when unknown)."""
    return "—" if seconds is None else f"{seconds / 3600:.2f}"
