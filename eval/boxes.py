"""Box conventions, conversions and IoU: the one place where box formats meet.

Two conventions exist and every function says which one it takes and returns:

* **inclusive** (the WSOL protocol, ILSVRC devkit, wsolevaluation ``localization.txt``):
  ``(x0, y0, x1, y1)`` integer pixel indices, ``x1``/``y1`` are the *last* pixel inside the box,
  area ``(x1 - x0 + 1) * (y1 - y0 + 1)``. A one-pixel box is ``(x, y, x, y)``.
* **continuous** (torchvision ``tv_tensors.BoundingBoxes`` in ``XYXY``): real coordinates of the
  box edges; pixel ``i`` spans ``[i, i + 1)``. A one-pixel box is ``(x, y, x + 1, y + 1)``.

Conversions between them are :func:`inclusive_to_continuous` and :func:`continuous_to_inclusive`;
nothing else in the toolkit converts by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from eval.errors import InputError

__all__ = [
    "as_box_array",
    "check_inclusive_boxes",
    "inclusive_to_continuous",
    "continuous_to_inclusive",
    "rescale_boxes_wsolevaluation",
    "contour_box",
    "iou_inclusive",
    "max_iou_inclusive",
]


def as_box_array(boxes: Sequence[Sequence[float]] | np.ndarray, dtype=np.int64) -> np.ndarray:
    """Return ``boxes`` as an ``[N, 4]`` array of ``dtype`` (a single box becomes ``[1, 4]``)."""
    arr = np.asarray(boxes, dtype=dtype)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"boxes must have shape [N, 4], got {tuple(np.shape(boxes))}")
    return arr


def check_inclusive_boxes(
    boxes: np.ndarray, width: int | None = None, height: int | None = None, where: str = "boxes"
) -> None:
    """Raise :class:`InputError` unless every inclusive box has ``0 <= x0 <= x1`` and ``0 <= y0 <= y1``
    (and, when the frame is given, ``x1 <= width - 1``, ``y1 <= height - 1``). ``where`` names the
    source (file:line or image id) in the message."""
    b = as_box_array(boxes)
    bad = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if width is not None:
        bad |= b[:, 2] > width - 1
    if height is not None:
        bad |= b[:, 3] > height - 1
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        frame = f" in a {width}x{height} image" if width is not None else ""
        raise InputError(
            f"{where}: invalid inclusive box {tuple(int(v) for v in b[i])}{frame} "
            "(need 0 <= x0 <= x1 <= W-1 and 0 <= y0 <= y1 <= H-1)"
        )


def inclusive_to_continuous(boxes: np.ndarray) -> np.ndarray:
    """Inclusive integer boxes ``[N, 4]`` -> continuous float64 boxes ``[N, 4]`` (``x1 + 1``, ``y1 + 1``)."""
    b = as_box_array(boxes).astype(np.float64)
    b[:, 2:] += 1.0
    return b


def continuous_to_inclusive(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Continuous boxes ``[N, 4]`` in a ``width x height`` frame -> inclusive int64 boxes ``[N, 4]``.

    Each box is first clipped to the frame ``[0, width] x [0, height]``; then a pixel is inside when
    the box covers any part of it: ``x0 = floor(x0)``, ``x1 = ceil(x1) - 1`` (same for y). A box with
    no area left after clipping (entirely outside the frame, or zero width/height) raises
    :class:`InputError`: it cannot be expressed in the inclusive convention.
    """
    b = as_box_array(boxes, dtype=np.float64).copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(0.0, float(width))
    b[:, [1, 3]] = b[:, [1, 3]].clip(0.0, float(height))
    out = np.empty(b.shape, dtype=np.int64)
    for i, (x0, y0, x1, y1) in enumerate(b):
        if not (x1 > x0 and y1 > y0):
            raise InputError(
                f"box {i} {tuple(float(v) for v in as_box_array(boxes, np.float64)[i])} "
                f"has no area inside the {width}x{height} frame"
            )
        out[i] = (math.floor(x0), math.floor(y0), math.ceil(x1) - 1, math.ceil(y1) - 1)
    return out


def rescale_boxes_wsolevaluation(
    boxes: np.ndarray, orig_size: tuple[int, int], new_size: tuple[int, int]
) -> np.ndarray:
    """The wsolevaluation GT rescaling rule (protocol section 2.5), bit-exact.

    ``boxes``: inclusive ``[N, 4]`` in the original image; ``orig_size`` and ``new_size`` are
    ``(width, height)``. Every coordinate is scaled independently and truncated with ``int()``:
    ``x' = int(x * new_w / w)``, ``y' = int(y * new_h / h)``. Returns inclusive int64 ``[N, 4]``.
    Example: ``(1, 2, 4, 3)`` in a 10x20 image resized to 35x10 gives ``(3, 1, 14, 1)``.
    """
    w, h = orig_size
    nw, nh = new_size
    b = as_box_array(boxes)
    out = np.empty_like(b)
    for i, (x0, y0, x1, y1) in enumerate(b.tolist()):
        out[i] = (int(x0 * nw / w), int(y0 * nh / h), int(x1 * nw / w), int(y1 * nh / h))
    return out


def contour_box(x: int, y: int, w: int, h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Predicted box of a contour as wsolevaluation forms it (protocol section 2.3).

    ``(x, y, w, h)`` is ``cv2.boundingRect``; the box is ``(x, y, min(x + w, W - 1), min(y + h, H - 1))``
    in the inclusive convention, i.e. one pixel wider/taller than the contour unless clipped.
    """
    return (x, y, min(x + w, width - 1), min(y + h, height - 1))


def iou_inclusive(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU matrix ``[N, M]`` (float64) of inclusive boxes with the +1 area convention (section 2.4).

    ``inter = max(0, min(x1) - max(x0) + 1) * max(0, min(y1) - max(y0) + 1)``; a non-positive
    denominator gives 0. Example: ``(1, 2, 5, 6)`` vs ``(3, 1, 4, 5)`` gives ``8 / 27``; two
    ``(0, 0, 0, 0)`` boxes give 1. Raises :class:`InputError` for boxes with ``x1 < x0`` or
    negative coordinates, as the protocol does.
    """
    a = as_box_array(boxes_a)
    b = as_box_array(boxes_b)
    check_inclusive_boxes(a, where="predicted boxes")
    check_inclusive_boxes(b, where="ground-truth boxes")
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    denom = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros(denom.shape, dtype=np.float64)
    np.divide(inter, denom, out=out, where=denom > 0)
    return out


def max_iou_inclusive(boxes_a: np.ndarray, boxes_b: np.ndarray) -> float:
    """Best IoU between any box of ``boxes_a`` and any of ``boxes_b`` (inclusive convention)."""
    return float(iou_inclusive(boxes_a, boxes_b).max())
