"""ImageNet initialisation through torchvision's weights API (downloads; never used in tests)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from wsol.errors import UserError


def torchvision_state_dict(weights_name: str) -> dict[str, torch.Tensor]:
    """The state dict of a torchvision weights entry, e.g. ``"ResNet50_Weights.IMAGENET1K_V1"``."""
    from torchvision.models import get_weight

    weights = get_weight(weights_name)
    try:
        return dict(weights.get_state_dict(progress=True, check_hash=True))
    except Exception as exc:  # network, hash, disk: one clear line
        raise UserError(f"could not fetch ImageNet weights {weights_name} ({weights.url}): {exc}") from exc


def load_partial(model: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> list[str]:
    """Copy every entry of ``state`` whose name and shape match ``model``; return the model keys
    left at their initialisation. A key present in both with a different shape is an error."""
    own = model.state_dict()
    bad = [k for k, v in state.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if bad:
        raise UserError(f"{what}: pretrained weights do not fit (shape mismatch at {', '.join(bad[:5])})")
    usable = {k: v for k, v in state.items() if k in own}
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))
