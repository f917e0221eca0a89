"""Accumulators for localization and classification metrics (score maps in, numbers out).

Every accumulator is an :class:`Accumulator`: it declares its state once in ``__init__``
(:meth:`Accumulator.add_state`, like torchmetrics' ``add_state``: ``"sum"`` for counts and
histograms, ``"cat"`` for per-image records and image ids), and ``reset()``, ``merge(other)``
(e.g. the parts of several processes, in order), ``state_dict()`` / ``load_state_dict()`` (plain
numpy arrays, ints and strings) follow from that declaration. Each also has ``update(...)`` (one
image or a batch) and ``compute() -> dict``. Every ``compute()`` result carries ``protocol`` (text)
and ``settings`` (dict) so a number never travels without how it was made. Percentages are 0-100.

* :class:`BoxAccuracy` -- BoxAcc(tau, delta), MaxBoxAcc per delta and MaxBoxAccV2 (their mean) of
  the wsolevaluation protocol (sections 2-3.1): one tau per delta for the whole split.
* :class:`PxAP` -- pixel average precision (section 3.2): pooled histograms, right Riemann sum.
* :class:`TopKLocalization` -- the older fixed-threshold protocol of CAM (2016) / CutMix (2019)
  (section 8): top-k localization and GT-known localization.
* :class:`Classification` -- top-k classification accuracy.

Per-image hits are kept (``keep_per_image=True``) only to give confidence intervals
(:mod:`eval.stats`) and paired tests; box hits are bit-packed (``ceil(D*T/8)`` bytes per image).
No accumulator runs processes: to score images in parallel, map :func:`box_hits_job` (or
:meth:`BoxAccuracy.image_hits`) over a pool (:class:`eval.sweep.SweepPool`) and feed the hits to
:meth:`BoxAccuracy.add_hits`, or merge per-process accumulators.

Thresholds and bin edges come from an :class:`~eval.settings.MetricSettings` when the caller has
one (``BoxAccuracy.from_settings(st)``, ``PxAP.from_settings(st)``,
``TopKLocalization.from_settings(st, ks)``: the grid is built once, in the settings); the
constructors' defaults are those of :mod:`eval.settings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

from eval.boxes import as_box_array, iou_inclusive
from eval.errors import InputError
from eval.settings import (
    DEFAULT_CAM_CURVE_INTERVAL,
    DEFAULT_IOU_THRESHOLDS,
    DEFAULT_SIGMA,
    MetricSettings,
    pxap_edges,
    thresholds_from_interval,
)
from eval.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, bootstrap_ci_weighted
from eval.sweep import box_at_fixed_threshold, check_scoremap, sweep

__all__ = [
    "OLD_PROTOCOL_IOU",
    "STATE_META_KEYS",
    "Accumulator",
    "BoxAccuracy",
    "Classification",
    "PxAP",
    "TopKLocalization",
    "box_hits_job",
    "check_mask",
    "pxap_edges",
    "pxap_from_histograms",
    "pxap_histograms",
]

OLD_PROTOCOL_IOU = 0.5  # the old protocol's IoU criterion (CAM 2016 / CutMix 2019: IoU > 0.5)

# keys of every state_dict besides the declared states
STATE_META_KEYS = ("kind", "config", "keep_per_image", "children")

Reduce = Literal["sum", "cat"]
_A = TypeVar("_A", bound="Accumulator")


# ----------------------------------------------------------------------------------------------
# the accumulator base: state declared once


@dataclass(frozen=True)
class _State:
    """One declared state: ``default`` (an int or an array for ``"sum"``; an empty ``[0, ...]``
    array giving the dtype and the per-record shape for ``"cat"``) and how parts combine."""

    default: Any
    reduce: str

    @property
    def is_text(self) -> bool:
        return isinstance(self.default, np.ndarray) and self.default.dtype.kind in "US"

    @property
    def scalar_rows(self) -> bool:
        """``"cat"`` of scalars (ids, labels, IoUs): held as a list of Python values."""
        return self.default.ndim == 1

    def dtype(self) -> Any:
        return str if self.is_text else self.default.dtype

    def fresh(self) -> Any:
        if self.reduce == "cat":
            return []
        return self.default.copy() if isinstance(self.default, np.ndarray) else self.default

    def row(self, value: Any) -> Any:
        """One ``"cat"`` record as stored: a Python scalar / str, or an array copy of the row shape."""
        if self.is_text:
            return str(value)
        if self.scalar_rows:
            return np.asarray(value, dtype=self.default.dtype).item()
        return np.array(value, dtype=self.default.dtype)


def _same(a: Any, b: Any) -> bool:
    """Equality of configuration values: arrays by value (shape included), dicts and sequences
    element-wise (a tuple equals the list with the same items)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        return x.shape == y.shape and bool(np.array_equal(x, y))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _copy(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


class Accumulator:
    """Base of the accumulators: the state is declared once, the rest follows.

    A subclass calls :meth:`add_state` in ``__init__`` for every piece of state -- ``"sum"``
    (an int, or an int/float array of a fixed shape: counts, histograms; parts are added) or
    ``"cat"`` (per-image records: ``default`` an empty ``[0, ...]`` array giving the dtype and the
    shape of one record; parts are concatenated in merge order; kept only with ``keep_per_image``)
    -- and may register sub-accumulators with :meth:`add_child`. Each state is an attribute of the
    same name (``"cat"`` states are lists of records). :meth:`_config` returns what must be equal
    for two accumulators to merge, or for a state to load (thresholds, IoU deltas, ...).

    Derived: :meth:`reset`, :meth:`merge`, :meth:`state_dict` (keys: the declared states, plus
    ``kind``, ``config``, ``keep_per_image`` and, with sub-accumulators, ``children``; ``"cat"``
    states stacked into one array ``[N, ...]``) and :meth:`load_state_dict`. Merging or loading
    is bit-exact: integer sums and concatenation only.
    """

    def __init__(self, keep_per_image: bool = True) -> None:
        self.keep_per_image = bool(keep_per_image)
        self._states: dict[str, _State] = {}
        self._children: dict[str, Accumulator] = {}

    # -- declaration -------------------------------------------------------------------------
    def add_state(self, name: str, default: Any, reduce: Reduce = "sum") -> None:
        """Declare state ``name`` (also set as the attribute ``name``, at its reset value)."""
        if name in self._states or name in self._children or name in STATE_META_KEYS:
            raise ValueError(f"{type(self).__name__}: state {name!r} is declared twice or is reserved")
        if reduce == "sum":
            if isinstance(default, np.ndarray):
                if default.dtype.kind not in "iuf":
                    raise ValueError(f"state {name!r}: a sum state must be numeric, got {default.dtype}")
                default = default.copy()
            elif isinstance(default, (int, np.integer)) and not isinstance(default, bool):
                default = int(default)
            else:
                raise ValueError(f"state {name!r}: a sum state is an int or a numeric array, got {default!r}")
        elif reduce == "cat":
            if not isinstance(default, np.ndarray) or default.ndim < 1 or default.shape[0] != 0:
                raise ValueError(f"state {name!r}: a cat state's default is an empty [0, ...] array")
            default = default.copy()
        else:
            raise ValueError(f"state {name!r}: reduce must be 'sum' or 'cat', got {reduce!r}")
        self._states[name] = _State(default, reduce)
        setattr(self, name, self._states[name].fresh())

    def add_child(self, name: str, child: _A) -> _A:
        """Register a sub-accumulator (reset, merged, saved and loaded with this one). Returns it."""
        if name in self._states or name in self._children or name in STATE_META_KEYS:
            raise ValueError(f"{type(self).__name__}: child {name!r} is declared twice or is reserved")
        self._children[name] = child
        return child

    @property
    def state_names(self) -> tuple[str, ...]:
        """The declared states, in declaration order."""
        return tuple(self._states)

    @property
    def kind(self) -> str:
        return type(self).__name__

    def _config(self) -> dict[str, Any]:
        """What must be equal to merge two accumulators or to load a state (override)."""
        return {}

    # -- derived -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the declared defaults (sub-accumulators too)."""
        for name, spec in self._states.items():
            setattr(self, name, spec.fresh())
        for child in self._children.values():
            child.reset()

    def _accumulate(self, **values: Any) -> None:
        """Add to ``"sum"`` states (``count=3``, ``hist=h``); extend ``"cat"`` states with records
        (``image_ids=[...]``, an iterable of records; ignored without ``keep_per_image``)."""
        for name, value in values.items():
            spec = self._states[name]
            if spec.reduce == "sum":
                if isinstance(spec.default, np.ndarray):
                    total = getattr(self, name)
                    total += np.asarray(value, dtype=spec.default.dtype)
                else:
                    setattr(self, name, getattr(self, name) + int(value))
            elif self.keep_per_image:
                getattr(self, name).extend(spec.row(v) for v in value)

    def _stacked(self, name: str) -> np.ndarray:
        """A ``"cat"`` state as one array ``[N, ...]`` (the declared empty array when N = 0)."""
        spec = self._states[name]
        rows = getattr(self, name)
        if not rows:
            return spec.default.copy()
        return np.asarray(rows, dtype=spec.dtype()) if spec.scalar_rows else np.stack(rows)

    def _check_mergeable(self, other: Accumulator) -> None:
        if (
            type(other) is not type(self)
            or other.keep_per_image != self.keep_per_image
            or not _same(self._config(), other._config())
            or other._children.keys() != self._children.keys()
        ):
            raise InputError(f"cannot merge {self.kind} accumulators with different settings")
        for name, child in self._children.items():
            child._check_mergeable(other._children[name])

    def merge(self, other: Accumulator) -> Accumulator:
        """Add ``other``'s state to this one (sums added, records of ``other`` after ours; its
        sub-accumulators likewise). Checks everything before changing anything. Returns ``self``."""
        self._check_mergeable(other)
        self._merge_checked(other)
        return self

    def _merge_checked(self, other: Accumulator) -> None:
        for name, spec in self._states.items():
            theirs = getattr(other, name)
            if spec.reduce == "sum":
                setattr(self, name, getattr(self, name) + theirs)
            else:
                getattr(self, name).extend(_copy(r) if isinstance(r, np.ndarray) else r for r in theirs)
        for name, child in self._children.items():
            child._merge_checked(other._children[name])

    def state_dict(self) -> dict[str, Any]:
        """Plain data (numpy arrays, ints, strings, dicts): ``kind``, ``config``,
        ``keep_per_image``, every declared state (``"cat"`` ones stacked ``[N, ...]``) and, with
        sub-accumulators, ``children`` (``{name: state_dict}``)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "config": _copy(self._config()),
            "keep_per_image": self.keep_per_image,
        }
        for name, spec in self._states.items():
            out[name] = self._stacked(name) if spec.reduce == "cat" else _copy(getattr(self, name))
        if self._children:
            out["children"] = {name: child.state_dict() for name, child in self._children.items()}
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the state by ``state`` (from :meth:`state_dict` of an accumulator made with
        the same settings; :class:`InputError` otherwise, and then nothing is changed)."""
        parsed: list[tuple[Accumulator, bool, dict[str, Any]]] = []
        self._parse_state(state, parsed)
        for acc, keep, values in parsed:
            acc.keep_per_image = keep
            for name, v in values.items():
                setattr(acc, name, v)

    def _parse_state(self, state: Mapping[str, Any], out: list) -> None:
        if (
            not isinstance(state, Mapping)
            or state.get("kind") != self.kind
            or not _same(state.get("config"), self._config())
        ):
            raise InputError(f"{self.kind} state was saved with different settings")
        missing = [n for n in (*self._states, "keep_per_image") if n not in state]
        children = state.get("children", {})
        if missing or not isinstance(children, Mapping) or children.keys() != self._children.keys():
            raise InputError(f"{self.kind} state lacks {', '.join(missing) or 'its sub-accumulators'}")
        values: dict[str, Any] = {}
        for name, spec in self._states.items():
            v = state[name]
            if spec.reduce == "sum" and not isinstance(spec.default, np.ndarray):
                values[name] = int(v)
                continue
            arr = np.asarray(v).astype(spec.dtype())
            if spec.reduce == "sum":
                ok, want = arr.shape == spec.default.shape, str(spec.default.shape)
            else:
                ok = arr.ndim == spec.default.ndim and arr.shape[1:] == spec.default.shape[1:]
                want = str(("N", *spec.default.shape[1:]))
            if not ok:
                raise InputError(f"{self.kind} state {name!r} has shape {arr.shape}, expected {want}")
            if spec.reduce == "sum":
                values[name] = arr.copy()
            else:
                values[name] = arr.tolist() if spec.scalar_rows else [r.copy() for r in arr]
        out.append((self, bool(state["keep_per_image"]), values))
        for name, child in self._children.items():
            child._parse_state(children[name], out)


# ----------------------------------------------------------------------------------------------
# helpers


def _as_map_batch(scoremaps: Any) -> list[np.ndarray]:
    """One map ``[H, W]``, a batch ``[B, H, W]`` or a sequence of maps -> list of ``[H, W]``."""
    if isinstance(scoremaps, np.ndarray):
        if scoremaps.ndim == 2:
            return [scoremaps]
        if scoremaps.ndim == 3:
            return list(scoremaps)
        raise InputError(f"score maps must be [H, W] or [B, H, W], got shape {scoremaps.shape}")
    return [np.asarray(m) for m in scoremaps]


def _as_box_batch(gt_boxes: Any, n: int, single: bool) -> list[np.ndarray]:
    """GT boxes of one image (``[K, 4]``, when ``single``) or a sequence of ``n`` such arrays."""
    if single:
        return [as_box_array(gt_boxes)]
    boxes = list(gt_boxes)
    if len(boxes) != n:
        raise InputError(f"got {n} score maps but {len(boxes)} ground-truth box sets")
    return [as_box_array(b) for b in boxes]


def _is_single(scoremaps: Any) -> bool:
    return isinstance(scoremaps, np.ndarray) and scoremaps.ndim == 2


def _as_ids(image_ids: Sequence[str] | str | None, n: int, start: int) -> list[str]:
    if image_ids is None:
        return [f"image #{start + i}" for i in range(n)]
    ids = [image_ids] if isinstance(image_ids, str) else [str(i) for i in image_ids]
    if len(ids) != n:
        raise InputError(f"got {n} images but {len(ids)} image ids")
    return ids


def _pct(num: np.ndarray | int, count: int) -> Any:
    """``num * 100. / count`` exactly as the reference evaluator computes percentages."""
    return np.asarray(num) * 100.0 / float(count)


def _ids_default() -> np.ndarray:
    """The declared default of an image-id ``"cat"`` state (str ``[0]``)."""
    return np.zeros(0, dtype="<U1")


def _ci_key(level: float) -> str:
    return "ci95" if level == 0.95 else f"ci{level * 100:g}"


def _key(d: float) -> str:
    return str(_num(d))


def _num(d: float) -> int | float:
    return int(d) if float(d).is_integer() else float(d)


# ----------------------------------------------------------------------------------------------
# Box accuracy (wsolevaluation)


def box_hits_job(job: tuple) -> np.ndarray:
    """Picklable per-image work (for a process pool): ``(scoremap, gt_boxes, cam_thresholds,
    iou_thresholds, multi_contour, method, image_id)`` -> bool ``[D, T]`` hits of one image (see
    :func:`eval.sweep.sweep`)."""
    scoremap, gt, thresholds, deltas, multi_contour, method, image_id = job
    hits = sweep(
        scoremap, gt, thresholds, multi_contour=multi_contour, iou_thresholds=deltas, method=method, where=image_id
    ).hits
    assert hits is not None  # filled whenever iou_thresholds is given
    return hits


class BoxAccuracy(Accumulator):
    """BoxAcc / MaxBoxAcc / MaxBoxAccV2 of the wsolevaluation protocol (sections 2, 3.1).

    ``cam_curve_interval``: thresholds are ``np.arange(0, 1, interval)`` (or pass ``thresholds``,
    by keyword or as the first argument; or build it with :meth:`from_settings`);
    ``iou_thresholds``: deltas in percent; ``multi_contour``: True = all contours (the V2
    protocol), False = largest contour (V1); ``keep_per_image``: keep bit-packed per-image hits for
    confidence intervals and paired tests; ``method``: sweep implementation (``"auto"``,
    ``"numba"``, ``"opencv"``). Runs in the calling process (see the module note on parallelism).

    State: ``num_correct`` int64 ``[D, T]`` (sum: images whose best IoU at ``tau_t`` is
    ``>= delta_d / 100``), ``count`` (sum), and per image (cat) ``hits_packed`` uint8
    ``[ceil(D*T/8)]`` and ``image_ids``.
    """

    num_correct: np.ndarray
    count: int
    hits_packed: list[np.ndarray]
    image_ids: list[str]

    def __init__(
        self,
        cam_curve_interval: float | np.ndarray = DEFAULT_CAM_CURVE_INTERVAL,
        iou_thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
        multi_contour: bool = True,
        keep_per_image: bool = True,
        *,
        thresholds: np.ndarray | None = None,
        method: str = "auto",
    ) -> None:
        super().__init__(keep_per_image)
        if thresholds is None and np.ndim(cam_curve_interval) >= 1:  # BoxAccuracy(thresholds, ...)
            thresholds = np.asarray(cam_curve_interval)
        self.cam_curve_interval: float | None
        if thresholds is None:
            self.cam_curve_interval = float(cam_curve_interval)
            self.thresholds = thresholds_from_interval(self.cam_curve_interval)
        else:
            self.cam_curve_interval = None
            t = np.asarray(thresholds, dtype=np.float64)
            self.thresholds = t if t.ndim == 1 else t.ravel()
            if self.thresholds.size == 0:
                raise InputError("BoxAccuracy needs at least one threshold")
        self.iou_thresholds = tuple(float(d) for d in iou_thresholds)
        if not self.iou_thresholds:
            raise InputError("BoxAccuracy needs at least one IoU threshold")
        for d in self.iou_thresholds:
            if not (0.0 <= d <= 100.0):
                raise InputError(f"IoU thresholds are percentages in [0, 100], got {d!r}")
        self.multi_contour = bool(multi_contour)
        self.method = method
        shape = (len(self.iou_thresholds), len(self.thresholds))
        self.add_state("num_correct", np.zeros(shape, dtype=np.int64), "sum")
        self.add_state("count", 0, "sum")
        self.add_state("hits_packed", np.zeros((0, (self._nbits + 7) // 8), dtype=np.uint8), "cat")
        self.add_state("image_ids", _ids_default(), "cat")

    @classmethod
    def from_settings(cls, settings: MetricSettings, *, keep_per_image: bool = True) -> BoxAccuracy:
        """The accumulator of ``settings`` (its threshold grid, IoU deltas, V1/V2, sweep method);
        the grid is the one built in ``settings``, not rebuilt."""
        acc = cls(
            thresholds=settings.thresholds,
            iou_thresholds=settings.iou_thresholds,
            multi_contour=settings.multi_contour,
            keep_per_image=keep_per_image,
            method=settings.method,
        )
        acc.cam_curve_interval = settings.cam_curve_interval  # thresholds == np.arange(0, 1, interval)
        return acc

    def _config(self) -> dict[str, Any]:
        return {
            "thresholds": self.thresholds,
            "iou_thresholds": np.asarray(self.iou_thresholds, dtype=np.float64),
            "multi_contour": self.multi_contour,
        }

    @property
    def _nbits(self) -> int:
        return len(self.iou_thresholds) * len(self.thresholds)

    # -- updates -----------------------------------------------------------------------------
    def job(self, scoremap: np.ndarray, gt_boxes: np.ndarray, image_id: str = "score map") -> tuple:
        """The picklable :func:`box_hits_job` argument of one image (for a caller's process pool)."""
        return (scoremap, gt_boxes, self.thresholds, self.iou_thresholds, self.multi_contour, self.method, image_id)

    def image_hits(self, scoremap: np.ndarray, gt_boxes: np.ndarray, image_id: str = "score map") -> np.ndarray:
        """bool ``[D, T]`` hits of one image (pure; does not change the state)."""
        return box_hits_job(self.job(scoremap, gt_boxes, image_id))

    def add_hits(self, hits: np.ndarray, image_ids: Sequence[str] | str | None = None) -> None:
        """Accumulate precomputed hits: bool ``[D, T]`` (one image) or ``[B, D, T]``."""
        h = np.asarray(hits, dtype=bool)
        if h.ndim == 2:
            h = h[None]
        shape = (len(self.iou_thresholds), len(self.thresholds))
        if h.ndim != 3 or h.shape[1:] != shape:
            raise InputError(f"hits must have shape [B, {shape[0]}, {shape[1]}], got {h.shape}")
        ids = _as_ids(image_ids, h.shape[0], self.count)
        self._accumulate(
            num_correct=h.sum(axis=0, dtype=np.int64),
            count=h.shape[0],
            hits_packed=(np.packbits(row.ravel()) for row in h),
            image_ids=ids,
        )

    update_hits = add_hits  # alias

    def update(self, scoremaps: Any, gt_boxes: Any, image_ids: Sequence[str] | str | None = None) -> None:
        """Accumulate one image (``[H, W]`` map, ``[K, 4]`` inclusive GT boxes in the map's frame)
        or a batch (``[B, H, W]`` or a list of maps, and a list of ``B`` box arrays)."""
        maps = _as_map_batch(scoremaps)
        boxes = _as_box_batch(gt_boxes, len(maps), _is_single(scoremaps))
        ids = _as_ids(image_ids, len(maps), self.count)
        self.add_hits(np.stack([self.image_hits(m, b, i) for m, b, i in zip(maps, boxes, ids)]), ids)

    # -- results -----------------------------------------------------------------------------
    def per_image_hits(self) -> np.ndarray:
        """bool ``[N, D, T]`` hits of every image so far (needs ``keep_per_image``)."""
        if not self.keep_per_image:
            raise InputError("per-image hits were not kept (keep_per_image=False)")
        shape = (len(self.iou_thresholds), len(self.thresholds))
        packed = self._stacked("hits_packed")
        return np.unpackbits(packed, axis=1, count=self._nbits).astype(bool).reshape((-1,) + shape)

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
        grid = (
            f"np.arange(0, 1, {self.cam_curve_interval:g})"
            if self.cam_curve_interval is not None
            else f"{len(self.thresholds)} given thresholds"
        )
        deltas = "/".join(f"{d:g}" for d in self.iou_thresholds)
        return (
            f"wsolevaluation box accuracy (Choe et al. 2020), {version}: score map quantized "
            f"with (s*255).astype(uint8), foreground > int(tau*max), cv2.findContours RETR_TREE/"
            f"CHAIN_APPROX_SIMPLE, box (x, y, min(x+w, W-1), min(y+h, H-1)), +1 inclusive IoU, "
            f"max over predicted and GT boxes, correct if IoU >= delta/100; tau in {grid}, one tau "
            f"per IoU delta ({deltas}%) chosen for the whole split; MaxBoxAccV2 = mean over deltas"
        )

    def settings(self) -> dict[str, Any]:
        return {
            "cam_curve_interval": self.cam_curve_interval,
            "num_thresholds": len(self.thresholds),
            "iou_thresholds": [_num(d) for d in self.iou_thresholds],
            "multi_contour": self.multi_contour,
        }

    def compute(
        self, *, ci: bool = True, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
    ) -> dict[str, Any]:
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
        out: dict[str, Any] = {
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
            cis = {
                f"MaxBoxAcc@{k}": list(
                    bootstrap_ci(sel[:, i], level=level, resamples=resamples, seed=seed, scale=100.0)
                )
                for i, k in enumerate(keys)
            }
            cis["MaxBoxAccV2"] = list(
                bootstrap_ci(sel.mean(axis=1), level=level, resamples=resamples, seed=seed, scale=100.0)
            )
            out[_ci_key(level)] = cis
            out["ci_method"] = (
                f"percentile bootstrap over images at the selected tau, {resamples} resamples, seed {seed}"
            )
        return out


# ----------------------------------------------------------------------------------------------
# PxAP (wsolevaluation, OpenImages)


def check_mask(mask: np.ndarray, shape: tuple[int, int], where: str = "mask") -> np.ndarray:
    """Validate a GT mask (uint8 ``[H, W]``: 1 foreground, 0 background, 255 ignore)."""
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise InputError(f"{where}: mask shape {m.shape} differs from the score map shape {tuple(shape)}")
    bad = ~np.isin(m, (0, 1, 255))
    if bad.any():
        raise InputError(
            f"{where}: mask values must be 0 (background), 1 (foreground) or 255 (ignore); "
            f"found {np.unique(m[bad])[:5].tolist()}"
        )
    return m.astype(np.uint8, copy=False)


def pxap_histograms(
    scoremap: np.ndarray,
    mask: np.ndarray,
    edges: np.ndarray | float,
    where: str = "score map",
    *,
    checked: bool = False,
) -> np.ndarray:
    """int64 ``[2, bins]``: histograms (``np.histogram`` with ``edges``, or the edges of a
    ``cam_curve_interval`` given as a number) of the float scores at foreground (row 0) and
    background (row 1) pixels; ignore pixels (255) are dropped. ``fg, bg = pxap_histograms(...)``.
    ``checked=True``: the caller has already validated ``scoremap``
    (:func:`eval.sweep.check_scoremap`, or :func:`eval.sweep.sweep` of the same map), so only
    its float64 conversion is done here."""
    if np.ndim(edges) == 0:
        edges = pxap_edges(float(edges))
    s = np.asarray(scoremap, dtype=np.float64) if checked else check_scoremap(scoremap, where)
    m = check_mask(mask, s.shape, where)
    return _histograms_fg_bg(s.ravel(), m.ravel(), np.asarray(edges, dtype=np.float64))


def _histograms_fg_bg(s: np.ndarray, m: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram(s[m == 1], edges)`` and ``np.histogram(s[m == 0], edges)`` as int64
    ``[2, bins]``, with one search of the edges for all pixels. Same counts as ``np.histogram``
    with explicit (sorted) edges: bin ``i`` holds ``edges[i] <= v < edges[i + 1]``, the last bin
    also ``v == edges[-1]``; values outside ``[edges[0], edges[-1]]`` are not counted."""
    bins = edges.shape[0] - 1
    idx = np.searchsorted(edges, s, side="right") - 1
    idx[s == edges[-1]] = bins - 1
    keep = (idx >= 0) & (idx < bins) & (m != 255)
    code = idx[keep] + bins * (m[keep] == 0)  # row 0 foreground (1), row 1 background (0)
    return np.bincount(code, minlength=2 * bins).astype(np.int64).reshape(2, bins)


def pxap_from_histograms(fg_hist: np.ndarray, bg_hist: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
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


class PxAP(Accumulator):
    """Pixel average precision of the wsolevaluation protocol (section 3.2), in percent.

    Bin edges ``[0, bw, ..., 1 - bw, 1, 2, 3]`` with ``bw = cam_curve_interval`` (thresholds
    ``np.arange(0, 1, bw)``); float scores (not quantized) of foreground and background pixels are
    histogrammed with ``np.histogram`` and pooled over all images; ignore pixels are dropped;
    ``PxAP = 100 * sum_{i>=1, tp_i+fp_i != 0} precision_i * (recall_i - recall_{i-1})`` going from
    the highest threshold down. ``keep_per_image`` keeps per-image histograms (int32) for a
    bootstrap CI.

    State: ``hist`` int64 ``[2, bins]`` (sum: foreground, background), ``count`` (sum), and per
    image (cat) ``per_image`` int32 ``[2, bins]`` and ``image_ids``.
    """

    hist: np.ndarray
    count: int
    per_image: list[np.ndarray]
    image_ids: list[str]

    def __init__(self, cam_curve_interval: float = DEFAULT_CAM_CURVE_INTERVAL, keep_per_image: bool = True) -> None:
        thresholds = thresholds_from_interval(cam_curve_interval)
        self._setup(float(cam_curve_interval), thresholds, np.append(thresholds, [1.0, 2.0, 3.0]), keep_per_image)

    def _setup(self, interval: float, thresholds: np.ndarray, edges: np.ndarray, keep_per_image: bool) -> None:
        super().__init__(keep_per_image)
        self.cam_curve_interval = interval
        self.thresholds = thresholds
        self.edges = edges  # == eval.settings.pxap_edges(interval)
        self.add_state("hist", np.zeros((2, self.num_bins), dtype=np.int64), "sum")
        self.add_state("count", 0, "sum")
        self.add_state("per_image", np.zeros((0, 2, self.num_bins), dtype=np.int32), "cat")
        self.add_state("image_ids", _ids_default(), "cat")

    @classmethod
    def from_settings(cls, settings: MetricSettings, *, keep_per_image: bool = True) -> PxAP:
        """The accumulator of ``settings`` (its grid and bin edges, not rebuilt)."""
        acc = cls.__new__(cls)
        acc._setup(settings.cam_curve_interval, settings.thresholds, settings.pxap_edges, keep_per_image)
        return acc

    def _config(self) -> dict[str, Any]:
        return {"edges": self.edges}

    @property
    def num_bins(self) -> int:
        return len(self.thresholds) + 2

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
        self._accumulate(hist=h.sum(axis=0), count=h.shape[0], per_image=h, image_ids=ids)

    def update_histograms(self, fg_hist: np.ndarray, bg_hist: np.ndarray, image_id: str | None = None) -> None:
        """Accumulate one image's foreground and background histograms (``[bins]`` each)."""
        self.add_histograms(
            np.stack([np.asarray(fg_hist), np.asarray(bg_hist)]), None if image_id is None else [image_id]
        )

    def update(self, scoremaps: Any, masks: Any, image_ids: Sequence[str] | str | None = None) -> None:
        """One map ``[H, W]`` with its mask ``[H, W]`` (uint8 1/0/255), or batches of both."""
        maps = _as_map_batch(scoremaps)
        mlist = _as_map_batch(masks)
        if len(mlist) != len(maps):
            raise InputError(f"got {len(maps)} score maps but {len(mlist)} masks")
        ids = _as_ids(image_ids, len(maps), self.count)
        self.add_histograms(np.stack([self.image_histograms(s, m, i) for s, m, i in zip(maps, mlist, ids)]), ids)

    def protocol(self) -> str:
        return (
            f"wsolevaluation PxAP (Choe et al. 2020): float scores histogrammed with edges "
            f"[np.arange(0, 1, {self.cam_curve_interval:g}), 1, 2, 3] at foreground and background "
            f"pixels (ignore = ignore box minus foreground, dropped), pooled over images, "
            f"right Riemann sum of precision over recall, x100"
        )

    def settings(self) -> dict[str, Any]:
        return {"cam_curve_interval": self.cam_curve_interval, "num_bins": self.num_bins}

    def compute(
        self, *, ci: bool = True, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
    ) -> dict[str, Any]:
        """``{"num_images", "PxAP", "precision", "recall", "ci95" (bootstrap over images),
        "protocol", "settings"}``."""
        if self.count == 0:
            raise InputError("PxAP.compute(): no image was accumulated")
        ap, curve = pxap_from_histograms(self.hist[0], self.hist[1])
        out: dict[str, Any] = {
            "num_images": int(self.count),
            "PxAP": ap,
            "precision": curve["precision"].tolist(),
            "recall": curve["recall"].tolist(),
            "protocol": self.protocol(),
            "settings": self.settings(),
        }
        if ci and self.keep_per_image:
            lo, hi = bootstrap_ci_weighted(
                self._stacked("per_image"), _pxap_batch, level=level, resamples=resamples, seed=seed
            )
            out[_ci_key(level)] = {"PxAP": [lo, hi]}
            out["ci_method"] = (
                f"percentile bootstrap over images (pooled histograms of resampled "
                f"images), {resamples} resamples, seed {seed}"
            )
        return out


# ----------------------------------------------------------------------------------------------
# Per-image hit counters (old protocol, classification)


class _HitCounter(Accumulator):
    """Shared machinery: named per-image boolean outcomes (``_names()``), counts, optional
    per-image records. State: ``correct`` int64 ``[M]`` (sum), ``count`` (sum), and per image
    (cat) ``hits`` bool ``[M]`` and ``image_ids``."""

    correct: np.ndarray
    count: int
    hits: list[np.ndarray]
    image_ids: list[str]

    def __init__(self, keep_per_image: bool = True) -> None:
        super().__init__(keep_per_image)
        m = len(self._names())
        self.add_state("correct", np.zeros(m, dtype=np.int64), "sum")
        self.add_state("count", 0, "sum")
        self.add_state("hits", np.zeros((0, m), dtype=bool), "cat")
        self.add_state("image_ids", _ids_default(), "cat")

    def _names(self) -> list[str]:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:
        return {"names": self._names(), **self.settings()}

    def _add(self, hits: np.ndarray, ids: list[str]) -> None:
        self._accumulate(correct=hits.sum(axis=0, dtype=np.int64), count=hits.shape[0], hits=hits, image_ids=ids)

    def per_image_hits(self) -> np.ndarray:
        """bool ``[N, M]`` per-image outcomes, columns in the order of ``compute()['metrics']``."""
        if not self.keep_per_image:
            raise InputError("per-image hits were not kept (keep_per_image=False)")
        return self._stacked("hits")

    def _compute(
        self, protocol: str, settings: dict[str, Any], ci: bool, level: float, resamples: int, seed: int
    ) -> dict[str, Any]:
        if self.count == 0:
            raise InputError(f"{type(self).__name__}.compute(): no image was accumulated")
        names = self._names()
        out: dict[str, Any] = {"num_images": int(self.count), "metrics": names}
        for i, n in enumerate(names):
            out[n] = float(_pct(self.correct[i], self.count))
        if ci and self.keep_per_image:
            hits = self.per_image_hits().astype(np.float64)
            out[_ci_key(level)] = {
                n: list(bootstrap_ci(hits[:, i], level=level, resamples=resamples, seed=seed, scale=100.0))
                for i, n in enumerate(names)
            }
            out["ci_method"] = f"percentile bootstrap over images, {resamples} resamples, seed {seed}"
        out["protocol"] = protocol
        out["settings"] = settings
        return out


def _topk_hits(labels: np.ndarray, predictions: np.ndarray, ks: tuple[int, ...]) -> np.ndarray:
    """bool ``[B, len(ks)]``: is the label among the first k predictions."""
    if predictions.shape[1] < max(ks):
        raise InputError(f"top-{max(ks)} needs at least {max(ks)} predictions per image, got {predictions.shape[1]}")
    return np.stack([(predictions[:, :k] == labels[:, None]).any(axis=1) for k in ks], axis=1)


def _as_labels_preds(labels: Any, predictions: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
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

    def __init__(self, k: Sequence[int] = (1, 5), keep_per_image: bool = True) -> None:
        self.k = tuple(int(v) for v in k)
        if not self.k or min(self.k) < 1:
            raise InputError(f"k must be positive integers, got {k!r}")
        super().__init__(keep_per_image)

    def _names(self) -> list[str]:
        return [f"top{k}_cls" for k in self.k]

    def settings(self) -> dict[str, Any]:
        return {"k": list(self.k)}

    def update(self, labels: Any, predictions: Any, image_ids: Sequence[str] | str | None = None) -> None:
        """``labels`` int ``[B]``, ``predictions`` int ``[B, >= max(k)]`` (best first)."""
        n = int(np.asarray(labels).size)
        lab, pred = _as_labels_preds(labels, predictions, n)
        self._add(_topk_hits(lab, pred, self.k), _as_ids(image_ids, n, self.count))

    def update_one(self, label: int, topk: Sequence[int], image_id: str | None = None) -> None:
        """One image: its label and its predictions (best first)."""
        self.update([label], np.asarray([list(topk)]), None if image_id is None else [image_id])

    def compute(
        self, *, ci: bool = True, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
    ) -> dict[str, Any]:
        return self._compute(
            "classification accuracy: label among the top-k predicted classes",
            self.settings(),
            ci,
            level,
            resamples,
            seed,
        )


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

    def __init__(
        self,
        sigma: float = DEFAULT_SIGMA,
        iou: float = OLD_PROTOCOL_IOU,
        compare: str = ">",
        normalize: str = "max",
        k: Sequence[int] = (1, 5),
        keep_per_image: bool = True,
        *,
        binarize: str = ">",
    ) -> None:
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

    @classmethod
    def from_settings(
        cls, settings: MetricSettings, k: Sequence[int] = (1, 5), *, keep_per_image: bool = True
    ) -> TopKLocalization:
        """The old protocol of ``settings`` (sigma, normalize, binarize, IoU comparison) with top-``k``."""
        return cls(
            sigma=settings.sigma,
            iou=OLD_PROTOCOL_IOU,
            compare=settings.iou_compare,
            normalize=settings.normalize,
            k=k,
            keep_per_image=keep_per_image,
            binarize=settings.binarize,
        )

    def _names(self) -> list[str]:
        return ["gt_known_loc"] + [f"top{k}_loc" for k in self.k]

    def settings(self) -> dict[str, Any]:
        return {
            "sigma": self.sigma,
            "iou": self.iou,
            "compare": self.compare,
            "normalize": self.normalize,
            "binarize": self.binarize,
            "k": list(self.k),
        }

    def image_iou(self, scoremap: np.ndarray, gt_boxes: np.ndarray, image_id: str = "score map") -> float:
        """Best IoU of the old-protocol box of one map against its GT boxes (pure)."""
        box = box_at_fixed_threshold(
            scoremap, self.sigma, normalize=self.normalize, compare=self.binarize, where=image_id
        )
        return float(iou_inclusive(box, as_box_array(gt_boxes)).max())

    def localized(self, iou: Any) -> np.ndarray:
        """bool ``[B]``: IoU ``compare`` ``self.iou``."""
        iou = np.asarray(iou, dtype=np.float64)
        return iou > self.iou if self.compare == ">" else iou >= self.iou

    def add_ious(
        self, ious: Any, labels: Any = None, predictions: Any = None, image_ids: Sequence[str] | str | None = None
    ) -> None:
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

    def update_one(
        self, iou: float, label: int | None = None, topk: Sequence[int] | None = None, image_id: str | None = None
    ) -> None:
        """One image: the best IoU of its old-protocol box, its label and predictions (best first)."""
        self.add_ious(
            [iou],
            None if label is None else [label],
            None if topk is None else np.asarray([list(topk)]),
            None if image_id is None else [image_id],
        )

    def update(
        self,
        scoremaps: Any,
        gt_boxes: Any,
        labels: Any = None,
        predictions: Any = None,
        image_ids: Sequence[str] | str | None = None,
    ) -> None:
        """GT-class maps ``[H, W]`` / ``[B, H, W]``, GT boxes (one ``[K, 4]`` or a list), labels
        ``[B]``, predictions ``[B, >= max(k)]`` (best first)."""
        maps = _as_map_batch(scoremaps)
        boxes = _as_box_batch(gt_boxes, len(maps), _is_single(scoremaps))
        ids = _as_ids(image_ids, len(maps), self.count)
        ious = [self.image_iou(m, b, i) for m, b, i in zip(maps, boxes, ids)]
        self.add_ious(ious, labels, predictions, ids)

    def protocol(self) -> str:
        norm = {"max": "s / max(s)", "minmax": "(s - min) / (max - min)", "none": "s"}[self.normalize]
        return (
            f"fixed-threshold localization (CAM 2016 / CutMix 2019): map normalized as {norm}, "
            f"pixels {self.binarize} {self.sigma:g}, tight box of the largest 8-connected region, "
            f"+1 inclusive IoU (max over GT boxes) {self.compare} {self.iou:g}; top-k loc also needs "
            f"the label among the top-k predictions; GT-known loc does not"
        )

    def compute(
        self, *, ci: bool = True, level: float = 0.95, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
    ) -> dict[str, Any]:
        return self._compute(self.protocol(), self.settings(), ci, level, resamples, seed)
