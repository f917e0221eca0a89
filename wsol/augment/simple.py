"""No augmentation, Cutout (DeVries & Taylor 2017) and Mixup (Zhang et al. 2018)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from wsol.augment.base import (
    DEFAULT_BOX_RULE,
    Augmentation,
    beta,
    box_mask,
    centred_boxes,
    check_box_rule,
    check_non_negative,
    check_prob,
    rand,
    randint,
    randperm,
)
from wsol.augment.cutmix import mix_soft
from wsol.errors import UserError


class NoAugmentation(Augmentation):
    """Identity: images unchanged, targets as soft ``[B, K]``."""

    def apply(self, images, soft, generator):
        return images, soft


@dataclass(frozen=True)
class CutoutDraws:
    """The random draws of one Cutout step: ``applied`` bool ``[B]``, hole centre rows ``cy`` and
    columns ``cx`` int64 ``[n_holes, B]`` (all on CPU)."""

    applied: Tensor
    cy: Tensor
    cx: Tensor


class Cutout(Augmentation):
    """Cutout: zero ``n_holes`` square holes per image; labels unchanged.

    ``size``: hole side, an ``int`` in pixels or a ``float`` in (0, 1] as a fraction of each
    image side (default 0.5, the paper's 16 on 32 and 112 on 224). Each hole's centre is uniform
    over the whole image (``randint(H)``, ``randint(W)``, as the official ``util/cutout.py``), and
    by default (``box_rule="reference"``) the hole is ``[c - side // 2, c + side // 2)`` clipped
    at the borders, as the official code (an odd side is one pixel shorter);
    ``box_rule="exact_side"`` keeps ``[c - side // 2, c - side // 2 + side)`` (see
    :data:`wsol.augment.base.BOX_RULES`). With ``fill=0`` the image is multiplied by the 0/1 mask
    as the official code does; another ``fill`` value is written into the holes. Apply it after
    normalization so the zeros are the dataset mean. ``prob``: chance per image.
    """

    def __init__(
        self,
        num_classes: int,
        size: int | float = 0.5,
        n_holes: int = 1,
        prob: float = 1.0,
        fill: float = 0.0,
        box_rule: str = DEFAULT_BOX_RULE,
    ) -> None:
        super().__init__(num_classes)
        if isinstance(size, bool) or not isinstance(size, (int, float)):
            raise UserError(f"cutout size must be an int (pixels) or a float fraction; got {size!r}")
        if isinstance(size, float) and not 0.0 < size <= 1.0:
            raise UserError(f"cutout size as a fraction must be in (0, 1]; got {size}")
        if isinstance(size, int) and size < 1:
            raise UserError(f"cutout size in pixels must be >= 1; got {size}")
        if int(n_holes) != n_holes or n_holes < 1:
            raise UserError(f"n_holes must be an integer >= 1; got {n_holes!r}")
        self.size = size
        self.n_holes = int(n_holes)
        self.prob = check_prob("prob", prob)
        self.fill = float(fill)
        self.box_rule = check_box_rule(box_rule)

    def options(self) -> dict:
        return {
            "size": self.size,
            "n_holes": self.n_holes,
            "prob": self.prob,
            "fill": self.fill,
            "box_rule": self.box_rule,
        }

    def sides(self, height: int, width: int) -> tuple[int, int]:
        """Hole height and width in pixels for a ``height x width`` image."""
        if isinstance(self.size, float):
            return max(1, round(self.size * height)), max(1, round(self.size * width))
        return self.size, self.size

    def draw(self, batch_size: int, height: int, width: int, generator: torch.Generator | None = None) -> CutoutDraws:
        """The coins (``[B]``), then per hole the centre rows and columns (``[B]`` each)."""
        coin = (rand(batch_size, generator) < self.prob).cpu()
        cys, cxs = [], []
        for _ in range(self.n_holes):
            cys.append(randint(height, batch_size, generator).cpu())
            cxs.append(randint(width, batch_size, generator).cpu())
        return CutoutDraws(applied=coin, cy=torch.stack(cys), cx=torch.stack(cxs))

    def holes(self, draws: CutoutDraws, height: int, width: int) -> Tensor:
        """int64 ``[n_holes, B, 4]`` half-open ``(y0, y1, x0, x1)`` holes of ``draws`` laid out
        by :attr:`box_rule` (zero-area where not applied)."""
        sh, sw = self.sides(height, width)
        coin = draws.applied.to(torch.bool).cpu().view(-1, 1)
        out = []
        for cy, cx in zip(draws.cy, draws.cx):
            side_h = torch.full_like(cy, sh)
            side_w = torch.full_like(cx, sw)
            boxes = centred_boxes(cy, cx, side_h, side_w, height, width, self.box_rule)
            out.append(torch.where(coin, boxes, torch.zeros_like(boxes)))
        return torch.stack(out)

    def cut(self, images: Tensor, draws: CutoutDraws) -> Tensor:
        """``images [B, C, H, W]`` with the holes of ``draws`` filled (a new tensor)."""
        b, _, h, w = images.shape
        keep = torch.ones(b, 1, h, w, dtype=torch.bool, device=images.device)
        for boxes in self.holes(draws, h, w):
            keep &= ~box_mask(boxes, h, w, images.device)
        if self.fill == 0.0:
            return images * keep.to(images.dtype)  # the official code: img * mask
        return torch.where(keep, images, torch.full((), self.fill, dtype=images.dtype, device=images.device))

    def apply(self, images, soft, generator):
        b, _, h, w = images.shape
        return self.cut(images, self.draw(b, h, w, generator)), soft


class Mixup(Augmentation):
    """Mixup: ``lam * x + (1 - lam) * x[perm]``, targets alike; lam ~ Beta(alpha, alpha).

    One lambda and one permutation per batch (the official code), or one lambda per sample
    with ``per_sample=True``. ``prob``: chance that the batch (or sample) is mixed.
    ``alpha=0`` switches Mixup off, as the official code (``lam = 1`` when ``alpha <= 0``): the
    batch is returned unchanged and nothing is drawn. Images must be floating point.
    """

    def __init__(self, num_classes: int, alpha: float = 1.0, prob: float = 1.0, per_sample: bool = False) -> None:
        super().__init__(num_classes)
        self.alpha = check_non_negative("alpha", alpha)
        self.prob = check_prob("prob", prob)
        self.per_sample = bool(per_sample)

    def options(self) -> dict:
        return {"alpha": self.alpha, "prob": self.prob, "per_sample": self.per_sample}

    def apply(self, images, soft, generator):
        if not images.is_floating_point():
            raise UserError(f"Mixup needs floating-point images; got {images.dtype}")
        if self.alpha == 0:
            return images, soft  # off, as the official code with alpha = 0
        b = images.shape[0]
        n = b if self.per_sample else 1
        coin = (rand(n, generator) < self.prob).cpu()
        lam = beta(self.alpha, self.alpha, n, generator)
        perm = randperm(b, generator).cpu()
        keep = torch.where(coin, lam, torch.ones_like(lam)).expand(b)  # own weight, float64
        li = keep.to(device=images.device, dtype=images.dtype).view(-1, 1, 1, 1)
        pi = (1.0 - keep).to(device=images.device, dtype=images.dtype).view(-1, 1, 1, 1)
        mixed = li * images + pi * images[perm.to(images.device)]
        return mixed, mix_soft(soft, perm, keep)
