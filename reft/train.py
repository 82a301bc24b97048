"""The one training loop, shared by every method (ReFT interventions, peft baselines, full FT).

Semantics follow the HF ``Trainer`` defaults the paper ran with (transformers ≈ 4.39-4.44):
AdamW (β = 0.9, 0.999, ε = 1e-8; the fused implementation), gradient clipping at 1.0, linear warmup then linear decay to 0,
``steps = ceil(epochs · ⌊batches / grad_accum⌋)``, and each micro-batch's mean loss divided by
``grad_accum``; batches are uniform random draws unless ``group_by_length`` sorts them into similar
lengths (HF's option of that name). One deliberate fix: weight decay reaches the intervention parameters W, b when
asked (pyreft's parameter names never matched HF's decay list, so its weight decay was a no-op;
``decay_interventions=False`` reproduces that). Parameters a module lists in ``no_weight_decay()``
(an orthonormal R), biases and norm weights of the base model never get decay.

Checkpoints (every ``save_every`` optimizer steps, one directory per step renamed into place with
a manifest of file hashes, without pickle) hold the trainable parameters, the optimizer and
scheduler state and every RNG state; ``resume=True`` continues from the newest one that verifies
(a damaged one is named and passed over) and ends with exactly the result of an uninterrupted run.
A run that cannot train meaningfully fails (``TrainingFailed``): an empty training set, zero
steps (rejected by ``TrainingConfig``), or a non-finite loss.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from . import distributed
from .activation_checkpointing import enable_gradient_checkpointing, step_scope
from .checkpoint import BestEpoch, CheckpointDamaged, TrainingCheckpoint, whole  # noqa: F401 (CheckpointDamaged: re-exported)
from .sharding import is_sharded_model, shard_model

SCHEDULES = ("linear", "constant", "cosine")


@dataclass
class TrainingConfig:
    epochs: float = field(default=1.0, metadata={"help": "passes over the data (fractional allowed)"})
    max_steps: int | None = field(default=None, metadata={"help": "optimizer steps; overrides epochs"})
    batch_size: int = field(default=8, metadata={"help": "per-step micro-batch size"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    lr: float = 9e-4
    weight_decay: float = 0.0
    decay_interventions: bool = field(default=True, metadata={
        "help": "apply weight_decay to intervention W, b (False = pyreft's silent no-op)"})
    warmup_ratio: float = 0.0
    schedule: str = "linear"
    max_grad_norm: float | None = 1.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    seed: int = 42
    log_every: int | None = field(default=None, metadata={
        "help": "log every N optimizer steps; None: about 100 points per run (every step in a short run)"})
    save_every: int | None = field(default=None, metadata={"help": "checkpoint every N optimizer steps"})
    pyreft_eval_dropout: bool = field(default=False, metadata={
        "help": "pyreft's defect: after the first evaluation, intervention dropout stays off for the rest of training"})
    autocast: str | None = field(default=None, metadata={
        "help": "'bfloat16': forward under torch.autocast in bf16 (CPU or GPU; weights and optimizer stay fp32)"})
    fsdp: bool = field(default=False, metadata={
        "help": "with several processes, shard parameters, gradients and optimizer state with FSDP2 (LoRA, DoRA, full FT)"})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "recompute each block's activations in the backward pass (less activation memory, one more forward per block); every method"})
    group_by_length: bool = field(default=False, metadata={
        "help": "batch examples of similar length (HF Trainer's group_by_length): each epoch's shuffled order "
                "is cut into runs of 50 global batches, each sorted longest first; less padding, the same "
                "examples per epoch, but a batch is no longer a uniform random draw"})
    output_dir: str | None = None
    resume: bool = True

    def __post_init__(self) -> None:
        if self.autocast not in (None, "bfloat16", "float16"):
            raise ValueError(f"train.autocast must be null, 'bfloat16' or 'float16', got {self.autocast!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("batch_size and grad_accum must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"train.max_steps must be >= 1 (or null to train for train.epochs), got {self.max_steps}")
        if self.max_steps is None and not self.epochs > 0:
            raise ValueError(f"train.epochs must be > 0, got {self.epochs}: a run must train")
        if not self.lr > 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        self.adam_betas = tuple(self.adam_betas)


@dataclass
class TrainResult:
    steps: int
    losses: list[float]  # mean loss of each optimizer step
    seconds: float  # this process's training wall time
    resumed_from: int = 0
    epoch_scores: list[float] = field(default_factory=list)  # ``evaluate`` after each epoch, if given
    best_epoch: int | None = None  # 1-based epoch whose parameters the model ends with
    # the training wall time of every process that trained the run (those before a resumption
    # counted up to the checkpoint it resumed from); None when that checkpoint did not record it
    total_seconds: float | None = None


class TrainingFailed(RuntimeError):
    """Training that cannot give a meaningful model: no examples, or a loss that is not finite."""


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def parameter_groups(model: nn.Module, weight_decay: float, decay_interventions: bool = True) -> list[dict]:
    """AdamW groups: decay for weights, none for ``no_weight_decay()`` names, biases and norms."""
    no_decay = set()
    for prefix, module in model.named_modules():
        if hasattr(module, "no_weight_decay"):
            no_decay |= {f"{prefix}.{n}" if prefix else n for n in module.no_weight_decay()}
    decay, plain = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_intervention = name.startswith("interventions.") or ".interventions." in name
        skip = (name in no_decay or (is_intervention and not decay_interventions)
                or (not is_intervention and (name.endswith(".bias") or "norm" in name.lower())))
        (plain if skip else decay).append(param)
    return [group for group in ({"params": decay, "weight_decay": weight_decay},
                                {"params": plain, "weight_decay": 0.0}) if group["params"]]


def make_optimizer(groups: list[dict], config: TrainingConfig) -> torch.optim.AdamW:
    """AdamW, fused (one kernel for all tensors; HF's ``adamw_torch_fused``) where torch supports it."""
    device = groups[0]["params"][0].device
    fused = device.type in ("cpu", "cuda") and all(p.dtype in (torch.float32, torch.bfloat16, torch.float16)
                                                   for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.adam_betas, eps=config.adam_eps, fused=fused)


def lr_lambda(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        if schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if schedule == "cosine":
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
        return max(0.0, 1.0 - progress)

    return factor


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


LENGTH_GROUP_BATCHES = 50  # HF's LengthGroupedSampler: mega-batches of 50 batches


def _grouped_by_length(order: list[int], lengths: list[int], global_batch: int) -> list[int]:
    """``order`` cut into mega-batches of ``LENGTH_GROUP_BATCHES · global_batch`` examples, each sorted
    longest first (stably), so each batch pads to a similar length. Padding costs compute in
    proportion: on the commonsense CPU preset's mixed rows (BoolQ ~40 tokens, HellaSwag ~210) random
    batches of 8 hold 2.1 padded tokens per real one. Draws no random numbers (resume stays exact)."""
    size = LENGTH_GROUP_BATCHES * global_batch
    grouped = []
    for first in range(0, len(order), size):
        grouped += sorted(order[first:first + size], key=lambda i: -lengths[i])
    return grouped


def example_lengths(dataset: Dataset) -> list[int]:
    """Token count of each example (its ``input_ids``), for ``group_by_length``."""
    lengths = []
    for index in range(len(dataset)):
        item = dataset[index]
        if not hasattr(item, "input_ids"):
            raise TypeError(f"train.group_by_length needs examples with input_ids; {type(item).__name__} has none")
        lengths.append(len(item.input_ids))
    return lengths


def _micro_batches(dataset: Dataset, order: list[int], batch_size: int, collate: Callable, start: int):
    """This process's share of the batches of one epoch in ``order``, from batch ``start`` on.
    A global batch holds ``batch_size`` examples per process; process r takes the r-th slice.
    Draws no random numbers, so a resumed run consumes the RNG exactly as an uninterrupted one."""
    size, offset = batch_size * distributed.world_size(), batch_size * distributed.rank()
    for first in range(start * size, len(order), size):
        chunk = order[first:first + size][offset:offset + batch_size]
        yield collate([dataset[i] for i in chunk]) if chunk else None


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) and k != "intervention_locations" else v)
            for k, v in batch.items()}


