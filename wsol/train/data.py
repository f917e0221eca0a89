"""Training batches in a reproducible order: from a DataLoader or from an in-memory uint8 cache.

Both sources see the same epoch plan: a permutation of the training set drawn from a generator
seeded by ``(seed, epoch)``, cut into global batches of ``batch_size`` (the last incomplete batch
is dropped), each global batch split evenly over the distributed processes (rank ``r`` takes the
``r``-th slice). So the union of the processes' batches is the single-process batch, and an
epoch's batches depend on ``(seed, epoch)`` only (resume needs no sampler state). The in-memory
source also draws crops and flips per global batch, so with it every process sees exactly its
share of what one process would see.

Train geometry (both sources, the recipes' "resize 256 + random crop 224 + flip"):
``Resize((R, R))`` with ``R = round(S * 256 / 224)``, ``RandomCrop(S)``, ``RandomHorizontalFlip``,
ImageNet normalization.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch
from torch import Tensor

from wsol.errors import UserError


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from ``seed`` and labels (e.g. ``"order", epoch``); same on every machine."""
    text = repr((int(seed),) + tuple(parts)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & (2**63 - 1)


def check_batches(n: int, batch_size: int, world_size: int = 1) -> None:
    """UserError unless ``n`` images give at least one batch of ``batch_size`` split over ``world_size``."""
    if batch_size % world_size:
        raise UserError(f"batch_size {batch_size} is not divisible by the {world_size} processes")
    if n < batch_size:
        raise UserError(f"the training set has {n} images, fewer than one batch of {batch_size}")


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, world_size: int = 1) -> list[list[int]]:
    """The global batches of ``epoch``: ``n // batch_size`` slices of the permutation seeded by
    ``(seed, epoch)`` (the last incomplete batch is dropped)."""
    check_batches(n, batch_size, world_size)
    g = torch.Generator().manual_seed(derive_seed(seed, "order", epoch))
    perm = torch.randperm(n, generator=g).tolist()
    return [perm[b * batch_size : (b + 1) * batch_size] for b in range(n // batch_size)]


def local_slice(batch_len: int, rank: int, world_size: int) -> slice:
    """Positions of process ``rank``'s share of a global batch of ``batch_len``."""
    local = batch_len // world_size
    return slice(rank * local, (rank + 1) * local)


class MemoryTrainSet:
    """Every training image decoded once, resized to ``R x R`` and kept as uint8 ``[N, 3, R, R]``.

    :meth:`batch` crops ``S x S`` at a random offset and flips with probability 1/2 (per image,
    from the given generator), then normalizes: float32 ``[B, 3, S, S]``. For small images (the
    64px synthetic benchmark: 3,000 images = 48 MB) this removes all decoding from training.
    """

    def __init__(self, dataset) -> None:
        from torchvision.transforms import v2

        from wsol.data.images import open_rgb
        from wsol.data.transforms import IMAGENET_MEAN, IMAGENET_STD, cutmix_resize_size

        self.size = int(dataset.size)
        self.resize = cutmix_resize_size(self.size)
        self.num_classes = dataset.num_classes
        resize = v2.Compose([v2.Resize((self.resize, self.resize)), v2.ToImage()])
        records = dataset.records
        self.images = torch.empty(len(records), 3, self.resize, self.resize, dtype=torch.uint8)
        for i, r in enumerate(records):
            self.images[i] = resize(open_rgb(r.path, r.source)).as_subclass(Tensor)
        self.labels = torch.tensor([r.label for r in records], dtype=torch.long)
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, indices: list[int], generator: torch.Generator, part: slice = slice(None)) -> tuple[Tensor, Tensor]:
        """Normalized float32 ``[b, 3, S, S]`` random crops (and flips) and int64 labels ``[b]``.

        Crop offsets and flips are drawn for the whole (global) batch ``indices``, then ``part``
        of it is returned, so a process's share does not depend on the number of processes.
        """
        n, s, span = len(indices), self.size, self.resize - self.size + 1
        top = torch.randint(0, span, (n,), generator=generator)[part]
        left = torch.randint(0, span, (n,), generator=generator)[part]
        flip = (torch.rand(n, generator=generator) < 0.5)[part]
        idx = torch.as_tensor(indices, dtype=torch.long)[part]
        b = idx.shape[0]
        rows = (top.view(b, 1) + torch.arange(s)).view(b, 1, s, 1).expand(b, 3, s, self.resize)
        cols = left.view(b, 1) + torch.arange(s)
        cols = torch.where(flip.view(b, 1), cols.flip(1), cols).view(b, 1, 1, s).expand(b, 3, s, s)
        crops = self.images[idx].gather(2, rows).gather(3, cols)
        images = (crops.float() - self.mean) / self.std
        return images, self.labels[idx]

    def epoch(
        self, batches: list[list[int]], generator: torch.Generator, rank: int = 0, world_size: int = 1
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """This process's share of each global batch (see :meth:`batch`)."""
        for indices in batches:
            yield self.batch(indices, generator, local_slice(len(indices), rank, world_size))


class LoaderTrainSet:
    """A :class:`torch.utils.data.DataLoader` over ``dataset`` driven by the epoch plan.

    Random crops and flips of sample ``i`` use torch's RNG seeded from (the epoch generator,
    ``i``) for that sample alone (:class:`_SeededItems`), in whichever process loads it: the
    batches are the same at every ``workers`` value (so ``workers`` may change on resume), and
    the main process's RNG is left as it was.
    """

    def __init__(self, dataset, workers: int, pin_memory: bool) -> None:
        self.dataset = dataset
        self.num_classes = dataset.num_classes
        self.workers = workers
        self.pin_memory = pin_memory

    def __len__(self) -> int:
        return len(self.dataset)

    def epoch(
        self, batches: list[list[int]], generator: torch.Generator, rank: int = 0, world_size: int = 1
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """This process's share of each global batch, loaded and transformed."""
        from torch.utils.data import DataLoader

        from wsol.data import collate
        from wsol.data.loading import CarryErrors, carry_collate, iterate, worker_init

        local = [b[local_slice(len(b), rank, world_size)] for b in batches]
        epoch_seed = int(torch.randint(0, 2**62, (1,), generator=generator))  # before the loader draws
        loader = DataLoader(
            CarryErrors(_SeededItems(self.dataset, epoch_seed)),
            batch_sampler=local,
            collate_fn=carry_collate(collate),
            num_workers=self.workers,
            pin_memory=self.pin_memory,
            generator=generator,
            persistent_workers=False,
            worker_init_fn=worker_init,
        )
        for batch in iterate(loader):  # a worker's user error is raised here as itself
            yield batch["image"], batch["label"]


class _SeededItems:
    """``dataset[i]`` drawn under torch's RNG seeded by ``derive_seed(epoch_seed, "sample", i)``
    (the caller's RNG state is restored), so an item does not depend on which process loads it."""

    def __init__(self, dataset, epoch_seed: int) -> None:
        self.dataset = dataset
        self.epoch_seed = epoch_seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.epoch_seed, "sample", int(i)))
            return self.dataset[i]

    def __getattr__(self, name: str):
        if name in ("dataset", "epoch_seed") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)
