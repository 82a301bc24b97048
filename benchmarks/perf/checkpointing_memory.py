"""Peak memory of a training step with and without gradient checkpointing (issue 17.2).

    python benchmarks/perf/checkpointing_memory.py [--out results/perf]

Model: LLaMA-shaped, random weights, 16 layers (d=512, 8 heads, MLP 1376, vocab 32000, fp32);
batch 8 × 256 tokens. For LoReFT (rank 8, f7+l7, all layers) and LoRA (r=32 on q, k, v, up, down),
each with ``gradient_checkpointing`` off and on, a fresh process builds the model and takes three
training steps exactly as the shared loop does (``step_scope``, fused AdamW); it reports the growth
of its peak resident set over the model alone (``VmHWM``; ``torch.cuda.max_memory_allocated`` on a
GPU) and the median step time. Results: ``results/perf/checkpointing_memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from baselines import build_method  # noqa: E402
from reft.activation_checkpointing import enable_gradient_checkpointing, step_scope  # noqa: E402
from benchmarks.experiments.accounting import peak_rss_bytes  # noqa: E402
from reft.files import atomic_write, atomic_write_json  # noqa: E402
from reft.train import TrainingConfig, make_optimizer, parameter_groups  # noqa: E402

METHODS = {"loreft": {"name": "loreft", "rank": 8, "layers": "all", "positions": "f7+l7"},
           "lora": {"name": "lora", "r": 32, "lora_alpha": 64, "lora_dropout": 0.0,
                    "target_modules": ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]}}
BATCH, LENGTH, LAYERS = 8, 256, 16


def peak_rss() -> int:
    """This process's peak resident set in bytes (``VmHWM``: Linux only)."""
    rss = peak_rss_bytes()
    if rss is None:
        raise OSError("no VmHWM in /proc/self/status: peak memory needs Linux")
    return rss


def measure(method: str, checkpointing: bool) -> dict:
    """In this (fresh) process: the model, then three training steps; the peak's growth."""
    config = transformers.LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=LAYERS,
                                      num_attention_heads=8, num_key_value_heads=8, vocab_size=32000,
                                      max_position_embeddings=1024, pad_token_id=0, eos_token_id=2)
    torch.manual_seed(0)
    built, model = build_method(transformers.LlamaForCausalLM(config), METHODS[method])
    if checkpointing:
        enable_gradient_checkpointing(model)
    optimizer = make_optimizer(parameter_groups(model, 0.0), TrainingConfig(lr=1e-4))
    ids = torch.randint(3, 32000, (BATCH, LENGTH))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    locate = built.locate(model)
    if locate:
        batch["intervention_locations"] = locate(batch["attention_mask"])
    model.train()
    before, times = peak_rss(), []
    for _ in range(3):
        start = time.perf_counter()
        with step_scope(model):
            model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return {"peak_growth_mib": round((peak_rss() - before) / 2**20, 1), "step_seconds": round(statistics.median(times), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="checkpointing_memory")
    parser.add_argument("--out", default=str(ROOT / "results" / "perf"))
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "CHECKPOINTING"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1] == "on")))
        return 0
    results = {}
    for method in METHODS:
        for mode in ("off", "on"):
            out = subprocess.run([sys.executable, __file__, "--one", method, mode], check=True, capture_output=True,
                                 text=True).stdout
            results[f"{method} {mode}"] = json.loads(out.strip().splitlines()[-1])
            print(f"{method} checkpointing {mode}: {results[f'{method} {mode}']}", flush=True)
    record = {"model": f"LLaMA-shaped, {LAYERS} layers, d=512, fp32", "batch": f"{BATCH}×{LENGTH}",
              "threads": torch.get_num_threads(), "torch": torch.__version__, "results": results}
    lines = [f"# Gradient checkpointing: peak memory ({record['model']}, batch {record['batch']}, "
             f"{record['threads']} threads)", "", "| method | checkpointing | peak growth MiB | step s |",
             "|---|---|---|---|"]
    lines += [f"| {key.split()[0]} | {key.split()[1]} | {row['peak_growth_mib']} | {row['step_seconds']} |"
              for key, row in results.items()]
    out = Path(args.out)
    atomic_write_json(out / "checkpointing_memory.json", record)
    atomic_write(out / "checkpointing_memory.md", lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
