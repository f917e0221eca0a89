"""``MetricSettings``: how every localization metric of a run is computed, decided once.

One frozen object per run, created from the command line (or a caller's arguments) and passed
down to the per-image scoring, the accumulators, the result file and the resume guard. The
defaults of the metric options are written here and nowhere else. The threshold grid and the
PxAP bin edges are built once, in ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eval.errors import InputError

__all__ = [
    "MetricSettings",
    "DEFAULT_CAM_CURVE_INTERVAL",
    "MIN_CAM_CURVE_INTERVAL",
    "DEFAULT_IOU_THRESHOLDS",
    "DEFAULT_SIGMA",
    "thresholds_from_interval",
    "pxap_edges",
]

DEFAULT_CAM_CURVE_INTERVAL = 0.01
# The finest threshold step accepted: the maps are quantized to 256 levels before the sweep, and
# the reference protocol's finest step is 0.001; 1e-9 would build a billion thresholds.
MIN_CAM_CURVE_INTERVAL = 0.0001
DEFAULT_IOU_THRESHOLDS: tuple[float, ...] = (30, 50, 70)
DEFAULT_SIGMA = 0.15  # the CutMix paper's old-protocol threshold (fraction of the CAM's max)

_NORMALIZE = ("max", "minmax", "none")
_BINARIZE = (">", ">=")
_METHODS = ("auto", "numba", "opencv")


def thresholds_from_interval(cam_curve_interval: float) -> np.ndarray:
    """``np.arange(0, 1, cam_curve_interval)``: the protocol's threshold list, float edge cases included."""
    interval = float(cam_curve_interval)
    if not (0.0 < interval < 1.0):  # NaN fails too
        raise InputError(f"cam_curve_interval must be in (0, 1), got {cam_curve_interval!r}")
    if interval < MIN_CAM_CURVE_INTERVAL:
        raise InputError(
            f"cam_curve_interval must be at least {MIN_CAM_CURVE_INTERVAL:g} (score maps are quantized "
            f"to 256 levels; the reference protocol's finest step is 0.001), got {cam_curve_interval!r}"
        )
    return np.arange(0, 1, interval)


def pxap_edges(cam_curve_interval: float) -> np.ndarray:
    """PxAP bin edges ``[np.arange(0, 1, interval), 1, 2, 3]`` (protocol 3.2)."""
    return np.append(thresholds_from_interval(cam_curve_interval), [1.0, 2.0, 3.0])


def _percent(v: Any) -> float:
    f = float(v)
    if not (0.0 <= f <= 100.0):
        raise InputError(f"IoU thresholds are percentages in [0, 100], got {v!r}")
    return int(f) if f.is_integer() else f


@dataclass(frozen=True)
class MetricSettings:
    """The metric options of one run.

    * ``cam_curve_interval``: step of the threshold grid ``np.arange(0, 1, step)`` (MaxBoxAcc, PxAP);
    * ``iou_thresholds``: deltas in percent (MaxBoxAcc at each; MaxBoxAccV2 is their mean);
    * ``multi_contour``: True = boxes of all contours (V2), False = largest contour only (V1);
    * old protocol (CAM 2016 / CutMix 2019): ``sigma`` (fraction of the map's max), the map's
      ``normalize`` before it, pixels ``binarize`` (``>`` or ``>=``) sigma, IoU ``iou_compare`` 0.5;
    * ``method``: sweep implementation (``auto``, ``numba``, ``opencv``; identical numbers).

    Derived once (not compared, not printed): ``thresholds`` float64 ``[T]`` and ``pxap_edges``
    float64 ``[T + 3]``.
    """

    cam_curve_interval: float = DEFAULT_CAM_CURVE_INTERVAL
    iou_thresholds: tuple[float, ...] = DEFAULT_IOU_THRESHOLDS
    multi_contour: bool = True
    sigma: float = DEFAULT_SIGMA
    normalize: str = "max"
    binarize: str = ">"
    iou_compare: str = ">"
    method: str = "auto"
    thresholds: np.ndarray = field(init=False, compare=False, repr=False)
    pxap_edges: np.ndarray = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "cam_curve_interval", float(self.cam_curve_interval))
        set_(self, "iou_thresholds", tuple(_percent(d) for d in self.iou_thresholds))
        if not self.iou_thresholds:
            raise InputError("give at least one IoU threshold")
        repeated = sorted({d for d in self.iou_thresholds if self.iou_thresholds.count(d) > 1})
        if repeated:
            raise InputError(
                f"IoU threshold {', '.join(f'{d:g}' for d in repeated)} is given twice; give each threshold once"
            )
        set_(self, "multi_contour", bool(self.multi_contour))
        set_(self, "sigma", float(self.sigma))
        if not 0.0 <= self.sigma < 1.0:  # NaN fails too
            raise InputError(f"sigma is a fraction of the map's max in [0, 1); got {self.sigma}")
        for name, allowed in (
            ("normalize", _NORMALIZE),
            ("binarize", _BINARIZE),
            ("iou_compare", _BINARIZE),
            ("method", _METHODS),
        ):
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        set_(self, "thresholds", thresholds_from_interval(self.cam_curve_interval))
        set_(self, "pxap_edges", np.append(self.thresholds, [1.0, 2.0, 3.0]))

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON values (the derived arrays left out)."""
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
            for f in dataclasses.fields(self)
            if f.init
        }

    def replace(self, **changes: Any) -> MetricSettings:
        """A copy with ``changes`` (derived arrays rebuilt)."""
        return dataclasses.replace(self, **changes)
