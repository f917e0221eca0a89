"""No augmentation, Cutout (DeVries & Taylor 2017) and Mixup (Zhang et al. 2018)."""

from __future__ import annotations

import torch

from wsol.augment.base import (Augmentation, beta, box_mask, check_positive, check_prob, rand,
                               randint, randperm)
from wsol.augment.cutmix import mix_soft
from wsol.errors import UserError


class NoAugmentation(Augmentation):
    """Identity: images unchanged, targets as soft ``[B, K]``."""

    def apply(self, images, soft, generator):
        return images, soft


class Cutout(Augmentation):
    """Cutout: zero ``n_holes`` square holes per image; labels unchanged.

    ``size``: hole side, an ``int`` in pixels or a ``float`` in (0, 1] as a fraction of each
    image side (default 0.5, the paper's 16 on 32 and 112 on 224). Each hole's centre is uniform
    over the whole image (``randint(H)``, ``randint(W)``, as the official code), the hole
    ``[c - side // 2, c - side // 2 + side)`` is clipped at the borders. Apply it after
    normalization so the zeros (``fill``) are the dataset mean. ``prob``: chance per image.
    """

    def __init__(self, num_classes: int, size: int | float = 0.5, n_holes: int = 1,
                 prob: float = 1.0, fill: float = 0.0) -> None:
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

    def options(self) -> dict:
        return {"size": self.size, "n_holes": self.n_holes, "prob": self.prob, "fill": self.fill}

    def sides(self, height: int, width: int) -> tuple[int, int]:
        """Hole height and width in pixels for a ``height x width`` image."""
        if isinstance(self.size, float):
            return max(1, round(self.size * height)), max(1, round(self.size * width))
        return self.size, self.size

    def apply(self, images, soft, generator):
        b, _, h, w = images.shape
        sh, sw = self.sides(h, w)
        coin = (rand(b, generator) < self.prob).cpu()
        keep = torch.ones(b, 1, h, w, dtype=torch.bool, device=images.device)
        for _ in range(self.n_holes):
            cy = randint(h, b, generator).cpu()
            cx = randint(w, b, generator).cpu()
            y0, x0 = cy - sh // 2, cx - sw // 2
            boxes = torch.stack([y0.clamp(0, h), (y0 + sh).clamp(0, h),
                                 x0.clamp(0, w), (x0 + sw).clamp(0, w)], dim=1)
            boxes = torch.where(coin.view(-1, 1), boxes, torch.zeros_like(boxes))
            keep &= ~box_mask(boxes, h, w, images.device)
        out = torch.where(keep, images, torch.full((), self.fill, dtype=images.dtype,
                                                   device=images.device))
        return out, soft


class Mixup(Augmentation):
    """Mixup: ``lam * x + (1 - lam) * x[perm]``, targets alike; lam ~ Beta(alpha, alpha).

    One lambda and one permutation per batch (the official code), or one lambda per sample
    with ``per_sample=True``. ``prob``: chance that the batch (or sample) is mixed.
    Images must be floating point.
    """

    def __init__(self, num_classes: int, alpha: float = 1.0, prob: float = 1.0,
                 per_sample: bool = False) -> None:
        super().__init__(num_classes)
        self.alpha = check_positive("alpha", alpha)
        self.prob = check_prob("prob", prob)
        self.per_sample = bool(per_sample)

    def options(self) -> dict:
        return {"alpha": self.alpha, "prob": self.prob, "per_sample": self.per_sample}

    def apply(self, images, soft, generator):
        if not images.is_floating_point():
            raise UserError(f"Mixup needs floating-point images; got {images.dtype}")
        b = images.shape[0]
        n = b if self.per_sample else 1
        coin = (rand(n, generator) < self.prob).cpu()
        lam = beta(self.alpha, self.alpha, n, generator)
        perm = randperm(b, generator).cpu()
        weight = torch.where(coin, 1.0 - lam, torch.zeros_like(lam)).expand(b)  # partner weight
        wi = weight.to(device=images.device, dtype=images.dtype).view(-1, 1, 1, 1)
        mixed = (1 - wi) * images + wi * images[perm.to(images.device)]
        return mixed, mix_soft(soft, perm, weight)
