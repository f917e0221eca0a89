"""Score map -> boxes and best IoU at every threshold, exactly as the wsolevaluation protocol, fast.

Protocol (sections 2.1-2.4 of ``docs/wsol_protocol.md``), for one score map ``s`` (float ``[H, W]``
in ``[0, 1]``) and a threshold ``tau`` from ``np.arange(0, 1, interval)``:

1. ``q = (s * 255).astype(uint8)`` (truncation; ``s`` is taken as float64 first, as the reference
   code requires float64 maps), ``thr = int(tau * q.max())``, foreground ``q > thr``;
2. contours of ``cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)``; V1 (``multi_contour=False``)
   keeps the contour with the largest ``cv2.contourArea`` (first on ties), V2 keeps all of them;
3. box ``(x, y, min(x + w, W - 1), min(y + h, H - 1))`` from ``cv2.boundingRect``, or
   ``(0, 0, 0, 0)`` when there is no contour (:func:`eval.boxes.contour_box`);
4. best IoU = max over predicted and GT boxes of the inclusive +1 IoU (:mod:`eval.boxes`).

Two exact implementations:

* ``method="numba"`` (default when numba imports): :mod:`eval.sweep_kernel`, one compiled pass
  that validates, quantizes and histograms the map, then one union-find pass over the pixels
  grouped by the threshold bucket they enter, evaluating boxes only at the distinct levels (at
  most 255 exist after quantization), so the cost hardly depends on the number of thresholds.
  Its OpenCV facts are tested against the installed OpenCV. The one behaviour probed at run time
  is the order of equal-area contours (:func:`opencv_tie_order`); where it does not hold, V1
  levels with such a tie are resolved by OpenCV itself (:attr:`SweepResult.num_fallback_levels`
  counts them). The kernel (and numba) is imported and loaded from numba's on-disk cache on
  first use (:func:`warm_up`), so importing this module stays cheap.
* ``method="opencv"``: the reference call sequence, run once per distinct level (used
  automatically when numba is not installed).

float32 and float64 maps go to the kernel as they are; each value is taken as float64 there,
exactly as converting the map first would.

Score maps containing NaN or +-Inf, values outside ``[0, 1]``, non-float dtypes or a number of
dimensions other than 2 raise :class:`~eval.errors.InputError` naming the image (``where``).
A constant map is legitimate (a constant 0 map has no foreground at any threshold, so its box is
``(0, 0, 0, 0)``; a constant non-zero map is all foreground below its level).

Also here: :func:`boxes_at_threshold` (the boxes themselves, for figures) and the old fixed-threshold
protocol of CAM (2016) / CutMix (2019), :func:`box_at_fixed_threshold` (section 8; one compiled
pass once the kernel is loaded, else numpy + OpenCV; the same box).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib.util
import itertools
import multiprocessing
import sys
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass

import cv2
import numpy as np

from eval.boxes import as_box_array, check_inclusive_boxes, contour_box, iou_inclusive
from eval.errors import InputError
from eval.settings import thresholds_from_interval  # the one definition (its limits included)

# numba is a declared dependency; without it the exact OpenCV path is used. The compiled kernel
# (and numba, ~0.3 s to import) is loaded on first use: importing this module stays cheap.
_kernel = None

__all__ = [
    "HAVE_NUMBA",
    "SweepResult",
    "thresholds_from_interval",
    "check_scoremap",
    "quantize_scoremap",
    "binarization_levels",
    "sweep",
    "sweep_best_iou",
    "sweep_hits",
    "boxes_at_threshold",
    "box_at_fixed_threshold",
    "largest_component_box",
    "SweepPool",
    "warm_up",
]

HAVE_NUMBA = importlib.util.find_spec("numba") is not None


def _get_kernel():
    """The compiled kernel module (:mod:`eval.sweep_kernel`), imported and warmed up (compiled,
    or loaded from numba's on-disk cache) on first use; None (and ``HAVE_NUMBA`` False from then
    on) when numba is missing or does not import."""
    global _kernel, HAVE_NUMBA
    if _kernel is None and HAVE_NUMBA:
        try:
            with _scipy_hidden():
                from eval import sweep_kernel

                _warm(sweep_kernel)
        except ImportError:  # pragma: no cover - exercised only where numba is broken
            HAVE_NUMBA = False
            return None
        _kernel = sweep_kernel
    return _kernel if HAVE_NUMBA else None


@contextlib.contextmanager
def _scipy_hidden():
    """numba's first compile or cache load in a process imports ``numba.np.arraymath``, which
    imports ``scipy.linalg`` only to learn whether inner products may call BLAS (0.3-0.6 s, most
    of the kernel's start-up). The kernels use no BLAS, so while they load, a scipy that is not
    imported yet is hidden; numba then uses its own inner-product loop (``np.correlate`` and the
    like in jitted code; ``np.dot`` and ``np.linalg`` still import scipy when compiled). scipy
    imports normally afterwards."""
    if "scipy" in sys.modules or "numba.np.arraymath" in sys.modules:
        yield
        return
    sys.modules["scipy"] = None  # makes ``import scipy...`` raise ImportError
    try:
        yield
    finally:
        if "scipy" in sys.modules and sys.modules["scipy"] is None:
            del sys.modules["scipy"]


def _warm(kern) -> None:
    """Call every compiled entry point once with the argument types :func:`sweep` and
    :func:`box_at_fixed_threshold` pass, so that they are loaded before the first map."""
    s = np.zeros((3, 3), dtype=np.float64)
    s[1, 1] = 0.8
    q, hist, _ = kern.quantize_checked(s)
    levels, _, _ = kern.level_table(np.asarray([0.0, 0.5]), 204)
    gt = np.zeros((1, 4), dtype=np.int64)
    kern.sweep_buckets(q, hist, levels, gt, np.asarray([0.5]), True, False, True)
    kern.sweep_buckets(q, hist, levels, gt, np.zeros(0), False, True, True)
    kern.fixed_threshold_box(s, 0.15, 0, True)
    s32 = s.astype(np.float32)
    kern.quantize_checked(s32)
    kern.fixed_threshold_box(s32, 0.15, 0, True)


_METHODS = ("auto", "numba", "opencv")


@dataclass(frozen=True)
class SweepResult:
    """Outcome of :func:`sweep` for one map.

    ``best_iou``: float64 ``[T]`` best IoU at each threshold (exact unless ``iou_thresholds`` was
    given, see :func:`sweep`); ``hits``: bool ``[D, T]`` ``best_iou >= delta / 100`` for each
    requested IoU threshold (``None`` when none were requested); ``levels``: int64 ``[T]`` the
    binarization level ``int(tau * q.max())`` of each threshold; ``num_levels``: distinct levels
    evaluated; ``num_fallback_levels``: V1 levels resolved with OpenCV; ``num_boxes``: contours
    over all thresholds (what the reference evaluator would pass to its IoU step); ``method``.
    """

    best_iou: np.ndarray
    hits: np.ndarray | None
    levels: np.ndarray
    num_levels: int
    num_fallback_levels: int
    num_boxes: int
    method: str


def check_scoremap(scoremap: np.ndarray, where: str = "score map") -> np.ndarray:
    """Validate one score map and return it as a C-contiguous float64 ``[H, W]`` array.

    Raises :class:`InputError` naming ``where`` for: not a 2-D array, a non-float dtype, NaN or
    infinite values, values outside ``[0, 1]``, an empty map.
    """
    arr = np.asarray(scoremap)
    if arr.ndim != 2:
        raise InputError(f"{where}: score map must be 2-D [H, W], got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{where}: score map is empty (shape {arr.shape})")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{where}: score map must be a float array with values in [0, 1], got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    lo = arr.min()
    hi = arr.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = "NaN" if np.isnan(arr).any() else "infinite values"
        raise InputError(f"{where}: score map contains {bad}")
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{where}: score map values must lie in [0, 1], got [{lo:g}, {hi:g}]")
    return arr


def quantize_scoremap(scoremap: np.ndarray) -> np.ndarray:
    """``(s * 255).astype(uint8)`` on the float64 map: uint8 ``[H, W]`` (protocol 2.2, truncation)."""
    return (np.asarray(scoremap, dtype=np.float64) * 255).astype(np.uint8)


def binarization_levels(q_max: int, thresholds: np.ndarray) -> np.ndarray:
    """``int(tau * q_max)`` for every threshold (int64 ``[T]``); foreground is ``q > level``."""
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1:
        raise InputError(f"thresholds must be 1-D, got shape {t.shape}")
    if t.size and (not np.isfinite(t).all() or t.min() < 0.0 or t.max() >= 1.0):
        raise InputError("thresholds must lie in [0, 1)")
    return (t * float(int(q_max))).astype(np.int64)


_NORMALIZE_MODES = {"max": 0, "minmax": 1, "none": 2}  # codes of the compiled old-protocol box


def _as_kernel_map(scoremap, where: str) -> np.ndarray:
    """The map as a C-contiguous float32 or float64 ``[H, W]`` array (other float types become
    float64, as :func:`check_scoremap` makes them; the kernels take each value as float64),
    after the shape and dtype checks of :func:`check_scoremap` (the value checks are left to the
    compiled pass)."""
    arr = np.asarray(scoremap)
    if arr.ndim != 2 or arr.size == 0 or not np.issubdtype(arr.dtype, np.floating):
        check_scoremap(arr, where)  # raises
    if arr.dtype.type not in (np.float64, np.float32) or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr, dtype=np.float64)
    elif not arr.dtype.isnative:  # pragma: no cover - big-endian data
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _as_thresholds(thresholds) -> np.ndarray:
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1:
        raise InputError(f"thresholds must be 1-D, got shape {t.shape}")
    return t if t.flags.c_contiguous else np.ascontiguousarray(t)


def _check_gt(gt_boxes, where: str) -> np.ndarray:
    gt = as_box_array(gt_boxes)
    if len(gt) == 0:
        raise InputError(f"{where}: no ground-truth box")
    check_inclusive_boxes(gt, where=f"{where}: ground-truth boxes")
    return np.ascontiguousarray(gt, dtype=np.int64)


def _deltas(iou_thresholds) -> np.ndarray:
    """IoU thresholds in percent -> the protocol's comparison values ``delta / 100`` (float64)."""
    if iou_thresholds is None:
        return np.zeros(0, dtype=np.float64)
    vals = [float(d) for d in iou_thresholds]
    for d in vals:
        if not (0.0 <= d <= 100.0):
            raise InputError(f"IoU thresholds are percentages in [0, 100], got {d!r}")
    return np.asarray([d / 100 for d in vals], dtype=np.float64)


def _contours(q: np.ndarray, level: int):
    binary = cv2.threshold(q, level, 255, cv2.THRESH_BINARY)[1]  # q > level, as the protocol
    return cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]


