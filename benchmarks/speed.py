"""Speed benchmark: a ReFT training step and generation against floors measured in the same run.

    make bench                      # or: python benchmarks/speed.py [--rounds 7] [--out results/perf]

Model: LLaMA-shaped, random weights (d=512, 8 layers, 8 heads, MLP 1376, vocab 32000, fp32).
Methods, each timed as one full training step (forward, loss, backward, optimizer step):

* ``floor``: the frozen model's forward + backward to the activations (embedding output made to
  require grad), no interventions and no optimizer: what any method touching layer 0 must pay;
* ``loreft``: LoReFT rank 8 on all layers at f7+l7, untied (16 interventions);
* ``lora``: peft LoRA as the paper's baseline (LLM-Adapters): r=32, α=64, dropout 0.05, on the
  q, k, v, up and down projections, trained by the same optimizer and parameter grouping;
* ``lora_nodrop``: the same without dropout (peft's default; dropout's random numbers are costly on CPU).

Shapes: batch 8×128 (compute-bound) and 1×32 (overhead-bound: per-call costs dominate as on a GPU).
Generation: greedy, 32 new tokens for 8 prompts of 64 tokens, plain vs prompt-intervened.
Timings interleave the methods round by round; each method's time is its fastest round (the
usual estimator of cost free of interference on a shared machine); medians are kept in the JSON.
Results go to ``results/perf/speed.json`` and ``results/perf/speed.md``.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reft import ReftConfig, __version__, get_reft_model  # noqa: E402
from reft.io import atomic_write, atomic_write_json  # noqa: E402
from reft.train import TrainingConfig, make_optimizer, parameter_groups  # noqa: E402

SHAPES = {"8x128": (8, 128), "1x32": (1, 32)}
TARGETS = {"loreft/floor 8x128": 1.03, "loreft/floor 1x32": 1.15, "loreft/lora 8x128": 0.85,
           "loreft/lora 1x32": 0.85, "generate reft/plain": 1.03}


def llama(seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=8,
                                      num_attention_heads=8, num_key_value_heads=8, vocab_size=32000,
                                      max_position_embeddings=1024, pad_token_id=0, eos_token_id=2)
    return transformers.LlamaForCausalLM(config).eval()


def floor_step(model):
    embed = model.get_input_embeddings()
    embed.register_forward_hook(lambda module, args, out: out.requires_grad_(True))
    for p in model.parameters():
        p.requires_grad_(False)
    model.train()

    def step(batch):
        model(**batch).loss.backward()

    return step


def optimizer_step(model, **batch_extras):
    """A step as the shared training loop takes it (same parameter groups, same fused AdamW)."""
    optimizer = make_optimizer(parameter_groups(model, 0.0), TrainingConfig(lr=1e-4))
    model.train()

    def step(batch):
        model(**batch, **batch_extras).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def loreft_model():
    return get_reft_model(llama(), ReftConfig("loreft", rank=8, layers="all", positions="f7+l7", tied=False))


def lora_model(dropout: float = 0.05):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=32, lora_alpha=64, lora_dropout=dropout,
                        target_modules=["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"])
    return get_peft_model(llama(), config)


def time_interleaved(steps: dict, batch: dict, rounds: int, per_round: int) -> dict[str, float]:
    for fn in steps.values():  # warm-up
        for _ in range(2):
            fn(batch)
    samples = {name: [] for name in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            start = time.perf_counter()
            for _ in range(per_round):
                fn(batch)
            samples[name].append((time.perf_counter() - start) / per_round)
    return {name: min(values) for name, values in samples.items()}, \
        {name: statistics.median(values) for name, values in samples.items()}


def bench_training(shape: str, rounds: int) -> dict:
    batch_size, length = SHAPES[shape]
    torch.manual_seed(1)
    ids = torch.randint(3, 32000, (batch_size, length))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    reft = loreft_model()
    locations = reft.locations(batch["attention_mask"])
    steps = {"floor": floor_step(llama()), "loreft": optimizer_step(reft, intervention_locations=locations),
             "lora": optimizer_step(lora_model()), "lora_nodrop": optimizer_step(lora_model(0.0))}
    per_round = 1 if batch_size * length >= 512 else 10
    return time_interleaved(steps, batch, rounds, per_round)


def bench_generation(rounds: int) -> dict:
    torch.manual_seed(2)
    ids = torch.randint(3, 32000, (8, 64))
    mask = torch.ones_like(ids)
    reft = loreft_model().eval()
    kwargs = dict(max_new_tokens=32, min_new_tokens=32, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        steps = {"plain": lambda b: reft.model.generate(**b, **kwargs),
                 "reft": lambda b: reft.generate(**b, **kwargs)}
        return time_interleaved(steps, {"input_ids": ids, "attention_mask": mask}, rounds, 1)


def intervention_state(d: int = 512, r: int = 8) -> dict:
    reft = loreft_model()
    tensors = list(reft.interventions.state_dict().values()) + list(reft.interventions.buffers())
    total = sum(t.numel() for t in tensors)
    per = total / len(reft.interventions)
    return {"numel_per_intervention": per, "d_times_r": d * r, "ratio_to_dr": per / (d * r),
            "largest_tensor": max(t.numel() for t in tensors)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--out", default=str(ROOT / "results" / "perf"))
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # random weights can produce denormals, a value-dependent CPU slowdown
    results = {"seconds": {}, "median_seconds": {}, "ratios": {}}
    for shape in SHAPES:
        times, medians = bench_training(shape, args.rounds)
        results["seconds"][shape], results["median_seconds"][shape] = times, medians
        for method in ("loreft", "lora", "lora_nodrop"):
            results["ratios"][f"{method}/floor {shape}"] = times[method] / times["floor"]
        results["ratios"][f"loreft/lora {shape}"] = times["loreft"] / times["lora"]
        results["ratios"][f"loreft/lora_nodrop {shape}"] = times["loreft"] / times["lora_nodrop"]
        print(shape, {k: f"{v * 1e3:.1f} ms" for k, v in times.items()}, flush=True)
    gen, gen_medians = bench_generation(args.rounds)
    results["seconds"]["generate"], results["median_seconds"]["generate"] = gen, gen_medians
    results["ratios"]["generate reft/plain"] = gen["reft"] / gen["plain"]
    results["state"] = intervention_state()
    results["targets"] = TARGETS
    results["environment"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                              "reft": __version__, "threads": torch.get_num_threads(),
                              "machine": platform.machine(), "python": platform.python_version()}
    out = Path(args.out)
    atomic_write_json(out / "speed.json", results)
    table = markdown(results)
    atomic_write(out / "speed.md", lambda tmp: Path(tmp).write_text(table))
    print(table)


def markdown(results: dict) -> str:
    s = results["seconds"]
    lines = ["| measurement | floor | LoReFT | LoRA (paper, dropout 0.05) | LoRA (no dropout) | LoReFT / floor "
             "| LoReFT / LoRA | LoReFT / LoRA no dropout |", "|---|---|---|---|---|---|---|---|"]
    for shape in SHAPES:
        t = s[shape]
        lines.append(f"| train step {shape} | {t['floor'] * 1e3:.1f} ms | {t['loreft'] * 1e3:.1f} ms | "
                     f"{t['lora'] * 1e3:.1f} ms | {t['lora_nodrop'] * 1e3:.1f} ms | "
                     f"**{t['loreft'] / t['floor']:.3f}** (target ≤ {TARGETS[f'loreft/floor {shape}']}) | "
                     f"**{t['loreft'] / t['lora']:.3f}** (≤ 0.85) | {t['loreft'] / t['lora_nodrop']:.3f} |")
    g = s["generate"]
    lines.append(f"| generate 8×64 → +32 tokens | {g['plain'] * 1e3:.0f} ms (plain) | {g['reft'] * 1e3:.0f} ms | | | "
                 f"**{g['reft'] / g['plain']:.3f}** (≤ 1.03) | | |")
    st = results["state"]
    lines.append(f"\nIntervention state: {st['numel_per_intervention']:.0f} numbers per intervention "
                 f"= {st['ratio_to_dr']:.3f} · d·r (d=512, r=8); largest tensor {st['largest_tensor']} (no d×d buffer).")
    env = results["environment"]
    lines.append(f"torch {env['torch']}, transformers {env['transformers']}, {env['threads']} threads, {env['machine']}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
