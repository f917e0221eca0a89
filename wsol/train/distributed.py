"""One process by default; ``DistributedDataParallel`` when started by ``torchrun``.

``torchrun`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; with ``WORLD_SIZE > 1`` we join the
process group (``nccl`` on CUDA, ``gloo`` on CPU) through the ``env://`` rendezvous torchrun set up.
Each process uses ``cuda:LOCAL_RANK`` on GPU machines.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from wsol.errors import UserError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str | None) -> torch.device:
    """``name`` as a device; ``None``: cuda when available, else cpu."""
    if name:
        try:
            return torch.device(name)
        except RuntimeError as exc:
            raise UserError(f"invalid device {name!r}: {exc}") from None
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup(device: str | None) -> DistInfo:
    """Read the torchrun environment, pick the device, join the process group if needed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {dev} requested but CUDA is not available")
        if world > 1 or dev.index is None:
            dev = torch.device("cuda", local if world > 1 else torch.cuda.current_device())
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Element-wise sum of ``values`` over processes (float64; identity with one process)."""
    if not info.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64,
                     device=info.device if info.device.type == "cuda" else "cpu")
    dist.all_reduce(t)
    return t.tolist()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def broadcast_flag(value: bool, info: DistInfo) -> bool:
    """Rank 0's ``value`` on every process."""
    if not info.distributed:
        return value
    t = torch.tensor([1 if value else 0], dtype=torch.int64,
                     device=info.device if info.device.type == "cuda" else "cpu")
    dist.broadcast(t, src=0)
    return bool(t.item())
