"""THE result format: assembling, writing, reading and summarizing one evaluated split.

A result is a JSON file (percentages 0-100) with side files beside it: ``<stem>.per_image.csv``
(one row per image: hits at the selected thresholds, old-protocol columns) and, from ``wsol
evaluate``, ``<stem>.per_class.csv`` and ``<stem>.config.json``. :func:`assemble_result` puts the
keys in one fixed order (:data:`HEAD_KEYS`, the metrics, :data:`RUN_KEYS`, :data:`LAST_KEYS`) so
a file reads the same whoever writes it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["HEAD_KEYS", "RUN_KEYS", "LAST_KEYS", "assemble_result", "per_class_rows", "rows_csv_text",
           "format_summary"]

# what the run was: first, in this order
HEAD_KEYS = ("num_images", "cam_curve_interval", "checkpoint", "arch", "arch_options", "model",
             "cam_method", "dataset", "split", "preset")
# how the run went: after the metrics
RUN_KEYS = ("scoremaps", "num_skipped", "skipped", "num_without_gt_in_frame", "processes", "device",
            "elapsed_seconds", "images_per_second")
# side files and long lists: last
LAST_KEYS = ("per_class", "config", "per_image", "BoxAcc_curve")


def assemble_result(metrics: Mapping[str, Any], **run: Any) -> dict[str, Any]:
    """One result dict from the metrics (:meth:`eval.evaluator.LocalizationEvaluator.compute`) and
    the run's description (``checkpoint=...``, ``dataset=...``, ...; a run key overrides a metric
    key of the same name). Key order: :data:`HEAD_KEYS`, metric keys (in their order), other run
    keys, :data:`RUN_KEYS`, :data:`LAST_KEYS`; absent keys are left out."""
    merged = {**metrics, **run}
    fixed = set(HEAD_KEYS) | set(RUN_KEYS) | set(LAST_KEYS)
    order = [k for k in HEAD_KEYS if k in merged]
    order += [k for k in metrics if k not in fixed]
    order += [k for k in run if k not in fixed and k not in metrics]
    order += [k for k in (*RUN_KEYS, *LAST_KEYS) if k in merged]
    return {k: merged[k] for k in order}


def per_class_rows(per_image: Mapping[str, Sequence], class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Per-class accuracies (percent) from the per-image columns: ``class``, ``num_images``,
    ``top1_cls``, ``top1_loc``, ``gt_known_loc`` (where present) and ``MaxBoxAccV2_hits`` (mean
    of the ``hit@<delta>`` columns). NaN for a class without images."""
    labels = np.asarray(per_image["label"])
    hit_cols = [c for c in per_image if c.startswith("hit@")]
    rows = []
    for c, name in enumerate(class_names):
        sel = labels == c
        n = int(sel.sum())
        row: dict[str, Any] = {"class": name, "num_images": n}
        for col in ("top1_cls", "top1_loc", "gt_known_loc"):
            if col in per_image:
                row[col] = 100.0 * float(np.mean(np.asarray(per_image[col])[sel])) if n else float("nan")
        if hit_cols:
            hits = np.stack([np.asarray(per_image[h], dtype=float)[sel] for h in hit_cols])
            row["MaxBoxAccV2_hits"] = 100.0 * float(hits.mean()) if n else float("nan")
        rows.append(row)
    return rows


def rows_csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV text of dict rows (header from the first row; floats with 4 decimals)."""
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def format_summary(result: Mapping[str, Any]) -> str:
    """A short table of the headline numbers (percent, 95 % intervals)."""
    ci = result.get("ci95", {})
    rows = []
    names = [("top1_cls", "classification top-1"), ("top5_cls", "classification top-5"),
             ("top1_loc", "top-1 loc (old protocol)"), ("top5_loc", "top-5 loc (old protocol)"),
             ("gt_known_loc", "GT-known loc (old protocol)")]
    names += [(f"MaxBoxAcc@{k}", f"MaxBoxAcc @ IoU {k}") for k in result.get("MaxBoxAcc", {})]
    names += [("MaxBoxAccV2", "MaxBoxAccV2"), ("PxAP", "PxAP")]
    for key, label in names:
        value = result.get(key)
        if value is None and key.startswith("MaxBoxAcc@"):
            value = result["MaxBoxAcc"][key.split("@")[1]]
        if value is None:
            continue
        lo_hi = ci.get(key)
        interval = f"[{lo_hi[0]:5.1f}, {lo_hi[1]:5.1f}]" if lo_hi else ""
        rows.append(f"  {label:<30} {value:6.2f}  {interval}")
    head = (f"{result.get('num_images')} images, CAM '{result.get('cam_method')}', "
            f"{result.get('images_per_second')} img/s")
    extra = f"\n  skipped: {result['num_skipped']} unreadable image(s)" if result.get("num_skipped") else ""
    return head + "\n" + "\n".join(rows) + extra
