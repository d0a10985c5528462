"""Single-process and torchrun (DDP) training through one code path.

Why: trainers call these helpers unconditionally; with ``WORLD_SIZE`` unset or 1 they are no-ops, so the
CPU single-process path and a multi-GPU ``torchrun`` launch share the same trainer code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from vq_models.errors import InputError


@dataclass
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    is_main: bool

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"environment variable {name}: expected an integer, got {raw!r}") from None


def init_distributed(device: str = "cpu") -> DistInfo:
    """Read torchrun's RANK/WORLD_SIZE/LOCAL_RANK; start a process group (gloo on CPU, nccl on CUDA)
    only when WORLD_SIZE > 1. On CUDA each rank gets ``cuda:LOCAL_RANK``."""
    rank = _env_int("RANK", 0)
    world = _env_int("WORLD_SIZE", 1)
    local = _env_int("LOCAL_RANK", 0)
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r}: CUDA is not available on this machine")
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not (dist.is_available() and dist.is_initialized()):
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev, is_main=rank == 0)


def wrap_ddp(module: nn.Module, info: DistInfo) -> nn.Module:
    """Wrap in DistributedDataParallel when running distributed; otherwise return the module."""
    if not info.distributed:
        return module
    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper (for saving weights without ``module.`` prefixes)."""
    return module.module if hasattr(module, "module") and isinstance(module.module, nn.Module) else module


def all_reduce_mean(t: Tensor, info: DistInfo) -> Tensor:
    """Mean of ``t`` over all ranks (a copy; ``t`` itself is left alone). Identity when not distributed."""
    if not info.distributed:
        return t.detach().clone()
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def cleanup(info: DistInfo, together: bool = True) -> None:
    """Leave the process group, by default together: a rank that tears down gloo while a peer is still
    finishing its last collective can make that peer abort (seen once as SIGABRT in rank 1 on a loaded
    2-core machine). ``together=False`` for error paths, where a peer may never reach the barrier."""
    if info.distributed and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def broadcast_module(module: nn.Module, info: DistInfo, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every rank (identical start without DDP)."""
    if not info.distributed:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=src)


def average_gradients(module: nn.Module, info: DistInfo) -> None:
    """All-reduce-mean every parameter gradient in place.

    Why not always DDP: losses that differentiate through the network twice (R1 gradient penalty with
    ``create_graph=True``) are not supported by DDP's reducer; averaging explicitly after ``backward``
    is equivalent for synchronous SGD and works with any loss."""
    if not info.distributed:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(info.world_size)
