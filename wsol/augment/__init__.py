"""Batch augmentations: Cutout, Mixup, CutMix and the CutMix paper's variants, one registry.

Every entry follows one call convention (see :mod:`wsol.augment.base`)::

    aug = build_augmentation("cutmix", num_classes=200, beta=1.0)
    images, soft_targets = aug(images, labels, generator=g)   # [B,3,H,W], [B] or [B,K] -> [B,K]

``feature_cutmix`` mixes inside the network: use ``aug.plan(...)`` (see :mod:`wsol.augment.feature`).
``cutmix_scheduled`` reads ``aug.progress`` (in [0, 1]) that the trainer sets every step.

Boxes (CutMix, its variants, feature CutMix, Cutout) are laid out by ``box_rule``: ``"reference"``
(default; ``[c - s//2, c + s//2)`` as CutMix-PyTorch, torchvision v2, timm and the official Cutout)
or ``"exact_side"`` (``[c - s//2, c - s//2 + s)``); see :data:`BOX_RULES`. In a training recipe:
``aug_options: {cutmix: {box_rule: exact_side}}`` or
``--set aug_options.cutmix.box_rule=exact_side``.
``beta=0`` (CutMix and variants) and ``alpha=0`` (Mixup) switch the augmentation off.
"""

from __future__ import annotations

import inspect
from typing import Any

from wsol.augment.base import BOX_RULES, DEFAULT_BOX_RULE, Augmentation, to_soft
from wsol.augment.cutmix import (
    CenterGaussianCutMix,
    CompleteLabelCutMix,
    CutDraws,
    CutMix,
    CutPlan,
    FixedSizeCutMix,
    OneHotCutMix,
    ScheduledCutMix,
    cut_sides,
)
from wsol.augment.feature import FeatureCutMix, FeatureMixPlan
from wsol.augment.simple import Cutout, CutoutDraws, Mixup, NoAugmentation
from wsol.errors import UserError
from wsol.registry import Registry

AUGMENTATIONS: Registry[type[Augmentation]] = Registry("augmentation")

_ENTRIES: list[tuple[str, type[Augmentation], str]] = [
    ("none", NoAugmentation, "no augmentation (one-hot targets)"),
    ("cutout", Cutout, "Cutout: zero a square hole per image (size, n_holes, prob, box_rule)"),
    ("mixup", Mixup, "Mixup: blend two images and labels, lambda ~ Beta(alpha, alpha); alpha=0: off"),
    ("cutmix", CutMix, "CutMix: paste a box of another image, labels by area (beta, prob, box_rule); beta=0: off"),
    (
        "cutmix_center_gaussian",
        CenterGaussianCutMix,
        "CutMix with the box centre ~ Gaussian around the image centre (sigma)",
    ),
    ("cutmix_fixed_size", FixedSizeCutMix, "CutMix with a fixed box side (side=0.5 of the image)"),
    ("cutmix_scheduled", ScheduledCutMix, "CutMix whose probability rises 0 -> prob over training"),
    ("cutmix_one_hot", OneHotCutMix, "CutMix with the label of the larger area"),
    ("cutmix_complete_label", CompleteLabelCutMix, "CutMix with 0.5 / 0.5 labels"),
    ("feature_cutmix", FeatureCutMix, "CutMix of feature maps at layer 0..4 (layer=1 default)"),
]
for _name, _cls, _help in _ENTRIES:
    AUGMENTATIONS.register(_name, help=_help)(_cls)


def build_augmentation(name: str, num_classes: int, **options: Any) -> Augmentation:
    """Create the augmentation ``name`` for ``num_classes`` classes with keyword ``options``.

    Unknown names or keywords raise :class:`~wsol.errors.UserError` listing the valid ones.
    """
    cls = AUGMENTATIONS.get(name)
    params = inspect.signature(cls.__init__).parameters
    valid = [p for p in params if p not in ("self", "num_classes")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise UserError(
            f"augmentation {name!r} has no option(s) {', '.join(unknown)}; valid: {', '.join(valid) or '(none)'}"
        )
    for key, value in options.items():  # a default's type says what the option takes
        default = params[key].default
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise UserError(f"aug_options.{name}.{key} must be true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and not number:
            raise UserError(f"aug_options.{name}.{key} must be a number, got {value!r}")
    try:
        aug = cls(num_classes=num_classes, **options)
    except (TypeError, ValueError) as exc:
        raise UserError(f"aug_options.{name}: {exc} (options {options})") from None
    aug.name = name
    return aug


__all__ = [
    "AUGMENTATIONS",
    "build_augmentation",
    "Augmentation",
    "to_soft",
    "BOX_RULES",
    "DEFAULT_BOX_RULE",
    "NoAugmentation",
    "Cutout",
    "CutoutDraws",
    "Mixup",
    "CutMix",
    "CutDraws",
    "CutPlan",
    "cut_sides",
    "CenterGaussianCutMix",
    "FixedSizeCutMix",
    "ScheduledCutMix",
    "OneHotCutMix",
    "CompleteLabelCutMix",
    "FeatureCutMix",
    "FeatureMixPlan",
]
