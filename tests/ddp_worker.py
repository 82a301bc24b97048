"""Trains a method on a tiny LLaMA in one or several processes (``torchrun``); rank 0 saves the
trainable parameters and the losses. Used by ``test_distributed.py``."""

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
from reft.train import TrainingConfig, set_seed, train  # noqa: E402


def main(out: str, method: str, batch_size: int) -> None:
    distributed.init_from_env()
    torch.set_num_threads(1)
    set_seed(0)
    spec = {"loreft": {"name": "loreft", "rank": 2, "positions": "f1+l1"},
            "lora": {"name": "lora", "r": 4, "target_modules": ["q_proj", "v_proj"]}}[method]
    method_, model = build_method(tiny_llama(), spec)
    config = TrainingConfig(epochs=2, batch_size=batch_size, grad_accum=2, lr=1e-2, seed=3, log_every=1000,
                            warmup_ratio=0.2, max_grad_norm=1.0)
    result = train(model, toy_dataset(16), SupervisedCollator(0, locate=method_.locate(model)), config)
    if distributed.is_main():
        state = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(state, f"{out}/params.safetensors")
        Path(f"{out}/losses.json").write_text(json.dumps(result.losses))
    distributed.barrier()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
