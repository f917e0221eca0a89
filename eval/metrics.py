"""Accumulators for localization and classification metrics (score maps in, numbers out).

Each accumulator has ``reset()``, ``update(...)`` (one image or a batch), ``compute() -> dict``,
``merge(other)`` (sum of states, e.g. from several processes), ``state_dict()`` /
``load_state_dict()`` (plain numpy arrays, ints and strings). Every ``compute()`` result carries
``protocol`` (text) and ``settings`` (dict) so a number never travels without how it was made.
Percentages are 0-100.

* :class:`BoxAccuracy` -- BoxAcc(tau, delta), MaxBoxAcc per delta and MaxBoxAccV2 (their mean) of
  the wsolevaluation protocol (sections 2-3.1): one tau per delta for the whole split.
* :class:`PxAP` -- pixel average precision (section 3.2): pooled histograms, right Riemann sum.
* :class:`TopKLocalization` -- the older fixed-threshold protocol of CAM (2016) / CutMix (2019)
  (section 8): top-k localization and GT-known localization.
* :class:`Classification` -- top-k classification accuracy.

Per-image hits are kept (``keep_per_image=True``) only to give confidence intervals
(:mod:`eval.stats`) and paired tests; box hits are bit-packed (``ceil(D*T/8)`` bytes per image).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eval.boxes import as_box_array, iou_inclusive
from eval.errors import InputError
from eval.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, bootstrap_ci_weighted
from eval.sweep import (SweepPool, box_at_fixed_threshold, check_scoremap, sweep,
                        thresholds_from_interval)

__all__ = ["BoxAccuracy", "PxAP", "TopKLocalization", "Classification", "box_hits_job",
           "pxap_histograms", "pxap_edges", "check_mask", "pxap_from_histograms"]


# ----------------------------------------------------------------------------------------------
# helpers

def _as_map_batch(scoremaps) -> list[np.ndarray]:
    """One map ``[H, W]``, a batch ``[B, H, W]`` or a sequence of maps -> list of ``[H, W]``."""
    if isinstance(scoremaps, np.ndarray):
        if scoremaps.ndim == 2:
            return [scoremaps]
        if scoremaps.ndim == 3:
            return list(scoremaps)
        raise InputError(f"score maps must be [H, W] or [B, H, W], got shape {scoremaps.shape}")
    return [np.asarray(m) for m in scoremaps]


def _as_box_batch(gt_boxes, n: int, single: bool) -> list[np.ndarray]:
    """GT boxes of one image (``[K, 4]``, when ``single``) or a sequence of ``n`` such arrays."""
    if single:
        return [as_box_array(gt_boxes)]
    boxes = list(gt_boxes)
    if len(boxes) != n:
        raise InputError(f"got {n} score maps but {len(boxes)} ground-truth box sets")
    return [as_box_array(b) for b in boxes]


def _is_single(scoremaps) -> bool:
    return isinstance(scoremaps, np.ndarray) and scoremaps.ndim == 2


def _as_ids(image_ids, n: int, start: int) -> list[str]:
    if image_ids is None:
        return [f"image #{start + i}" for i in range(n)]
    ids = [image_ids] if isinstance(image_ids, str) else [str(i) for i in image_ids]
    if len(ids) != n:
        raise InputError(f"got {n} images but {len(ids)} image ids")
    return ids


def _pct(num: np.ndarray | int, count: int) -> np.ndarray | float:
    """``num * 100. / count`` exactly as the reference evaluator computes percentages."""
    return np.asarray(num) * 100.0 / float(count)


def _ids_array(ids: list[str]) -> np.ndarray:
    return np.asarray(ids, dtype=str) if ids else np.zeros(0, dtype="<U1")


# ----------------------------------------------------------------------------------------------
# Box accuracy (wsolevaluation)

def box_hits_job(job: tuple) -> np.ndarray:
    """Worker entry point: ``(scoremap, gt_boxes, cam_thresholds, iou_thresholds, multi_contour,
    method, image_id)`` -> bool ``[D, T]`` hits of one image (see :func:`eval.sweep.sweep`)."""
    scoremap, gt, thresholds, deltas, multi_contour, method, image_id = job
    return sweep(scoremap, gt, thresholds, multi_contour=multi_contour, iou_thresholds=deltas,
                 method=method, where=image_id).hits


class BoxAccuracy:
    """BoxAcc / MaxBoxAcc / MaxBoxAccV2 of the wsolevaluation protocol (sections 2, 3.1).

    ``cam_curve_interval``: thresholds are ``np.arange(0, 1, interval)`` (or pass ``thresholds``,
    by keyword or as the first argument);
    ``iou_thresholds``: deltas in percent; ``multi_contour``: True = all contours (the V2
    protocol), False = largest contour (V1); ``keep_per_image``: keep bit-packed per-image hits for
    confidence intervals and paired tests; ``workers``: processes for :meth:`update` batches
    (results identical to one worker); ``method``: sweep implementation (``"auto"``, ``"numba"``,
    ``"opencv"``).

    State: ``num_correct`` int64 ``[D, T]`` (images whose best IoU at ``tau_t`` is
    ``>= delta_d / 100``), ``count``, and per image the packed hits and the image id.
    """

    def __init__(self, cam_curve_interval: float = 0.01, iou_thresholds: Sequence[float] = (30, 50, 70),
                 multi_contour: bool = True, keep_per_image: bool = True, *,
                 thresholds: np.ndarray | None = None, workers: int = 1, method: str = "auto"):
        if thresholds is None and np.ndim(cam_curve_interval) >= 1:  # BoxAccuracy(thresholds, ...)
            thresholds = cam_curve_interval
        if thresholds is None:
            self.cam_curve_interval: float | None = float(cam_curve_interval)
            self.thresholds = thresholds_from_interval(cam_curve_interval)
        else:
            self.cam_curve_interval = None
            self.thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
            if self.thresholds.size == 0:
                raise InputError("BoxAccuracy needs at least one threshold")
        self.iou_thresholds = tuple(float(d) for d in iou_thresholds)
        if not self.iou_thresholds:
            raise InputError("BoxAccuracy needs at least one IoU threshold")
        for d in self.iou_thresholds:
            if not (0.0 <= d <= 100.0):
                raise InputError(f"IoU thresholds are percentages in [0, 100], got {d!r}")
        self.multi_contour = bool(multi_contour)
        self.keep_per_image = bool(keep_per_image)
        self.method = method
        self._pool = SweepPool(workers)
        self.reset()

    # -- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        self.num_correct = np.zeros((len(self.iou_thresholds), len(self.thresholds)), dtype=np.int64)
        self.count = 0
        self._packed: list[np.ndarray] = []
        self._ids: list[str] = []

    @property
    def _nbits(self) -> int:
        return len(self.iou_thresholds) * len(self.thresholds)

    def close(self) -> None:
        """Stop the worker processes (if any)."""
        self._pool.close()

    def __enter__(self) -> BoxAccuracy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- updates -----------------------------------------------------------------------------
    def image_hits(self, scoremap: np.ndarray, gt_boxes: np.ndarray, image_id: str = "score map") -> np.ndarray:
        """bool ``[D, T]`` hits of one image (pure; does not change the state)."""
        return box_hits_job((scoremap, gt_boxes, self.thresholds, self.iou_thresholds,
                             self.multi_contour, self.method, image_id))

    def add_hits(self, hits: np.ndarray, image_ids: Sequence[str] | str | None = None) -> None:
        """Accumulate precomputed hits: bool ``[D, T]`` (one image) or ``[B, D, T]``."""
        h = np.asarray(hits, dtype=bool)
        if h.ndim == 2:
            h = h[None]
        shape = (len(self.iou_thresholds), len(self.thresholds))
        if h.ndim != 3 or h.shape[1:] != shape:
            raise InputError(f"hits must have shape [B, {shape[0]}, {shape[1]}], got {h.shape}")
        ids = _as_ids(image_ids, h.shape[0], self.count)
        self.num_correct += h.sum(axis=0, dtype=np.int64)
        self.count += h.shape[0]
        if self.keep_per_image:
            for row in h:
                self._packed.append(np.packbits(row.ravel()))
            self._ids.extend(ids)

    update_hits = add_hits  # alias

    def update(self, scoremaps, gt_boxes, image_ids: Sequence[str] | str | None = None) -> None:
        """Accumulate one image (``[H, W]`` map, ``[K, 4]`` inclusive GT boxes in the map's frame)
        or a batch (``[B, H, W]`` or a list of maps, and a list of ``B`` box arrays)."""
        maps = _as_map_batch(scoremaps)
        boxes = _as_box_batch(gt_boxes, len(maps), _is_single(scoremaps))
        ids = _as_ids(image_ids, len(maps), self.count)
        jobs = ((m, b, self.thresholds, self.iou_thresholds, self.multi_contour, self.method, i)
                for m, b, i in zip(maps, boxes, ids))
        hits = list(self._pool.imap(box_hits_job, jobs)) if len(maps) > 1 else [box_hits_job(next(jobs))]
        self.add_hits(np.stack(hits), ids)

    # -- results -----------------------------------------------------------------------------
    def per_image_hits(self) -> np.ndarray:
        """bool ``[N, D, T]`` hits of every image so far (needs ``keep_per_image``)."""
        if not self.keep_per_image:
            raise InputError("per-image hits were not kept (keep_per_image=False)")
        shape = (len(self.iou_thresholds), len(self.thresholds))
        if not self._packed:
            return np.zeros((0,) + shape, dtype=bool)
        packed = np.stack(self._packed)
        return np.unpackbits(packed, axis=1, count=self._nbits).astype(bool).reshape((-1,) + shape)

    @property
    def image_ids(self) -> list[str]:
        return list(self._ids)

    def best_threshold_indices(self) -> np.ndarray:
        """int64 ``[D]``: for each delta, the first threshold index with the most correct images."""
        return np.argmax(self.num_correct, axis=1).astype(np.int64)

    def selected_hits(self) -> np.ndarray:
        """bool ``[N, D]``: per-image hits at each delta's selected threshold."""
        idx = self.best_threshold_indices()
        hits = self.per_image_hits()
        return hits[:, np.arange(len(idx)), idx]

    def protocol(self) -> str:
        version = "V2: boxes of all contours" if self.multi_contour else "V1: box of the largest contour"
        grid = (f"np.arange(0, 1, {self.cam_curve_interval:g})" if self.cam_curve_interval is not None
                else f"{len(self.thresholds)} given thresholds")
        deltas = "/".join(f"{d:g}" for d in self.iou_thresholds)
        return (f"wsolevaluation box accuracy (Choe et al. 2020), {version}: score map quantized "
                f"with (s*255).astype(uint8), foreground > int(tau*max), cv2.findContours RETR_TREE/"
                f"CHAIN_APPROX_SIMPLE, box (x, y, min(x+w, W-1), min(y+h, H-1)), +1 inclusive IoU, "
                f"max over predicted and GT boxes, correct if IoU >= delta/100; tau in {grid}, one tau "
                f"per IoU delta ({deltas}%) chosen for the whole split; MaxBoxAccV2 = mean over deltas")

    def settings(self) -> dict:
        return {
            "cam_curve_interval": self.cam_curve_interval,
            "num_thresholds": int(len(self.thresholds)),
            "iou_thresholds": [_num(d) for d in self.iou_thresholds],
            "multi_contour": self.multi_contour,
        }

    def compute(self, *, ci: bool = True, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
                seed: int = DEFAULT_SEED) -> dict:
        """Result dict: ``num_images``, ``box_acc`` ({delta: [T] percent}), ``MaxBoxAcc``
        ({delta: percent}), ``MaxBoxAccV2`` (mean over deltas), ``best_threshold`` ({delta: tau}),
        ``best_threshold_index``, ``ci95`` (with ``ci`` and per-image hits: percentile bootstrap over
        images at the selected tau, keys ``MaxBoxAcc@<delta>`` and ``MaxBoxAccV2``), ``protocol``,
        ``settings``. Delta keys are strings (``"30"``, ``"50"``, ``"70"``)."""
        if self.count == 0:
            raise InputError("BoxAccuracy.compute(): no image was accumulated")
        acc = _pct(self.num_correct, self.count)  # [D, T]
        idx = self.best_threshold_indices()
        keys = [_key(d) for d in self.iou_thresholds]
        max_acc = {k: float(acc[i].max()) for i, k in enumerate(keys)}
        out = {
            "num_images": int(self.count),
            "box_acc": {k: acc[i].tolist() for i, k in enumerate(keys)},
            "MaxBoxAcc": max_acc,
            "MaxBoxAccV2": float(np.average(list(max_acc.values()))),
            "best_threshold": {k: float(self.thresholds[idx[i]]) for i, k in enumerate(keys)},
            "best_threshold_index": {k: int(idx[i]) for i, k in enumerate(keys)},
            "protocol": self.protocol(),
            "settings": self.settings(),
        }
        if ci and self.keep_per_image:
            sel = self.selected_hits().astype(np.float64)  # [N, D]
            cis = {f"MaxBoxAcc@{k}": list(bootstrap_ci(sel[:, i], level=level, resamples=resamples,
                                                       seed=seed, scale=100.0))
                   for i, k in enumerate(keys)}
            cis["MaxBoxAccV2"] = list(bootstrap_ci(sel.mean(axis=1), level=level, resamples=resamples,
                                                   seed=seed, scale=100.0))
            out["ci95" if level == 0.95 else f"ci{level * 100:g}"] = cis
            out["ci_method"] = (f"percentile bootstrap over images at the selected tau, {resamples} "
                                f"resamples, seed {seed}")
        return out

    # -- merging and persistence -------------------------------------------------------------
    def _check_compatible(self, other: BoxAccuracy) -> None:
        if (not isinstance(other, BoxAccuracy) or other.iou_thresholds != self.iou_thresholds
                or other.multi_contour != self.multi_contour
                or not np.array_equal(other.thresholds, self.thresholds)
                or other.keep_per_image != self.keep_per_image):
            raise InputError("cannot merge BoxAccuracy accumulators with different settings")

    def merge(self, other: BoxAccuracy) -> BoxAccuracy:
        """Add ``other``'s state to this one (its images come after ours). Returns ``self``."""
        self._check_compatible(other)
        self.num_correct += other.num_correct
        self.count += other.count
        self._packed.extend(p.copy() for p in other._packed)
        self._ids.extend(other._ids)
        return self

    def state_dict(self) -> dict:
        nbytes = (self._nbits + 7) // 8
        packed = np.stack(self._packed) if self._packed else np.zeros((0, nbytes), dtype=np.uint8)
        return {
            "kind": "BoxAccuracy",
            "thresholds": self.thresholds.copy(),
            "iou_thresholds": np.asarray(self.iou_thresholds, dtype=np.float64),
            "multi_contour": self.multi_contour,
            "keep_per_image": self.keep_per_image,
            "num_correct": self.num_correct.copy(),
            "count": int(self.count),
            "hits_packed": packed,
            "image_ids": _ids_array(self._ids),
        }

    def load_state_dict(self, state: dict) -> None:
        if (state.get("kind") != "BoxAccuracy"
                or not np.array_equal(np.asarray(state["thresholds"]), self.thresholds)
                or tuple(float(d) for d in state["iou_thresholds"]) != self.iou_thresholds
                or bool(state["multi_contour"]) != self.multi_contour):
            raise InputError("BoxAccuracy state was saved with different settings")
        self.num_correct = np.asarray(state["num_correct"], dtype=np.int64).copy()
        self.count = int(state["count"])
        self.keep_per_image = bool(state["keep_per_image"])
        self._packed = [np.asarray(r, dtype=np.uint8).copy() for r in state["hits_packed"]]
        self._ids = [str(i) for i in state["image_ids"]]


def _key(d: float) -> str:
    return str(_num(d))


def _num(d: float) -> int | float:
    return int(d) if float(d).is_integer() else float(d)


# ----------------------------------------------------------------------------------------------
# PxAP (wsolevaluation, OpenImages)

def check_mask(mask: np.ndarray, shape: tuple[int, int], where: str = "mask") -> np.ndarray:
    """Validate a GT mask (uint8 ``[H, W]``: 1 foreground, 0 background, 255 ignore)."""
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise InputError(f"{where}: mask shape {m.shape} differs from the score map shape {tuple(shape)}")
    bad = ~np.isin(m, (0, 1, 255))
    if bad.any():
        raise InputError(f"{where}: mask values must be 0 (background), 1 (foreground) or 255 (ignore); "
                         f"found {np.unique(m[bad])[:5].tolist()}")
    return m.astype(np.uint8, copy=False)


def pxap_edges(cam_curve_interval: float) -> np.ndarray:
    """PxAP bin edges ``[np.arange(0, 1, interval), 1, 2, 3]`` (protocol 3.2)."""
    return np.append(thresholds_from_interval(cam_curve_interval), [1.0, 2.0, 3.0])


def pxap_histograms(scoremap: np.ndarray, mask: np.ndarray, edges: np.ndarray | float,
                    where: str = "score map") -> np.ndarray:
    """int64 ``[2, bins]``: histograms (``np.histogram`` with ``edges``, or the edges of a
    ``cam_curve_interval`` given as a number) of the float scores at foreground (row 0) and
    background (row 1) pixels; ignore pixels (255) are dropped. ``fg, bg = pxap_histograms(...)``."""
    if np.ndim(edges) == 0:
        edges = pxap_edges(float(edges))
    s = check_scoremap(scoremap, where)
    m = check_mask(mask, s.shape, where)
    fg, _ = np.histogram(s[m == 1], bins=edges)
    bg, _ = np.histogram(s[m == 0], bins=edges)
    return np.stack([fg, bg]).astype(np.int64)


def pxap_from_histograms(fg_hist: np.ndarray, bg_hist: np.ndarray) -> tuple[float, dict]:
    """PxAP (percent) from pooled histograms, as protocol 3.2; raises :class:`InputError` when
    there is no foreground pixel or no positive prediction. Also returns the curve."""
    fg = np.asarray(fg_hist, dtype=np.float64)
    bg = np.asarray(bg_hist, dtype=np.float64)
    tp = fg[::-1].cumsum()
    fp = bg[::-1].cumsum()
    fn = fg.sum() - tp
    if ((tp + fn) <= 0).all():
        raise InputError("PxAP: no foreground (positive) ground-truth pixel in the evaluated set")
    if ((tp + fp) <= 0).all():
        raise InputError("PxAP: no positive prediction at any threshold")
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
    valid = (tp[1:] + fp[1:]) != 0
    ap = float((precision[1:] * np.diff(recall))[valid].sum() * 100)
    return ap, {"precision": precision, "recall": recall}


def _pxap_batch(pooled: np.ndarray) -> np.ndarray:
    """Vectorized PxAP for bootstrap: pooled ``[B, 2, bins]`` -> ``[B]`` (NaN when undefined)."""
    fg = pooled[:, 0, ::-1].cumsum(axis=1)
    fp = pooled[:, 1, ::-1].cumsum(axis=1)
    n_fg = pooled[:, 0].sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = fg / (fg + fp)
        recall = fg / n_fg
        terms = np.where((fg[:, 1:] + fp[:, 1:]) != 0, precision[:, 1:] * np.diff(recall, axis=1), 0.0)
        ap = terms.sum(axis=1) * 100
    ap[(n_fg[:, 0] <= 0) | (fg + fp <= 0).all(axis=1)] = np.nan
    return ap


class PxAP:
    """Pixel average precision of the wsolevaluation protocol (section 3.2), in percent.

    Bin edges ``[0, bw, ..., 1 - bw, 1, 2, 3]`` with ``bw = cam_curve_interval`` (thresholds
    ``np.arange(0, 1, bw)``); float scores (not quantized) of foreground and background pixels are
    histogrammed with ``np.histogram`` and pooled over all images; ignore pixels are dropped;
    ``PxAP = 100 * sum_{i>=1, tp_i+fp_i != 0} precision_i * (recall_i - recall_{i-1})`` going from
    the highest threshold down. ``keep_per_image`` keeps per-image histograms (int32) for a
    bootstrap CI.
    """

    def __init__(self, cam_curve_interval: float = 0.01, keep_per_image: bool = True):
        self.cam_curve_interval = float(cam_curve_interval)
        self.thresholds = thresholds_from_interval(cam_curve_interval)
        self.edges = pxap_edges(cam_curve_interval)
        self.keep_per_image = bool(keep_per_image)
        self.reset()

    @property
    def num_bins(self) -> int:
        return len(self.thresholds) + 2

    def reset(self) -> None:
        self.hist = np.zeros((2, self.num_bins), dtype=np.int64)
        self.count = 0
        self._per_image: list[np.ndarray] = []
        self._ids: list[str] = []

    def image_histograms(self, scoremap: np.ndarray, mask: np.ndarray, image_id: str = "score map") -> np.ndarray:
        """int64 ``[2, bins]`` foreground / background histograms of one image (pure)."""
        return pxap_histograms(scoremap, mask, self.edges, image_id)

    def add_histograms(self, hists: np.ndarray, image_ids: Sequence[str] | str | None = None) -> None:
        """Accumulate precomputed histograms ``[2, bins]`` or ``[B, 2, bins]``."""
        h = np.asarray(hists, dtype=np.int64)
        if h.ndim == 2:
            h = h[None]
        if h.ndim != 3 or h.shape[1:] != (2, self.num_bins):
            raise InputError(f"histograms must have shape [B, 2, {self.num_bins}], got {h.shape}")
        ids = _as_ids(image_ids, h.shape[0], self.count)
        self.hist += h.sum(axis=0)
        self.count += h.shape[0]
        if self.keep_per_image:
            self._per_image.extend(row.astype(np.int32) for row in h)
            self._ids.extend(ids)

    def update_histograms(self, fg_hist: np.ndarray, bg_hist: np.ndarray, image_id: str | None = None) -> None:
        """Accumulate one image's foreground and background histograms (``[bins]`` each)."""
        self.add_histograms(np.stack([np.asarray(fg_hist), np.asarray(bg_hist)]),
                            None if image_id is None else [image_id])

    def update(self, scoremaps, masks, image_ids: Sequence[str] | str | None = None) -> None:
        """One map ``[H, W]`` with its mask ``[H, W]`` (uint8 1/0/255), or batches of both."""
        maps = _as_map_batch(scoremaps)
        mlist = _as_map_batch(masks)
        if len(mlist) != len(maps):
            raise InputError(f"got {len(maps)} score maps but {len(mlist)} masks")
        ids = _as_ids(image_ids, len(maps), self.count)
        self.add_histograms(np.stack([self.image_histograms(s, m, i) for s, m, i in zip(maps, mlist, ids)]), ids)

    def protocol(self) -> str:
        return (f"wsolevaluation PxAP (Choe et al. 2020): float scores histogrammed with edges "
                f"[np.arange(0, 1, {self.cam_curve_interval:g}), 1, 2, 3] at foreground and background "
                f"pixels (ignore = ignore box minus foreground, dropped), pooled over images, "
                f"right Riemann sum of precision over recall, x100")

    def settings(self) -> dict:
        return {"cam_curve_interval": self.cam_curve_interval, "num_bins": self.num_bins}

    def compute(self, *, ci: bool = True, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
                seed: int = DEFAULT_SEED) -> dict:
        """``{"num_images", "PxAP", "precision", "recall", "ci95" (bootstrap over images),
        "protocol", "settings"}``."""
        if self.count == 0:
            raise InputError("PxAP.compute(): no image was accumulated")
        ap, curve = pxap_from_histograms(self.hist[0], self.hist[1])
        out = {
            "num_images": int(self.count),
            "PxAP": ap,
            "precision": curve["precision"].tolist(),
            "recall": curve["recall"].tolist(),
            "protocol": self.protocol(),
            "settings": self.settings(),
        }
        if ci and self.keep_per_image:
            lo, hi = bootstrap_ci_weighted(np.stack(self._per_image), _pxap_batch, level=level,
                                           resamples=resamples, seed=seed)
            out["ci95" if level == 0.95 else f"ci{level * 100:g}"] = {"PxAP": [lo, hi]}
            out["ci_method"] = (f"percentile bootstrap over images (pooled histograms of resampled "
                                f"images), {resamples} resamples, seed {seed}")
        return out

    def merge(self, other: PxAP) -> PxAP:
        if (not isinstance(other, PxAP) or not np.array_equal(other.edges, self.edges)
                or other.keep_per_image != self.keep_per_image):
            raise InputError("cannot merge PxAP accumulators with different settings")
        self.hist += other.hist
        self.count += other.count
        self._per_image.extend(h.copy() for h in other._per_image)
        self._ids.extend(other._ids)
        return self

    def state_dict(self) -> dict:
        per = (np.stack(self._per_image) if self._per_image
               else np.zeros((0, 2, self.num_bins), dtype=np.int32))
        return {"kind": "PxAP", "edges": self.edges.copy(), "hist": self.hist.copy(),
                "count": int(self.count), "keep_per_image": self.keep_per_image,
                "per_image": per, "image_ids": _ids_array(self._ids)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "PxAP" or not np.array_equal(np.asarray(state["edges"]), self.edges):
            raise InputError("PxAP state was saved with different settings")
        self.hist = np.asarray(state["hist"], dtype=np.int64).copy()
        self.count = int(state["count"])
        self.keep_per_image = bool(state["keep_per_image"])
        self._per_image = [np.asarray(h, dtype=np.int32).copy() for h in state["per_image"]]
        self._ids = [str(i) for i in state["image_ids"]]


# ----------------------------------------------------------------------------------------------
# Per-image hit counters (old protocol, classification)

class _HitCounter:
    """Shared machinery: named per-image boolean outcomes, counts, optional per-image records."""

    kind = "_HitCounter"

    def __init__(self, keep_per_image: bool = True):
        self.keep_per_image = bool(keep_per_image)
        self.reset()

    def _names(self) -> list[str]:
        raise NotImplementedError

    def reset(self) -> None:
        self.correct = np.zeros(len(self._names()), dtype=np.int64)
        self.count = 0
        self._hits: list[np.ndarray] = []
        self._ids: list[str] = []

    def _add(self, hits: np.ndarray, ids: list[str]) -> None:
        self.correct += hits.sum(axis=0, dtype=np.int64)
        self.count += hits.shape[0]
        if self.keep_per_image:
            self._hits.extend(hits.astype(bool))
            self._ids.extend(ids)

    def per_image_hits(self) -> np.ndarray:
        """bool ``[N, M]`` per-image outcomes, columns in the order of ``compute()['metrics']``."""
        if not self.keep_per_image:
            raise InputError("per-image hits were not kept (keep_per_image=False)")
        return np.stack(self._hits) if self._hits else np.zeros((0, len(self._names())), dtype=bool)

    @property
    def image_ids(self) -> list[str]:
        return list(self._ids)

    def _compute(self, protocol: str, settings: dict, ci: bool, level: float, resamples: int,
                 seed: int) -> dict:
        if self.count == 0:
            raise InputError(f"{type(self).__name__}.compute(): no image was accumulated")
        names = self._names()
        out = {"num_images": int(self.count), "metrics": names}
        for i, n in enumerate(names):
            out[n] = float(_pct(self.correct[i], self.count))
        if ci and self.keep_per_image:
            hits = self.per_image_hits().astype(np.float64)
            out["ci95" if level == 0.95 else f"ci{level * 100:g}"] = {
                n: list(bootstrap_ci(hits[:, i], level=level, resamples=resamples, seed=seed, scale=100.0))
                for i, n in enumerate(names)}
            out["ci_method"] = f"percentile bootstrap over images, {resamples} resamples, seed {seed}"
        out["protocol"] = protocol
        out["settings"] = settings
        return out

    def merge(self, other):
        if type(other) is not type(self) or other.settings() != self.settings():
            raise InputError(f"cannot merge {type(self).__name__} accumulators with different settings")
        self.correct += other.correct
        self.count += other.count
        self._hits.extend(h.copy() for h in other._hits)
        self._ids.extend(other._ids)
        return self

    def state_dict(self) -> dict:
        return {"kind": self.kind, "settings_names": np.asarray(self._names(), dtype=str),
                "correct": self.correct.copy(), "count": int(self.count),
                "keep_per_image": self.keep_per_image, "hits": self.per_image_hits() if self.keep_per_image
                else np.zeros((0, len(self._names())), dtype=bool), "image_ids": _ids_array(self._ids)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != self.kind or [str(n) for n in state["settings_names"]] != self._names():
            raise InputError(f"{type(self).__name__} state was saved with different settings")
        self.correct = np.asarray(state["correct"], dtype=np.int64).copy()
        self.count = int(state["count"])
        self.keep_per_image = bool(state["keep_per_image"])
        self._hits = [np.asarray(h, dtype=bool).copy() for h in state["hits"]]
        self._ids = [str(i) for i in state["image_ids"]]

    def settings(self) -> dict:
        raise NotImplementedError


def _topk_hits(labels: np.ndarray, predictions: np.ndarray, ks: tuple[int, ...]) -> np.ndarray:
    """bool ``[B, len(ks)]``: is the label among the first k predictions."""
    if predictions.shape[1] < max(ks):
        raise InputError(f"top-{max(ks)} needs at least {max(ks)} predictions per image, "
                         f"got {predictions.shape[1]}")
    return np.stack([(predictions[:, :k] == labels[:, None]).any(axis=1) for k in ks], axis=1)


def _as_labels_preds(labels, predictions, n: int) -> tuple[np.ndarray, np.ndarray]:
    lab = np.asarray(labels).reshape(-1).astype(np.int64)
    pred = np.asarray(predictions)
    if pred.ndim == 1:
        pred = pred.reshape(n, -1) if n > 1 or pred.size != 1 else pred.reshape(1, 1)
    pred = pred.astype(np.int64)
    if lab.shape[0] != n or pred.shape[0] != n:
        raise InputError(f"expected {n} labels and prediction rows, got {lab.shape[0]} and {pred.shape[0]}")
    return lab, pred


class Classification(_HitCounter):
    """Top-k classification accuracy (percent): correct iff the label is among the first k
    predictions (``predictions`` ``[B, >= max(k)]``, best first)."""

    kind = "Classification"

    def __init__(self, k: Sequence[int] = (1, 5), keep_per_image: bool = True):
        self.k = tuple(int(v) for v in k)
        if not self.k or min(self.k) < 1:
            raise InputError(f"k must be positive integers, got {k!r}")
        super().__init__(keep_per_image)

    def _names(self) -> list[str]:
        return [f"top{k}_cls" for k in self.k]

    def settings(self) -> dict:
        return {"k": list(self.k)}

    def update(self, labels, predictions, image_ids: Sequence[str] | str | None = None) -> None:
        n = int(np.asarray(labels).size)
        lab, pred = _as_labels_preds(labels, predictions, n)
        self._add(_topk_hits(lab, pred, self.k), _as_ids(image_ids, n, self.count))

    def update_one(self, label: int, topk: Sequence[int], image_id: str | None = None) -> None:
        """One image: its label and its predictions (best first)."""
        self.update([label], np.asarray([list(topk)]), None if image_id is None else [image_id])

    def compute(self, *, ci: bool = True, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
                seed: int = DEFAULT_SEED) -> dict:
        return self._compute("classification accuracy: label among the top-k predicted classes",
                             self.settings(), ci, level, resamples, seed)


class TopKLocalization(_HitCounter):
    """The older fixed-threshold localization protocol (CAM 2016, CutMix 2019; protocol section 8).

    Box: :func:`eval.sweep.box_at_fixed_threshold` of the GT-class score map (``normalize`` "max"
    as CAM/CutMix or "minmax"; pixels ``binarize`` (``">"``, "above", default, or ``">="``)
    ``sigma``; tight box of the largest 8-connected region). IoU: +1 inclusive convention, max
    over the GT boxes; localized iff IoU ``compare`` ``iou`` (CutMix: "> 0.5"; wsolevaluation uses
    ">="). Metrics: ``gt_known_loc`` (IoU criterion only) and ``top{k}_loc`` (IoU criterion and the
    label among the top-k predictions: only the guess equal to the label can be right, and its CAM
    is the GT-class CAM, so the GT-class map suffices).
    """

    kind = "TopKLocalization"

    def __init__(self, sigma: float = 0.15, iou: float = 0.5, compare: str = ">", normalize: str = "max",
                 k: Sequence[int] = (1, 5), keep_per_image: bool = True, *, binarize: str = ">"):
        if compare not in (">", ">="):
            raise InputError(f"compare must be '>' or '>=', got {compare!r}")
        if binarize not in (">", ">="):
            raise InputError(f"binarize must be '>' or '>=', got {binarize!r}")
        if normalize not in ("max", "minmax", "none"):
            raise InputError(f"normalize must be 'max', 'minmax' or 'none', got {normalize!r}")
        self.sigma = float(sigma)
        self.iou = float(iou)
        self.compare = compare
        self.normalize = normalize
        self.binarize = binarize
        self.k = tuple(int(v) for v in k)
        if min(self.k, default=1) < 1:
            raise InputError(f"k must be positive integers, got {k!r}")
        super().__init__(keep_per_image)

    def _names(self) -> list[str]:
        return ["gt_known_loc"] + [f"top{k}_loc" for k in self.k]

    def settings(self) -> dict:
        return {"sigma": self.sigma, "iou": self.iou, "compare": self.compare,
                "normalize": self.normalize, "binarize": self.binarize, "k": list(self.k)}

    def image_iou(self, scoremap: np.ndarray, gt_boxes: np.ndarray, image_id: str = "score map") -> float:
        """Best IoU of the old-protocol box of one map against its GT boxes (pure)."""
        box = box_at_fixed_threshold(scoremap, self.sigma, normalize=self.normalize,
                                     compare=self.binarize, where=image_id)
        return float(iou_inclusive(box, as_box_array(gt_boxes)).max())

    def localized(self, iou: np.ndarray) -> np.ndarray:
        iou = np.asarray(iou, dtype=np.float64)
        return iou > self.iou if self.compare == ">" else iou >= self.iou

    def add_ious(self, ious, labels=None, predictions=None, image_ids=None) -> None:
        """Accumulate precomputed best IoUs ``[B]`` (and labels / top-k predictions when ``k``)."""
        iou = np.asarray(ious, dtype=np.float64).reshape(-1)
        n = iou.shape[0]
        cols = [self.localized(iou)]
        if self.k:
            if labels is None or predictions is None:
                raise InputError("top-k localization needs labels and predictions")
            lab, pred = _as_labels_preds(labels, predictions, n)
            cls = _topk_hits(lab, pred, self.k)
            cols.extend(cols[0] & cls[:, j] for j in range(len(self.k)))
        self._add(np.stack(cols, axis=1), _as_ids(image_ids, n, self.count))

    def update_one(self, iou: float, label: int | None = None, topk: Sequence[int] | None = None,
                   image_id: str | None = None) -> None:
        """One image: the best IoU of its old-protocol box, its label and predictions (best first)."""
        self.add_ious([iou], None if label is None else [label],
                      None if topk is None else np.asarray([list(topk)]),
                      None if image_id is None else [image_id])

    def update(self, scoremaps, gt_boxes, labels=None, predictions=None,
               image_ids: Sequence[str] | str | None = None) -> None:
        """GT-class maps ``[H, W]`` / ``[B, H, W]``, GT boxes (one ``[K, 4]`` or a list), labels
        ``[B]``, predictions ``[B, >= max(k)]`` (best first)."""
        maps = _as_map_batch(scoremaps)
        boxes = _as_box_batch(gt_boxes, len(maps), _is_single(scoremaps))
        ids = _as_ids(image_ids, len(maps), self.count)
        ious = [self.image_iou(m, b, i) for m, b, i in zip(maps, boxes, ids)]
        self.add_ious(ious, labels, predictions, ids)

    def protocol(self) -> str:
        norm = {"max": "s / max(s)", "minmax": "(s - min) / (max - min)", "none": "s"}[self.normalize]
        return (f"fixed-threshold localization (CAM 2016 / CutMix 2019): map normalized as {norm}, "
                f"pixels {self.binarize} {self.sigma:g}, tight box of the largest 8-connected region, "
                f"+1 inclusive IoU (max over GT boxes) {self.compare} {self.iou:g}; top-k loc also needs "
                f"the label among the top-k predictions; GT-known loc does not")

    def compute(self, *, ci: bool = True, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
                seed: int = DEFAULT_SEED) -> dict:
        return self._compute(self.protocol(), self.settings(), ci, level, resamples, seed)
