"""Image/box/mask geometry of the evaluation presets and the training recipes (torchvision v2).

Images go through ``torchvision.transforms.v2`` together with their boxes
(``tv_tensors.BoundingBoxes``, continuous XYXY), so resize / crop / flip move both. The GT boxes the
metrics use (``boxes_eval``, inclusive int64) follow each preset's rule, computed exactly in float64
from the original inclusive boxes (never from float32 transformed coordinates):

* ``wsolevaluation``: resize to ``S x S`` (anisotropic, PIL bilinear, no crop); GT boxes by
  :func:`eval.boxes.rescale_boxes_wsolevaluation` (per-coordinate ``int()`` truncation, protocol 2.5).
* ``cutmix``: resize to ``R x R`` with ``R = round(S * 256 / 224)`` (256 for S = 224), centre-crop
  ``S`` (torchvision offsets); GT boxes mapped as continuous boxes, clipped to the crop,
  converted with :func:`eval.boxes.continuous_to_inclusive`. Boxes entirely outside the crop are
  dropped, so ``K`` can be 0 (protocol section 8).

Masks (protocol 3.2): every instance mask resized with ``cv2.INTER_NEAREST`` to the resized frame,
``> 0.5``, OR-ed into fg; ignore = (ignore mask ``> 0.5``) AND NOT fg; encoded 1 fg / 0 bg / 255
ignore; then centre-cropped like the image (cutmix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from eval.boxes import continuous_to_inclusive, inclusive_to_continuous, rescale_boxes_wsolevaluation
from wsol.registry import Registry

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Preset",
    "PRESETS",
    "train_transform",
    "to_bounding_boxes",
    "follow_boxes",
    "encode_mask",
    "centre_crop_offsets",
    "cutmix_resize_size",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def cutmix_resize_size(size: int) -> int:
    """``round(size * 256 / 224)``: 256 for 224, 73 for 64."""
    return int(round(size * 256 / 224))


def centre_crop_offsets(height: int, width: int, crop: int) -> tuple[int, int]:
    """``(top, left)`` of a centre crop, exactly as torchvision's ``center_crop`` computes them."""
    return int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0))


def _to_tensor_steps() -> list:
    return [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD)),
    ]


def to_bounding_boxes(boxes: np.ndarray, width: int, height: int) -> tv_tensors.BoundingBoxes:
    """Inclusive int boxes ``[K, 4]`` of a ``width x height`` image -> ``BoundingBoxes`` (XYXY,
    continuous, float32, canvas ``(height, width)``)."""
    cont = inclusive_to_continuous(boxes) if len(boxes) else np.zeros((0, 4))
    return tv_tensors.BoundingBoxes(
        torch.as_tensor(cont, dtype=torch.float32), format="XYXY", canvas_size=(height, width)
    )


def follow_boxes(boxes: tv_tensors.BoundingBoxes) -> np.ndarray:
    """Transformed continuous boxes -> inclusive int64 ``[K', 4]`` in their canvas; boxes with no
    area left inside the canvas are dropped."""
    h, w = boxes.canvas_size
    arr = boxes.as_subclass(torch.Tensor).detach().cpu().numpy().astype(np.float64).reshape(-1, 4)
    return _continuous_in_frame(arr, w, h)


def _continuous_in_frame(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    x0 = arr[:, 0].clip(0, width)
    x1 = arr[:, 2].clip(0, width)
    y0 = arr[:, 1].clip(0, height)
    y1 = arr[:, 3].clip(0, height)
    keep = (x1 > x0) & (y1 > y0)
    if not keep.any():
        return np.zeros((0, 4), dtype=np.int64)
    return continuous_to_inclusive(arr[keep], width, height)


def encode_mask(
    fg_masks: list[np.ndarray], ignore: np.ndarray | None, out_size: tuple[int, int], crop: int | None = None
) -> np.ndarray:
    """Protocol 3.2 mask: uint8 ``[H, W]`` with 1 fg, 0 bg, 255 ignore.

    ``fg_masks``: grayscale uint8 arrays (any size), resized with ``INTER_NEAREST`` to
    ``out_size = (width, height)``, thresholded ``> 0.5`` and OR-ed; ``ignore`` likewise, minus fg.
    With ``crop`` the result is centre-cropped to ``crop x crop`` (torchvision offsets).
    """
    import cv2

    w, h = out_size
    fg = np.zeros((h, w), dtype=bool)
    for m in fg_masks:
        fg |= cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) > 0.5
    out = fg.astype(np.uint8)
    if ignore is not None:
        ign = (cv2.resize(ignore, (w, h), interpolation=cv2.INTER_NEAREST) > 0.5) & ~fg
        out[ign] = 255
    if crop is not None:
        top, left = centre_crop_offsets(h, w, crop)
        out = np.ascontiguousarray(out[top : top + crop, left : left + crop])
    return out


