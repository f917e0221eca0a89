"""Upsampling and per-image normalisation of layer-resolution CAMs, on the maps' device.

Conventions (wsolevaluation, protocol section 1.4):

- Upsampling is bicubic with ``align_corners=False``: half-pixel centres, cubic coefficient
  A = -0.75 and replicated borders, which is exactly OpenCV's ``INTER_CUBIC`` (torch float64
  agrees with ``cv2.resize`` on float64 maps to ~1e-15; float32 to ~1e-6 of the map's range).
- Normalisation happens *after* upsampling, per map:
  ``minmax``: ``(x - min) / (max - min)`` (wsolevaluation); bicubic overshoot is absorbed.
  ``max`` (CAM, Zhou et al. 2016): negatives clipped to 0, then divided by the max.
  ``none``: the upsampled map as is (not in [0, 1]; for inspection).
- A map that is constant at layer resolution, or after upsampling, becomes all zeros (as
  wsolevaluation); under ``max`` a map whose max is <= 0 becomes all zeros.
- NaN/Inf anywhere in a layer-resolution map raises :class:`CAMInputError` naming the image.
Output dtype is float32 (float64 input maps are processed in float64, then cast).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from cam.errors import CAMInputError

NORMALIZATIONS = ("minmax", "max", "none")


def as_size(size: int | Sequence[int] | None, default: tuple[int, int]) -> tuple[int, int]:
    """``None`` -> default; ``s`` -> (s, s); ``(h, w)`` -> (h, w)."""
    if size is None:
        return (int(default[0]), int(default[1]))
    if isinstance(size, int):
        size = (size, size)
    h, w = (int(v) for v in size)
    if h < 1 or w < 1:
        raise CAMInputError(f"size must be positive, got {size!r}")
    return (h, w)


def check_finite(maps: Tensor, offset: int = 0, what: str = "CAM") -> None:
    """Raise naming the first image (batch index ``offset + i``) whose map has NaN/Inf."""
    flat = maps.reshape(maps.shape[0], -1)
    bad = ~torch.isfinite(flat).all(dim=1)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise CAMInputError(
            f"{what} of image at batch index {offset + i} is not finite (NaN or Inf): "
            "check the input image and the model's weights",
            index=offset + i,
        )


def upsample(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic (align_corners=False) resize of ``[..., h, w]`` maps to ``size``; float32/64."""
    dtype = torch.float64 if maps.dtype == torch.float64 else torch.float32
    maps = maps.to(dtype)
    lead, (h, w) = maps.shape[:-2], maps.shape[-2:]
    if (h, w) == tuple(size):
        return maps.clone()
    flat = maps.reshape(-1, 1, h, w)
    out = F.interpolate(flat, size=size, mode="bicubic", align_corners=False)
    return out.reshape(*lead, *size)


def _span(x: Tensor) -> tuple[Tensor, Tensor]:
    flat = x.reshape(*x.shape[:-2], -1)
    return flat.amin(-1)[..., None, None], flat.amax(-1)[..., None, None]


def normalize(maps: Tensor, mode: str = "minmax", constant: Tensor | None = None) -> Tensor:
    """Per-map normalisation of ``[..., H, W]``; ``constant`` (bool ``[...]``) forces zeros."""
    if mode not in NORMALIZATIONS:
        raise CAMInputError(f"unknown normalize {mode!r}; choose from: {', '.join(NORMALIZATIONS)}")
    if mode == "none":
        out = maps
    elif mode == "minmax":
        lo, hi = _span(maps)
        rng = hi - lo
        ok = rng > 0
        out = torch.where(ok, (maps - lo) / torch.where(ok, rng, torch.ones_like(rng)), torch.zeros_like(maps))
        out = out.clamp_(0.0, 1.0)
    else:  # max
        pos = maps.clamp(min=0.0)
        _, hi = _span(pos)
        ok = hi > 0
        out = torch.where(ok, pos / torch.where(ok, hi, torch.ones_like(hi)), torch.zeros_like(pos))
        out = out.clamp_(0.0, 1.0)
    if constant is not None and mode != "none":
        out = torch.where(constant[..., None, None], torch.zeros_like(out), out)
    return out


def postprocess(maps: Tensor, size: tuple[int, int], mode: str = "minmax", offset: int = 0) -> Tensor:
    """Layer-resolution maps ``[B, (k,) h, w]`` -> ``[B, (k,) H, W]`` float32 in [0, 1]."""
    return postprocess_many(maps, size, (mode,), offset)[0]


def postprocess_many(maps: Tensor, size: tuple[int, int], modes: Sequence[str], offset: int = 0) -> tuple[Tensor, ...]:
    """:func:`postprocess` under each of ``modes`` with one upsampling: a tuple of float32
    ``[B, (k,) H, W]`` in [0, 1], one per mode, each equal to ``postprocess(maps, size, mode)``."""
    check_finite(maps, offset)
    lo, hi = _span(maps)
    constant = (hi == lo)[..., 0, 0]
    up = upsample(maps, size)
    return tuple(normalize(up, mode, constant).to(torch.float32) for mode in modes)
