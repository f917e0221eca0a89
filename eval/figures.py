"""Publication figures from plain arrays: CAM comparison grids, BoxAcc-versus-threshold curves and
per-class accuracy bars.

Everything here takes numpy arrays and Python lists (no torch, no ``wsol``, no ``cam``) and returns a
:class:`matplotlib.figure.Figure` built without ``pyplot`` on an Agg canvas (no global figure or backend state,
so importing this module never changes a notebook's backend); :func:`save_figure` writes it as PNG
(300 dpi, Agg) and PDF (TrueType fonts embedded) side by side.

Conventions:

* images are ``uint8 [H, W, 3]`` RGB; CAMs are float ``[H, W]`` in ``[0, 1]`` in the same frame;
* boxes are **inclusive** integer ``(x0, y0, x1, y1)`` (see :mod:`eval.boxes`); a box is drawn around
  the pixels it covers, i.e. from ``x0 - 0.5`` to ``x1 + 0.5`` in ``imshow`` coordinates;
* accuracies are percentages (0-100), thresholds are CAM values in ``[0, 1]``.

Readability at paper size: figures are laid out for a single column (``COLUMN_WIDTH_IN`` = 3.3 in)
or a full page width (``PAGE_WIDTH_IN`` = 7 in) and every text is at least ``MIN_FONT_PT`` (7 pt) at
that size. CAMs use a perceptually uniform colour map with monotone lightness (``inferno`` by
default; ``viridis``/``cividis``/``magma`` also qualify), so they stay readable printed in grey.
Lines use the Okabe-Ito colour-blind-safe palette *and* distinct line styles and markers; bars add
hatching; the ground-truth box is solid green and the predicted box dashed red, both with a dark
outline, so nothing relies on colour alone.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.patheffects as path_effects
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from eval.errors import InputError
from eval.io import atomic_write_bytes

__all__ = [
    "COLUMN_WIDTH_IN",
    "PAGE_WIDTH_IN",
    "MIN_FONT_PT",
    "LINE_COLORS",
    "LINE_STYLES",
    "MARKERS",
    "GT_COLOR",
    "PRED_COLOR",
    "GridCell",
    "GridRow",
    "overlay_cam",
    "short_class_name",
    "cam_grid_figure",
    "boxacc_curves_figure",
    "per_class_figure",
    "save_figure",
]

COLUMN_WIDTH_IN = 3.3
PAGE_WIDTH_IN = 7.0
MIN_FONT_PT = 7.0

# Okabe & Ito (2008) colour-blind-safe palette, ordered for contrast on white (yellow last).
LINE_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
LINE_STYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 1, 3, 3)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
HATCHES = ("", "////", "....", "xxxx", "\\\\\\\\", "oo", "++", "--")
GT_COLOR = "#00E040"  # ground truth: green, solid
PRED_COLOR = "#FF2020"  # prediction: red, dashed

# Font sizes in points at the printed size (>= MIN_FONT_PT). Applied per figure with rc_context.
_STYLE: Any = {  # matplotlib types rc keys as literals; ours are plain strings
    "font.size": 7.5,
    "axes.titlesize": 7.5,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 8,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "lines.linewidth": 1.2,
    "legend.frameon": False,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "savefig.dpi": 300,
}


# --------------------------------------------------------------------------------------------- helpers


def _check_image(image: np.ndarray, where: str) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise InputError(f"{where}: image must be uint8 [H, W, 3], got {img.dtype} {tuple(img.shape)}")
    return img


def _check_cam(cam: np.ndarray, shape: tuple[int, int], where: str) -> np.ndarray:
    c = np.asarray(cam, dtype=np.float64)
    if c.shape != shape:
        raise InputError(f"{where}: CAM shape {tuple(c.shape)} differs from the image's {shape}")
    if not np.isfinite(c).all():
        raise InputError(f"{where}: CAM has NaN or Inf values")
    return c


def overlay_cam(image: np.ndarray, cam: np.ndarray, cmap: str = "inferno", alpha: float = 0.5) -> np.ndarray:
    """Blend a colour-mapped CAM over an image.

    ``image``: uint8 ``[H, W, 3]`` RGB; ``cam``: float ``[H, W]`` in ``[0, 1]`` (values outside are
    clipped); returns uint8 ``[H, W, 3]`` = ``(1 - alpha) * image + alpha * cmap(cam)``.
    """
    img = _check_image(image, "overlay_cam")
    c = _check_cam(cam, img.shape[:2], "overlay_cam")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"overlay_cam: alpha must be in [0, 1], got {alpha}")
    colored = colormaps[cmap](np.clip(c, 0.0, 1.0))[..., :3] * 255.0
    out = (1.0 - alpha) * img.astype(np.float64) + alpha * colored
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def short_class_name(name: str, max_len: int = 22) -> str:
    """Display form of a class name: drop a leading ``"001."``-style index, underscores to spaces,
    and cut to ``max_len`` characters with an ellipsis. ``"001.Black_footed_Albatross"`` ->
    ``"Black footed Albatross"``."""
    text = re.sub(r"^\d+[._ ]", "", str(name)).replace("_", " ").strip() or str(name)
    if len(text) > max_len:
        text = text[: max_len - 1].rstrip() + "…"
    return text


def _box_patch(box: Sequence[int], color: str, linestyle, linewidth: float = 1.1) -> Rectangle:
    x0, y0, x1, y1 = (int(v) for v in box)
    rect = Rectangle(
        (x0 - 0.5, y0 - 0.5),
        x1 - x0 + 1,
        y1 - y0 + 1,
        fill=False,
        edgecolor=color,
        linewidth=linewidth,
        linestyle=linestyle,
    )
    rect.set_path_effects([path_effects.Stroke(linewidth=linewidth + 1.2, foreground="black"), path_effects.Normal()])
    return rect


def _boxes_2d(boxes, where: str) -> np.ndarray:
    if boxes is None:
        return np.zeros((0, 4), dtype=np.int64)
    b = np.asarray(boxes, dtype=np.int64)
    if b.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    if b.ndim == 1:
        b = b.reshape(1, -1)
    if b.ndim != 2 or b.shape[1] != 4:
        raise InputError(f"{where}: boxes must have shape [K, 4], got {tuple(b.shape)}")
    return b


def _new_figure(**kwargs) -> Figure:
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _style(i: int) -> dict:
    return {
        "color": LINE_COLORS[i % len(LINE_COLORS)],
        "linestyle": LINE_STYLES[i % len(LINE_STYLES)],
        "marker": MARKERS[i % len(MARKERS)],
    }


# ------------------------------------------------------------------------------------------ CAM grid


@dataclass(frozen=True)
class GridCell:
    """One cell of the CAM grid (one image x one model or CAM method).

    ``cam``: float ``[H, W]`` in ``[0, 1]`` in the image's frame; ``pred_box``: inclusive
    ``(x0, y0, x1, y1)`` or ``None`` (nothing above the threshold); ``iou``: IoU of ``pred_box``
    with the best-matching GT box (``None``: not shown); ``pred_name``: predicted class name;
    ``correct``: whether the predicted class is the true one (``None``: unknown).
    """

    cam: np.ndarray
    pred_box: Sequence[int] | None = None
    iou: float | None = None
    pred_name: str | None = None
    correct: bool | None = None


@dataclass(frozen=True)
class GridRow:
    """One row of the CAM grid: the image (uint8 ``[H, W, 3]``), its inclusive GT boxes ``[K, 4]``,
    a label for the row (e.g. image id) and the true class name, and one :class:`GridCell` per column."""

    image: np.ndarray
    cells: Sequence[GridCell]
    gt_boxes: np.ndarray | None = None
    label: str | None = None
    true_name: str | None = None


def cam_grid_figure(
    rows: Sequence[GridRow],
    column_names: Sequence[str],
    *,
    cmap: str = "inferno",
    alpha: float = 0.5,
    width_in: float | None = None,
    name_len: int | None = None,
    colorbar: bool = True,
    column_notes: Sequence[str] | None = None,
) -> Figure:
    """The CAM comparison grid: ``len(rows)`` rows x ``len(column_names)`` columns of image axes.

    Each cell shows the image with the CAM overlaid (:func:`overlay_cam`), the GT boxes (green,
    solid), the predicted box (red, dashed), and under it ``IoU x.xx`` and the predicted class
    (prefixed with ✓/✗ when ``correct`` is known). Column titles are ``column_names``; each row is
    labelled on the left with the true class and ``row.label``. A legend for the boxes and a
    colour bar for the CAM sit at the bottom. ``column_notes`` (e.g. ``"τ = 0.30"``) are printed
    under the column titles in normal weight. ``width_in`` defaults to one column (3.3 in) for up to
    two columns and to the page width (7 in) otherwise. The image axes are ``fig.axes[:R * C]`` in
    row-major order.
    """
    ncols = len(column_names)
    nrows = len(rows)
    if nrows == 0 or ncols == 0:
        raise InputError(f"cam_grid_figure: need at least one row and one column, got {nrows}x{ncols}")
    for r, row in enumerate(rows):
        if len(row.cells) != ncols:
            raise InputError(
                f"cam_grid_figure: row {r} ({row.label}) has {len(row.cells)} cells, expected {ncols} (one per column)"
            )
    if width_in is None:
        width_in = COLUMN_WIDTH_IN if ncols <= 2 else PAGE_WIDTH_IN
    left_in = 0.32  # row labels
    cell_w = (width_in - left_in - 0.05) / ncols
    text_h = 0.30  # two text lines under each image
    if column_notes is not None and len(column_notes) != ncols:
        raise InputError(f"cam_grid_figure: {len(column_notes)} column notes for {ncols} columns")
    wraps = any(len(str(n)) * 0.07 > cell_w and " · " in str(n) for n in column_names)
    title_h = 0.22 + (0.13 if column_notes is not None else 0.0) + (0.12 if wraps else 0.0)
    bottom_h = text_h + 0.26  # the last row's text, then the legend / colour bar strip
    img_h = cell_w * rows[0].image.shape[0] / rows[0].image.shape[1]
    height_in = title_h + nrows * (img_h + text_h) + bottom_h
    if name_len is None:
        # about 0.06 in per character at 7 pt; the ✓/✗ prefix takes two.
        name_len = max(8, int(cell_w / 0.062) - 2)

    with matplotlib.rc_context(_STYLE):
        fig = _new_figure(figsize=(width_in, height_in))
        gs = fig.add_gridspec(
            nrows,
            ncols,
            left=left_in / width_in,
            right=1 - 0.05 / width_in,
            top=1 - title_h / height_in,
            bottom=bottom_h / height_in,
            wspace=0.04,
            hspace=text_h / img_h,
        )
        for r, row in enumerate(rows):
            where = f"row {r}" + (f" ({row.label})" if row.label else "")
            image = _check_image(row.image, where)
            gt = _boxes_2d(row.gt_boxes, where + " GT boxes")
            for c, cell in enumerate(row.cells):
                ax = fig.add_subplot(gs[r, c])
                ax.imshow(
                    overlay_cam(image, _check_cam(cell.cam, image.shape[:2], where), cmap, alpha),
                    interpolation="nearest",
                )
                for box in gt:
                    ax.add_patch(_box_patch(box, GT_COLOR, "-"))
                if cell.pred_box is not None:
                    ax.add_patch(_box_patch(_boxes_2d(cell.pred_box, where)[0], PRED_COLOR, (0, (3, 1.5))))
                ax.set_xlim(-0.5, image.shape[1] - 0.5)
                ax.set_ylim(image.shape[0] - 0.5, -0.5)
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_linewidth(0.4)
                lines = ["IoU —" if cell.iou is None else f"IoU {cell.iou:.2f}"]
                if cell.pred_name is not None:
                    mark = "" if cell.correct is None else ("✓ " if cell.correct else "✗ ")
                    lines.append(mark + short_class_name(cell.pred_name, name_len))
                ax.set_xlabel(
                    "\n".join(lines),
                    labelpad=1.5,
                    linespacing=1.1,
                    fontstyle="normal" if cell.correct in (None, True) else "italic",
                )
                if r == 0:
                    note = None if column_notes is None else str(column_notes[c])
                    title = str(column_names[c])
                    if wraps:  # some "model · method" title is too wide at 7.5 pt bold: wrap them all
                        title = title.replace(" · ", "\n", 1)
                    ax.set_title(title, fontweight="bold", pad=2.5 if note is None else 11.0, linespacing=1.1)
                    if note:
                        ax.annotate(
                            note,
                            xy=(0.5, 1.0),
                            xycoords="axes fraction",
                            xytext=(0, 2.5),
                            textcoords="offset points",
                            ha="center",
                            va="bottom",
                            fontsize=7,
                        )
                if c == 0:
                    ylabel = []
                    if row.true_name:
                        ylabel.append(short_class_name(row.true_name, max(10, int(img_h / 0.062))))
                    if row.label:
                        ylabel.append(_shorten_id(row.label, max(10, int(img_h / 0.062))))
                    ax.set_ylabel("\n".join(ylabel), labelpad=2, linespacing=1.1)
        handles = [
            Line2D(
                [],
                [],
                color=GT_COLOR,
                linestyle="-",
                linewidth=1.1,
                path_effects=[path_effects.Stroke(linewidth=2.3, foreground="black"), path_effects.Normal()],
                label="ground truth",
            ),
            Line2D(
                [],
                [],
                color=PRED_COLOR,
                linestyle=(0, (3, 1.5)),
                linewidth=1.1,
                path_effects=[path_effects.Stroke(linewidth=2.3, foreground="black"), path_effects.Normal()],
                label="predicted (largest contour at τ)",
            ),
        ]
        narrow = width_in < 5.0
        fig.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0.0, 0.0),
            ncol=1 if narrow else 2,
            handlelength=2.2,
            columnspacing=1.0,
            borderaxespad=0.15,
            labelspacing=0.2,
        )
        if colorbar:
            cb_w = 0.26
            cax = fig.add_axes((1 - cb_w - 0.1 / width_in, 0.13 / height_in, cb_w, 0.06 / height_in))
            sm = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, 1), cmap=cmap)
            cb = fig.colorbar(sm, cax=cax, orientation="horizontal", ticks=[0, 0.5, 1])
            cb.outline.set_linewidth(0.4)
            cb.ax.tick_params(length=1.5, pad=1)
            cax.set_ylabel("CAM", rotation=0, ha="right", va="center", labelpad=3)
    return fig


def _shorten_id(text: str, max_len: int) -> str:
    """Keep the file name of an image id (drop folders) and cut it from the left if still long."""
    name = str(text).replace("\\", "/").rsplit("/", 1)[-1]
    if len(name) > max_len:
        name = "…" + name[-(max_len - 1) :]
    return name


# --------------------------------------------------------------------------------- BoxAcc curves


def boxacc_curves_figure(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    thresholds: Mapping[str, np.ndarray],
    *,
    deltas: Sequence[str] | None = None,
    width_in: float | None = None,
    mark_best: bool = True,
) -> Figure:
    """BoxAcc-versus-threshold curves of several models (wsolevaluation Figure 1 style).

    ``curves[name][delta]``: BoxAcc in percent per threshold (float ``[T]``) of model ``name`` at IoU
    threshold ``delta`` (a string, e.g. ``"50"``); ``thresholds[name]``: the CAM thresholds ``[T]``
    in ``[0, 1]`` of that model's curve. One panel per delta in ``deltas`` (default: the deltas
    common to all models, numerically sorted), sharing the y axis. The best threshold of each curve
    (its MaxBoxAcc) is marked with a filled marker when ``mark_best``. ``width_in`` defaults to one
    column for a single panel, the page width otherwise.
    """
    names = list(curves)
    if not names:
        raise InputError("boxacc_curves_figure: no curves given")
    if deltas is None:
        common = set.intersection(*(set(curves[n]) for n in names))
        deltas = sorted(common, key=float)
    deltas = [str(d) for d in deltas]
    if not deltas:
        raise InputError("boxacc_curves_figure: the models share no IoU threshold")
    for n in names:
        t = np.asarray(thresholds[n], dtype=np.float64)
        for d in deltas:
            if d not in curves[n]:
                raise InputError(f"boxacc_curves_figure: model {n!r} has no BoxAcc curve at IoU {d}")
            if np.asarray(curves[n][d]).shape != t.shape:
                raise InputError(
                    f"boxacc_curves_figure: model {n!r} IoU {d}: {np.asarray(curves[n][d]).shape[0]} "
                    f"accuracies for {t.shape[0]} thresholds"
                )
    if width_in is None:
        width_in = COLUMN_WIDTH_IN if len(deltas) == 1 else PAGE_WIDTH_IN
    # shared y range: 0 to the next multiple of 10 above the highest curve (at most 100)
    peak = max(float(np.nanmax(np.asarray(curves[n][d], dtype=np.float64), initial=0.0)) for n in names for d in deltas)
    y_top = float(min(100.0, 10.0 * np.ceil((peak + 3.0) / 10.0)))
    panel_w = width_in / len(deltas)
    height_in = max(1.9, min(2.6, panel_w * 0.85)) + 0.35
    with matplotlib.rc_context(_STYLE):
        fig = _new_figure(figsize=(width_in, height_in), layout="constrained")
        axes = fig.subplots(1, len(deltas), sharey=True, squeeze=False)[0]
        for k, (ax, d) in enumerate(zip(axes, deltas)):
            for i, n in enumerate(names):
                st = _style(i)
                t = np.asarray(thresholds[n], dtype=np.float64)
                acc = np.asarray(curves[n][d], dtype=np.float64)
                every = max(1, len(t) // 8)
                ax.plot(
                    t,
                    acc,
                    color=st["color"],
                    linestyle=st["linestyle"],
                    marker=st["marker"],
                    markersize=3,
                    markevery=(min(every - 1, (i * every) // max(1, len(names))), every),
                    markerfacecolor="white",
                    markeredgewidth=0.8,
                    label=n,
                )
                if mark_best and len(acc):
                    j = int(np.argmax(acc))
                    ax.plot(
                        [t[j]],
                        [acc[j]],
                        linestyle="none",
                        marker=st["marker"],
                        markersize=5.5,
                        color=st["color"],
                        markeredgecolor="black",
                        markeredgewidth=0.5,
                        zorder=5,
                    )
            ax.set_title(f"IoU ≥ {int(float(d)) / 100:.1f}" if float(d) > 1 else f"IoU ≥ {d}")
            ax.set_xlabel("CAM threshold τ")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, y_top)
            ax.grid(True, linewidth=0.3, color="0.85")
            if k == 0:
                ax.set_ylabel("BoxAcc (%)")
        handles, labels = axes[0].get_legend_handles_labels()
        if mark_best:
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="o",
                    markersize=5.5,
                    color="0.5",
                    markeredgecolor="black",
                    markeredgewidth=0.5,
                )
            )
            labels.append("best τ (MaxBoxAcc)")
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncol=min(len(labels), 5 if len(deltas) > 1 else 3),
            handlelength=2.8,
            columnspacing=1.2,
        )
    return fig


# ---------------------------------------------------------------------------------- per-class bars


def per_class_figure(
    class_names: Sequence[str],
    values: Mapping[str, np.ndarray],
    *,
    metric_label: str = "Top-1 Loc (%)",
    max_classes: int = 15,
    select: str = "spread",
    width_in: float | None = None,
) -> Figure:
    """Per-class accuracy of several models.

    ``values[name]``: float ``[C]`` accuracy in percent per class, aligned with ``class_names``
    (NaN: class absent). With at most ``max_classes`` classes, one panel of grouped horizontal bars
    shows them all; otherwise a left panel shows every class's accuracy sorted from best to worst
    per model (the distribution), and the right panel the ``max_classes`` classes chosen by
    ``select`` (with few classes, all are shown in their given order): ``"spread"`` (largest
    max-min difference between models; with one model, the lowest accuracies), ``"worst"``
    (lowest mean over models) or ``"best"``.
    """
    names = list(values)
    if not names:
        raise InputError("per_class_figure: no models given")
    num = len(class_names)
    mat = np.full((len(names), num), np.nan)
    for i, n in enumerate(names):
        v = np.asarray(values[n], dtype=np.float64)
        if v.shape != (num,):
            raise InputError(f"per_class_figure: model {n!r} has {v.shape} values for {num} classes")
        mat[i] = v
    if select not in ("spread", "worst", "best"):
        raise InputError(f"per_class_figure: select must be spread, worst or best, got {select!r}")
    with np.errstate(all="ignore"):
        mean = np.nanmean(mat, axis=0)
        spread = np.nanmax(mat, axis=0) - np.nanmin(mat, axis=0)
    valid = np.flatnonzero(np.isfinite(mean))
    if valid.size == 0:
        raise InputError("per_class_figure: no class has a value")
    if select == "spread" and len(names) > 1:
        order = valid[np.lexsort((mean[valid], -spread[valid]))]
    elif select == "best":
        order = valid[np.argsort(-mean[valid], kind="stable")]
    else:
        order = valid[np.argsort(mean[valid], kind="stable")]
    two_panels = valid.size > max_classes
    shown = order[:max_classes] if two_panels else valid  # all classes fit: keep the class order
    # one panel and not too many bars: every bar tall enough for its value written beside it
    # (a 0 % class then reads "0" instead of an invisible bar)
    annotate = not two_panels and len(shown) * len(names) <= 64
    if width_in is None:
        width_in = PAGE_WIDTH_IN if two_panels or (annotate and len(names) >= 3) else COLUMN_WIDTH_IN
    bar_h = 0.8 / len(names)
    per_class_in = 0.125 * len(names) / 0.8 if annotate else max(0.16, 0.075 * len(names))
    height_in = max(1.8, 0.42 + len(shown) * per_class_in + 0.35)
    with matplotlib.rc_context(_STYLE):
        fig = _new_figure(figsize=(width_in, height_in), layout="constrained")
        if two_panels:
            ax_dist, ax = fig.subplots(1, 2, width_ratios=(1, 1.35), squeeze=True)
            for i, n in enumerate(names):
                st = _style(i)
                v = np.sort(mat[i][np.isfinite(mat[i])])[::-1]
                every = max(1, len(v) // 8)
                ax_dist.plot(
                    np.arange(1, len(v) + 1),
                    v,
                    color=st["color"],
                    linestyle=st["linestyle"],
                    marker=st["marker"],
                    markersize=3,
                    markevery=(min(every - 1, i * every // len(names)), every),
                    markerfacecolor="white",
                    markeredgewidth=0.8,
                    label=n,
                )
            ax_dist.set_xlabel("class rank (best to worst)")
            ax_dist.set_ylabel(metric_label)
            ax_dist.set_ylim(0, 101)
            ax_dist.set_xlim(1, max(2, valid.size))
            ax_dist.grid(True, linewidth=0.3, color="0.85")
            ax_dist.set_title(f"all {valid.size} classes")
        else:
            ax = fig.subplots(1, 1)
        y = np.arange(len(shown))
        for i, n in enumerate(names):
            offs = (i - (len(names) - 1) / 2) * bar_h
            ax.barh(
                y + offs,
                np.nan_to_num(mat[i, shown]),
                height=bar_h,
                color=LINE_COLORS[i % len(LINE_COLORS)],
                hatch=HATCHES[i % len(HATCHES)],
                edgecolor="black",
                linewidth=0.4,
                label=n,
            )
            if annotate:
                for yy, v in zip(y + offs, mat[i, shown]):
                    ax.text(
                        (0 if np.isnan(v) else v) + 1.0,
                        yy,
                        "n/a" if np.isnan(v) else f"{v:.0f}",
                        va="center",
                        ha="left",
                        fontsize=MIN_FONT_PT,
                        color="0.15",
                    )
        label_len = 30 if two_panels else 22
        ax.set_yticks(y, [short_class_name(class_names[j], label_len) for j in shown])
        ax.invert_yaxis()
        ax.set_xlim(0, 108 if annotate else 100)
        if annotate:
            ax.set_xticks(np.arange(0, 101, 20))
        ax.set_xlabel(metric_label)
        ax.grid(True, axis="x", linewidth=0.3, color="0.85")
        ax.set_axisbelow(True)
        if two_panels:
            what = {
                "spread": "largest difference between models" if len(names) > 1 else "lowest",
                "worst": "lowest mean",
                "best": "highest mean",
            }[select]
            ax.set_title(f"{len(shown)} classes with the {what}")
        fig.legend(
            *ax.get_legend_handles_labels(),
            loc="outside lower center",
            ncol=min(len(names), 4),
            handlelength=1.8,
            columnspacing=1.2,
        )
    return fig


# ------------------------------------------------------------------------------------ robustness


def occlusion_figure(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    mode: str,
    *,
    image_side: float | None = None,
    width_in: float = COLUMN_WIDTH_IN,
) -> Figure:
    """Top-1 accuracy against the occluded square's side (CutMix paper Figure 5a style).

    ``curves[name] = (sides [N] in pixels, top-1 accuracy [N] in percent)``; ``mode`` is
    ``"center"`` or ``"boundary"`` (used in the title). The x axis is the side as a fraction of the
    image side (``image_side``, default the largest side given).
    """
    if not curves:
        raise InputError("occlusion_figure: no curves given")
    side = float(image_side or max(max(s) for s, _ in curves.values()) or 1.0)
    with matplotlib.rc_context(_STYLE):
        fig = _new_figure(figsize=(width_in, 2.4), layout="constrained")
        ax = fig.subplots()
        for i, (name, (sides, acc)) in enumerate(curves.items()):
            if len(sides) != len(acc):
                raise InputError(f"occlusion_figure: {name!r} has {len(sides)} sides and {len(acc)} accuracies")
            st = _style(i)
            ax.plot(
                np.asarray(sides, dtype=np.float64) / side,
                np.asarray(acc, dtype=np.float64),
                color=st["color"],
                linestyle=st["linestyle"],
                marker=st["marker"],
                markersize=3,
                markerfacecolor="white",
                markeredgewidth=0.8,
                label=name,
            )
        ax.set_title("centre square zeroed" if mode == "center" else "outside the centre square zeroed")
        ax.set_xlabel("square side / image side")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 100)
        ax.grid(True, linewidth=0.3, color="0.85")
        ax.legend(loc="best")
    return fig


def plot_occlusion(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], mode: str, path: str | os.PathLike
) -> list[Path]:
    """:func:`occlusion_figure` saved as PNG and PDF (see :func:`save_figure`)."""
    return save_figure(occlusion_figure(curves, mode), path)


# ---------------------------------------------------------------------------------------- saving


def save_figure(fig: Figure, path: str | os.PathLike, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write ``fig`` to ``path`` in each of ``formats`` (same stem, the format's suffix; the suffix
    of ``path`` itself is replaced). PNG at 300 dpi; PDF with TrueType fonts. Atomic writes.
    Returns the written paths."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lower() in (".png", ".pdf", ".svg") else path
    written = []
    with matplotlib.rc_context(_STYLE):
        for fmt in formats:
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=300, facecolor="white")
            written.append(atomic_write_bytes(stem.with_name(f"{stem.name}.{fmt}"), buf.getvalue()))
    return written
