"""How often an offline judge agrees with the paper's GPT-4 judge, on real pairs.

AlpacaEval's own annotations (``alpaca_eval/gpt4_annotations/<model>.json`` under the data root)
hold, for each of the 805 instructions and three models (alpaca-7b, llama-2-7b-chat-hf, phi-2),
text-davinci-003's output (``output_1``), the model's (``output_2``) and the ``alpaca_eval_gpt4``
annotator's ``preference``: 1 = davinci-003 better, 2 = the model better, 0 = a tie. A few rows
carry no preference or a fractional one; they are counted and left out.

:func:`run_agreement` asks each offline judge (``benchmarks.experiments.judges``) for its
preference p = P(the model's output is better) on the same pairs (all of them, or a seeded sample
of instructions shared by the three models) and writes one record per judge, ``<judge>.json``:
the pair ids, GPT-4's decision and the judge's p per pair, the sample, the throughput and the
judge's prompt.
Progress is saved atomically every ``save_every`` pairs into the same file with
``"complete": false``; running the same command again continues from it. Accuracy, Cohen's kappa
and their intervals are computed from these records by ``benchmarks.report.judge_agreement``.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.experiments.judges import PROMPTS, get_judge
from benchmarks.tasks.data import data_root
from reft.files import atomic_write_json

MODELS = ("alpaca-7b", "llama-2-7b-chat-hf", "phi-2")
ANNOTATIONS = "alpaca_eval/gpt4_annotations"


@dataclass(frozen=True)
class Pair:
    """One judged pair: the reference (text-davinci-003) against a model's output."""

    id: str  # "<model>:<row index>"
    instruction: str
    reference: str
    output: str
    gpt4: int  # 1 = reference better, 2 = the model better, 0 = tie


def _decision(value) -> int | None:
    """GPT-4's preference as 0, 1 or 2; None for a missing or fractional one."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number in (0.0, 1.0, 2.0) else None


def load_pairs(models: Sequence[str] = MODELS, root: Path | None = None,
               per_model: int | None = None, seed: int = 0) -> tuple[list[Pair], dict]:
    """The annotated pairs of ``models`` (each file's rows in order), or of ``per_model`` instructions
    drawn once with ``seed`` (the same row indices for every model), and what was left out."""
    folder = Path(root or data_root()) / ANNOTATIONS
    pairs, skipped = [], {}
    for model in models:
        path = folder / f"{model}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: the GPT-4 annotations for {model!r} "
                                    f"(see the data README, alpaca_eval/gpt4_annotations)")
        rows = json.loads(path.read_text())
        keep = range(len(rows)) if per_model is None else sorted(
            np.random.default_rng(seed).permutation(len(rows))[:per_model].tolist())
        for index in keep:
            row = rows[index]
            missing = [key for key in ("instruction", "output_1", "output_2") if not isinstance(row.get(key), str)]
            decision = _decision(row.get("preference"))
            if missing or decision is None:
                reason = f"missing {missing[0]}" if missing else f"preference {row.get('preference')!r}"
                skipped.setdefault(model, []).append({"index": index, "reason": reason})
                continue
            pairs.append(Pair(f"{model}:{index}", row["instruction"], row["output_1"], row["output_2"], decision))
    for model, rows in skipped.items():
        warnings.warn(f"judge agreement: {len(rows)} {model} rows have no usable GPT-4 preference and are "
                      f"left out (e.g. row {rows[0]['index']}: {rows[0]['reason']})", stacklevel=2)
    return pairs, skipped


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def judge_pairs(name: str, pairs: Sequence[Pair], path: Path, save_every: int = 25,
                log=print, sample: dict | None = None) -> dict:
    """Judge's preferences on ``pairs``, resumed from and saved to ``path`` (see the module doc)."""
    previous = _read(path)
    done: dict[str, float] = dict(zip(previous.get("ids", []), previous.get("preference", [])))
    seconds, judged = float(previous.get("seconds", 0.0)), int(previous.get("judged", 0))
    todo = [pair for pair in pairs if pair.id not in done]
    if todo:
        log(f"judge {name}: {len(done)} pairs already judged, {len(todo)} to go")
    judge = get_judge(name) if todo else None
    by_id = {pair.id: pair for pair in pairs}

    def record(complete: bool) -> dict:
        ids = [pair.id for pair in pairs if pair.id in done]
        return {"judge": name, "prompt": PROMPTS.get(name), "sample": sample, "complete": complete, "n": len(ids),
                "ids": ids, "gpt4": [by_id[i].gpt4 for i in ids], "preference": [done[i] for i in ids],
                "seconds": seconds, "judged": judged,
                "pairs_per_second": judged / seconds if seconds > 0 else None}

    for count, pair in enumerate(todo, 1):
        start = time.perf_counter()
        done[pair.id] = float(judge.preference(pair.instruction, pair.output, pair.reference))
        seconds += time.perf_counter() - start
        judged += 1
        if count % save_every == 0:
            atomic_write_json(path, record(complete=False))
            log(f"judge {name}: {len(done)}/{len(pairs)} pairs, {judged / seconds:.2f} pairs/s")
    result = record(complete=True)
    atomic_write_json(path, result)
    return result


def run_agreement(judges: Sequence[str], out: Path, per_model: int | None = None, seed: int = 0,
                  models: Sequence[str] = MODELS, root: Path | None = None, log=print) -> dict[str, dict]:
    """Every judge in ``judges`` on the same pairs; one record per judge in ``out``."""
    pairs, skipped = load_pairs(models, root, per_model, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sample = {"models": list(models), "per_model": per_model, "seed": seed,
              "left_out": {model: len(rows) for model, rows in skipped.items()}}
    return {name: judge_pairs(name, pairs, out / f"{name}.json", log=log, sample=sample) for name in judges}