def _level_boxes_opencv(q: np.ndarray, level: int, multi_contour: bool) -> np.ndarray:
    """Boxes (inclusive int64 ``[n, 4]``) of one binarization level, via OpenCV as the protocol does."""
    height, width = q.shape
    contours = _contours(q, level)
    if len(contours) == 0:
        return np.zeros((1, 4), dtype=np.int64)
    if not multi_contour:
        contours = [max(contours, key=cv2.contourArea)]
    boxes = []
    for c in contours:
        x, y, w, h = cv2.boundingRect(c)
        boxes.append(contour_box(x, y, w, h, width, height))
    return np.asarray(boxes, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def opencv_tie_order() -> bool:
    """Does the installed OpenCV list outer contours in decreasing order of their first pixel
    (row-major), so that ``max(contours, key=cv2.contourArea)`` picks, among equal areas, the
    component starting last? (True for OpenCV 5.0.) Probed once on a small image; when False, the
    kernel leaves such ties to OpenCV itself."""
    img = np.zeros((12, 16), dtype=np.uint8)
    for x, y in ((1, 1), (6, 1), (12, 2), (2, 6), (9, 8), (13, 9)):
        img[y : y + 2, x : x + 2] = 255  # six 2x2 squares: equal areas, distinct first pixels
    contours = cv2.findContours(img, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if len(contours) != 6:
        return False
    firsts = [int((c[:, 0, 1] * 16 + c[:, 0, 0]).min()) for c in contours]
    winner = max(range(len(contours)), key=lambda i: cv2.contourArea(contours[i]))
    return firsts == sorted(firsts, reverse=True) and firsts[winner] == max(firsts)


def _resolve_method(method: str) -> str:
    if method not in _METHODS:
        raise InputError(f"unknown sweep method {method!r}; choose from {', '.join(_METHODS)}")
    if method == "auto":
        return "numba" if _get_kernel() is not None else "opencv"
    if method == "numba" and _get_kernel() is None:
        raise InputError("method='numba' needs the numba package; install it or use method='opencv'")
    return method


def sweep(
    scoremap: np.ndarray,
    gt_boxes: np.ndarray,
    thresholds: np.ndarray,
    *,
    multi_contour: bool,
    iou_thresholds: Sequence[float] | None = None,
    method: str = "auto",
    where: str = "score map",
) -> SweepResult:
    """Best IoU of one score map at every threshold (protocol 2.1-2.4, 3.1), exact.

    ``scoremap``: float ``[H, W]`` in ``[0, 1]``; ``gt_boxes``: inclusive int ``[K, 4]`` in the map's
    frame (K >= 1); ``thresholds``: float ``[T]`` in ``[0, 1)`` (use :func:`thresholds_from_interval`);
    ``multi_contour``: True = V2 (all contours), False = V1 (largest contour).

    Without ``iou_thresholds``, ``best_iou`` equals the reference evaluator's value bit for bit.
    With ``iou_thresholds`` (percent, e.g. ``(30, 50, 70)``), ``hits`` (``best_iou >= delta / 100``)
    is filled and the work stops at each level as soon as its hits are certain (which V1 contour
    is the largest; whether V2 hole boxes can beat the outer boxes): the hits are exact, while
    ``best_iou`` at such a level may be that of another box with the same hits (faster; what
    :class:`eval.metrics.BoxAccuracy` uses).
    """
    method = _resolve_method(method)
    gt = _check_gt(gt_boxes, where)
    deltas = _deltas(iou_thresholds)
    n_fallback = 0
    if method == "numba":
        # one compiled pass validates, quantizes and histograms the map; another the thresholds
        kern = _get_kernel()
        s = _as_kernel_map(scoremap, where)
        q, hist, ok = kern.quantize_checked(s)
        if not ok:
            check_scoremap(s, where)  # raises, naming the problem
        t = _as_thresholds(thresholds)
        levels, inverse, ok = kern.level_table(t, int(np.flatnonzero(hist)[-1]))
        if not ok:
            binarization_levels(255, t)  # raises
        levels_per_tau = levels[inverse]
    else:
        s = check_scoremap(scoremap, where)
        q = quantize_scoremap(s)
        levels_per_tau = binarization_levels(int(q.max()), thresholds)
        levels, inverse = np.unique(levels_per_tau, return_inverse=True)
    if len(levels) == 0:
        best_levels = np.zeros(0, dtype=np.float64)
        n_box_levels = np.zeros(0, dtype=np.int64)
    elif method == "numba":
        v2, v1, undecided, n_box_levels = kern.sweep_buckets(
            q, hist, levels, gt, deltas, not multi_contour, multi_contour, opencv_tie_order()
        )
        if multi_contour:
            best_levels = v2
        else:
            best_levels = v1
            n_box_levels = np.ones_like(n_box_levels)
            for li in np.flatnonzero(undecided):
                boxes = _level_boxes_opencv(q, int(levels[li]), multi_contour=False)
                best_levels[li] = iou_inclusive(boxes, gt).max()
                n_fallback += 1
    else:
        per_level = [_level_boxes_opencv(q, int(level), multi_contour) for level in levels]
        n_box_levels = np.asarray([len(b) for b in per_level], dtype=np.int64)
        ious = iou_inclusive(np.concatenate(per_level), gt).max(axis=1)  # one IoU call
        best_levels = np.maximum.reduceat(ious, np.cumsum(n_box_levels) - n_box_levels)
    best = best_levels[inverse].astype(np.float64, copy=False)
    hits = None if iou_thresholds is None else best[None, :] >= deltas[:, None]
    return SweepResult(
        best_iou=best,
        hits=hits,
        levels=levels_per_tau,
        num_levels=len(levels),
        num_fallback_levels=n_fallback,
        num_boxes=int(n_box_levels[inverse].sum()) if len(levels) else 0,
        method=method,
    )


def sweep_best_iou(
    scoremap: np.ndarray,
    gt_boxes: np.ndarray,
    thresholds: np.ndarray,
    *,
    multi_contour: bool,
    method: str = "auto",
    where: str = "score map",
) -> np.ndarray:
    """Per-threshold best IoU (float64 ``[T]``), identical to the protocol's values. See :func:`sweep`."""
    return sweep(scoremap, gt_boxes, thresholds, multi_contour=multi_contour, method=method, where=where).best_iou


def sweep_hits(
    scoremap: np.ndarray,
    gt_boxes: np.ndarray,
    thresholds: np.ndarray,
    iou_thresholds: Sequence[float],
    *,
    multi_contour: bool,
    method: str = "auto",
    where: str = "score map",
) -> np.ndarray:
    """bool ``[D, T]``: is the image correct at IoU threshold ``delta_d`` (percent) and ``tau_t``
    (``best_iou >= delta / 100`` as the protocol compares). Exact. See :func:`sweep`."""
    hits = sweep(
        scoremap,
        gt_boxes,
        thresholds,
        multi_contour=multi_contour,
        iou_thresholds=iou_thresholds,
        method=method,
        where=where,
    ).hits
    assert hits is not None  # iou_thresholds were given
    return hits


def boxes_at_threshold(scoremap: np.ndarray, tau: float, multi_contour: bool, where: str = "score map") -> np.ndarray:
    """The protocol's predicted boxes at one threshold (inclusive int64 ``[N, 4]``, N >= 1).

    V2 (``multi_contour=True``): one box per contour (outer and hole contours, OpenCV's order);
    V1: the box of the largest contour. ``[[0, 0, 0, 0]]`` when the foreground is empty.
    """
    s = check_scoremap(scoremap, where)
    q = quantize_scoremap(s)
    level = int(binarization_levels(int(q.max()), np.asarray([tau], dtype=np.float64))[0])
    return _level_boxes_opencv(q, level, multi_contour)


# ----------------------------------------------------------------------------------------------
# Old fixed-threshold protocol (CAM 2016, CutMix 2019; protocol section 8)


def largest_component_box(mask: np.ndarray) -> np.ndarray:
    """Inclusive int64 box ``(x0, y0, x1, y1)`` of the largest 8-connected component of a binary
    mask, by pixel count (ties: the component whose first pixel in row-major order comes first).
    ``(0, 0, 0, 0)`` when the mask is empty."""
    m = np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.uint8)
    if m.ndim != 2:
        raise InputError(f"mask must be 2-D, got shape {m.shape}")
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8, ltype=cv2.CV_32S)
    if n <= 1:
        return np.zeros(4, dtype=np.int64)
    areas = stats[1:, cv2.CC_STAT_AREA]
    tied = 1 + np.flatnonzero(areas == areas.max())
    if len(tied) == 1:
        i = int(tied[0])
    else:  # OpenCV's label order is not row-major: break ties by the first pixel explicitly
        labels, first = np.unique(lab.ravel(), return_index=True)
        firsts = dict(zip(labels.tolist(), first.tolist()))
        i = int(min(tied, key=lambda t: firsts[int(t)]))
    x, y, w, h = (int(v) for v in stats[i, :4])
    return np.asarray([x, y, x + w - 1, y + h - 1], dtype=np.int64)


