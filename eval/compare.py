"""Comparisons of result files: every metric with its 95 % interval and the paired significance
of each model against the first (the reference).

Takes results of ``wsol evaluate`` / ``wsol evaluate-scoremaps`` (read by :mod:`eval.results`: the
JSON file, plus the per-image and per-class CSVs it names) and writes a Markdown table for people
and a tidy CSV (one row per model x metric) for programs. Optional keys may be missing: they show as "—" in
Markdown and as empty cells in CSV. Malformed present values raise :class:`InputError` naming the
file, line and key.

Paired significance: images are matched by ``image_id`` between the per-image CSVs of the reference
and of each other model; the two image sets must be identical (else :class:`InputError` listing the
differences). Per metric, the test is the exact McNemar test (:func:`eval.stats.mcnemar_exact`) on
the per-image hits: ``top1_cls``, ``top5_cls``, ``top1_loc``, ``top5_loc``, ``gt_known_loc`` and, for
``MaxBoxAcc@δ``, ``hit@δ`` (each model's hit at its own split-selected threshold). MaxBoxAccV2 is the
mean over δ, so per image it takes values in {0, 1/3, 2/3, 1}; it gets the exact sign test on those
per-image scores, which is the McNemar test on the events "A scores higher" / "B scores higher"
(computed with the same function). PxAP is pooled over pixels and has no per-image test.
p-values are two-sided and not adjusted for multiple comparisons.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.errors import InputError
from eval.io import atomic_write_text
from eval.results import (
    MISSING,
    PER_IMAGE_HIT_COLUMNS,
    PerClass,
    PerImage,
    Result,
    as_number,
    load_result,
    metric_interval,
    metric_value,
    per_class_of,
    per_image_of,
)
from eval.settings import DEFAULT_IOU_THRESHOLDS

__all__ = [
    "DEFAULT_DELTAS",
    "METRIC_LABELS",
    "MISSING",
    "Comparison",
    "ComparisonRow",
    "align_per_image",
    "compare_results",
    "comparison_csv",
    "comparison_markdown",
    "format_p",
    "load_results",
    "metric_label",
    "paired_test",
    "per_class_matrix",
    "table_metrics",
    "write_comparison",
]

# Display order and labels of the scalar metrics; MaxBoxAcc@δ rows are inserted for every δ found.
METRIC_LABELS: dict[str, str] = {
    "top1_cls": "Top-1 Cls",
    "top5_cls": "Top-5 Cls",
    "top1_loc": "Top-1 Loc",
    "top5_loc": "Top-5 Loc",
    "gt_known_loc": "GT-known Loc",
    "MaxBoxAccV2": "MaxBoxAccV2",
    "PxAP": "PxAP",
}
_ORDER_BEFORE_BOXACC = ("top1_cls", "top5_cls", "top1_loc", "top5_loc", "gt_known_loc")
_ORDER_AFTER_BOXACC = ("MaxBoxAccV2", "PxAP")
# the IoU thresholds (keys of MaxBoxAcc / best_threshold) of the default protocol
DEFAULT_DELTAS = tuple(str(d) for d in DEFAULT_IOU_THRESHOLDS)


# -------------------------------------------------------------------------------------- metrics


def _deltas(result: Result) -> list[str]:
    table = result.data.get("MaxBoxAcc")
    return [str(k) for k in table] if isinstance(table, dict) else []


def table_metrics(results: Sequence[Result]) -> list[str]:
    """Metrics present in at least one result, in display order (classification, old-protocol
    localization, MaxBoxAcc@δ by increasing δ, MaxBoxAccV2, PxAP)."""
    deltas = sorted({d for r in results for d in _deltas(r)}, key=lambda d: (float(d) if _is_num(d) else math.inf, d))
    candidates = [*_ORDER_BEFORE_BOXACC, *(f"MaxBoxAcc@{d}" for d in deltas), *_ORDER_AFTER_BOXACC]
    return [
        m
        for m in candidates
        if any(metric_value(r, m) is not None or metric_interval(r, m) is not None for r in results)
    ]


def _is_num(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def metric_label(metric: str) -> str:
    if metric.startswith("MaxBoxAcc@"):
        return f"MaxBoxAcc@{metric.split('@', 1)[1]}"
    return METRIC_LABELS.get(metric, metric)


# ------------------------------------------------------------------------------ paired statistics


def align_per_image(
    ref: PerImage,
    other: PerImage,
    ref_name: str = "reference",
    other_name: str = "other",
    why: str = "A paired test needs identical image sets.",
) -> np.ndarray:
    """Index array ``order`` such that ``other.image_ids[order[i]] == ref.image_ids[i]``.

    The two image sets must be identical; otherwise :class:`InputError` names both files, how many
    ids each lacks and the first few of them, then ``why``.
    """
    pos = {image_id: k for k, image_id in enumerate(other.image_ids)}
    ref_set = set(ref.image_ids)
    only_ref = [i for i in ref.image_ids if i not in pos]
    only_other = [i for i in other.image_ids if i not in ref_set]
    if only_ref or only_other:

        def few(ids: list[str]) -> str:
            return ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")

        parts = []
        if only_ref:
            parts.append(f"{len(only_ref)} image(s) only in {ref_name} ({few(only_ref)})")
        if only_other:
            parts.append(f"{len(only_other)} image(s) only in {other_name} ({few(only_other)})")
        raise InputError(
            f"{ref_name} ({ref.path}, {len(ref)} images) and {other_name} ({other.path}, "
            f"{len(other)} images) were not evaluated on the same images: {'; '.join(parts)}. {why}"
        )
    return np.fromiter((pos[i] for i in ref.image_ids), dtype=np.int64, count=len(ref))


def _scores(per_image: PerImage, metric: str, deltas: Sequence[str]) -> np.ndarray | None:
    """Per-image score of ``metric`` (0/1 hits; MaxBoxAccV2: mean of the hits over ``deltas``)."""
    if metric in PER_IMAGE_HIT_COLUMNS:
        col = per_image.columns.get(PER_IMAGE_HIT_COLUMNS[metric])
        return None if col is None else col.astype(np.float64)
    if metric.startswith("MaxBoxAcc@"):
        col = per_image.columns.get(f"hit@{metric.split('@', 1)[1]}")
        return None if col is None else col.astype(np.float64)
    if metric == "MaxBoxAccV2":
        got = [per_image.columns.get(f"hit@{d}") for d in deltas]
        cols = [c for c in got if c is not None]
        if not deltas or len(cols) != len(got):
            return None
        return np.mean(np.stack(cols).astype(np.float64), axis=0)
    return None


def paired_test(
    ref: PerImage, other: PerImage, metric: str, order: np.ndarray, deltas: Sequence[str] = DEFAULT_DELTAS
) -> dict | None:
    """Two-sided exact paired test of ``metric`` between ``ref`` and ``other`` (aligned by
    ``order`` from :func:`align_per_image`). Returns ``{"p_value", "b", "c", "n", "test"}`` where
    ``b`` counts images where only the reference hits (V2: scores higher), ``c`` where only the
    other does; ``None`` when the per-image data for this metric is missing (e.g. PxAP)."""
    from eval.stats import mcnemar_exact

    a = _scores(ref, metric, deltas)
    b = _scores(other, metric, deltas)
    if a is None or b is None:
        return None
    b = b[order]
    if metric == "MaxBoxAccV2":
        out = mcnemar_exact(a > b, b > a)
        test = "sign_test"
    else:
        out = mcnemar_exact(a > 0.5, b > 0.5)
        test = "mcnemar_exact"
    # eval.stats names the discordant counts a_only / b_only (b / c in McNemar's notation)
    only_ref = out["a_only"] if "a_only" in out else out["b"]
    only_other = out["b_only"] if "b_only" in out else out["c"]
    return {"p_value": float(out["p_value"]), "b": int(only_ref), "c": int(only_other), "n": int(a.size), "test": test}


# ------------------------------------------------------------------------------------ comparison


@dataclass(frozen=True)
class ComparisonRow:
    """One model x metric: value and interval (percent), difference to the reference in points,
    and the paired test (``None`` fields: not available)."""

    model: str
    metric: str
    value: float | None
    ci: tuple[float, float] | None
    delta: float | None = None
    p_value: float | None = None
    b: int | None = None
    c: int | None = None
    n_paired: int | None = None
    test: str | None = None


@dataclass(frozen=True)
class Comparison:
    """All rows, the results they came from (first = reference), the metrics in display order, and
    notes (warnings about mismatched protocols, missing per-image data, ...)."""

    results: list[Result]
    metrics: list[str]
    rows: list[ComparisonRow]
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.results]

    def row(self, model: str, metric: str) -> ComparisonRow:
        for r in self.rows:
            if r.model == model and r.metric == metric:
                return r
        raise KeyError((model, metric))


def _unique_names(names: list[str]) -> list[str]:
    out: list[str] = []
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n}#{seen[n]}")
    return out


def load_results(results: Sequence[Result | str | os.PathLike], names: Sequence[str] | None = None) -> list[Result]:
    """Load result files (or keep loaded :class:`Result`), apply ``names`` (one per result) and make
    the display names unique (``name#1``, ``name#2`` on a clash)."""
    loaded = [r if isinstance(r, Result) else load_result(r) for r in results]
    if not loaded:
        raise InputError("give at least one result file")
    if names is not None:
        names = list(names)
        if len(names) != len(loaded):
            raise InputError(f"{len(names)} names for {len(loaded)} result files")
        loaded = [Result(n, r.path, r.data) for n, r in zip(names, loaded)]
    uniq = _unique_names([r.name for r in loaded])
    return [Result(n, r.path, r.data) for n, r in zip(uniq, loaded)]


def compare_results(results: Sequence[Result | str | os.PathLike], names: Sequence[str] | None = None) -> Comparison:
    """Build the comparison of ``results`` (paths or loaded :class:`Result`; the first is the
    reference). ``names`` overrides the display names (one per result).

    Raises :class:`InputError` when the per-image image sets of the reference and another model
    differ. A model without a per-image CSV gets no p-values (a note says so).
    """
    loaded = load_results(results, names)
    metrics = table_metrics(loaded)
    for r in loaded:  # a JSON object with none of the metrics is not a result (a wrong file given)
        if not table_metrics([r]):
            keys = ", ".join(list(r.data)[:8]) or "none"
            raise InputError(
                f"{r.path}: not a result of `wsol evaluate` or `evaluate-scoremaps`: it has none of the "
                f"metrics (top1_cls, MaxBoxAcc, MaxBoxAccV2, PxAP, ...); its keys: {keys}"
            )
    notes: list[str] = []

    for key, label in (
        ("num_images", "image counts"),
        ("protocol", "protocols"),
        ("cam_curve_interval", "threshold intervals"),
    ):
        vals = [r.data.get(key) for r in loaded]
        if len({json.dumps(v, sort_keys=True) for v in vals if v is not None}) > 1:
            detail = "; ".join(f"{r.name}: {v if v is not None else MISSING}" for r, v in zip(loaded, vals))
            notes.append(f"Warning: the results have different {label} ({detail}); numbers may not be comparable.")

    per_images = [per_image_of(r) for r in loaded]
    for r, pi in zip(loaded, per_images):
        if pi is None:
            notes.append(f"{r.name} has no per-image CSV ({r.path}): no paired tests for it.")
            continue
        n = r.data.get("num_images")
        if isinstance(n, int) and not isinstance(n, bool) and n != len(pi):
            raise InputError(f"{r.path}: num_images is {n} but the per-image CSV {pi.path} has {len(pi)} rows")
        for m in metrics:
            v = metric_value(r, m)
            s = _scores(pi, m, _deltas(r))
            if v is not None and s is not None and s.size and m != "MaxBoxAccV2" and abs(100.0 * s.mean() - v) > 0.05:
                notes.append(
                    f"Warning: {r.name}: {metric_label(m)} is {v:.2f} in {r.path.name} but "
                    f"{100.0 * s.mean():.2f} from its per-image CSV."
                )

    ref, ref_pi = loaded[0], per_images[0]
    orders: list[np.ndarray | None] = [None]
    for r, pi in zip(loaded[1:], per_images[1:]):
        orders.append(None if ref_pi is None or pi is None else align_per_image(ref_pi, pi, ref.name, r.name))
    ref_deltas = _deltas(ref)

    rows: list[ComparisonRow] = []
    for m in metrics:
        ref_value = metric_value(ref, m)
        for k, (r, pi) in enumerate(zip(loaded, per_images)):
            value = metric_value(r, m)
            row = ComparisonRow(model=r.name, metric=m, value=value, ci=metric_interval(r, m))
            if k > 0:
                delta = None if value is None or ref_value is None else value - ref_value
                test = None
                order = orders[k]
                if order is not None and ref_pi is not None and pi is not None:
                    deltas = [d for d in ref_deltas if d in _deltas(r)]
                    test = paired_test(ref_pi, pi, m, order, deltas)
                row = ComparisonRow(
                    model=r.name,
                    metric=m,
                    value=value,
                    ci=row.ci,
                    delta=delta,
                    p_value=None if test is None else test["p_value"],
                    b=None if test is None else test["b"],
                    c=None if test is None else test["c"],
                    n_paired=None if test is None else test["n"],
                    test=None if test is None else test["test"],
                )
            rows.append(row)
    return Comparison(results=loaded, metrics=metrics, rows=rows, notes=notes)


# ---------------------------------------------------------------------------------- formatting


def _fmt(v: float | None, decimals: int) -> str:
    return MISSING if v is None else f"{v:.{decimals}f}"


def format_p(p: float | None) -> str:
    """``0.0342`` -> ``"0.034"``; below 0.001 in scientific notation (``"2.1e-05"``); ``None`` -> "—"."""
    if p is None:
        return MISSING
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def comparison_markdown(comp: Comparison, decimals: int = 1) -> str:
    """The comparison as Markdown: a runs table (files, images, arch, CAM, best thresholds), the
    metrics table (``value [low, high]`` per model and ``Δ (p = ...)`` against the reference) and
    notes explaining the columns and any warnings."""
    ref = comp.names[0]
    lines = [
        f"| Model | Result | Images | Arch | CAM | best τ @{' / '.join(DEFAULT_DELTAS)} |",
        "|---|---|---:|---|---|---|",
    ]
    for r in comp.results:
        bt = r.data["best_threshold"] if isinstance(r.data.get("best_threshold"), dict) else {}
        taus = " / ".join(_fmt(as_number(bt.get(d), f"{r.path}: best_threshold[{d!r}]"), 2) for d in DEFAULT_DELTAS)
        lines.append(
            "| "
            + " | ".join(
                _md_escape(x)
                for x in (
                    r.name,
                    r.path.as_posix(),
                    str(r.data.get("num_images", MISSING)),
                    str(r.data.get("arch", MISSING)),
                    str(r.data.get("cam_method", MISSING)),
                    taus if bt else MISSING,
                )
            )
            + " |"
        )
    lines.append("")

    header = ["Metric"]
    for k, n in enumerate(comp.names):
        header.append(_md_escape(n))
        if k > 0:
            header.append(f"Δ vs {_md_escape(ref)} (p)")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---|" + "|".join("---:" for _ in header[1:]) + "|")
    for m in comp.metrics:
        cells = [metric_label(m)]
        for k, n in enumerate(comp.names):
            row = comp.row(n, m)
            text = _fmt(row.value, decimals)
            if row.ci is not None:
                text += f" [{row.ci[0]:.{decimals}f}, {row.ci[1]:.{decimals}f}]"
            cells.append(text)
            if k > 0:
                if row.delta is None and row.p_value is None:
                    cells.append(MISSING)
                else:
                    d = MISSING if row.delta is None else f"{row.delta:+.{decimals}f}"
                    cells.append(d if row.p_value is None else f"{d} (p = {format_p(row.p_value)})")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    notes = [
        (
            "Values in percent, [low, high] the 95 % bootstrap interval stored in each result file; "
            f"{MISSING} = not available."
        )
    ]
    if len(comp.names) > 1:
        notes.append(
            f"Δ = difference to {ref} in points. p = two-sided exact McNemar test on the per-image "
            "hits, images matched by image_id (each model at its own split-selected threshold); "
            "MaxBoxAccV2: exact sign test on the per-image mean of the hits over the IoU thresholds; "
            "PxAP is pooled over pixels (no per-image test). Not adjusted for multiple comparisons."
        )
    protocols = {str(r.data["protocol"]) for r in comp.results if r.data.get("protocol")}
    if len(protocols) == 1:
        notes.append(f"Protocol: {protocols.pop()}")
    notes.extend(comp.notes)
    lines.extend(f"- {_md_escape(n)}" for n in notes)
    return "\n".join(lines) + "\n"


def _csv_num(v: float | None) -> str:
    if v is None:
        return ""
    if isinstance(v, int):
        return str(v)
    return format(v, ".10g")


def comparison_csv(comp: Comparison) -> str:
    """The comparison as a tidy CSV, one row per model x metric:
    ``model,result,metric,value,ci_low,ci_high,delta,p_value,b,c,n_paired,test`` (empty = not available)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["model", "result", "metric", "value", "ci_low", "ci_high", "delta", "p_value", "b", "c", "n_paired", "test"]
    )
    paths = {r.name: r.path.as_posix() for r in comp.results}
    for m in comp.metrics:
        for n in comp.names:
            row = comp.row(n, m)
            w.writerow(
                [
                    n,
                    paths[n],
                    m,
                    _csv_num(row.value),
                    _csv_num(row.ci[0] if row.ci else None),
                    _csv_num(row.ci[1] if row.ci else None),
                    _csv_num(row.delta),
                    _csv_num(row.p_value),
                    _csv_num(row.b),
                    _csv_num(row.c),
                    _csv_num(row.n_paired),
                    row.test or "",
                ]
            )
    return buf.getvalue()


def write_comparison(
    comp: Comparison,
    markdown: str | os.PathLike | None = None,
    csv_path: str | os.PathLike | None = None,
    decimals: int = 1,
) -> list[Path]:
    """Write the Markdown and/or CSV forms atomically; returns the written paths."""
    written = []
    if markdown is not None:
        written.append(atomic_write_text(markdown, comparison_markdown(comp, decimals)))
    if csv_path is not None:
        written.append(atomic_write_text(csv_path, comparison_csv(comp)))
    return written


def per_class_matrix(results: Sequence[Result], column: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """Class names (union, in first-seen order) and per model the ``column`` of its per-class CSV
    aligned with them (NaN where a class is missing). A result without a per-class CSV, or whose
    CSV lacks ``column``, raises :class:`InputError`."""
    tables: list[PerClass] = []
    for r in results:
        pc = per_class_of(r)
        if pc is None:
            raise InputError(
                f"{r.path}: no 'per_class' key: per-class figures need the per-class CSV written by `wsol evaluate`"
            )
        if column not in pc.columns:
            raise InputError(f"{pc.path}: no column {column!r} (columns: {', '.join(pc.columns)})")
        tables.append(pc)
    names: list[str] = []
    index: dict[str, int] = {}
    for pc in tables:
        for c in pc.class_names:
            if c not in index:
                index[c] = len(names)
                names.append(c)
    values: dict[str, np.ndarray] = {}
    for r, pc in zip(results, tables):
        v = np.full(len(names), np.nan)
        for c, x in zip(pc.class_names, pc.columns[column]):
            v[index[c]] = x
        values[r.name] = v
    return names, values
