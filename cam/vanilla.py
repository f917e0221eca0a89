"""Vanilla CAM (Zhou et al. 2016; protocol section 1.2) from the forward pass that gave the logits.

``model.class_maps(features, targets)``: the target class's classifier weights times the feature
map, no bias and no ReLU (InceptionV3-CAM: the ``SPG_A4`` 1x1-conv channel, bias included).
No second forward, no backward. Reduced-precision features (autocast) are cast to float32 first.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cam.errors import CAMInputError
from cam.registry import CAM_METHODS, CAMMethod
from cam.runner import FeatureRun


def working_dtype(t: Tensor) -> torch.dtype:
    """float64 stays float64; everything else is computed in float32."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def vanilla_layer_maps(run: FeatureRun, targets: Tensor, options: dict, batch_size: int | None) -> Tensor:
    class_maps = getattr(run.model, "class_maps", None)
    if not callable(class_maps):
        raise CAMInputError(
            "method 'cam' needs a model with class_maps(features, targets) "
            "(a wsol model); use a grad-cam method for other classifiers"
        )
    feats = run.features.to(working_dtype(run.features))
    maps = class_maps(feats, targets)
    if maps.shape != (feats.shape[0], *feats.shape[-2:]):
        raise CAMInputError(
            f"class_maps returned shape {tuple(maps.shape)}, expected {(feats.shape[0], *feats.shape[-2:])}"
        )
    return maps.to(working_dtype(run.features))


CAM_METHODS.add(
    CAMMethod(
        name="cam",
        layer_maps=vanilla_layer_maps,
        description="vanilla CAM: classifier weights of the target times the feature map (one forward)",
        convention="no bias (InceptionV3: SPG_A4 channel incl. bias), no ReLU; bicubic + normalize on device",
        needs_head=True,
        needs_class_maps=True,
    )
)
