"""THE result format: assembling, writing, reading and summarizing one evaluated split.

A result is a JSON object (percentages 0-100) with side files beside it: ``<name>.per_image.csv``
(one row per image: hits at the selected thresholds, old-protocol columns) and, from ``wsol
evaluate``, ``<name>.per_class.csv`` and ``<name>.config.json``, where ``<name>`` is the JSON's file
name less a ``.json`` suffix (``result.json`` -> ``result.per_image.csv``, ``a.txt`` ->
``a.txt.per_image.csv``): one rule for every side file, :func:`companion_paths`. Files are written atomically
(:mod:`eval.io`). Comparisons of several results live in :mod:`eval.compare`.

Keys users and other commands rely on: ``num_images``, ``cam_curve_interval``, ``MaxBoxAcc``
(``{"30": pct, ...}``), ``MaxBoxAccV2``, ``best_threshold`` (``{"30": tau, ...}``), ``PxAP`` (mask
data), ``ci95`` (``{metric: [low, high]}``), ``protocol`` (text); optional ``top1_loc``,
``top5_loc``, ``gt_known_loc``, ``top1_cls``, ``top5_cls``, ``BoxAcc_curve`` (``{"thresholds":
[...], "30": [...], ...}``), ``per_image`` / ``per_class`` / ``config`` (file names, relative to
the JSON's folder).

Key order (fixed, whoever writes the file; :func:`assemble_result`, applied again by
:func:`write_result`): :data:`HEAD_KEYS` (what the run was), the metric keys in the order the
evaluator gives them, other keys, :data:`RUN_KEYS` (how the run went), :data:`LAST_KEYS` (side
files and long lists). Absent keys are left out. Readers must still look keys up by name.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from eval.errors import InputError
from eval.io import atomic_write_many, atomic_write_text, refuse_overwrite

__all__ = [
    "HEAD_KEYS",
    "LAST_KEYS",
    "MISSING",
    "PER_IMAGE_HIT_COLUMNS",
    "RUN_KEYS",
    "PerClass",
    "PerImage",
    "Result",
    "as_number",
    "assemble_result",
    "boxacc_curve_of",
    "companion_paths",
    "format_summary",
    "load_result",
    "metric_interval",
    "metric_value",
    "per_class_of",
    "per_class_rows",
    "per_image_csv_text",
    "per_image_of",
    "refuse_result_overwrite",
    "read_per_class_csv",
    "read_per_image_csv",
    "read_text_file",
    "rows_csv_text",
    "to_jsonable",
    "write_result",
]

# what the run was: first, in this order
HEAD_KEYS = (
    "num_images",
    "cam_curve_interval",
    "checkpoint",
    "arch",
    "arch_options",
    "model",
    "cam_method",
    "dataset",
    "split",
    "preset",
)
# how the run went: after the metrics
RUN_KEYS = (
    "scoremaps",
    "num_skipped",
    "skipped",
    "num_without_gt_in_frame",
    "processes",
    "device",
    "elapsed_seconds",
    "images_per_second",
)
# side files and long lists: last
LAST_KEYS = ("per_class", "config", "per_image", "BoxAcc_curve")

MISSING = "—"  # shown for an absent value (Markdown tables; also read as NaN in per-class CSVs)

# 0/1 columns of the per-image CSV, by the metric they count (plus ``hit@<delta>``).
PER_IMAGE_HIT_COLUMNS: dict[str, str] = {
    "top1_cls": "top1_cls",
    "top5_cls": "top5_cls",
    "top1_loc": "top1_loc",
    "top5_loc": "top5_loc",
    "gt_known_loc": "gt_known_loc",
}
_INT_COLUMNS = ("label", "pred_top1")
_FLOAT_COLUMNS = ("best_iou",)


# ----------------------------------------------------------------------------------------- assembling


def assemble_result(metrics: Mapping[str, Any], **run: Any) -> dict[str, Any]:
    """One result dict from the metrics (:meth:`eval.evaluator.LocalizationEvaluator.compute`) and
    the run's description (``checkpoint=...``, ``dataset=...``, ...; a run key overrides a metric
    key of the same name). Key order: :data:`HEAD_KEYS`, metric keys (in their order), other run
    keys, :data:`RUN_KEYS`, :data:`LAST_KEYS`; absent keys are left out. Idempotent:
    ``assemble_result(assemble_result(m, **r))`` has the same order."""
    merged = {**metrics, **run}
    fixed = set(HEAD_KEYS) | set(RUN_KEYS) | set(LAST_KEYS)
    order = [k for k in HEAD_KEYS if k in merged]
    order += [k for k in metrics if k not in fixed]
    order += [k for k in run if k not in fixed and k not in metrics]
    order += [k for k in (*RUN_KEYS, *LAST_KEYS) if k in merged]
    return {k: merged[k] for k in order}


# -------------------------------------------------------------------------------------------- writing

COMPANION_SUFFIXES = {
    "per_image": ".per_image.csv",
    "per_class": ".per_class.csv",
    "config": ".config.json",
    "log": ".log.jsonl",
}


def companion_paths(path: str | os.PathLike) -> dict[str, Path]:
    """The side files of the result JSON ``path``, by kind (``per_image``, ``per_class``,
    ``config``, ``log``): ``<name><suffix>`` beside it, ``<name>`` being the file name less a
    ``.json`` suffix. The one naming rule of every writer (``wsol evaluate``, ``evaluate-scoremaps``):
    two outputs share side files only when their names are equal up to a ``.json`` suffix (``a``
    and ``a.json``), which the overwrite check sees."""
    path = Path(path)
    name = path.name[: -len(".json")] if path.name.endswith(".json") and path.name != ".json" else path.name
    return {kind: path.with_name(name + suffix) for kind, suffix in COMPANION_SUFFIXES.items()}


def refuse_result_overwrite(
    path: str | os.PathLike, overwrite: bool, kinds: Sequence[str] = tuple(COMPANION_SUFFIXES)
) -> None:
    """Refuse (:class:`InputError`) a result ``path`` whose JSON or one of its side files of
    ``kinds`` exists, unless ``overwrite``; and, whatever ``overwrite``, a side file path that is a
    folder (it could not be written at the end of the run)."""
    path = Path(path)
    sides = companion_paths(path)
    for p in (path, *(sides[k] for k in kinds)):
        if p.is_dir():
            raise InputError(f"{p} is a folder, not a file: it is where {path} would write a file; move it away")
        if p.exists() and not overwrite:
            raise InputError(f"{p} exists; pass --overwrite to replace it")


def result_files(path: str | os.PathLike) -> list[Path]:
    """Every file that belongs to the result JSON ``path``: the JSON, its side files by the naming
    rule (:func:`companion_paths`) and the side files its ``per_image`` / ``per_class`` / ``config``
    keys name (relative to its folder). Best effort, for "would this output destroy an input?"
    checks: a JSON that cannot be read adds no named files (reading it later reports why)."""
    path = Path(path)
    files = [path, *companion_paths(path).values()]
    try:
        data = json.loads(read_text_file(path))
    except (OSError, ValueError, InputError):
        return files
    if isinstance(data, dict):
        result = Result(name="", path=path, data=data)
        for key in ("per_image", "per_class", "config"):
            try:
                side = _side_file(result, key)
            except InputError:
                continue
            if side is not None and side not in files:
                files.append(side)
    return files


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


def write_result(
    path: str | os.PathLike,
    result: Mapping[str, Any],
    *,
    per_image: Mapping[str, Sequence] | None = None,
    side_files: Mapping[str | os.PathLike, str | bytes] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``result`` as JSON to ``path``, keys in the fixed order (:func:`assemble_result`).

    With ``per_image`` columns, also write ``<name>.per_image.csv`` (:func:`companion_paths`)
    beside it and record its name under the ``per_image`` key. ``side_files`` (path -> text or
    bytes; a relative path is taken relative to the JSON's folder) are other files of the same
    result, e.g. the per-class CSV and the config JSON, whose names the caller has put in
    ``result``. All files are written as one unit (:func:`eval.io.atomic_write_many`, the JSON
    last): a failure leaves every final path as it was (:class:`~eval.io.WriteError`).
    ``overwrite=False`` refuses to replace an existing JSON or any other file of the result
    (:class:`~eval.errors.InputError`)."""
    path = Path(path)
    refuse_overwrite(path, overwrite)
    data = dict(result)
    files: dict[str | os.PathLike, str | bytes] = {}
    for p, content in (side_files or {}).items():
        side = Path(p)
        files[side if side.is_absolute() else path.parent / side] = content
    if per_image is not None:
        csv_path = companion_paths(path)["per_image"]
        files[csv_path] = per_image_csv_text(per_image)
        data["per_image"] = csv_path.name
    if not overwrite:
        for p in files:
            refuse_overwrite(p, overwrite)
    text = json.dumps(to_jsonable(assemble_result(data)), indent=2) + "\n"  # as eval.io.atomic_write_json
    files[path] = text
    if len(files) == 1:
        atomic_write_text(path, text)
    else:
        atomic_write_many(files)
    return path


