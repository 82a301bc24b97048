"""Speed benchmark: a ReFT training step and generation against floors measured in the same run.

    make bench                      # or: python benchmarks/perf/speed.py [--rounds 7] [--out results/perf]

Model: LLaMA-shaped, random weights (d=512, 8 layers, 8 heads, MLP 1376, vocab 32000, fp32).
Methods, each timed as one full training step (forward, loss, backward, optimizer step), each
built by the method registry (``baselines``) and stepped exactly as the shared training loop does:

* ``floor``: the frozen model's forward + backward to the activations (embedding output made to
  require grad), no interventions and no optimizer: what any method touching layer 0 must pay;
* ``loreft``: LoReFT rank 8 on all layers at f7+l7, untied (16 interventions); ``direft``: the
  paper's DiReFT (rank 4, untied f7+l7, all layers);
* the paper's baselines with the settings of Table 1 (``baselines.paper``): ``lora`` (r=32, α=64,
  dropout 0.05 on q, k, v, up, down), ``lora_nodrop`` (the same without dropout, peft's default;
  dropout's random numbers are costly on CPU), ``dora``, ``prefix_tuning`` (10 virtual tokens),
  ``adapter_series`` / ``adapter_parallel`` (bottleneck 256), and ``full`` finetuning.

Peak memory: each method in a fresh process (model, three training steps at 8×128): the growth
of the peak resident set over the process after its imports on CPU (``VmHWM``), or
``torch.cuda.max_memory_allocated`` on a GPU, relative to the floor's.
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
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from baselines import build_method  # noqa: E402
from baselines.paper import TABLE1_METHODS  # noqa: E402
from reft import __version__  # noqa: E402
from benchmarks.experiments.accounting import peak_rss_bytes  # noqa: E402
from reft.files import atomic_write, atomic_write_json  # noqa: E402
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


METHODS = {
    "loreft": {"name": "loreft", "rank": 8, "layers": "all", "positions": "f7+l7", "tied": False},
    "direft": TABLE1_METHODS["DiReFT"],
    "lora": TABLE1_METHODS["LoRA"],
    "lora_nodrop": {**TABLE1_METHODS["LoRA"], "lora_dropout": 0.0},
    "dora": TABLE1_METHODS["DoRA"],
    "prefix_tuning": TABLE1_METHODS["PrefT"],
    "adapter_series": TABLE1_METHODS["AdapterS"],
    "adapter_parallel": TABLE1_METHODS["AdapterP"],
    "full": {"name": "full"},
}


def method_step(name: str, batch: dict):
    """The training step of method ``name`` (with its collator's extras), or the floor."""
    if name == "floor":
        return floor_step(llama())
    method, model = build_method(llama(), METHODS[name])
    locate = method.locate(model)
    extras = {"intervention_locations": locate(batch["attention_mask"])} if locate else {}
    return optimizer_step(model, **extras)


def loreft_model():
    return build_method(llama(), METHODS["loreft"])[1]


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
    steps = {name: method_step(name, batch) for name in ["floor", *METHODS]}
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


def peak_memory(name: str) -> dict:
    """Run in a fresh process: memory of the model plus three 8×128 training steps of ``name``."""
    batch_size, length = SHAPES["8x128"]
    torch.manual_seed(1)
    ids = torch.randint(3, 32000, (batch_size, length))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    cuda = torch.cuda.is_available()
    if cuda:
        batch = {k: v.cuda() for k, v in batch.items()}
        torch.set_default_device("cuda")
    before = peak_rss()
    step = method_step(name, batch)
    for _ in range(3):
        step(batch)
    if cuda:
        return {"bytes": torch.cuda.max_memory_allocated(), "device": "cuda"}
    return {"bytes": peak_rss() - before, "device": "cpu"}


def peak_rss() -> int:
    """This process's peak resident set in bytes (``VmHWM``: Linux only)."""
    rss = peak_rss_bytes()
    if rss is None:
        raise OSError("no VmHWM in /proc/self/status: peak memory needs Linux")
    return rss


def measure_memory() -> dict[str, int]:
    """Peak memory of each method, each in its own process (peaks do not reset within one)."""
    memory = {}
    for name in ["floor", *METHODS]:
        out = subprocess.run([sys.executable, __file__, "--memory", name], check=True, capture_output=True,
                             text=True).stdout
        memory[name] = json.loads(out.strip().splitlines()[-1])["bytes"]
        print(f"memory {name}: {memory[name] / 2**20:.0f} MiB", flush=True)
    return memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "results" / "perf"))
    parser.add_argument("--memory", metavar="METHOD", help=argparse.SUPPRESS)  # internal: one memory probe
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # random weights can produce denormals, a value-dependent CPU slowdown
    if args.memory:
        print(json.dumps(peak_memory(args.memory)))
        return
    results = {"seconds": {}, "median_seconds": {}, "ratios": {}}
    for shape in SHAPES:
        times, medians = bench_training(shape, args.rounds)
        results["seconds"][shape], results["median_seconds"][shape] = times, medians
        for method in METHODS:
            results["ratios"][f"{method}/floor {shape}"] = times[method] / times["floor"]
        results["ratios"][f"loreft/lora {shape}"] = times["loreft"] / times["lora"]
        results["ratios"][f"loreft/lora_nodrop {shape}"] = times["loreft"] / times["lora_nodrop"]
        print(shape, {k: f"{v * 1e3:.1f} ms" for k, v in times.items()}, flush=True)
    results["memory_bytes"] = measure_memory()
    for method in METHODS:
        results["ratios"][f"{method}/floor memory"] = results["memory_bytes"][method] / results["memory_bytes"]["floor"]
    gen, gen_medians = bench_generation(args.rounds)
    results["seconds"]["generate"], results["median_seconds"]["generate"] = gen, gen_medians
    results["ratios"]["generate reft/plain"] = gen["reft"] / gen["plain"]
    results["state"] = intervention_state()
    results["targets"] = TARGETS
    results["environment"] = {"torch": torch.__version__, "transformers": transformers.__version__,
                              "reft": __version__, "threads": torch.get_num_threads(),
                              "device": "cuda" if torch.cuda.is_available() else "cpu",
                              "machine": platform.machine(), "python": platform.python_version()}
    out = Path(args.out)
    atomic_write_json(out / "speed.json", results)
    table = markdown(results)
    atomic_write(out / "speed.md", lambda tmp: Path(tmp).write_text(table))
    print(table)


