"""CutMix (Yun et al., ICCV 2019) and the variants of its Table 8.

CutMix, as in the official code (CutMix-PyTorch ``rand_bbox`` and its training loop): lambda ~
Beta(beta, beta); the box has side ``floor(n * sqrt(1 - lambda))`` along each image side of ``n``
pixels (:func:`cut_sides`), its centre is uniform over the image (``randint(H)``, ``randint(W)``),
and by default (``box_rule="reference"``) it spans ``[c - side // 2, c + side // 2)`` clipped to
the image, as in CutMix-PyTorch, torchvision v2 ``CutMix`` and timm (an odd side is one pixel
shorter). ``box_rule="exact_side"`` keeps the exact side, ``[c - side // 2, c - side // 2 + side)``
(see :data:`wsol.augment.base.BOX_RULES`). The partner image (from a random permutation of the
batch) is pasted inside the box, and lambda is recomputed from the clipped area as the official
code does: ``lam = 1 - area / (H * W)`` (float64), soft target ``lam * y + (1 - lam) * y[perm]``
(the loss ``lam * CE(y) + (1 - lam) * CE(y[perm])``). Given the same draws (lambda, centre,
permutation) the boxes, images and label weights equal the official code's bit for bit
(``tests/wsol/test_augment_reference.py``).

``beta=0`` switches CutMix off, as in CutMix-PyTorch (``if beta > 0 and r < cutmix_prob``): the
batch is returned unchanged with its (one-hot) targets and nothing is drawn.

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

from wsol.augment.base import (
    DEFAULT_BOX_RULE,
    Augmentation,
    beta,
    box_mask,
    centred_boxes,
    check_box_rule,
    check_non_negative,
    check_positive,
    check_prob,
    rand,
    randint,
    randn,
    randperm,
)
from wsol.errors import UserError


def cut_sides(lam: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """int64 ``[n]`` box sides for float64 lambdas ``lam [n]``, before clipping.

    ``floor(height * sqrt(1 - lam))`` rows and ``floor(width * sqrt(1 - lam))`` columns: the
    official ``cut_rat = np.sqrt(1. - lam); int(W * cut_rat)`` along each side, in float64.
    """
    ratio = torch.sqrt(1.0 - lam.to(torch.float64))
    return torch.floor(height * ratio).long(), torch.floor(width * ratio).long()


@dataclass(frozen=True)
class CutDraws:
    """The random draws of one CutMix step, before any box is laid out.

    ``applied``: bool ``[n]``; ``side_h``, ``side_w``: int64 ``[n]`` box sides before clipping;
    ``cy``, ``cx``: int64 ``[n]`` centre row / column; ``perm``: int64 ``[B]`` partner of each
    sample. ``n`` is ``B`` (``per_sample=True``) or 1 (one box for the whole batch). All on CPU.
    """

    applied: Tensor
    side_h: Tensor
    side_w: Tensor
    cy: Tensor
    cx: Tensor
    perm: Tensor

    @staticmethod
    def none(batch_size: int, n: int) -> CutDraws:
        """Draws that mix nothing: identity partners, zero sides, not applied."""
        zeros = torch.zeros(n, dtype=torch.long)
        return CutDraws(
            torch.zeros(n, dtype=torch.bool),
            zeros,
            zeros.clone(),
            zeros.clone(),
            zeros.clone(),
            torch.arange(batch_size),
        )


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

    def scaled(self, height: int, width: int) -> CutPlan:
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
            raise UserError(f"CutMix plan is for {self.height}x{self.width} maps; got {tuple(x.shape[-2:])}")
        mask = box_mask(self.boxes, self.height, self.width, x.device)
        return torch.where(mask, x[self.perm.to(x.device)], x)


def mix_soft(soft: Tensor, perm: Tensor, lam: Tensor) -> Tensor:
    """``lam * soft + (1 - lam) * soft[perm]`` per row, computed in float64, returned float32.

    ``lam``: float64 ``[B]`` weight of each sample's own target (the official code's ``lam``;
    1 for a sample left unmixed, whose row is returned exactly). With one-hot rows and a partner
    of another class, the entries are ``float32(lam)`` and ``float32(1 - lam)`` exactly.
    """
    s = soft.to(torch.float64)
    keep = lam.to(device=s.device, dtype=torch.float64).view(-1, 1)
    return (keep * s + (1.0 - keep) * s[perm.to(s.device)]).to(torch.float32)


class CutMix(Augmentation):
    """CutMix: paste a box of a partner image; labels mixed by the pasted area.

    Keywords: ``beta`` (>= 0, Beta(beta, beta) for lambda; 1.0 = uniform; 0 = off, as in
    CutMix-PyTorch), ``prob`` (chance of mixing, default 1.0), ``per_sample`` (one box per sample
    instead of one per batch), ``box_rule`` (``"reference"``, default, or ``"exact_side"``; see
    :data:`wsol.augment.base.BOX_RULES`).
    """

    def __init__(
        self,
        num_classes: int,
        beta: float = 1.0,
        prob: float = 1.0,
        per_sample: bool = False,
        box_rule: str = DEFAULT_BOX_RULE,
    ) -> None:
        super().__init__(num_classes)
        self.beta = check_non_negative("beta", beta)
        self.prob = check_prob("prob", prob)
        self.per_sample = bool(per_sample)
        self.box_rule = check_box_rule(box_rule)

    def options(self) -> dict:
        return {"beta": self.beta, "prob": self.prob, "per_sample": self.per_sample, "box_rule": self.box_rule}

    @property
    def enabled(self) -> bool:
        """False when ``beta == 0``: CutMix is off (CutMix-PyTorch's ``args.beta > 0`` test)."""
        return self.beta > 0

    # -- sampling hooks (the variants override these) --------------------------------------
    def probability(self) -> float:
        """Chance that a batch (or sample) is mixed."""
        return self.prob

    def sample_sides(self, n: int, height: int, width: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """int64 ``[n]`` box heights and widths before clipping (:func:`cut_sides` of
        lambda ~ Beta(beta, beta))."""
        return cut_sides(beta(self.beta, self.beta, n, generator), height, width)

    def sample_centres(
        self, n: int, height: int, width: int, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """int64 ``[n]`` box centre rows and columns (uniform over the image)."""
        return randint(height, n, generator).cpu(), randint(width, n, generator).cpu()

    def label_lam(self, fraction: Tensor, applied: Tensor) -> Tensor:
        """float64 ``[B]`` weight of each sample's own label (the official ``lam``) given the
        pasted area fraction: ``1 - fraction`` where mixed, 1 elsewhere."""
        return torch.where(applied.cpu(), 1.0 - fraction, torch.ones_like(fraction))

    # -- the step ----------------------------------------------------------------------------
    def draw(self, batch_size: int, height: int, width: int, generator: torch.Generator | None = None) -> CutDraws:
        """The random draws for a batch of ``height x width`` images, in this order: the coin(s),
        the sides, the centres, the permutation. Nothing is drawn when CutMix is off (beta=0)."""
        n = batch_size if self.per_sample else 1
        if not self.enabled:
            return CutDraws.none(batch_size, n)
        coin = rand(n, generator).cpu() < self.probability()
        hs, ws = self.sample_sides(n, height, width, generator)
        cy, cx = self.sample_centres(n, height, width, generator)
        perm = randperm(batch_size, generator).cpu()
        return CutDraws(applied=coin, side_h=hs, side_w=ws, cy=cy, cx=cx, perm=perm)

    def plan_from_draws(self, draws: CutDraws, height: int, width: int) -> CutPlan:
        """The boxes of ``draws`` laid out by :attr:`box_rule` in a ``height x width`` frame
        (deterministic; zero-area boxes where not applied; one box broadcast to the batch)."""
        batch_size = int(draws.perm.shape[0])
        boxes = centred_boxes(draws.cy, draws.cx, draws.side_h, draws.side_w, height, width, self.box_rule)
        coin = draws.applied.to(torch.bool).cpu()
        boxes = torch.where(coin.view(-1, 1), boxes, torch.zeros_like(boxes))
        if boxes.shape[0] != batch_size:
            boxes = boxes.expand(batch_size, 4).clone()
            coin = coin.expand(batch_size).clone()
        return CutPlan(perm=draws.perm.cpu(), boxes=boxes, applied=coin, height=height, width=width)

    def sample(self, batch_size: int, height: int, width: int, generator: torch.Generator | None = None) -> CutPlan:
        """Draw partners and boxes for a batch of ``height x width`` images."""
        return self.plan_from_draws(self.draw(batch_size, height, width, generator), height, width)

    def mix_targets(self, soft: Tensor, plan: CutPlan) -> Tensor:
        """Soft targets after pasting by ``plan`` (at ``plan``'s resolution)."""
        return mix_soft(soft, plan.perm, self.label_lam(plan.fraction(), plan.applied))

    def apply(self, images: Tensor, soft: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        if not self.enabled:
            return images, soft  # beta = 0: off, as in CutMix-PyTorch
        plan = self.sample(images.shape[0], images.shape[-2], images.shape[-1], generator)
        return plan.paste(images), self.mix_targets(soft, plan)


class CenterGaussianCutMix(CutMix):
    """CutMix whose box centre is Gaussian around the image centre (CutMix Table 8).

    The paper gives no spread; we use ``sigma`` as a fraction of each image side (default 0.25,
    so about 95% of centres fall inside the image) and clamp the centre into the image.
    """

    def __init__(
        self,
        num_classes: int,
        beta: float = 1.0,
        prob: float = 1.0,
        per_sample: bool = False,
        sigma: float = 0.25,
        box_rule: str = DEFAULT_BOX_RULE,
    ) -> None:
        super().__init__(num_classes, beta=beta, prob=prob, per_sample=per_sample, box_rule=box_rule)
        self.sigma = check_positive("sigma", sigma)

    def options(self) -> dict:
        return {**super().options(), "sigma": self.sigma}

    def sample_centres(self, n, height, width, generator):
        z = randn(2 * n, generator).cpu()
        cy = torch.round(height / 2 + self.sigma * height * z[:n]).long().clamp(0, height - 1)
        cx = torch.round(width / 2 + self.sigma * width * z[n:]).long().clamp(0, width - 1)
        return cy, cx


class FixedSizeCutMix(CutMix):
    """CutMix with a fixed box side (``side`` x each image side; 0.5 = the paper's 16 on 32).

    The box is laid out by ``box_rule`` like CutMix's (an odd side is one pixel shorter with the
    default ``"reference"`` rule)."""

    def __init__(
        self,
        num_classes: int,
        side: float = 0.5,
        prob: float = 1.0,
        per_sample: bool = False,
        box_rule: str = DEFAULT_BOX_RULE,
    ) -> None:
        super().__init__(num_classes, beta=1.0, prob=prob, per_sample=per_sample, box_rule=box_rule)
        side = float(side)
        if not 0.0 < side <= 1.0:
            raise UserError(f"side must be in (0, 1]; got {side}")
        self.side = side

    def options(self) -> dict:
        return {"side": self.side, "prob": self.prob, "per_sample": self.per_sample, "box_rule": self.box_rule}

    def sample_sides(self, n, height, width, generator):
        h = int(height * self.side)
        w = int(width * self.side)
        return torch.full((n,), h, dtype=torch.long), torch.full((n,), w, dtype=torch.long)


class ScheduledCutMix(CutMix):
    """CutMix whose probability rises linearly from 0 to ``prob`` over training.

    The trainer sets :attr:`progress` (in [0, 1], fraction of training steps done) before each
    step; the mixing probability is ``prob * progress``. ``progress`` starts at 0.
    """

    def __init__(
        self,
        num_classes: int,
        beta: float = 1.0,
        prob: float = 1.0,
        per_sample: bool = False,
        box_rule: str = DEFAULT_BOX_RULE,
    ) -> None:
        super().__init__(num_classes, beta=beta, prob=prob, per_sample=per_sample, box_rule=box_rule)
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

    def label_lam(self, fraction, applied):
        won = applied.cpu() & (fraction > 0.5)
        return 1.0 - won.to(torch.float64)


class CompleteLabelCutMix(CutMix):
    """CutMix whose target is 0.5 / 0.5 for every mixed sample, whatever the pasted area."""

    def label_lam(self, fraction, applied):
        return 1.0 - applied.cpu().to(torch.float64) * 0.5
