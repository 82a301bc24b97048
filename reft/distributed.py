"""Data parallelism for the one training loop: several processes (torchrun, SLURM tasks), each
with a full copy of the model, each taking its share of every global batch.

``batch_size`` stays per process (HF's ``per_device_train_batch_size``): with W processes a step
sees W · batch_size · grad_accum examples, exactly the examples a single process with batch size
W · batch_size would see, in the same order. Gradients of the trainable parameters are averaged
with one all-reduce per optimizer step (over a flat buffer; works for any method, since only
trainable parameters are exchanged and the frozen model needs no wrapper). With equal-length
examples the result equals the single-process run up to float reassociation.

Start with ``torchrun --nproc_per_node 2 ...`` (gloo on CPU, nccl on GPUs); ``init_from_env``
reads torchrun's variables, or SLURM's through submitit.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    return rank() == 0


def init_from_env() -> bool:
    """Join the process group described by the environment (torchrun, or a multi-task SLURM job
    via submitit); returns whether this is a multi-process run."""
    if dist.is_available() and dist.is_initialized():
        return is_distributed()
    if "WORLD_SIZE" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        import submitit

        submitit.helpers.TorchDistributedEnvironment().export()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def is_sharded(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` is a DTensor (a parameter sharded by FSDP2's ``fully_shard``)."""
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """Mean of each parameter's gradient over the processes (missing gradients count as zero).
    Sharded parameters are left alone: FSDP has reduce-scattered (averaged) their gradients."""
    parameters = [p for p in parameters if not is_sharded(p)] if is_distributed() else []
    if not parameters:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1).float() for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for param, grad in zip(parameters, grads):
        size = grad.numel()
        param.grad = flat[offset:offset + size].view_as(grad).to(grad.dtype)
        offset += size


def mean_over_processes(value: float) -> float:
    if not is_distributed():
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.item() / world_size()


def barrier() -> None:
    if is_distributed():
        dist.barrier()
