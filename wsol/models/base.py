"""The WSOL model contract (see ``docs/architecture.md``, "Model contract").

Every model built by :func:`wsol.models.create_model` is a :class:`WSOLModel`:

- ``forward(x) -> logits [B, K]`` equals ``forward_head(forward_features(x))``;
- ``forward_features(x) -> [B, C, h, w]``: the CAM feature map, the composition of ``stages()``;
- ``forward_head(features) -> logits [B, K]``;
- ``class_maps(features, targets) -> [B, h, w]``: vanilla CAM of ``targets`` (LongTensor ``[B]``)
  at feature resolution, same dtype as ``features``;
- ``stages() -> list[Callable]``: 5 callables (0 = stem, 1..4 = the following stages);
  feature-level CutMix at layer ``k`` mixes the output of ``stages()[:k]`` (k = 0: the image);
- ``cam_layer``: dotted name of the sub-module whose output is the feature map;
- ``arch``, ``arch_options`` (re-creates the model: ``create_model(arch, num_classes, **arch_options)``),
  ``num_classes``.

Stages look their modules up on ``self`` at call time, so a sub-module swapped after
construction is honoured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn


class WSOLModel(nn.Module):
    """Base class: subclasses set ``arch``/``arch_options``/``cam_layer``/``num_classes`` and
    implement ``stages``, ``forward_head`` and ``class_maps``."""

    arch: str = ""
    cam_layer: str = ""

    def __init__(self, num_classes: int, arch_options: dict[str, Any]) -> None:
        super().__init__()
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.arch_options = dict(arch_options)

    # -- the contract -------------------------------------------------------------------------
    def stages(self) -> list[Callable[[Tensor], Tensor]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, features: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def class_maps(self, features: Tensor, targets: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward_features(self, x: Tensor) -> Tensor:
        for stage in self.stages():
            x = stage(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, num_classes={self.num_classes}, arch_options={self.arch_options}"


def linear_class_maps(features: Tensor, weight: Tensor, targets: Tensor) -> Tensor:
    """Vanilla CAM of a GAP + linear head: ``sum_c weight[t, c] * features[:, c]``.

    features: ``[B, C, h, w]``; weight: ``[K, C]``; targets: integer ``[B]``.
    Returns ``[B, h, w]`` in ``features``' dtype. No bias, no ReLU; the plain sum over channels
    (wsolevaluation takes the channel mean: a factor ``1/C`` that min-max/max normalisation removes).
    """
    if targets.ndim != 1 or targets.shape[0] != features.shape[0]:
        raise ValueError(f"targets must be [B={features.shape[0]}], got shape {tuple(targets.shape)}")
    w = weight[targets.to(weight.device).long()].to(features.dtype)  # [B, C]
    return torch.einsum("bc,bchw->bhw", w, features)


def init_head_linear(fc: nn.Linear) -> None:
    """wsolevaluation's head init: N(0, 0.01) weights, zero bias."""
    nn.init.normal_(fc.weight, 0.0, 0.01)
    nn.init.zeros_(fc.bias)