def train(model: nn.Module, dataset: Dataset, collate: Callable, config: TrainingConfig,
          log: Callable[[dict], None] | None = None,
          evaluate: Callable[[nn.Module], float] | None = None,
          on_epoch: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train the trainable parameters of ``model`` (whatever wraps them) on ``dataset``.

    With ``evaluate`` (higher is better, e.g. accuracy on a dev split), the model is scored after
    every epoch and ends with the parameters of the best epoch. ``on_epoch(epoch, score)`` then
    hears each epoch's score (1-based, counting epochs before a resumption) once the epoch's
    checkpoint is saved; an exception it raises stops training (a search's pruner).
    """
    if len(dataset) == 0:
        raise TrainingFailed("the training set is empty: nothing to train on")
    device = next(model.parameters()).device
    batches_per_epoch = math.ceil(len(dataset) / (config.batch_size * distributed.world_size()))
    steps_per_epoch = max(1, batches_per_epoch // config.grad_accum)
    total = config.max_steps or math.ceil(config.epochs * steps_per_epoch)
    warmup = math.ceil(config.warmup_ratio * total)
    if config.fsdp and distributed.is_distributed() and not is_sharded_model(model):
        from .architectures import block_modules

        shard_model(model, block_modules(model), config.autocast)
    optimizer = make_optimizer(parameter_groups(model, config.weight_decay, config.decay_interventions), config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config.schedule, warmup, total))
    checkpoint = TrainingCheckpoint(Path(config.output_dir) / "checkpoint") if config.output_dir else None
    step, losses, selection, before = 0, [], BestEpoch(), 0.0  # before: training seconds of earlier processes
    if checkpoint and config.resume and checkpoint.exists():
        step, losses, before = checkpoint.load(model, optimizer, scheduler, selection)
    resumed_from = step
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    if config.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    sharded = is_sharded_model(model)  # FSDP2 casts the blocks itself (reft.sharding)
    autocast = torch.autocast(device.type, dtype=getattr(torch, config.autocast)) if config.autocast and not sharded \
        else contextlib.nullcontext()
    log_every = config.log_every or max(1, total // 100)
    lengths = example_lengths(dataset) if config.group_by_length else None
    model.train()
    start = time.perf_counter()
    while step < total:
        epoch, done_in_epoch = divmod(step, steps_per_epoch)
        order = _epoch_order(len(dataset), config.seed, epoch)
        if lengths is not None:
            order = _grouped_by_length(order, lengths, config.batch_size * distributed.world_size())
        micro = _micro_batches(dataset, order, config.batch_size, collate,
                               start=done_in_epoch * config.grad_accum)  # a resumed run skips what it saw
        for _ in range(done_in_epoch, steps_per_epoch):
            step_loss = 0.0
            for _ in range(config.grad_accum):
                batch = next(micro)
                if batch is None:  # the last global batch had no examples left for this process
                    continue
                with step_scope(model):  # forward and backward: checkpointed blocks are recomputed in the backward
                    with autocast:
                        outputs = model(**_to_device(batch, device))
                    (outputs.loss.float() / config.grad_accum).backward()
                step_loss += outputs.loss.item() / config.grad_accum
            distributed.average_gradients(trainable)
            step_loss = distributed.mean_over_processes(step_loss)
            if not math.isfinite(step_loss):  # NaN/inf weights would follow, and every score after them
                raise TrainingFailed(f"the loss at optimizer step {step + 1} is {step_loss}: check lr "
                                     "(too high?), dtype, and that examples keep target tokens after truncation")
            logging = log is not None and ((step + 1) % log_every == 0 or step + 1 == total)
            grad_norm = None  # a tensor: read (a device sync) only on the steps that log it
            if config.max_grad_norm or logging:
                grad_norm = torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm or math.inf)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(step_loss)
            if evaluate is not None and (step % steps_per_epoch == 0 or step == total):
                selection.update(model, evaluate(model))
                model.train()
                if config.pyreft_eval_dropout and hasattr(model, "interventions"):
                    model.interventions.eval()  # pyreft's train() never reaches them again
                if log:
                    log({"step": step, "epoch": step / steps_per_epoch, "dev_score": selection.scores[-1]})
            if checkpoint and config.save_every and (step % config.save_every == 0 or step == total):
                so_far = None if before is None else before + time.perf_counter() - start
                checkpoint.save(model, optimizer, scheduler, step, losses, selection, so_far)  # the first process writes
                distributed.barrier()
            if on_epoch is not None and evaluate is not None and (step % steps_per_epoch == 0 or step == total):
                on_epoch(len(selection.scores), selection.scores[-1])
            if logging:
                seconds = time.perf_counter() - start
                seen = (step - resumed_from) * config.batch_size * config.grad_accum * distributed.world_size()
                log({"step": step, "epoch": step / steps_per_epoch, "loss": step_loss,
                     "lr": scheduler.get_last_lr()[0], "grad_norm": float(whole(grad_norm)), "train_seconds": seconds,
                     "examples_per_second": seen / seconds if seconds > 0 else 0.0})
            if step >= total:
                break
    if selection.best_epoch is not None:
        selection.restore(model)
    model.eval()
    seconds = time.perf_counter() - start
    return TrainResult(step, losses, seconds, resumed_from, selection.scores, selection.best_epoch,
                       None if before is None else before + seconds)
