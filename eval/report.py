"""Writing results: the result JSON (and its per-image CSV) of ``evaluate-scoremaps``.

Both files are written atomically (:mod:`eval.io`). Markdown / CSV comparison tables live in
:mod:`eval.tables`.

Result JSON contract (keys users and other commands rely on; percentages are 0-100):
``num_images``, ``cam_curve_interval``, ``MaxBoxAcc`` (``{"30": pct, ...}``), ``MaxBoxAccV2``,
``best_threshold`` (``{"30": tau, ...}``), ``PxAP`` (mask data), ``ci95`` (``{metric: [low,
high]}``), ``protocol`` (text); optional ``top1_loc``, ``top5_loc``, ``gt_known_loc``,
``top1_cls``, ``top5_cls``, ``BoxAcc_curve`` (``{"thresholds": [...], "30": [...], ...}``) and
``per_image`` (CSV file name, relative to the JSON's folder).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.io import atomic_write_json, atomic_write_text, refuse_overwrite

__all__ = ["to_jsonable", "per_image_csv_text", "write_result"]


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and paths to JSON types; non-finite floats become None."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def per_image_csv_text(columns: Mapping[str, Sequence]) -> str:
    """CSV text with one column per key (``image_id`` first); bools are written as 0/1 and floats
    with ``repr`` precision."""
    names = list(columns)
    if "image_id" in names:
        names.remove("image_id")
        names.insert(0, "image_id")
    n = len(next(iter(columns.values()))) if columns else 0
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    cols = [columns[c] for c in names]
    for i in range(n):
        row = []
        for col in cols:
            v = col[i]
            if isinstance(v, (bool, np.bool_)):
                row.append("1" if v else "0")
            elif isinstance(v, (float, np.floating)):
                row.append(repr(float(v)))
            else:
                row.append(str(v))
        writer.writerow(row)
    return buf.getvalue()


def write_result(path: str | os.PathLike, result: Mapping[str, Any], *,
                 per_image: Mapping[str, Sequence] | None = None, overwrite: bool = True) -> Path:
    """Write ``result`` as JSON to ``path`` (atomic). With ``per_image`` columns, also write
    ``<stem>.per_image.csv`` beside it and record its name under the ``per_image`` key.
    ``overwrite=False`` refuses to replace an existing JSON (:class:`~eval.errors.InputError`)."""
    path = Path(path)
    refuse_overwrite(path, overwrite)
    data = dict(result)
    if per_image is not None:
        csv_path = path.with_name(path.stem + ".per_image.csv")
        atomic_write_text(csv_path, per_image_csv_text(per_image))
        data["per_image"] = csv_path.name
    atomic_write_json(path, to_jsonable(data))
    return path
