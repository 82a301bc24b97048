"""A ready GPU check: the paper's methods on a LLaMA-7B-shaped model, timed and measured in one run.

    python benchmarks/perf/gpu_check.py                     # on a CUDA machine: sized for < 8 min on one H100 (not yet timed)
    python benchmarks/perf/gpu_check.py --dry-run           # any machine: a tiny shape, the same code path

Model: LLaMA-7B's shape (d=4096, 32 layers, 32 heads, MLP 11008, vocab 32000) with random weights
in bf16, built on the GPU (nothing to download). Measured, each with ``torch.cuda.synchronize``d
wall time (median of ``--steps`` after 2 warm-up steps) and ``torch.cuda.max_memory_allocated``
(reset before each method):

* ``floor``: the frozen model's forward + backward to the embedding output (what any method that
  edits layer 0 must pay);
* ``loreft``: rank 8, tied, f7+l7 on all 32 layers (the paper's commonsense setting); ``direft``:
  rank 4, untied f7+l7, all layers; ``lora``: r=32, α=64 on q, k, v, up, down; ``dora``: the same
  with DoRA; each one full training step as the shared loop takes it (forward, loss, backward,
  fused AdamW step), built by the method registry;
* generation, greedy, batch 8 × 256 prompt tokens, 128 new tokens: plain vs prompt-intervened
  LoReFT (tokens/s).

Writes ``results/perf/gpu_check.json`` and ``.md`` (``--out``). Without CUDA it stops at once
(exit 2) unless ``--dry-run``, which runs the same code on a 2-layer, 64-wide model on whatever
device there is (``tests/test_gpu_check.py`` runs it on the CPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import transformers

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from baselines import build_method  # noqa: E402
from baselines.paper import TABLE1_METHODS  # noqa: E402
from benchmarks.perf.speed import optimizer_step  # noqa: E402  (the step as the shared loop takes it)
from reft.files import atomic_write, atomic_write_json  # noqa: E402

SHAPES = {  # model, training batch, generation
    "llama-7b": {"model": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                               num_attention_heads=32, num_key_value_heads=32, vocab_size=32000),
                 "train": (4, 512), "generate": (8, 256, 128)},
    "dry-run": {"model": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=4, vocab_size=128),
                "train": (2, 32), "generate": (2, 16, 8)},
}
METHODS = {
    "loreft": {"name": "loreft", "rank": 8, "layers": "all", "positions": "f7+l7", "tied": True},
    "direft": TABLE1_METHODS["DiReFT"],
    "lora": TABLE1_METHODS["LoRA"],
    "dora": TABLE1_METHODS["DoRA"],
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def build_base(shape: dict, device: torch.device, dtype: torch.dtype):
    config = transformers.LlamaConfig(**shape["model"], max_position_embeddings=2048, pad_token_id=0,
                                      eos_token_id=2, bos_token_id=1)
    torch.manual_seed(0)
    with torch.device(device):
        model = transformers.LlamaForCausalLM(config).to(dtype)
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def timed(step, batch: dict, steps: int, device: torch.device) -> dict:
    """Median seconds of ``step(batch)`` after two warm-up calls, and the peak memory meanwhile."""
    reset_peak(device)
    for _ in range(2):
        step(batch)
    times = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        step(batch)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return {"seconds": round(statistics.median(times), 5), "peak_mib": peak_mib(device)}


def floor_step(model):
    handle = model.get_input_embeddings().register_forward_hook(lambda m, a, out: out.requires_grad_(True))
    model.train()

    def step(batch):
        model(**batch).loss.backward()

    return step, handle


def run(shape_name: str, steps: int, device: torch.device, dtype: torch.dtype, log=print) -> dict:
    shape = SHAPES[shape_name]
    base = build_base(shape, device, dtype)
    batch_size, length = shape["train"]
    torch.manual_seed(1)
    ids = torch.randint(3, shape["model"]["vocab_size"], (batch_size, length), device=device)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    results = {}
    step, handle = floor_step(base)
    results["floor"] = timed(step, batch, steps, device)
    handle.remove()
    log(f"floor: {results['floor']}")
    for name, spec in METHODS.items():
        method, model = build_method(base, spec)
        locate = method.locate(model)
        extras = {"intervention_locations": locate(batch["attention_mask"])} if locate else {}
        results[name] = timed(optimizer_step(model, **extras), batch, steps, device)
        results[name]["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        log(f"{name}: {results[name]}")
        if hasattr(model, "unload"):  # peft: the base model back without the adapters
            base = model.unload()
        for param in base.parameters():
            param.requires_grad_(False)
        del model
    results["generation"] = generation(base, shape, device, log)
    return results


def generation(base, shape: dict, device: torch.device, log=print) -> dict:
    batch_size, prompt, new = shape["generate"]
    torch.manual_seed(2)
    ids = torch.randint(3, shape["model"]["vocab_size"], (batch_size, prompt), device=device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    _, reft = build_method(base, METHODS["loreft"])
    reft.eval()
    kwargs = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)
    out = {}
    with torch.no_grad():
        for name, generate in (("plain", reft.model.generate), ("reft", reft.generate)):
            result = timed(lambda b: generate(**b, **kwargs), inputs, 1, device)
            result["tokens_per_second"] = round(batch_size * new / result["seconds"], 1)
            out[name] = result
            log(f"generate {name}: {result}")
    return out


def markdown(record: dict) -> str:
    rows = record["results"]
    floor = rows["floor"]["seconds"]
    lines = [f"# GPU check: {record['shape']} ({record['device']}, {record['dtype']})", "",
             f"Training batch {record['train_batch']}; generation {record['generate']}; median of "
             f"{record['steps']} steps after 2 warm-up steps; peak memory from `torch.cuda.max_memory_allocated`.", "",
             "| step | seconds | × floor | peak MiB | trainable |", "|---|---|---|---|---|"]
    for name in ["floor", *METHODS]:
        row = rows[name]
        lines.append(f"| {name} | {row['seconds']:.4f} | {row['seconds'] / floor:.2f} | {row['peak_mib'] or '—'} | "
                     f"{row.get('trainable', 0):,} |")
    generated = rows["generation"]
    lines += ["", "| generation | seconds | tokens/s | peak MiB |", "|---|---|---|---|"]
    for name, row in generated.items():
        lines.append(f"| {name} | {row['seconds']:.3f} | {row['tokens_per_second']} | {row['peak_mib'] or '—'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="a tiny shape on any device (the code path only)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per method")
    parser.add_argument("--out", default=str(ROOT / "results" / "perf"), help="where gpu_check.{json,md} go")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available() and not args.dry_run:
        print("gpu_check: no CUDA device; run it on a GPU machine (or --dry-run for the code path)", file=sys.stderr)
        return 2
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" or not args.dry_run else torch.float32
    shape = "dry-run" if args.dry_run else "llama-7b"
    started = time.perf_counter()
    results = run(shape, args.steps, device, dtype)
    record = {"shape": shape, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else
              platform.processor() or "cpu", "dtype": str(dtype).removeprefix("torch."), "steps": args.steps,
              "train_batch": "×".join(map(str, SHAPES[shape]["train"])),
              "generate": "batch {} × {} prompt tokens, {} new".format(*SHAPES[shape]["generate"]),
              "torch": torch.__version__, "transformers": transformers.__version__, "results": results,
              "wall_seconds": round(time.perf_counter() - started, 1)}
    out = Path(args.out)
    name = "gpu_check" if shape == "llama-7b" else "gpu_check_dry_run"
    atomic_write_json(out / f"{name}.json", record)
    atomic_write(out / f"{name}.md", lambda tmp: Path(tmp).write_text(markdown(record)))
    print(f"wrote {out / name}.json and .md in {record['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
