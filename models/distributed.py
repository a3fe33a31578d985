"""Data-parallel training under ``torchrun`` (DistributedDataParallel).

``groupnet train`` runs unchanged under ``torchrun --nproc-per-node=N --no-python groupnet
train ...``: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK, :func:`context` sees them and
joins the process group (NCCL on GPUs, gloo on CPUs). Then:

- every rank draws the same epoch permutation (same seed) and takes its share of each
  global batch (``batch_size`` images: rank r takes every world-th one, as
  DistributedSampler does), so the global batch and the learning-rate schedule are the
  single-process ones; augmentation draws from a per-rank generator;
- DDP averages the gradients; batch norm is SyncBatchNorm on GPUs; on CPUs (gloo has no
  SyncBatchNorm) the running statistics, which become the hardware thresholds, are
  averaged over the ranks after every epoch and before every checkpoint;
- Brevitas scales collected from runtime statistics are taken from rank 0 while they are
  collected (each rank would otherwise collect its own from its own shard), so every rank
  ends the collection with rank 0's values;
- rank 0 evaluates, logs, writes ``last.pt`` (with every rank's augmentation generator)
  and the final checkpoint; a stop (SIGTERM / Ctrl-C on any rank, or the periodic save)
  is agreed by all ranks at the same step, so a resumed run continues exactly;
- at the end every rank hashes its state dict and rank 0 records whether they are equal
  (``metrics.json``: ``distributed.identical_state_dicts``).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def context(device: torch.device) -> DistContext:
    """The torchrun environment (one process, world 1, without it); joins the group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    if device.type == "cuda":
        torch.cuda.set_device(local)
    return DistContext(rank, world, local, backend)


def device_for(ctx_env_device: torch.device) -> torch.device:
    """Under torchrun on GPUs: this rank's GPU."""
    if ctx_env_device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return ctx_env_device


def shard(idx: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's share of one global batch of indices."""
    return idx[ctx.rank::ctx.world] if ctx.active else idx


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """The module the training steps call: DDP around ``model`` (SyncBatchNorm on GPUs)."""
    if not ctx.active:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        # Brevitas scales being collected reach the loss only through `0 * value`; after
        # a resume DDP's reducer missed those gradients (measured): let it search
        broadcast_buffers=False, find_unused_parameters=True)


def inner(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def average_bn_stats(model: nn.Module, ctx: DistContext) -> None:
    """Batch-norm running statistics averaged over the ranks (CPU runs: no SyncBatchNorm)."""
    if not ctx.active:
        return
    for mod in inner(model).modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.track_running_stats:
            for buf in (mod.running_mean, mod.running_var):
                dist.all_reduce(buf.data, op=dist.ReduceOp.SUM)
                buf.data.div_(ctx.world)


def broadcast_collecting_stats(collectors: dict[str, nn.Module], ctx: DistContext) -> None:
    """While Brevitas collects scales from runtime statistics, every rank takes rank 0's
    running buffer and step counter (after each step, until the collection ends)."""
    if not ctx.active:
        return
    for mod in collectors.values():
        if int(mod.counter) <= int(mod.collect_stats_steps):
            dist.broadcast(mod.buffer.data, src=0)
            if hasattr(mod, "value"):
                dist.broadcast(mod.value.data, src=0)


def agree(flags: list[bool], ctx: DistContext) -> list[bool]:
    """Each flag true on all ranks if it is true on any (stop / save at the same step)."""
    if not ctx.active:
        return flags
    t = torch.tensor([float(f) for f in flags])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def sum_over_ranks(values: list[float], ctx: DistContext) -> list[float]:
    if not ctx.active:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def gather(obj, ctx: DistContext) -> list:
    """``obj`` of every rank (rank order); ``[obj]`` without torchrun."""
    if not ctx.active:
        return [obj]
    out = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def state_hash(model: nn.Module) -> str:
    h = hashlib.sha256()
    for key, value in sorted(inner(model).state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def finish(ctx: DistContext) -> None:
    """Leave the process group (the caller has dropped its DDP wrapper: a reducer still
    alive when its gloo group is destroyed blocks the process at exit)."""
    if ctx.active and dist.is_initialized():
        import gc
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


# ------------------------------------------- the process a run is in: device, seeds, signals
def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def stop_on_signals():
    """SIGTERM/SIGINT set a flag (checked between steps) instead of killing the run."""
    flag = {"stop": False}

    def handler(signum, frame):  # noqa: ARG001
        flag["stop"] = True

    old = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, handler)
    except ValueError:           # not the main thread: no handlers, periodic saves only
        pass
    try:
        yield flag
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