@dataclass(frozen=True)
class Preset:
    """An evaluation preset: the test-time geometry and the GT box rule (see the module docstring)."""

    name: str
    crop: bool
    description: str

    def resize_size(self, size: int) -> int:
        return cutmix_resize_size(size) if self.crop else size

    def transform(self, size: int) -> v2.Compose:
        """Image (+ boxes) pipeline: PIL RGB in, normalized float32 ``[3, S, S]`` out."""
        r = self.resize_size(size)
        steps: list = [v2.Resize((r, r))]
        if self.crop:
            steps.append(v2.CenterCrop(size))
        return v2.Compose(steps + _to_tensor_steps())

    def eval_boxes(self, boxes: np.ndarray, orig_size: tuple[int, int], size: int) -> np.ndarray:
        """Inclusive original boxes ``[K, 4]`` -> inclusive int64 boxes in the evaluated ``S x S``
        frame (``orig_size = (width, height)``)."""
        if len(boxes) == 0:
            return np.zeros((0, 4), dtype=np.int64)
        if not self.crop:
            return rescale_boxes_wsolevaluation(boxes, orig_size, (size, size))
        w, h = orig_size
        r = self.resize_size(size)
        top, left = centre_crop_offsets(r, r, size)
        cont = inclusive_to_continuous(boxes)
        cont[:, [0, 2]] = cont[:, [0, 2]] * (r / w) - left
        cont[:, [1, 3]] = cont[:, [1, 3]] * (r / h) - top
        return _continuous_in_frame(cont, size, size)

    def mask(self, fg_masks: list[np.ndarray], ignore: np.ndarray | None, size: int) -> np.ndarray:
        r = self.resize_size(size)
        return encode_mask(fg_masks, ignore, (r, r), crop=size if self.crop else None)

    def describe(self, size: int) -> dict:
        """What to record with results."""
        r = self.resize_size(size)
        return {
            "preset": self.name,
            "resize": [r, r],
            "center_crop": size if self.crop else None,
            "gt_boxes": (
                "follow resize + centre crop, clip, continuous_to_inclusive"
                if self.crop
                else "rescale_boxes_wsolevaluation (per-coordinate int() truncation)"
            ),
            "normalize": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        }


PRESETS: Registry[Preset] = Registry("evaluation preset")
PRESETS.register("wsolevaluation", help="resize to SxS, no crop; GT by the int() rescale rule")(
    Preset("wsolevaluation", crop=False, description="resize to SxS (no crop); GT boxes rescaled with int() truncation")
)
PRESETS.register("cutmix", help="resize to S*256/224, centre-crop S; GT boxes follow and are clipped")(
    Preset(
        "cutmix", crop=True, description="resize to round(S*256/224) square, centre-crop S; GT boxes mapped and clipped"
    )
)


def train_transform(size: int, resize: int | None = None, crop: bool = True, flip: bool = True) -> v2.Compose:
    """Training pipeline (PIL RGB + boxes in, normalized float32 ``[3, size, size]`` out).

    * ``crop`` and ``resize is None``: ``RandomResizedCrop(size)`` (ImageNet recipe);
    * ``crop`` and ``resize = R``: ``Resize((R, R))`` then ``RandomCrop(size)`` (wsolevaluation /
      CutMix recipe, R = 256 for size 224);
    * not ``crop``: ``Resize((size, size))``.
    ``flip`` adds ``RandomHorizontalFlip()``. Randomness comes from torch's global RNG.
    """
    if crop and resize is None:
        steps: list = [v2.RandomResizedCrop(size)]
    elif crop:
        if resize < size:
            raise ValueError(f"resize {resize} is smaller than the crop {size}")
        steps = [v2.Resize((resize, resize)), v2.RandomCrop(size)]
    else:
        steps = [v2.Resize((size, size))]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps + _to_tensor_steps())
