"""Agreement of the offline judges with the paper's GPT-4 judge, from the records
``reft judge-agreement`` writes (``results/judges/raw/<judge>.json``).

For each judge, on the pairs where GPT-4 did not call a tie, the judge's decision is the side it
prefers (p > 0.5: the model; p < 0.5: text-davinci-003; p = 0.5 counts as a disagreement):

* **accuracy** = share of pairs where the judge picks GPT-4's side, with the Wilson 95% interval
  (``scipy.stats.binomtest(...).proportion_ci``);
* **Cohen's kappa** = (p_o − p_e) / (1 − p_e), agreement beyond what the two judges' label rates
  give by chance (``sklearn.metrics.cohen_kappa_score``), with a 95% bootstrap interval over pairs
  (``scipy.stats.bootstrap``, percentile, 2,000 resamples, seeded);
* **win rates** per model: GPT-4's (AlpacaEval v1: a tie counts half) next to the judge's
  (100 · mean p), on the same pairs.

The reference row "always text-davinci-003" picks the reference every time: its accuracy is the
share of pairs GPT-4 gave the reference, its kappa 0. A judge is worth using only where its kappa
interval lies above 0; the chosen judge is the complete record with the highest kappa.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from benchmarks.report.plots import save_figure
from benchmarks.report.tables import GENERATED

REFERENCE_ROW = "always text-davinci-003"
RESAMPLES, SEED = 2000, 0


def _kappa(gpt4: np.ndarray, decision: np.ndarray) -> float:
    if len(np.unique(np.concatenate([gpt4, decision]))) < 2:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = cohen_kappa_score(gpt4, decision, labels=[0, 1, 2])
    return 0.0 if np.isnan(value) else float(value)


def agreement(record: dict) -> dict:
    """Accuracy, kappa (each with a 95% interval) and per-model win rates of one judge's record."""
    gpt4, preference = np.asarray(record["gpt4"], dtype=int), np.asarray(record["preference"], dtype=float)
    models = np.asarray([pair_id.rsplit(":", 1)[0] for pair_id in record["ids"]])
    decision = np.where(preference > 0.5, 2, np.where(preference < 0.5, 1, 0))
    decided = gpt4 != 0
    hits, n = int((decision[decided] == gpt4[decided]).sum()), int(decided.sum())
    if n == 0:
        raise ValueError(f"judge {record['judge']}: no pair with a GPT-4 decision to compare with")
    low, high = stats.binomtest(hits, n).proportion_ci(confidence_level=0.95, method="wilson")
    pairs = (gpt4[decided], decision[decided])
    kappa = _kappa(*pairs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = stats.bootstrap(pairs, _kappa, paired=True, vectorized=False, n_resamples=RESAMPLES,
                               method="percentile", random_state=SEED)
    win_rates = {}
    for model in sorted(set(models)):
        mask = models == model
        gpt4_wins = np.where(gpt4[mask] == 2, 1.0, np.where(gpt4[mask] == 0, 0.5, 0.0))  # a tie counts half
        win_rates[model] = {"gpt4": float(100 * gpt4_wins.mean()), "judge": float(100 * preference[mask].mean()),
                            "n": int(mask.sum())}
    return {"accuracy": 100.0 * hits / n, "accuracy_ci": [100 * low, 100 * high], "kappa": kappa,
            "kappa_ci": [float(boot.confidence_interval.low), float(boot.confidence_interval.high)],
            "n": n, "ties_left_out": int((~decided).sum()), "complete": bool(record.get("complete")),
            "pairs_per_second": record.get("pairs_per_second"), "win_rates": win_rates,
            "reference_share": 100.0 * float((gpt4[decided] == 1).mean()), "sample": _sample(record)}


def _sample(record: dict) -> str:
    sample = record.get("sample") or {}
    if sample.get("per_model") is None:
        return "all rows"
    return f"{sample['per_model']} per model (seed {sample.get('seed', 0)})"


def load_records(raw: str | Path) -> dict[str, dict]:
    """The judges' records in ``raw``, by judge name."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(Path(raw).glob("*.json"))}


def _cell(value: float, interval: list[float], spec: str) -> str:
    return f"{value:{spec}} [{interval[0]:{spec}}, {interval[1]:{spec}}]"


def table(rows: dict[str, dict], chosen: str | None) -> str:
    largest = max(rows.values(), key=lambda row: row["n"])
    models = sorted({model for row in rows.values() for model in row["win_rates"]})
    lines = ["| Judge | Instructions | n (non-tie pairs) | Accuracy vs GPT-4 [95% CI] | Cohen's κ [95% CI] | "
             f"Win rate, judge / GPT-4 ({', '.join(models)}) | Pairs/s |", "|---|---|---|---|---|---|---|",
             f"| {REFERENCE_ROW} | {largest['sample']} | {largest['n']:,} | {largest['reference_share']:.1f} | "
             "0.00 | — | — |"]
    for name, row in sorted(rows.items(), key=lambda item: -item[1]["kappa"]):
        rates = ", ".join(f"{row['win_rates'][m]['judge']:.1f} / {row['win_rates'][m]['gpt4']:.1f}"
                          if m in row["win_rates"] else "—" for m in models)
        rate = row.get("pairs_per_second")
        speed = "—" if not rate else f"{rate:.2f}" if rate < 1000 else "> 1,000"
        mark = " (chosen)" if name == chosen else "" if row["complete"] else " (incomplete)"
        accuracy, kappa = _cell(row["accuracy"], row["accuracy_ci"], ".1f"), _cell(row["kappa"], row["kappa_ci"], ".2f")
        lines.append(f"| `{name}`{mark} | {row['sample']} | {row['n']:,} | {accuracy} | {kappa} | {rates} | {speed} |")
    return "\n".join(lines) + "\n"


def plot(rows: dict[str, dict], path: Path) -> list[Path]:
    """Accuracy and kappa per judge with their intervals, the reference share as a line."""
    names = sorted(rows, key=lambda name: -rows[name]["kappa"])
    figure = Figure(figsize=(9, 3.4), layout="constrained")
    for axis, key, label in zip(figure.subplots(1, 2), ("accuracy", "kappa"),
                                ("accuracy vs GPT-4 (%), non-tie pairs", "Cohen's κ vs GPT-4")):
        values = np.array([rows[n][key] for n in names])
        low = np.array([rows[n][f"{key}_ci"][0] for n in names])
        high = np.array([rows[n][f"{key}_ci"][1] for n in names])
        axis.barh(names, values, xerr=[values - low, high - values], color="tab:blue", capsize=3)
        reference = max(rows.values(), key=lambda row: row["n"])["reference_share"] if key == "accuracy" else 0.0
        axis.axvline(reference, color="0.3", linestyle="--", linewidth=1, label=REFERENCE_ROW)
        axis.set_xlabel(label)
        axis.invert_yaxis()
        axis.legend(loc="lower right", fontsize=7)
    figure.suptitle("Offline judges against AlpacaEval's GPT-4 judge (95% intervals)", fontsize=10)
    return save_figure(figure, path)


def write_agreement(raw: str | Path = "results/judges/raw", out: str | Path = "results/judges",
                    tables: str | Path = "results/tables", plots: str | Path = "results/plots") -> list[Path]:
    """``agreement.json``, ``tables/judge_agreement.md`` and ``plots/judge_agreement.{png,svg}``."""
    from reft.files import atomic_write_json, atomic_write_text  # imports torch: only when asked

    records = load_records(raw)
    if not records:
        return []
    rows = {name: agreement(record) for name, record in records.items()}
    complete = [name for name, row in rows.items() if row["complete"]]
    chosen = max(complete, key=lambda name: rows[name]["kappa"]) if complete else None
    out, tables = Path(out), Path(tables)
    atomic_write_json(out / "agreement.json", {"judges": rows, "chosen": chosen})
    text = (f"# Offline judges vs GPT-4 (AlpacaEval v1 annotations)\n\n{table(rows, chosen)}\n"
            f"- Pairs: text-davinci-003 against alpaca-7b, llama-2-7b-chat-hf and phi-2 on the AlpacaEval "
            f"instructions, judged by `alpaca_eval_gpt4` (the paper's judge); GPT-4's ties are left out.\n"
            f"- A judge whose κ interval contains 0 agrees with GPT-4 no better than chance.\n{GENERATED}")
    atomic_write_text(tables / "judge_agreement.md", text)
    return [out / "agreement.json", tables / "judge_agreement.md", *plot(rows, Path(plots) / "judge_agreement")]
