"""Figures from arrays: the files exist, the layout is right, the text is readable at print size."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.image import AxesImage
from matplotlib.text import Text

from eval.errors import InputError
from eval.figures import (
    MIN_FONT_PT,
    GridCell,
    GridRow,
    boxacc_curves_figure,
    cam_grid_figure,
    overlay_cam,
    per_class_figure,
    save_figure,
    short_class_name,
)

S = 32


def _blob(cx: float, cy: float, s: float) -> np.ndarray:
    yy, xx = np.mgrid[0:S, 0:S]
    c = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    return c / c.max()


def _rows(nrows: int, ncols: int) -> list[GridRow]:
    rng = np.random.default_rng(0)
    rows = []
    for r in range(nrows):
        image = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
        cells = [
            GridCell(
                cam=_blob(10 + c, 12, 4 + c),
                pred_box=(4, 5, 20 + c, 22),
                iou=0.5 + 0.1 * c,
                pred_name="017.Cardinal_with_a_very_long_class_name",
                correct=c % 2 == 0,
            )
            for c in range(ncols)
        ]
        rows.append(
            GridRow(
                image=image,
                cells=cells,
                gt_boxes=np.array([[3, 4, 18, 20]]),
                label=f"017.Cardinal/Cardinal_00{r}_17057.jpg",
                true_name="017.Cardinal",
            )
        )
    return rows


def _texts_readable(fig) -> list[float]:
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert sizes, "figure has no text"
    return sizes


def _check_files(paths, min_bytes=5000):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    for p in paths:
        assert p.exists() and p.stat().st_size > min_bytes, p
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"


def test_overlay_cam_blends_with_the_colour_map():
    image = np.full((2, 3, 3), 100, dtype=np.uint8)
    cam = np.array([[0.0, 0.5, 1.0], [0.0, 0.0, 0.0]])
    out = overlay_cam(image, cam, cmap="viridis", alpha=0.5)
    expected = np.rint(0.5 * 100 + 0.5 * 255 * colormaps["viridis"](cam)[..., :3]).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(overlay_cam(image, cam, alpha=0.0), image)
    with pytest.raises(InputError, match=r"CAM shape \(2, 2\) differs from the image's \(2, 3\)"):
        overlay_cam(image, np.zeros((2, 2)))
    with pytest.raises(InputError, match="uint8"):
        overlay_cam(image.astype(np.float32), cam)
    with pytest.raises(InputError, match="NaN or Inf"):
        overlay_cam(image, np.full((2, 3), np.nan))


def test_short_class_name():
    assert short_class_name("001.Black_footed_Albatross") == "Black footed Albatross"
    assert short_class_name("n01440764") == "n01440764"
    assert short_class_name("001.Black_footed_Albatross", 10) == "Black foo…"


@pytest.mark.parametrize("nrows,ncols,width", [(3, 4, 7.0), (2, 2, 3.3)])
def test_cam_grid_layout_and_files(tmp_path, nrows, ncols, width):
    fig = cam_grid_figure(_rows(nrows, ncols), [f"model {c}" for c in range(ncols)])
    image_axes = [ax for ax in fig.axes if any(isinstance(a, AxesImage) for a in ax.get_children())]
    assert len(image_axes) == nrows * ncols
    assert fig.axes[: nrows * ncols] == image_axes  # row-major, colour bar last
    assert fig.get_figwidth() == pytest.approx(width)
    assert min(_texts_readable(fig)) >= MIN_FONT_PT
    # each cell: 1 GT box + 1 predicted box; captions carry the IoU and the ✓/✗ class
    assert len(image_axes[1].patches) == 2
    assert image_axes[1].get_xlabel().startswith("IoU 0.60\n✗ Cardinal with a")
    assert image_axes[0].get_title() == "model 0" and image_axes[ncols].get_title() == ""
    paths = save_figure(fig, tmp_path / "grid.png")
    _check_files(paths, min_bytes=20000)
    from PIL import Image

    with Image.open(paths[0]) as im:
        assert im.size[0] == round(width * 300)


def test_cam_grid_rejects_ragged_rows():
    rows = _rows(2, 3)
    rows[1] = GridRow(rows[1].image, rows[1].cells[:2], rows[1].gt_boxes, rows[1].label)
    with pytest.raises(InputError, match=r"row 1 \(017.Cardinal/Cardinal_001_17057.jpg\) has 2 cells, expected 3"):
        cam_grid_figure(rows, ["a", "b", "c"])


def test_grid_column_notes_and_wrapped_titles():
    names = [f"{m} · gradcam++" for m in ("baseline", "Cutout", "Mixup", "CutMix")]
    fig = cam_grid_figure(_rows(1, 4), names, column_notes=[f"τ = 0.{k}0" for k in range(4)], width_in=3.3)
    assert fig.axes[2].get_title() == "Mixup\ngradcam++"
    notes = [t.get_text() for t in fig.axes[3].texts]
    assert notes == ["τ = 0.30"]
    assert min(_texts_readable(fig)) >= MIN_FONT_PT
    with pytest.raises(InputError, match="3 column notes for 4 columns"):
        cam_grid_figure(_rows(1, 4), names, column_notes=["a", "b", "c"])


def test_grid_without_prediction_box_or_class(tmp_path):
    row = GridRow(image=np.zeros((S, S, 3), np.uint8), cells=[GridCell(cam=np.zeros((S, S)))])
    fig = cam_grid_figure([row], ["only"])
    ax = fig.axes[0]
    assert len(ax.patches) == 0 and ax.get_xlabel() == "IoU —"


def test_boxacc_curves(tmp_path):
    t = np.arange(0, 1, 0.01)
    curves = {
        n: {d: 80 * np.exp(-(((t - 0.2 - 0.1 * i) / 0.2) ** 2)) - int(d) / 10 for d in ("30", "50", "70")}
        for i, n in enumerate(["baseline", "CutMix"])
    }
    fig = boxacc_curves_figure(curves, {n: t for n in curves})
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == 3 and [ax.get_title() for ax in panels] == ["IoU ≥ 0.3", "IoU ≥ 0.5", "IoU ≥ 0.7"]
    # per model: the curve and its best-threshold marker at the maximum
    curve, best = panels[1].lines[2], panels[1].lines[3]
    np.testing.assert_allclose(curve.get_ydata(), curves["CutMix"]["50"])
    assert best.get_xdata()[0] == pytest.approx(0.3) and best.get_ydata()[0] == pytest.approx(75.0)
    assert curve.get_linestyle() != panels[1].lines[0].get_linestyle()  # not by colour alone
    assert min(_texts_readable(fig)) >= MIN_FONT_PT
    _check_files(save_figure(fig, tmp_path / "curves.png"))
    one = boxacc_curves_figure(curves, {n: t for n in curves}, deltas=["50"])
    assert len([ax for ax in one.axes if ax.lines]) == 1 and one.get_figwidth() == pytest.approx(3.3)
    with pytest.raises(InputError, match="no BoxAcc curve at IoU 90"):
        boxacc_curves_figure(curves, {n: t for n in curves}, deltas=["90"])


def test_per_class_bars(tmp_path):
    rng = np.random.default_rng(1)
    names = [f"{i + 1:03d}.Class_{i}" for i in range(40)]
    values = {"baseline": rng.uniform(0, 100, 40), "CutMix": rng.uniform(0, 100, 40)}
    values["CutMix"][7] = np.nan
    fig = per_class_figure(names, values, max_classes=10)
    dist, bars = fig.axes[0], fig.axes[1]
    assert len(dist.lines) == 2 and len(bars.patches) == 2 * 10
    # the bars show the 10 classes with the largest |difference|, largest first
    spread = np.abs(values["baseline"] - values["CutMix"])
    spread[7] = 0.0
    top = np.argsort(-spread)[:10]
    assert [t.get_text() for t in bars.get_yticklabels()] == [short_class_name(names[j], 30) for j in top]
    assert min(_texts_readable(fig)) >= MIN_FONT_PT
    _check_files(save_figure(fig, tmp_path / "pc.png"))
    few = per_class_figure(names[:3], {k: v[:3] for k, v in values.items()})
    assert len(few.axes) == 1 and [t.get_text() for t in few.axes[0].get_yticklabels()] == [
        "Class 0",
        "Class 1",
        "Class 2",
    ]


def test_module_imports_no_torch_and_leaves_the_backend_alone():
    import subprocess

    code = (
        "import sys, eval.figures; print(sorted(m for m in ('torch', 'wsol', 'cam', 'matplotlib.pyplot') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    assert out.stdout.strip() == "[]"
