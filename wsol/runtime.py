"""Where a run executes: device, cores, worker counts, gradients and the torchrun process group.

Every job asks this module, so each of these decisions is written once:

* :func:`resolve_device` -- ``--device`` as a ``torch.device`` (default cuda when available);
* :func:`usable_cores` -- the cores this process may run on (affinity-aware);
* :func:`sweep_workers` / :func:`loader_workers` -- processes for the per-image box sweeps and for
  image decoding, from ``--workers``;
* :func:`needs_grad` -- whether a CAM method needs autograd (read from the CAM registry);
* :func:`setup` / :func:`cleanup` / :func:`shard` / :func:`gather` -- one process by default, the
  ``torchrun`` process group when ``WORLD_SIZE > 1`` (``nccl`` on CUDA, ``gloo`` on CPU, each
  process on ``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from eval.cores import max_workers, usable_cores
from wsol.errors import UserError

__all__ = [
    "DistInfo",
    "resolve_device",
    "usable_cores",
    "sweep_workers",
    "loader_workers",
    "needs_grad",
    "setup",
    "cleanup",
    "shard",
    "gather",
    "all_reduce_sum",
    "barrier",
    "broadcast_flag",
]


def resolve_device(name: str | None) -> torch.device:
    """``name`` as a device (``"cuda:1"``, ``"cpu"``); ``None`` or ``""``: cuda when available, else cpu."""
    if name:
        try:
            return torch.device(name)
        except RuntimeError as exc:
            raise UserError(f"invalid device {name!r}: {exc}") from None
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sweep_workers(workers: int | None, *, images: int | None = None) -> int:
    """Processes for the per-image sweeps: ``None`` -> every usable core; 0 = in this process.
    Never more than :func:`eval.cores.max_workers`, nor than ``images`` (the images to score,
    when known). The numbers do not depend on it."""
    n = usable_cores() if workers is None else max(0, int(workers))
    n = min(n, max_workers())
    return n if images is None else min(n, max(0, int(images)))


def loader_workers(workers: int, device: torch.device, *, batches: int | None = None) -> int:
    """DataLoader processes so that decoding overlaps the model and the sweeps: on a GPU up to 4;
    on a CPU one when there are cores to spare (the main process runs the model). Never more
    than ``batches`` (the batches to load, when known)."""
    n = min(workers, 4) if device.type == "cuda" else (1 if workers >= 2 else 0)
    return n if batches is None else min(n, max(0, int(batches)))


def needs_grad(method: str) -> bool:
    """Whether CAM ``method`` needs autograd (Grad-CAM and relatives); vanilla CAM does not."""
    from cam import CAM_METHODS

    return bool(CAM_METHODS.get(method).uses_gradients)


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


def shard(n: int, rank: int, world: int) -> list[int]:
    """Contiguous block of ``range(n)`` for ``rank``: no padding, no duplicates, rank order = data order."""
    return list(range(n * rank // world, n * (rank + 1) // world))


def gather(obj: Any, info: DistInfo) -> list[Any]:
    """``obj`` of every process, in rank order (``[obj]`` with one process)."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def _reduce_device(info: DistInfo) -> torch.device | str:
    return info.device if info.device.type == "cuda" else "cpu"


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Element-wise sum of ``values`` over processes (float64; identity with one process)."""
    if not info.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_reduce_device(info))
    dist.all_reduce(t)
    return t.tolist()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def broadcast_flag(value: bool, info: DistInfo) -> bool:
    """Rank 0's ``value`` on every process."""
    if not info.distributed:
        return value
    t = torch.tensor([1 if value else 0], dtype=torch.int64, device=_reduce_device(info))
    dist.broadcast(t, src=0)
    return bool(t.item())
