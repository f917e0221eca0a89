"""All localization metrics of one evaluated split, bundled: per-image scoring + accumulation.

:func:`score_image` (pure, picklable arguments: runs in worker processes) reduces one image's
score map(s) to what every metric needs: box hits at every threshold ``[D, T]``, the best IoU of
the old-protocol box, and PxAP histograms. :class:`LocalizationEvaluator` accumulates those
records (with labels and top-k predictions when known) into :class:`~eval.metrics.BoxAccuracy`,
:class:`~eval.metrics.TopKLocalization`, :class:`~eval.metrics.Classification` and
:class:`~eval.metrics.PxAP`, merges with another evaluator (other processes), and assembles the
result dict of the JSON contract plus the per-image columns. Used by ``evaluate-scoremaps``
(:mod:`eval.scoremaps`) and ``wsol evaluate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eval.boxes import iou_inclusive
from eval.errors import InputError
from eval.metrics import (
    OLD_PROTOCOL_IOU,
    Accumulator,
    BoxAccuracy,
    Classification,
    PxAP,
    TopKLocalization,
    pxap_histograms,
)
from eval.settings import MetricSettings
from eval.stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from eval.sweep import HAVE_NUMBA, box_at_fixed_threshold, sweep

__all__ = ["ImageScore", "LocalizationEvaluator", "score_image"]


@dataclass
class ImageScore:
    """One image's contribution: ``hits`` bool ``[D, T]`` and ``old_iou`` (box data), ``hist``
    int64 ``[2, bins]`` foreground/background PxAP histograms (mask data)."""

    hits: np.ndarray | None = None
    old_iou: float | None = None
    hist: np.ndarray | None = None


def score_image(
    st: MetricSettings,
    scoremap: np.ndarray,
    gt_boxes: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    old_map: np.ndarray | None = None,
    where: str = "score map",
) -> ImageScore:
    """Score one image (pure).

    ``scoremap``: float ``[H, W]`` in [0, 1] (min-max normalized CAM; the wsolevaluation metrics);
    ``gt_boxes``: inclusive int ``[K, 4]`` in the map's frame (box data) or None; ``mask``: uint8
    ``[H, W]`` (1 fg, 0 bg, 255 ignore) or None; ``old_map``: the map the old protocol binarizes
    (e.g. the max-normalized CAM), default ``scoremap``.
    """
    out = ImageScore()
    # sweep validates the map (check_scoremap); PxAP then only converts it
    if gt_boxes is not None:
        out.hits = sweep(
            scoremap,
            gt_boxes,
            st.thresholds,
            multi_contour=st.multi_contour,
            iou_thresholds=st.iou_thresholds,
            method=st.method,
            where=where,
        ).hits
        box = box_at_fixed_threshold(
            scoremap if old_map is None else old_map, st.sigma, normalize=st.normalize, compare=st.binarize, where=where
        )
        out.old_iou = float(iou_inclusive(box, gt_boxes).max())
    if mask is not None:
        out.hist = pxap_histograms(scoremap, mask, st.pxap_edges, where, checked=gt_boxes is not None)
    return out


class LocalizationEvaluator(Accumulator):
    """Accumulates :class:`ImageScore` records of one split; ``merge`` / ``state_dict`` for several
    processes; :meth:`compute` gives the result dict and per-image columns.

    ``settings``: the metric options (default :class:`~eval.settings.MetricSettings`; its
    threshold grid and PxAP edges are used as built there). ``boxes``: box metrics (MaxBoxAcc, old
    protocol); ``masks``: PxAP (both when the data has boxes and masks, e.g. CUB with
    segmentations). ``ks``: the top-k of classification / top-k localization (empty when no
    predictions are known).

    An :class:`~eval.metrics.Accumulator`: the sub-accumulators ``box``, ``old``, ``cls``,
    ``pxap`` (those in use) and the per-image states ``image_ids``, ``labels`` (-1: unknown),
    ``top1`` (-1: unknown) and ``old_ious`` (box data) give ``reset``, ``merge``, ``state_dict``
    and ``load_state_dict``.
    """

    image_ids: list[str]
    labels: list[int]
    top1: list[int]
    old_ious: list[float]

    def __init__(
        self,
        settings: MetricSettings | None = None,
        *,
        boxes: bool = True,
        masks: bool = False,
        ks: Sequence[int] = (1, 5),
    ) -> None:
        if not (boxes or masks):
            raise InputError("nothing to evaluate: need boxes, masks or both")
        super().__init__()
        st = self.settings = settings if settings is not None else MetricSettings()
        self.has_boxes, self.has_masks = bool(boxes), bool(masks)
        self.cam_curve_interval = st.cam_curve_interval
        self.ks = tuple(int(k) for k in ks)
        self.box = self.add_child("box", BoxAccuracy.from_settings(st)) if boxes else None
        self.old = self.add_child("old", TopKLocalization.from_settings(st, self.ks)) if boxes else None
        self.cls = self.add_child("cls", Classification(k=self.ks)) if self.ks else None
        self.pxap = self.add_child("pxap", PxAP.from_settings(st)) if masks else None
        self.add_state("image_ids", np.zeros(0, dtype="<U1"), "cat")
        self.add_state("labels", np.zeros(0, dtype=np.int64), "cat")
        self.add_state("top1", np.zeros(0, dtype=np.int64), "cat")
        self.add_state("old_ious", np.zeros(0, dtype=np.float64), "cat")

    def _config(self) -> dict:
        return {
            "boxes": self.has_boxes,
            "masks": self.has_masks,
            "ks": list(self.ks),
            "settings": self.settings.to_dict(),
        }

    def __len__(self) -> int:
        return len(self.image_ids)

    def add(
        self, image_id: str, score: ImageScore, label: int | None = None, topk: Sequence[int] | None = None
    ) -> None:
        """Accumulate one image. ``topk``: predictions best first (at least ``max(ks)``)."""
        self.add_many([image_id], [score], None if label is None else [label], None if topk is None else [topk])

    def add_many(
        self,
        image_ids: Sequence[str],
        scores: Sequence[ImageScore],
        labels: Sequence[int | None] | None = None,
        topks: Sequence[Sequence[int]] | None = None,
    ) -> None:
        """Accumulate ``B`` images at once (one update of every sub-accumulator; the state is the
        same as ``B`` calls of :meth:`add` in this order). ``labels`` ``[B]`` and ``topks``
        ``[B, >= max(ks)]`` (predictions best first) are needed when ``ks`` is not empty."""
        n = len(image_ids)
        if len(scores) != n:
            raise InputError(f"got {n} image ids but {len(scores)} scores")
        if n == 0:
            return
        ids = [str(i) for i in image_ids]
        # every check before any update: a refused block leaves the state as it was
        if self.cls is not None and (labels is None or topks is None or any(v is None for v in labels)):
            raise InputError(f"{ids[0]}: classification metrics need the label and predictions")
        if self.box is not None:
            missing = next((i for i, s in zip(ids, scores) if s.hits is None), None)
            if missing is not None:
                raise InputError(f"{missing}: no box hits (box data needs GT boxes)")
        if self.pxap is not None:
            missing = next((i for i, s in zip(ids, scores) if s.hist is None), None)
            if missing is not None:
                raise InputError(f"{missing}: no PxAP histograms (mask data needs a GT mask)")
        top = None
        if self.cls is not None:
            top = np.asarray([list(t)[: max(self.ks)] for t in topks or ()], dtype=np.int64).reshape(n, -1)
            self.cls.update(list(labels or ()), top, ids)
        if self.box is not None and self.old is not None:
            ious = [float(s.old_iou) for s in scores]  # type: ignore[arg-type]
            self.box.add_hits(np.stack([s.hits for s in scores]), ids)  # type: ignore[misc]
            self.old.add_ious(ious, None if top is None else list(labels or ()), top, ids)
            self._accumulate(old_ious=ious)
        if self.pxap is not None:
            self.pxap.add_histograms(np.stack([s.hist for s in scores]), ids)  # type: ignore[misc]
        self._accumulate(
            image_ids=ids,
            labels=[-1] * n if labels is None else [-1 if v is None else int(v) for v in labels],
            top1=[-1] * n if topks is None else [int(next(iter(t))) for t in topks],
        )

    def compute(self, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> tuple[dict, dict]:
        """``(result, per_image)``: the JSON-contract dict (percent, ``ci95``, ``protocol``,
        ``BoxAcc_curve``) and per-image columns (``image_id``, ``label``, ``pred_top1``,
        ``hit@<delta>`` at the selected thresholds, ``gt_known_loc``, ``top{k}_loc``,
        ``top{k}_cls``, ``best_iou`` = IoU of the old-protocol box)."""
        if not self.image_ids:
            raise InputError("no image was evaluated")
        st = self.settings
        result: dict = {"num_images": len(self.image_ids), "cam_curve_interval": self.cam_curve_interval}
        per_image: dict = {"image_id": list(self.image_ids)}
        if self.ks:
            per_image["label"] = list(self.labels)
            per_image["pred_top1"] = list(self.top1)
        ci: dict = {}
        protocols: list[str] = []
        curve = None
        if self.cls is not None:
            c = self.cls.compute(resamples=resamples, seed=seed)
            hits = self.cls.per_image_hits()
            for j, name in enumerate(c["metrics"]):
                result[name] = c[name]
                per_image[name] = hits[:, j].tolist()
            ci.update(c["ci95"])
            protocols.append(c["protocol"])
        if self.box is not None and self.old is not None:
            r = self.box.compute(resamples=resamples, seed=seed)
            result.update({k: r[k] for k in ("MaxBoxAcc", "MaxBoxAccV2", "best_threshold")})
            result["iou_thresholds"] = r["settings"]["iou_thresholds"]
            result["multi_contour"] = st.multi_contour
            curve = {"thresholds": st.thresholds.tolist(), **r["box_acc"]}
            ci.update(r["ci95"])
            protocols.append(r["protocol"])
            sel = self.box.selected_hits()
            for j, key in enumerate(r["MaxBoxAcc"]):
                per_image[f"hit@{key}"] = sel[:, j].tolist()
            o = self.old.compute(resamples=resamples, seed=seed)
            hits = self.old.per_image_hits()
            for j, name in enumerate(o["metrics"]):
                result[name] = o[name]
                per_image[name] = hits[:, j].tolist()
            ci.update(o["ci95"])
            protocols.append(o["protocol"])
            per_image["best_iou"] = list(self.old_ious)
        if self.pxap is not None:
            r = self.pxap.compute(resamples=resamples, seed=seed)
            result["PxAP"] = r["PxAP"]
            ci.update(r["ci95"])
            protocols.append(r["protocol"])
        result["ci95"] = ci
        result["ci_method"] = (
            f"percentile bootstrap over images ({resamples} resamples, seed {seed}); box metrics at the selected tau"
        )
        result["protocol"] = "; ".join(protocols)
        result["sweep_method"] = ("numba" if HAVE_NUMBA else "opencv") if st.method == "auto" else st.method
        result["old_protocol"] = {
            "sigma": st.sigma,
            "normalize": st.normalize,
            "binarize": st.binarize,
            "iou": OLD_PROTOCOL_IOU,
            "compare": self.old.compare if self.old else None,
        }
        if curve is not None:
            result["BoxAcc_curve"] = curve  # long lists last
        return result, per_image