def markdown(results: dict) -> str:
    s, r, mem = results["seconds"], results["ratios"], results["memory_bytes"]
    lines = ["**Targets** (LoReFT against the floor and the paper's LoRA):", "",
             "| measurement | LoReFT / floor | LoReFT / LoRA (dropout 0.05) | LoReFT / LoRA (no dropout) |",
             "|---|---|---|---|"]
    for shape in SHAPES:
        lines.append(f"| train step {shape} | **{r[f'loreft/floor {shape}']:.3f}** (target ≤ "
                     f"{TARGETS[f'loreft/floor {shape}']}) | **{r[f'loreft/lora {shape}']:.3f}** (≤ "
                     f"{TARGETS[f'loreft/lora {shape}']}) | {r[f'loreft/lora_nodrop {shape}']:.3f} |")
    g = s["generate"]
    lines.append(f"| generate 8×64 → +32 tokens | **{g['reft'] / g['plain']:.3f}** (≤ 1.03; plain "
                 f"{g['plain'] * 1e3:.0f} ms, ReFT {g['reft'] * 1e3:.0f} ms) | | |")
    lines += ["", "**Every method**, one training step as the shared loop takes it, and peak memory "
              "(model + 3 steps at 8×128, own process), relative to the floor:", "",
              "| method | step 8×128 | ÷ floor | step 1×32 | ÷ floor | peak memory | ÷ floor |",
              "|---|---|---|---|---|---|---|"]
    for name in ["floor", *METHODS]:
        ratio = {shape: (s[shape][name] / s[shape]["floor"]) for shape in SHAPES}
        lines.append(f"| {name} | {s['8x128'][name] * 1e3:.1f} ms | {ratio['8x128']:.2f} | "
                     f"{s['1x32'][name] * 1e3:.1f} ms | {ratio['1x32']:.2f} | {mem[name] / 2**20:.0f} MiB | "
                     f"{mem[name] / mem['floor']:.2f} |")
    st = results["state"]
    lines.append(f"\nIntervention state: {st['numel_per_intervention']:.0f} numbers per intervention "
                 f"= {st['ratio_to_dr']:.3f} · d·r (d=512, r=8); largest tensor {st['largest_tensor']} (no d×d buffer).")
    env = results["environment"]
    lines.append(f"torch {env['torch']}, transformers {env['transformers']}, {env['threads']} threads, "
                 f"{env['device']}, {env['machine']}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
