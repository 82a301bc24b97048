"""Trains a method on a tiny LLaMA in one or several processes (``torchrun``); rank 0 saves the
trainable parameters and the losses. Used by ``test_distributed.py``.

    ddp_worker.py OUT METHOD BATCH_SIZE [fsdp] [crash-at=K]

``fsdp``: shard with FSDP2 (``train.fsdp``) and checkpoint every step into OUT/train (a second
launch resumes from there); ``crash-at=K``: raise at the K-th batch (a crash mid-run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from baselines import build_method  # noqa: E402
from conftest import tiny_llama, toy_dataset  # noqa: E402
from reft import distributed  # noqa: E402
from reft.data import SupervisedCollator  # noqa: E402
from reft.sharding import gather_trainable  # noqa: E402
from reft.train import TrainingConfig, set_seed, train  # noqa: E402


class CrashingCollator(SupervisedCollator):
    def __init__(self, *args, crash_at: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls, self.crash_at = 0, crash_at

    def __call__(self, examples):
        self.calls += 1
        if self.calls == self.crash_at:
            raise KeyboardInterrupt(f"simulated crash at batch {self.calls}")
        return super().__call__(examples)


def main(out: str, method: str, batch_size: int, *options: str) -> None:
    distributed.init_from_env()
    torch.set_num_threads(1)
    set_seed(0)
    spec = {"loreft": {"name": "loreft", "rank": 2, "positions": "f1+l1"},
            "lora": {"name": "lora", "r": 4, "target_modules": ["q_proj", "v_proj"]},
            "full": {"name": "full"}}[method]
    crash_at = next((int(o.split("=")[1]) for o in options if o.startswith("crash-at=")), None)
    method_, model = build_method(tiny_llama(), spec)
    config = TrainingConfig(epochs=2, batch_size=batch_size, grad_accum=2, lr=1e-2, seed=3, log_every=1000,
                            warmup_ratio=0.2, max_grad_norm=1.0, fsdp="fsdp" in options,
                            output_dir=f"{out}/train" if "fsdp" in options else None, save_every=1)
    collate = CrashingCollator(0, locate=method_.locate(model), crash_at=crash_at)
    try:
        result = train(model, toy_dataset(16), collate, config)
    except KeyboardInterrupt:
        return
    state = gather_trainable(model)  # whole tensors on every process (a collective under FSDP)
    if distributed.is_main():
        save_file({n: t.contiguous() for n, t in state.items()}, f"{out}/params.safetensors")
        Path(f"{out}/losses.json").write_text(json.dumps(result.losses))
        Path(f"{out}/resumed_from.json").write_text(json.dumps(result.resumed_from))
    distributed.barrier()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
