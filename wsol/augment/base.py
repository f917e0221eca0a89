"""Shared pieces of the batch augmentations: the call convention, soft targets, seeded sampling.

Call convention (like ``torchvision.transforms.v2.CutMix``)::

    images, soft = aug(images, targets, generator=None)

- ``images``: ``Tensor [B, 3, H, W]`` (any float dtype; already normalized), any device.
  The input is never modified in place.
- ``targets``: ``int64 [B]`` class indices in ``[0, num_classes)`` or float ``[B, K]`` soft targets
  (rows summing to 1), e.g. the output of another augmentation.
- returns ``(images [B, 3, H, W], soft [B, K] float32)`` on the input devices.

Randomness: every random number is drawn from ``generator`` (a ``torch.Generator``) when one is
given, so the output depends on it alone; with ``generator=None`` the global torch RNG is used
(``torch.manual_seed`` makes it reproducible). Beta variates are drawn with NumPy from a seed taken
from that same torch source, so they follow the same rule.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from wsol.errors import UserError


def to_soft(targets: Tensor, num_classes: int) -> Tensor:
    """Return float32 soft targets ``[B, K]`` from int labels ``[B]`` or soft ``[B, K]`` targets.

    Int labels become one-hot rows; a soft ``[B, K]`` input is checked and returned as float32.
    """
    if targets.dim() == 1 and not targets.is_floating_point():
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
            bad = targets[(targets < 0) | (targets >= num_classes)][0].item()
            raise UserError(f"label {bad} is outside [0, {num_classes}) (num_classes={num_classes})")
        out = torch.zeros(targets.shape[0], num_classes, dtype=torch.float32, device=targets.device)
        out[torch.arange(targets.shape[0], device=targets.device), targets.long()] = 1.0
        return out
    if targets.dim() == 2 and targets.is_floating_point():
        if targets.shape[1] != num_classes:
            raise UserError(f"soft targets have {targets.shape[1]} classes, expected {num_classes}")
        return targets.to(torch.float32)
    raise UserError(
        f"targets must be int64 labels [B] or float soft targets [B, {num_classes}]; "
        f"got {tuple(targets.shape)} {targets.dtype}"
    )


def check_batch(images: Tensor, targets: Tensor) -> None:
    """Clear errors for the shapes of the call convention."""
    if images.dim() != 4:
        raise UserError(f"images must be [B, C, H, W]; got shape {tuple(images.shape)}")
    if targets.shape[0] != images.shape[0]:
        raise UserError(f"{images.shape[0]} images but {targets.shape[0]} targets")


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def rand(n: int, generator: torch.Generator | None) -> Tensor:
    """``n`` uniform floats in [0, 1) (float64, on the generator's device)."""
    return torch.rand(n, generator=generator, device=_device(generator), dtype=torch.float64)


def randn(n: int, generator: torch.Generator | None) -> Tensor:
    """``n`` standard normal floats (float64, on the generator's device)."""
    return torch.randn(n, generator=generator, device=_device(generator), dtype=torch.float64)


def randint(high: int, n: int, generator: torch.Generator | None) -> Tensor:
    """``n`` integers uniform in ``[0, high)`` (int64, on the generator's device)."""
    return torch.randint(0, high, (n,), generator=generator, device=_device(generator))


def randperm(n: int, generator: torch.Generator | None) -> Tensor:
    """A random permutation of ``range(n)`` (int64, on the generator's device)."""
    return torch.randperm(n, generator=generator, device=_device(generator))


def beta(a: float, b: float, n: int, generator: torch.Generator | None) -> Tensor:
    """``n`` Beta(a, b) variates (float64, CPU), seeded from ``generator`` (or the global RNG)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=_device(generator)).item())
    return torch.from_numpy(np.random.default_rng(seed).beta(a, b, size=n))


#: How a box of side ``s`` centred on pixel ``c`` spans one axis, as a half-open interval before
#: clipping to ``[0, size]`` (the one place that defines it; CutMix, its variants, feature-level
#: CutMix and Cutout all take ``box_rule=`` from these names).
BOX_RULES: dict[str, str] = {
    "reference": "[c - s//2, c + s//2): CutMix-PyTorch rand_bbox, torchvision v2 CutMix, timm, "
    "official Cutout (an odd side is one pixel shorter)",
    "exact_side": "[c - s//2, c - s//2 + s): exactly s pixels before clipping",
}
#: The default box rule: the references' convention.
DEFAULT_BOX_RULE = "reference"


def check_box_rule(value: str) -> str:
    """``value`` if it names a rule of :data:`BOX_RULES`, else a :class:`UserError` listing them."""
    if not isinstance(value, str) or value not in BOX_RULES:
        raise UserError(f"box_rule must be one of {', '.join(map(repr, BOX_RULES))}; got {value!r}")
    return value


def box_span(centre: Tensor, side: Tensor, size: int, rule: str = DEFAULT_BOX_RULE) -> tuple[Tensor, Tensor]:
    """Half-open ``[lo, hi)`` on an axis of ``size`` pixels by ``rule``, clipped to ``[0, size]``.

    ``centre``, ``side``: int64 tensors (broadcastable) of pixel centres and sides.
    ``"reference"``: ``lo = clip(c - s//2)``, ``hi = clip(c + s//2)``;
    ``"exact_side"``: ``lo = clip(c - s//2)``, ``hi = clip(c - s//2 + s)``.
    Returns two int64 tensors.
    """
    check_box_rule(rule)
    start = centre - side // 2
    stop = centre + side // 2 if rule == "reference" else start + side
    return start.clamp(0, size).long(), stop.clamp(0, size).long()


def centred_boxes(
    cy: Tensor, cx: Tensor, side_h: Tensor, side_w: Tensor, height: int, width: int, rule: str = DEFAULT_BOX_RULE
) -> Tensor:
    """int64 ``[n, 4]`` boxes ``(y0, y1, x0, x1)`` (half-open, see :func:`box_mask`) of sides
    ``side_h x side_w`` centred on rows ``cy`` and columns ``cx`` (int64 ``[n]`` each) by ``rule``,
    clipped to a ``height x width`` image."""
    y0, y1 = box_span(cy, side_h, height, rule)
    x0, x1 = box_span(cx, side_w, width, rule)
    return torch.stack([y0, y1, x0, x1], dim=1)


def box_mask(boxes: Tensor, height: int, width: int, device: torch.device) -> Tensor:
    """Boolean mask ``[B, 1, height, width]``: True inside each half-open box.

    ``boxes``: int64 ``[B, 4]`` as ``(y0, y1, x0, x1)`` with ``0 <= y0 <= y1 <= height`` (same for x);
    pixel rows ``y0 .. y1-1`` and columns ``x0 .. x1-1`` are inside.
    """
    boxes = boxes.to(device)
    ys = torch.arange(height, device=device).view(1, height, 1)
    xs = torch.arange(width, device=device).view(1, 1, width)
    y0, y1, x0, x1 = (boxes[:, i].view(-1, 1, 1) for i in range(4))
    inside = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
    return inside.unsqueeze(1)


def check_prob(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{name} must be in [0, 1]; got {value}")
    return value


def check_positive(name: str, value: float) -> float:
    value = float(value)
    if not value > 0.0:
        raise UserError(f"{name} must be > 0; got {value}")
    return value


def check_non_negative(name: str, value: float) -> float:
    value = float(value)
    if not value >= 0.0:  # also refuses NaN
        raise UserError(f"{name} must be >= 0 (0 switches the augmentation off); got {value}")
    return value


class Augmentation:
    """Base class: ``aug(images, targets, generator=None) -> (images, soft_targets)``.

    Subclasses implement :meth:`apply` on a checked batch with targets already converted to
    float32 soft targets ``[B, K]``.
    """

    #: registry name (set by the registry decorator in ``wsol.augment``)
    name: str = ""
    #: True for augmentations that mix inside the network (see :class:`FeatureCutMix`)
    feature_level: bool = False

    def __init__(self, num_classes: int) -> None:
        if int(num_classes) < 1:
            raise UserError(f"num_classes must be >= 1; got {num_classes}")
        self.num_classes = int(num_classes)

    def __call__(
        self, images: Tensor, targets: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        check_batch(images, targets)
        soft = to_soft(targets, self.num_classes)
        return self.apply(images, soft, generator)

    def apply(self, images: Tensor, soft: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def options(self) -> dict:
        """The constructor keywords (besides ``num_classes``) that reproduce this object."""
        return {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}(num_classes={self.num_classes}{', ' if opts else ''}{opts})"
