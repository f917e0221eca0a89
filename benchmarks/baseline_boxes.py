"""The straightforward box evaluator of the wsolevaluation protocol (the reference and test oracle).

Per image and per threshold, exactly the call sequence of protocol sections 2.1-2.4 and 3.1:
``(s * 255).astype(uint8)``, ``cv2.threshold(img, int(tau * img.max()), 255, THRESH_BINARY)``,
``cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)``, the largest contour by ``cv2.contourArea``
(V1) or every contour (V2), ``cv2.boundingRect`` -> ``(x, y, min(x + w, W - 1), min(y + h, H - 1))``,
``[0, 0, 0, 0]`` when there is no contour, then the +1 inclusive IoU against every GT box, max over
both sets. No deduplication, no shortcuts: this is what users run today and what
:mod:`eval.sweep` must reproduce bit for bit. Single process.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["baseline_boxes", "baseline_best_iou", "BaselineBoxAccuracy"]


def _iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """``[N, M]`` IoU with the inclusive +1 convention (protocol 2.4), broadcasting."""
    a = boxes_a.astype(np.int64)
    b = boxes_b.astype(np.int64)
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1
    inter = np.maximum(ix, 0) * np.maximum(iy, 0)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    denom = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros(denom.shape, dtype=np.float64)
    np.divide(inter, denom, out=out, where=denom > 0)
    return out


def baseline_boxes(scoremap: np.ndarray, thresholds: np.ndarray, multi_contour: bool) -> list[np.ndarray]:
    """Predicted boxes (inclusive int64 ``[n_i, 4]``) at every threshold, as the protocol forms them."""
    height, width = scoremap.shape
    image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    image_max = np.max(image)
    out = []
    for tau in thresholds:
        _, binary = cv2.threshold(image, int(tau * image_max), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        if len(contours) == 0:
            out.append(np.zeros((1, 4), dtype=np.int64))
            continue
        if not multi_contour:
            contours = [max(contours, key=cv2.contourArea)]
        boxes = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
        out.append(np.asarray(boxes, dtype=np.int64))
    return out


def baseline_best_iou(
    scoremap: np.ndarray, gt_boxes: np.ndarray, thresholds: np.ndarray, multi_contour: bool
) -> np.ndarray:
    """Best IoU (max over predicted and GT boxes) at every threshold: float64 ``[T]``."""
    per_tau = baseline_boxes(scoremap, thresholds, multi_contour)
    counts = [len(b) for b in per_tau]
    iou = _iou_matrix(np.concatenate(per_tau, axis=0), np.asarray(gt_boxes).reshape(-1, 4)).max(1)
    out = np.empty(len(per_tau), dtype=np.float64)
    idx = 0
    for i, n in enumerate(counts):
        out[i] = iou[idx : idx + n].max()
        idx += n
    return out


class BaselineBoxAccuracy:
    """``num_correct[delta][tau]`` counters and MaxBoxAcc, as the protocol's BoxEvaluator keeps them."""

    def __init__(self, cam_curve_interval: float = 0.01, iou_thresholds=(30, 50, 70), multi_contour: bool = True):
        self.thresholds = np.arange(0, 1, cam_curve_interval)
        self.iou_thresholds = list(iou_thresholds)
        self.multi_contour = multi_contour
        self.num_correct = {d: np.zeros(len(self.thresholds), dtype=np.int64) for d in self.iou_thresholds}
        self.count = 0

    def accumulate(self, scoremap: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
        best = baseline_best_iou(scoremap, gt_boxes, self.thresholds, self.multi_contour)
        for d in self.iou_thresholds:
            self.num_correct[d][np.where(best >= d / 100)[0]] += 1
        self.count += 1
        return best

    def compute(self) -> dict[int, float]:
        """MaxBoxAcc per delta, in percent."""
        return {d: float((self.num_correct[d] * 100.0 / self.count).max()) for d in self.iou_thresholds}
