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
from eval.metrics import BoxAccuracy, Classification, PxAP, TopKLocalization, pxap_histograms
from eval.settings import MetricSettings
from eval.stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from eval.sweep import HAVE_NUMBA, box_at_fixed_threshold, sweep

__all__ = ["ImageScore", "score_image", "LocalizationEvaluator"]


@dataclass
class ImageScore:
    """One image's contribution: ``hits`` bool ``[D, T]`` and ``old_iou`` (box data), ``hist``
    int64 ``[2, bins]`` foreground/background PxAP histograms (mask data)."""

    hits: np.ndarray | None = None
    old_iou: float | None = None
    hist: np.ndarray | None = None


def score_image(st: MetricSettings, scoremap: np.ndarray, gt_boxes: np.ndarray | None = None,
                mask: np.ndarray | None = None, old_map: np.ndarray | None = None,
                where: str = "score map") -> ImageScore:
    """Score one image (pure).

    ``scoremap``: float ``[H, W]`` in [0, 1] (min-max normalized CAM; the wsolevaluation metrics);
    ``gt_boxes``: inclusive int ``[K, 4]`` in the map's frame (box data) or None; ``mask``: uint8
    ``[H, W]`` (1 fg, 0 bg, 255 ignore) or None; ``old_map``: the map the old protocol binarizes
    (e.g. the max-normalized CAM), default ``scoremap``.
    """
    out = ImageScore()
    if gt_boxes is not None:
        out.hits = sweep(scoremap, gt_boxes, st.thresholds, multi_contour=st.multi_contour,
                         iou_thresholds=st.iou_thresholds, method=st.method, where=where).hits
        box = box_at_fixed_threshold(scoremap if old_map is None else old_map, st.sigma,
                                     normalize=st.normalize, compare=st.binarize, where=where)
        out.old_iou = float(iou_inclusive(box, gt_boxes).max())
    if mask is not None:
        out.hist = pxap_histograms(scoremap, mask, st.pxap_edges, where)
    return out


class LocalizationEvaluator:
    """Accumulates :class:`ImageScore` records of one split; ``merge`` / ``state_dict`` for several
    processes; :meth:`compute` gives the result dict and per-image columns.

    ``boxes``: box metrics (MaxBoxAcc, old protocol); ``masks``: PxAP (both when the data has
    boxes and masks, e.g. CUB with segmentations). ``ks``: the top-k of
    classification / top-k localization (empty when no predictions are known). Old protocol:
    ``sigma``, ``normalize``, ``binarize`` (pixels ``>`` or ``>=`` sigma), ``iou_compare``
    (IoU ``>`` or ``>=`` 0.5).
    """

    def __init__(self, settings: MetricSettings | None = None, *, boxes: bool = True, masks: bool = False,
                 ks: Sequence[int] = (1, 5)) -> None:
        if not (boxes or masks):
            raise InputError("nothing to evaluate: need boxes, masks or both")
        st = self.settings = settings if settings is not None else MetricSettings()
        self.has_boxes, self.has_masks = bool(boxes), bool(masks)
        self.cam_curve_interval = st.cam_curve_interval
        self.ks = tuple(int(k) for k in ks)
        self.box = BoxAccuracy(st.cam_curve_interval, iou_thresholds=st.iou_thresholds,
                               multi_contour=st.multi_contour, method=st.method) if boxes else None
        self.old = TopKLocalization(sigma=st.sigma, iou=0.5, compare=st.iou_compare, normalize=st.normalize,
                                    k=self.ks, binarize=st.binarize) if boxes else None
        self.cls = Classification(k=self.ks) if self.ks else None
        self.pxap = PxAP(st.cam_curve_interval) if masks else None
        self.reset()

    def reset(self) -> None:
        for acc in self._accumulators():
            acc.reset()
        self.image_ids: list[str] = []
        self.labels: list[int] = []
        self.top1: list[int] = []
        self.old_ious: list[float] = []

    def _accumulators(self) -> list:
        return [a for a in (self.box, self.old, self.cls, self.pxap) if a is not None]

    def __len__(self) -> int:
        return len(self.image_ids)

    def add(self, image_id: str, score: ImageScore, label: int | None = None,
            topk: Sequence[int] | None = None) -> None:
        """Accumulate one image. ``topk``: predictions best first (at least ``max(ks)``)."""
        top = None
        if self.ks:
            if label is None or topk is None:
                raise InputError(f"{image_id}: classification metrics need the label and predictions")
            top = np.asarray([list(topk)[: max(self.ks)]])
            self.cls.update([label], top, [image_id])
        if self.box is not None:
            if score.hits is None:
                raise InputError(f"{image_id}: no box hits (box data needs GT boxes)")
            self.box.add_hits(score.hits, [image_id])
            self.old.add_ious([score.old_iou], None if top is None else [label], top, [image_id])
            self.old_ious.append(score.old_iou)
        if self.pxap is not None:
            if score.hist is None:
                raise InputError(f"{image_id}: no PxAP histograms (mask data needs a GT mask)")
            self.pxap.add_histograms(score.hist, [image_id])
        self.image_ids.append(image_id)
        self.labels.append(-1 if label is None else int(label))
        self.top1.append(-1 if topk is None else int(list(topk)[0]))

    def merge(self, other: LocalizationEvaluator) -> LocalizationEvaluator:
        """Append ``other``'s images after ours (sums of counts; per-image records concatenated)."""
        if ((other.has_boxes, other.has_masks, other.ks, other.settings)
                != (self.has_boxes, self.has_masks, self.ks, self.settings)):
            raise InputError("cannot merge evaluators with different settings")
        for mine, theirs in zip(self._accumulators(), other._accumulators()):
            mine.merge(theirs)
        self.image_ids += other.image_ids
        self.labels += other.labels
        self.top1 += other.top1
        self.old_ious += other.old_ious
        return self

    def state_dict(self) -> dict:
        return {"accumulators": [a.state_dict() for a in self._accumulators()],
                "image_ids": list(self.image_ids), "labels": list(self.labels),
                "top1": list(self.top1), "old_ious": list(self.old_ious)}

    def load_state_dict(self, state: dict) -> None:
        for acc, s in zip(self._accumulators(), state["accumulators"]):
            acc.load_state_dict(s)
        self.image_ids = list(state["image_ids"])
        self.labels = [int(v) for v in state["labels"]]
        self.top1 = [int(v) for v in state["top1"]]
        self.old_ious = [float(v) for v in state["old_ious"]]

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
        if self.box is not None:
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
        result["ci_method"] = (f"percentile bootstrap over images ({resamples} resamples, seed {seed}); "
                               "box metrics at the selected tau")
        result["protocol"] = "; ".join(protocols)
        result["sweep_method"] = ("numba" if HAVE_NUMBA else "opencv") if st.method == "auto" else st.method
        result["old_protocol"] = {"sigma": st.sigma, "normalize": st.normalize, "binarize": st.binarize,
                                  "iou": 0.5, "compare": self.old.compare if self.old else None}
        if curve is not None:
            result["BoxAcc_curve"] = curve  # long lists last
        return result, per_image