def box_at_fixed_threshold(
    scoremap: np.ndarray, sigma: float = 0.15, *, normalize: str = "max", compare: str = ">=", where: str = "score map"
) -> np.ndarray:
    """Box of the old protocol (CAM 2016 / CutMix 2019, section 8): inclusive int64 ``[4]``.

    The float map is normalized (``"max"``: ``s / max(s)``; ``"minmax"``: ``(s - min) / (max - min)``;
    ``"none"``: as is), binarized at ``sigma`` (``compare`` ``">="`` or ``">"``; CutMix says
    "above"), and the tight box of the largest 8-connected region by pixel count is returned
    (:func:`largest_component_box`). No quantization. A map whose normalizer is 0 (max 0 for
    ``"max"``, constant for ``"minmax"``) has no foreground: box ``(0, 0, 0, 0)``.
    """
    mode = _NORMALIZE_MODES.get(normalize)
    # the compiled pass once the kernel is loaded (by a sweep); it is not loaded for this alone
    kern = _kernel if HAVE_NUMBA and mode is not None and compare in (">=", ">") else None
    if kern is not None:  # one compiled pass; the same mask and box as below
        arr = _as_kernel_map(scoremap, where)
        box, ok = kern.fixed_threshold_box(arr, float(sigma), mode, compare == ">")
        if not ok:
            check_scoremap(arr, where)  # raises, naming the problem
        return box
    s = check_scoremap(scoremap, where)
    if normalize == "max":
        top = s.max()
        if top <= 0:
            return np.zeros(4, dtype=np.int64)
        s = s / top
    elif normalize == "minmax":
        lo, hi = s.min(), s.max()
        if hi <= lo:
            return np.zeros(4, dtype=np.int64)
        s = (s - lo) / (hi - lo)
    elif normalize != "none":
        raise InputError(f"normalize must be 'max', 'minmax' or 'none', got {normalize!r}")
    if compare == ">=":
        mask = s >= sigma
    elif compare == ">":
        mask = s > sigma
    else:
        raise InputError(f"compare must be '>=' or '>', got {compare!r}")
    return largest_component_box(mask)