# -------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Result:
    """One result file: ``name`` (display), ``path`` (the JSON), ``data`` (its parsed content)."""

    name: str
    path: Path
    data: dict


@dataclass(frozen=True)
class PerImage:
    """A per-image CSV: ``image_ids`` in file order and ``columns`` (name -> array aligned with them;
    hit columns and ``label``/``pred_top1`` are int64, ``best_iou`` float64, others left as str)."""

    path: Path
    image_ids: list[str]
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.image_ids)


@dataclass(frozen=True)
class PerClass:
    """A per-class CSV: ``class_names`` in file order and numeric ``columns`` (float64, NaN for empty)."""

    path: Path
    class_names: list[str]
    columns: dict[str, np.ndarray]


def _default_name(path: Path) -> str:
    """``runs/eval/cutmix/result.json`` -> ``cutmix``; ``cutmix_cub.json`` -> ``cutmix_cub``."""
    if path.stem in ("result", "results", "metrics") and path.parent.name:
        return path.parent.name
    return path.stem


def load_result(path: str | os.PathLike, name: str | None = None) -> Result:
    """Read a result JSON (must be an object). ``name`` defaults to the file stem, or the folder
    name for a file called ``result.json``."""
    path = Path(path)
    try:
        text = read_text_file(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"result file not found: {path}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    bad = _non_finite(data)
    if bad is not None:  # the toolkit writes null for a missing value, never NaN / Infinity
        raise InputError(f"{path}: {bad} is not a finite number; the file was changed or not written by wsol")
    return Result(name=name or _default_name(path), path=path, data=data)


def _non_finite(value: Any, where: str = "") -> str | None:
    """The key path (``MaxBoxAcc.50``) of the first NaN / Infinity in ``value``, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "the value"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, f"{where}.{k}" if where else str(k))
        if found is not None:
            return found
    return None


def read_text_file(path: str | os.PathLike) -> str:
    """The text of the input file ``path`` (UTF-8, a leading BOM dropped). A folder, a file that is
    not UTF-8 text (``PATH:LINE: not UTF-8 text (byte 0xff)``) or one that cannot be read raise
    :class:`InputError` with one line naming it; a missing file raises :class:`FileNotFoundError`
    (the caller names it)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a file") from None
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InputError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x}); save it as UTF-8") from None


