"""CutMix (Yun et al., ICCV 2019) and the variants of its Table 8.

CutMix, as in the official code: lambda ~ Beta(beta, beta); the box has side
``floor(side * sqrt(1 - lambda))`` along each image side, its centre is uniform over the image
(``randint(H)``, ``randint(W)``), it is clipped to the image, and the partner image (from a random
permutation of the batch) is pasted inside it. The partner's label weight is then recomputed from
the clipped area: ``w = area / (H * W)``, soft target ``(1 - w) * y + w * y[perm]``.
One difference from the official ``rand_bbox``: we keep the exact side (``y0 = cy - side // 2``,
``y1 = y0 + side``) where the official code uses ``cy +- side // 2`` (one pixel shorter for odd sides).

``prob`` is the chance that a batch (``per_sample=False``, the official code) or a sample
(``per_sample=True``, one box and lambda per sample) is mixed.

Variants: :class:`CenterGaussianCutMix`, :class:`FixedSizeCutMix`, :class:`ScheduledCutMix`,
:class:`OneHotCutMix`, :class:`CompleteLabelCutMix`; feature-level CutMix is in
:mod:`wsol.augment.feature`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from wsol.augment.base import (Augmentation, beta, box_mask, check_positive, check_prob, rand,
                               randint, randn, randperm)
from wsol.errors import UserError


@dataclass(frozen=True)
class CutPlan:
    """One sampled CutMix step for a batch.

    ``perm``: int64 ``[B]`` partner of each sample; ``boxes``: int64 ``[B, 4]`` half-open
    ``(y0, y1, x0, x1)`` in a ``height x width`` frame (zero-area boxes for samples left unmixed);
    ``applied``: bool ``[B]``. All on CPU (or the generator's device).
    """

    perm: Tensor
    boxes: Tensor
    applied: Tensor
    height: int
    width: int

    def scaled(self, height: int, width: int) -> "CutPlan":
        """The same boxes on a ``height x width`` grid (coordinates rounded half up)."""
        if (height, width) == (self.height, self.width):
            return self
        b = self.boxes
        ys = (2 * b[:, 0:2] * height + self.height) // (2 * self.height)
        xs = (2 * b[:, 2:4] * width + self.width) // (2 * self.width)
        return CutPlan(self.perm, torch.cat([ys, xs], dim=1), self.applied, height, width)

    def fraction(self) -> Tensor:
        """float64 ``[B]``: pasted area / image area (exact ratio of pixel counts)."""
        b = self.boxes
        area = (b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2])
        return area.to(torch.float64) / float(self.height * self.width)

    def paste(self, x: Tensor) -> Tensor:
        """``x [B, C, height, width]`` with each box filled from ``x[perm]`` (a new tensor)."""
        if tuple(x.shape[-2:]) != (self.height, self.width):
            raise UserError(f"CutMix plan is for {self.height}x{self.width} maps; "
                            f"got {tuple(x.shape[-2:])}")
        mask = box_mask(self.boxes, self.height, self.width, x.device)
        return torch.where(mask, x[self.perm.to(x.device)], x)


def mix_soft(soft: Tensor, perm: Tensor, weight: Tensor) -> Tensor:
    """``(1 - w) * soft + w * soft[perm]`` per row, computed in float64, returned float32.

    ``weight``: float64 ``[B]`` partner weight. With one-hot rows and a partner of another class,
    the partner's entry equals ``float32(w)`` exactly.
    """
    s = soft.to(torch.float64)
    w = weight.to(s.device).view(-1, 1)
    return ((1.0 - w) * s + w * s[perm.to(s.device)]).to(torch.float32)


class CutMix(Augmentation):
    """CutMix: paste a box of a partner image; labels mixed by the pasted area.

    Keywords: ``beta`` (> 0, Beta(beta, beta) for lambda; 1.0 = uniform), ``prob`` (chance of
    mixing, default 1.0), ``per_sample`` (one box per sample instead of one per batch).
    """

    def __init__(self, num_classes: int, beta: float = 1.0, prob: float = 1.0,
                 per_sample: bool = False) -> None:
        super().__init__(num_classes)
        self.beta = check_positive("beta", beta)
        self.prob = check_prob("prob", prob)
        self.per_sample = bool(per_sample)

    def options(self) -> dict:
        return {"beta": self.beta, "prob": self.prob, "per_sample": self.per_sample}

    # -- sampling hooks (the variants override these) --------------------------------------
    def probability(self) -> float:
        """Chance that a batch (or sample) is mixed."""
        return self.prob

    def sample_sides(self, n: int, height: int, width: int,
                     generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """int64 ``[n]`` box heights and widths before clipping."""
        lam = beta(self.beta, self.beta, n, generator)
        ratio = torch.sqrt(1.0 - lam)
        return (torch.floor(height * ratio).long(), torch.floor(width * ratio).long())

    def sample_centres(self, n: int, height: int, width: int,
                       generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """int64 ``[n]`` box centre rows and columns (uniform over the image)."""
        return randint(height, n, generator).cpu(), randint(width, n, generator).cpu()

    def label_weight(self, fraction: Tensor, applied: Tensor) -> Tensor:
        """float64 ``[B]`` weight of the partner's label given the pasted area fraction."""
        return torch.where(applied.cpu(), fraction, torch.zeros_like(fraction))

    # -- the step ----------------------------------------------------------------------------
    def sample(self, batch_size: int, height: int, width: int,
               generator: torch.Generator | None = None) -> CutPlan:
        """Draw partners and boxes for a batch of ``height x width`` images."""
        n = batch_size if self.per_sample else 1
        coin = rand(n, generator).cpu() < self.probability()
        hs, ws = self.sample_sides(n, height, width, generator)
        cy, cx = self.sample_centres(n, height, width, generator)
        perm = randperm(batch_size, generator).cpu()
        y0 = (cy - hs // 2).clamp(0, height)
        x0 = (cx - ws // 2).clamp(0, width)
        y1 = (cy - hs // 2 + hs).clamp(0, height)
        x1 = (cx - ws // 2 + ws).clamp(0, width)
        boxes = torch.stack([y0, y1, x0, x1], dim=1).long()
        boxes = torch.where(coin.view(-1, 1), boxes, torch.zeros_like(boxes))
        if not self.per_sample:
            boxes = boxes.expand(batch_size, 4).clone()
            coin = coin.expand(batch_size).clone()
        return CutPlan(perm=perm, boxes=boxes, applied=coin, height=height, width=width)

    def mix_targets(self, soft: Tensor, plan: CutPlan) -> Tensor:
        """Soft targets after pasting by ``plan`` (at ``plan``'s resolution)."""
        return mix_soft(soft, plan.perm, self.label_weight(plan.fraction(), plan.applied))

    def apply(self, images: Tensor, soft: Tensor,
              generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        plan = self.sample(images.shape[0], images.shape[-2], images.shape[-1], generator)
        return plan.paste(images), self.mix_targets(soft, plan)


class CenterGaussianCutMix(CutMix):
    """CutMix whose box centre is Gaussian around the image centre (CutMix Table 8).

    The paper gives no spread; we use ``sigma`` as a fraction of each image side (default 0.25,
    so about 95% of centres fall inside the image) and clamp the centre into the image.
    """

    def __init__(self, num_classes: int, beta: float = 1.0, prob: float = 1.0,
                 per_sample: bool = False, sigma: float = 0.25) -> None:
        super().__init__(num_classes, beta=beta, prob=prob, per_sample=per_sample)
        self.sigma = check_positive("sigma", sigma)

    def options(self) -> dict:
        return {**super().options(), "sigma": self.sigma}

    def sample_centres(self, n, height, width, generator):
        z = randn(2 * n, generator).cpu()
        cy = torch.round(height / 2 + self.sigma * height * z[:n]).long().clamp(0, height - 1)
        cx = torch.round(width / 2 + self.sigma * width * z[n:]).long().clamp(0, width - 1)
        return cy, cx


class FixedSizeCutMix(CutMix):
    """CutMix with a fixed box side (``side`` x each image side; 0.5 = the paper's 16 on 32)."""

    def __init__(self, num_classes: int, side: float = 0.5, prob: float = 1.0,
                 per_sample: bool = False) -> None:
        super().__init__(num_classes, beta=1.0, prob=prob, per_sample=per_sample)
        side = float(side)
        if not 0.0 < side <= 1.0:
            raise UserError(f"side must be in (0, 1]; got {side}")
        self.side = side

    def options(self) -> dict:
        return {"side": self.side, "prob": self.prob, "per_sample": self.per_sample}

    def sample_sides(self, n, height, width, generator):
        h = int(height * self.side)
        w = int(width * self.side)
        return torch.full((n,), h, dtype=torch.long), torch.full((n,), w, dtype=torch.long)


class ScheduledCutMix(CutMix):
    """CutMix whose probability rises linearly from 0 to ``prob`` over training.

    The trainer sets :attr:`progress` (in [0, 1], fraction of training steps done) before each
    step; the mixing probability is ``prob * progress``. ``progress`` starts at 0.
    """

    def __init__(self, num_classes: int, beta: float = 1.0, prob: float = 1.0,
                 per_sample: bool = False) -> None:
        super().__init__(num_classes, beta=beta, prob=prob, per_sample=per_sample)
        self._progress = 0.0

    @property
    def progress(self) -> float:
        return self._progress

    @progress.setter
    def progress(self, value: float) -> None:
        self._progress = check_prob("progress", value)

    def probability(self) -> float:
        return self.prob * self._progress


class OneHotCutMix(CutMix):
    """CutMix whose target is the label of the larger area (the partner's if it covers > 1/2)."""

    def label_weight(self, fraction, applied):
        won = applied.cpu() & (fraction > 0.5)
        return won.to(torch.float64)


class CompleteLabelCutMix(CutMix):
    """CutMix whose target is 0.5 / 0.5 for every mixed sample, whatever the pasted area."""

    def label_weight(self, fraction, applied):
        return applied.cpu().to(torch.float64) * 0.5
