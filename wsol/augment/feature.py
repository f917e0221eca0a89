"""Feature-level CutMix (CutMix paper, Figure 3): CutMix applied to a hidden feature map.

Layer index ``k`` follows the model contract: ``model.stages()`` is a list of callables whose
composition is ``forward_features``; mixing at ``k`` mixes the output of ``stages()[:k]``
(``k = 0``: the input image, ``1``: after the stem, ``2..4``: after layer1..layer3).

The box is drawn exactly as :class:`~wsol.augment.cutmix.CutMix` draws it on the input image (same
``box_rule``), then scaled to the feature map (coordinates rounded half up); the label weight is
the pasted fraction *of the feature map*, so it matches what was actually mixed.

Use from a training step (the trainer does this)::

    plan = aug.plan(images, targets, generator)       # draws everything
    x = images
    for i, stage in enumerate(model.stages()):
        if i == plan.layer:
            x = plan.mix(x)
        x = stage(x)
    logits = model.forward_head(x)
    loss = soft_cross_entropy(logits, plan.targets())  # after mix()

At ``layer=0`` calling ``aug(images, targets, generator)`` works like CutMix; at deeper layers it
raises, because the mix needs the model (use :meth:`FeatureCutMix.plan`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from wsol.augment.base import DEFAULT_BOX_RULE, check_batch, to_soft
from wsol.augment.cutmix import CutMix, CutPlan
from wsol.errors import UserError


class FeatureMixPlan:
    """One drawn feature-level CutMix step: call :meth:`mix` once, then :meth:`targets`."""

    def __init__(self, layer: int, cut: CutPlan, soft: Tensor, aug: CutMix) -> None:
        self.layer = layer
        self.cut = cut
        self.soft = soft
        self._aug = aug
        self._used: CutPlan | None = None

    def mix(self, features: Tensor) -> Tensor:
        """``features [B, C, h, w]`` with the box (scaled to ``h x w``) pasted from the partners."""
        if self._used is not None:
            raise RuntimeError("FeatureMixPlan.mix() called twice for one step")
        self._used = self.cut.scaled(features.shape[-2], features.shape[-1])
        return self._used.paste(features)

    def targets(self) -> Tensor:
        """float32 ``[B, K]`` soft targets for the map that :meth:`mix` mixed."""
        if self._used is None:
            raise RuntimeError("FeatureMixPlan.targets() needs mix() first (the feature size)")
        return self._aug.mix_targets(self.soft, self._used)


class FeatureCutMix(CutMix):
    """CutMix at layer ``layer`` (0 = input image ... 4 = after layer3); keywords as CutMix
    (``beta=0``: off, the plan mixes nothing; ``box_rule`` lays out the box on the input image,
    which is then scaled to the feature map)."""

    feature_level = True

    def __init__(
        self,
        num_classes: int,
        layer: int = 1,
        beta: float = 1.0,
        prob: float = 1.0,
        per_sample: bool = False,
        box_rule: str = DEFAULT_BOX_RULE,
    ) -> None:
        super().__init__(num_classes, beta=beta, prob=prob, per_sample=per_sample, box_rule=box_rule)
        if isinstance(layer, bool) or int(layer) != layer or not 0 <= int(layer) <= 4:
            raise UserError(f"feature-level CutMix layer must be an integer in 0..4; got {layer!r}")
        self.layer = int(layer)

    def options(self) -> dict:
        return {"layer": self.layer, **super().options()}

    def plan(self, images: Tensor, targets: Tensor, generator: torch.Generator | None = None) -> FeatureMixPlan:
        """Draw partners and a box for ``images [B, C, H, W]`` (box in input pixels)."""
        check_batch(images, targets)
        soft = to_soft(targets, self.num_classes)
        cut = self.sample(images.shape[0], images.shape[-2], images.shape[-1], generator)
        return FeatureMixPlan(self.layer, cut, soft, self)

    def apply(self, images, soft, generator):
        if self.layer != 0:
            raise UserError(
                f"feature-level CutMix at layer {self.layer} mixes inside the model; "
                "use aug.plan(...) and plan.mix(features) between model stages"
            )
        return super().apply(images, soft, generator)