def _read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        text = read_text_file(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"CSV file not found: {path}") from None
    reader = csv.reader(io.StringIO(text))
    rows = [(i + 1, row) for i, row in enumerate(reader) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise InputError(f"{path}: empty CSV (no header)")
    header = [h.strip() for h in rows[0][1]]
    body = rows[1:]
    for line, row in body:
        if len(row) != len(header):
            raise InputError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
    return header, body


def read_per_image_csv(path: str | os.PathLike) -> PerImage:
    """Read a per-image CSV (``image_id,label,pred_top1,top1_cls,...,hit@30,...,best_iou``).

    Needs ``image_id``; every other column is optional. Hit columns (``top1_cls``, ``top5_cls``,
    ``top1_loc``, ``top5_loc``, ``gt_known_loc``, ``hit@δ``) must hold 0 or 1. Duplicate image ids
    and bad values raise :class:`InputError` naming ``file:line`` and the column.
    """
    path = Path(path)
    header, body = _read_csv_rows(path)
    if "image_id" not in header:
        raise InputError(f"{path}: per-image CSV has no 'image_id' column (header: {','.join(header)})")
    if len(set(header)) != len(header):
        raise InputError(f"{path}: duplicate column names in the header: {','.join(header)}")
    idx = {h: i for i, h in enumerate(header)}
    ids = [row[idx["image_id"]].strip() for _, row in body]
    seen: dict[str, int] = {}
    for (line, _), image_id in zip(body, ids):
        if not image_id:
            raise InputError(f"{path}:{line}: empty image_id")
        if image_id in seen:
            raise InputError(f"{path}:{line}: image_id {image_id!r} repeats line {seen[image_id]}")
        seen[image_id] = line
    columns: dict[str, np.ndarray] = {}
    for name, col in idx.items():
        if name == "image_id":
            continue
        cells = [row[col].strip() for _, row in body]
        if name in PER_IMAGE_HIT_COLUMNS or name.startswith("hit@"):
            out = np.empty(len(cells), dtype=np.int64)
            for k, ((line, _), cell) in enumerate(zip(body, cells)):
                if cell not in ("0", "1"):
                    raise InputError(f"{path}:{line}: column {name!r} must be 0 or 1, got {cell!r}")
                out[k] = int(cell)
        elif name in _INT_COLUMNS:
            out = np.empty(len(cells), dtype=np.int64)
            for k, ((line, _), cell) in enumerate(zip(body, cells)):
                try:
                    out[k] = int(cell)
                except ValueError:
                    raise InputError(f"{path}:{line}: column {name!r} must be an integer, got {cell!r}") from None
        elif name in _FLOAT_COLUMNS:
            out = np.empty(len(cells), dtype=np.float64)
            for k, ((line, _), cell) in enumerate(zip(body, cells)):
                try:
                    out[k] = float(cell)
                except ValueError:
                    raise InputError(f"{path}:{line}: column {name!r} must be a number, got {cell!r}") from None
        else:
            out = np.asarray(cells, dtype=object)
        columns[name] = out
    return PerImage(path=path, image_ids=ids, columns=columns)


def read_per_class_csv(path: str | os.PathLike) -> PerClass:
    """Read a per-class CSV (``class,num_images,top1_cls,top1_loc,gt_known_loc,MaxBoxAccV2_hits``;
    only ``class`` is required). Numeric columns become float64 (empty cell: NaN)."""
    path = Path(path)
    header, body = _read_csv_rows(path)
    if "class" not in header:
        raise InputError(f"{path}: per-class CSV has no 'class' column (header: {','.join(header)})")
    idx = {h: i for i, h in enumerate(header)}
    names = [row[idx["class"]].strip() for _, row in body]
    columns: dict[str, np.ndarray] = {}
    for name, col in idx.items():
        if name == "class":
            continue
        out = np.empty(len(body), dtype=np.float64)
        for k, (line, row) in enumerate(body):
            cell = row[col].strip()
            if cell in ("", MISSING, "nan", "NaN"):
                out[k] = np.nan
                continue
            try:
                out[k] = float(cell)
            except ValueError:
                raise InputError(f"{path}:{line}: column {name!r} must be a number, got {cell!r}") from None
        columns[name] = out
    return PerClass(path=path, class_names=names, columns=columns)


def _side_file(result: Result, key: str) -> Path | None:
    value = result.data.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InputError(f"{result.path}: key {key!r} must be a file name, got {value!r}")
    p = Path(value)
    return p if p.is_absolute() else result.path.parent / p


def per_image_of(result: Result) -> PerImage | None:
    """The per-image table named by the result's ``per_image`` key (relative to the JSON's folder),
    or ``None`` when the key is absent. A named but missing file is an error."""
    p = _side_file(result, "per_image")
    if p is None:
        return None
    if not p.exists():
        raise FileNotFoundError(f"{result.path}: per_image file {p} does not exist")
    return read_per_image_csv(p)


def per_class_of(result: Result) -> PerClass | None:
    """The per-class table named by the result's ``per_class`` key, or ``None`` when absent."""
    p = _side_file(result, "per_class")
    if p is None:
        return None
    if not p.exists():
        raise FileNotFoundError(f"{result.path}: per_class file {p} does not exist")
    return read_per_class_csv(p)


def boxacc_curve_of(result: Result) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """``(thresholds [T], {delta: BoxAcc percent [T]})`` from the ``BoxAcc_curve`` key, or ``None``."""
    curve = result.data.get("BoxAcc_curve")
    if curve is None:
        return None
    if not isinstance(curve, dict) or "thresholds" not in curve:
        raise InputError(
            f"{result.path}: 'BoxAcc_curve' must be an object with 'thresholds' and one list per IoU threshold"
        )
    try:
        t = np.asarray(curve["thresholds"], dtype=np.float64)
        accs = {str(k): np.asarray(v, dtype=np.float64) for k, v in curve.items() if k != "thresholds"}
    except (TypeError, ValueError):
        raise InputError(f"{result.path}: 'BoxAcc_curve' holds non-numeric values") from None
    for k, v in accs.items():
        if v.shape != t.shape:
            raise InputError(f"{result.path}: BoxAcc_curve[{k!r}] has {v.size} values for {t.size} thresholds")
    if not accs:
        raise InputError(f"{result.path}: 'BoxAcc_curve' has thresholds but no accuracy list")
    return t, accs


def as_number(value: Any, where: str) -> float | None:
    """A JSON number as float (``None`` for null or a non-finite value); :class:`InputError` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where} must be a number, got {value!r}")
    v = float(value)
    return v if math.isfinite(v) else None


def metric_value(result: Result, metric: str) -> float | None:
    """The value (percent) of ``metric`` in ``result``, ``None`` when absent. ``"MaxBoxAcc@50"``
    reads ``MaxBoxAcc["50"]``; other names are top-level keys."""
    if metric.startswith("MaxBoxAcc@"):
        table = result.data.get("MaxBoxAcc")
        if table is None:
            return None
        if not isinstance(table, dict):
            raise InputError(f"{result.path}: 'MaxBoxAcc' must be an object {{delta: percent}}")
        delta = metric.split("@", 1)[1]
        return as_number(table.get(delta), f"{result.path}: MaxBoxAcc[{delta!r}]")
    return as_number(result.data.get(metric), f"{result.path}: key {metric!r}")


def metric_interval(result: Result, metric: str) -> tuple[float, float] | None:
    """The 95 % interval ``(low, high)`` of ``metric`` from the ``ci95`` key, ``None`` when absent."""
    table = result.data.get("ci95")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise InputError(f"{result.path}: 'ci95' must be an object {{metric: [low, high]}}")
    pair = table.get(metric)
    if pair is None:
        return None
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise InputError(f"{result.path}: ci95[{metric!r}] must be [low, high], got {pair!r}")
    lo = as_number(pair[0], f"{result.path}: ci95[{metric!r}][0]")
    hi = as_number(pair[1], f"{result.path}: ci95[{metric!r}][1]")
    return None if lo is None or hi is None else (lo, hi)


# -------------------------------------------------------------------------------------------- summary

_SUMMARY_LABELS = {
    "top1_cls": "classification top-1",
    "top5_cls": "classification top-5",
    "top1_loc": "top-1 loc (old protocol)",
    "top5_loc": "top-5 loc (old protocol)",
    "gt_known_loc": "GT-known loc (old protocol)",
    "MaxBoxAccV2": "MaxBoxAccV2",
    "PxAP": "PxAP",
}


def format_summary(result: Mapping[str, Any], *, style: Literal["table", "plain"] = "table") -> str:
    """The headline numbers of a result dict (percent) with their 95 % intervals, one line each:
    classification top-1/top-5, old-protocol top-1/top-5/GT-known loc, MaxBoxAcc at each delta,
    MaxBoxAccV2, PxAP (those present).

    ``style="table"`` (``wsol evaluate``): a head line ``N images, CAM '...', x img/s``, labelled
    rows with 1-decimal intervals, and the skipped-image count when nonzero. ``style="plain"``
    (``wsol evaluate-scoremaps``): ``images: N``, rows named by their keys with 2-decimal
    intervals and the selected threshold ``tau`` of each MaxBoxAcc."""
    ci = result.get("ci95") or {}
    maxbox = result.get("MaxBoxAcc") or {}
    taus = result.get("best_threshold") or {}
    keys = [
        *("top1_cls", "top5_cls", "top1_loc", "top5_loc", "gt_known_loc"),
        *(f"MaxBoxAcc@{d}" for d in maxbox),
        "MaxBoxAccV2",
        "PxAP",
    ]
    rows = []
    for key in keys:
        delta = key.split("@", 1)[1] if key.startswith("MaxBoxAcc@") else None
        value = maxbox[delta] if delta is not None else result.get(key)
        if value is None:
            continue
        lo_hi = ci.get(key)
        if style == "plain":
            line = f"{key:<16} {value:6.2f}" + (f"   [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]" if lo_hi else "")
            if delta is not None and taus.get(delta) is not None:
                line += f"   tau={taus[delta]:.3f}"
        else:
            label = f"MaxBoxAcc @ IoU {delta}" if delta is not None else _SUMMARY_LABELS[key]
            interval = f"[{lo_hi[0]:5.1f}, {lo_hi[1]:5.1f}]" if lo_hi else ""
            line = f"  {label:<30} {value:6.2f}  {interval}"
        rows.append(line)
    if style == "plain":
        return "\n".join([f"images: {result.get('num_images')}", *rows])
    head = (
        f"{result.get('num_images')} images, CAM '{result.get('cam_method')}', {result.get('images_per_second')} img/s"
    )
    extra = f"\n  skipped: {result['num_skipped']} unreadable image(s)" if result.get("num_skipped") else ""
    return head + "\n" + "\n".join(rows) + extra
