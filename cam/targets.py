"""Target classes: one per image (``[B]``) or k per image (``[B, k]``), checked against the logits."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cam.errors import CAMInputError


def as_targets(targets: Any, batch: int, device: torch.device) -> tuple[Tensor | None, bool]:
    """``(None, True)`` for None (top-1 later); else ``(int64 [B, k] on device, given as [B])``.

    Accepts a tensor, numpy array or (nested) sequence of integers; ``[B]`` becomes ``[B, 1]``.
    """
    if targets is None:
        return None, True
    try:
        t = targets if isinstance(targets, Tensor) else torch.as_tensor(targets)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CAMInputError(f"targets must be integer class indices: {exc}") from None
    single = t.ndim == 1
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise CAMInputError(f"targets must be integer class indices, got dtype {t.dtype}")
    shape = tuple(t.shape)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2 or t.shape[0] != batch or t.shape[1] < 1:
        raise CAMInputError(f"targets must have shape [B] or [B, k] with B={batch}, got {shape}")
    return t.to(device=device, dtype=torch.long), single


def check_range(targets: Tensor, num_classes: int, offset: int = 0) -> None:
    """Every target in ``[0, num_classes)``; the error names the first bad image."""
    bad = (targets < 0) | (targets >= num_classes)
    if bool(bad.any()):
        i, j = (int(v) for v in bad.nonzero()[0])
        raise CAMInputError(
            f"target {int(targets[i, j])} of image at batch index {offset + i} is "
            f"outside the model's {num_classes} classes"
        )


def top_k(logits: Tensor, k: int) -> Tensor:
    """The k highest-scoring classes per image, ``[B, k]`` (k=1: predicted top-1)."""
    return logits.topk(k, dim=1).indices