# ----------------------------------------------------------------------------------------------
# Process pool over images


def warm_up() -> None:
    """Import and load the numba kernel now (compiled once, then from numba's on-disk cache)."""
    _get_kernel()


def _init_worker(kernel: bool = True) -> None:
    """Pool worker start: Ctrl-C is the parent's to handle (a worker must not print a
    KeyboardInterrupt traceback of its own; the parent terminates the pool), then warm up."""
    from eval.signals import ignore_sigint

    ignore_sigint()
    if kernel:
        warm_up()


def _mp_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class SweepPool:
    """A process pool that runs a picklable top-level function over items, in order.

    ``workers <= 1`` runs in this process (no pool). It never starts more processes than
    :func:`eval.cores.max_workers`, nor than there are items: ``items`` (the number of items the
    pool will run, when the caller knows it), else, when the first :meth:`imap` starts the pool,
    the items of that call (counted by reading at most ``workers`` of them ahead; a pool reused
    for several :meth:`imap` calls should be given ``items`` or :meth:`start`-ed). With ``kernel``
    (the default) the compiled sweep kernel is loaded once before the workers start (forked
    workers inherit it; others load it in their ``initializer``); pass False for work that does
    not sweep. Use as a context manager, or call :meth:`close`. Results are identical to one
    worker: each item is computed independently and the output keeps the input order.
    """

    def __init__(self, workers: int = 1, chunksize: int = 8, *, kernel: bool = True, items: int | None = None):
        from eval.cores import max_workers

        self.workers = max(1, min(int(workers), max_workers()))
        if items is not None:
            self.workers = max(1, min(self.workers, int(items)))
        self.chunksize = max(1, int(chunksize))
        self.kernel = bool(kernel)
        self._pool = None

    def start(self) -> None:
        """Load the kernel (with ``kernel``) and start the workers now rather than at the first
        :meth:`imap`: to overlap a wait, such as a DataLoader's first batch. Idempotent."""
        if self.workers > 1:
            self._get()
        elif self.kernel:
            warm_up()  # the sweeps run in this process: load the kernel they use

    def _get(self):
        if self._pool is None and self.workers > 1:
            if self.kernel:
                warm_up()  # compile / load once here: forked workers inherit the compiled kernel
            # Forked workers inherit the objects alive here as frozen (Python's advice for fork):
            # their garbage collections never walk them (numba's tens of thousands), so they do
            # not copy the parent's pages either. The parent unfreezes at once.
            from eval.signals import sigint_deferred

            gc.freeze()
            try:
                with sigint_deferred():  # a Ctrl-C during the forks comes after them, not lost in them
                    self._pool = _mp_context().Pool(self.workers, initializer=_init_worker, initargs=(self.kernel,))
            finally:
                gc.unfreeze()
        return self._pool

    def imap(self, func, items: Iterable) -> Iterator:
        """``map(func, items)`` lazily, in order, over the pool (or in-process for one worker)."""
        if self._pool is None and self.workers > 1:  # the pool starts now: no more workers than items
            if isinstance(items, Sized):
                n = len(items)
            else:
                it = iter(items)
                head = list(itertools.islice(it, self.workers))
                n = len(head)
                items = itertools.chain(head, it)
            self.workers = max(1, min(self.workers, n))
        pool = self._get()
        if pool is None:
            return map(func, items)
        return pool.imap(func, items, chunksize=self.chunksize)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> SweepPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - safety net
        try:
            self.close()
        except Exception:
            pass


def default_workers() -> int:
    """Number of usable CPU cores (the default ``--workers``; :func:`eval.cores.usable_cores`)."""
    from eval.cores import usable_cores

    return usable_cores()
