"""The bucketed numba kernel (eval/sweep_kernel.py) against the straightforward OpenCV evaluator
(benchmarks/baseline_boxes.py, the oracle): every threshold set, V1 and V2, exact and hits;
and its pieces (border following, level table, quantization, old-protocol box) against OpenCV
and numpy."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import eval.sweep as sweep_module  # noqa: E402
from benchmarks.baseline_boxes import baseline_best_iou  # noqa: E402
from eval.errors import InputError  # noqa: E402
from eval.sweep import (  # noqa: E402
    HAVE_NUMBA,
    binarization_levels,
    box_at_fixed_threshold,
    largest_component_box,
    quantize_scoremap,
    sweep,
    thresholds_from_interval,
)

assert HAVE_NUMBA, "numba is a dependency of the toolkit (pyproject.toml): the kernel tests need it"

KINDS = ("smooth", "noisy", "noise", "rings", "blocks", "constant")
DELTAS = np.array([0.3, 0.5, 0.7])


def _normalize(m):
    m = m - m.min()
    top = m.max()
    return m / top if top > 0 else m


def make_map(rng, kind, h, w):
    if kind == "smooth":
        g = int(rng.integers(2, 15))
        m = cv2.resize(rng.random((g, g)), (w, h), interpolation=cv2.INTER_CUBIC)
    elif kind == "noisy":
        g = int(rng.integers(2, 29))
        m = cv2.resize(rng.random((g, g)), (w, h), interpolation=cv2.INTER_NEAREST)
    elif kind == "noise":
        m = rng.random((h, w))
    elif kind == "rings":
        yy, xx = np.mgrid[0:h, 0:w]
        m = np.sin(np.hypot(xx - rng.random() * w, yy - rng.random() * h) / rng.uniform(0.7, 4))
        m = m + 0.3 * rng.random((h, w))
    elif kind == "blocks":
        g = (max(1, h // int(rng.integers(1, 6))), max(1, w // int(rng.integers(1, 6))))
        m = cv2.resize(rng.integers(0, 4, g).astype(np.float64), (w, h), interpolation=cv2.INTER_NEAREST)
    elif kind == "constant":
        return np.full((h, w), rng.choice([0.0, 1.0, rng.random()]))
    else:
        raise ValueError(kind)
    m = _normalize(m)
    if rng.random() < 0.25:
        m = m * rng.uniform(0.0, 1.0)
    return m


def random_gt(rng, h, w, k=None):
    k = int(rng.integers(1, 5)) if k is None else k
    x0 = rng.integers(0, w, k)
    y0 = rng.integers(0, h, k)
    x1 = np.minimum(w - 1, x0 + rng.integers(0, w, k))
    y1 = np.minimum(h - 1, y0 + rng.integers(0, h, k))
    return np.stack([x0, y0, x1, y1], axis=1)


def _check(s, gt, t, where=""):
    for mc in (True, False):
        expected = baseline_best_iou(np.asarray(s, dtype=np.float64), gt, t, mc)
        got = sweep(s, gt, t, multi_contour=mc, method="numba")
        np.testing.assert_array_equal(got.best_iou, expected, err_msg=f"{where} exact mc={mc}")
        hits = sweep(s, gt, t, multi_contour=mc, iou_thresholds=(30, 50, 70), method="numba").hits
        np.testing.assert_array_equal(hits, expected[None] >= DELTAS[:, None], err_msg=f"{where} hits mc={mc}")


@pytest.mark.parametrize("interval", [0.01, 0.05, 0.001])
def test_kernel_matches_oracle_at_protocol_intervals(interval):
    rng = np.random.default_rng(int(interval * 1e4))
    t = thresholds_from_interval(interval)
    for it in range(36 if interval != 0.001 else 18):
        kind = KINDS[it % len(KINDS)]
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        _check(make_map(rng, kind, h, w), random_gt(rng, h, w), t, f"{kind} {h}x{w} {interval}")


ODD_THRESHOLDS = [
    np.array([0.0]),
    np.array([0.5]),
    np.array([0.999]),
    np.array([0.9, 0.1, 0.5]),  # unsorted
    np.array([0.3, 0.3, 0.0, 0.3]),  # duplicates
    np.array([0.0, 1e-9, 0.004, 0.0039]),  # several taus on one level
    np.linspace(0, 0.99, 7),
    np.random.default_rng(4).random(23),
    np.zeros(0),  # no threshold at all
]


@pytest.mark.parametrize("t", ODD_THRESHOLDS, ids=[f"set{i}" for i in range(len(ODD_THRESHOLDS))])
def test_kernel_matches_oracle_on_odd_threshold_sets(t):
    rng = np.random.default_rng(len(t) + 1)
    for it in range(18):
        kind = KINDS[it % len(KINDS)]
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        s = make_map(rng, kind, h, w)
        gt = random_gt(rng, h, w)
        if len(t) == 0:
            for mc in (True, False):
                assert sweep(s, gt, t, multi_contour=mc, method="numba").best_iou.shape == (0,)
            continue
        _check(s, gt, t, f"{kind} {h}x{w}")


@pytest.mark.parametrize("value", [0.0, 1.0, 0.5, 1 / 255, 0.999])
def test_constant_maps(value):
    rng = np.random.default_rng(0)
    for h, w in ((1, 1), (1, 7), (6, 1), (9, 13)):
        s = np.full((h, w), value)
        for interval in (0.01, 0.001):
            _check(s, random_gt(rng, h, w), thresholds_from_interval(interval), f"{value} {h}x{w}")


def test_several_gt_boxes_and_float32_224_maps():
    rng = np.random.default_rng(21)
    t = thresholds_from_interval(0.01)
    for it in range(6):
        g = 14 if it % 2 else 28
        grid = rng.random((g, g))
        if it % 3 == 0:
            grid = cv2.GaussianBlur(grid, (0, 0), 1.5)
        m = _normalize(cv2.resize(grid, (224, 224), interpolation=cv2.INTER_CUBIC))
        s = m.astype(np.float32) if it % 2 else m
        _check(s, random_gt(rng, 224, 224, k=1 + it % 4), t, f"224 map {it}")


def test_maps_with_many_holes_and_nested_components():
    """Rings inside rings: holes, components inside holes, V1 areas decided by border following."""
    rng = np.random.default_rng(8)
    t = thresholds_from_interval(0.01)
    for it in range(10):
        h, w = (int(v) for v in rng.integers(20, 60, 2))
        yy, xx = np.mgrid[0:h, 0:w]
        m = np.zeros((h, w))
        for _ in range(int(rng.integers(1, 4))):
            cx, cy = rng.random() * w, rng.random() * h
            m += np.cos(np.hypot(xx - cx, yy - cy) / rng.uniform(1.0, 3.0))
        m += 0.2 * rng.random((h, w))
        _check(_normalize(m), random_gt(rng, h, w), t, f"rings {it}")


# ------------------------------------------------------------------------------ the pieces


def _kernel():
    return sweep_module._get_kernel()


def test_border_following_area_is_opencv_contour_area():
    kern = _kernel()
    rng = np.random.default_rng(3)
    for it in range(200):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        b = make_map(rng, KINDS[it % 5], h, w) > rng.uniform(0.05, 0.9)
        img = b.astype(np.uint8) * 255
        contours, hier = cv2.findContours(img, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
        n, lab = cv2.connectedComponents(img, connectivity=8)
        label = np.full((h + 2) * (w + 2), -1, dtype=np.int32)
        label.reshape(h + 2, w + 2)[1:-1, 1:-1][b] = 0
        areas = {}  # component -> areas of the contours through its pixels (outer and holes)
        for c in contours:
            x, y = c[0, 0]
            areas.setdefault(int(lab[y, x]), []).append(cv2.contourArea(c))
        for comp in range(1, n):
            ys, xs = np.nonzero(lab == comp)
            first = int(np.argmin(ys * w + xs))
            y0, x0 = int(ys[first]), int(xs[first])
            a2 = kern._outer_area2(label, (y0 + 1) * (w + 2) + x0 + 1, w + 2)
            assert a2 / 2 == max(areas[comp]), (it, comp)


@pytest.mark.parametrize("q_max", [0, 1, 2, 100, 254, 255])
def test_level_table_matches_binarization_levels(q_max):
    kern = _kernel()
    for t in ODD_THRESHOLDS[:-1] + [thresholds_from_interval(0.001), thresholds_from_interval(0.01)]:
        levels, inverse, ok = kern.level_table(np.asarray(t, dtype=np.float64), q_max)
        assert ok
        expected = binarization_levels(q_max, t)
        np.testing.assert_array_equal(levels[inverse], expected)
        np.testing.assert_array_equal(levels, np.unique(expected))
    assert not kern.level_table(np.array([0.5, 1.0]), 255)[2]
    assert not kern.level_table(np.array([np.nan]), 255)[2]
    with pytest.raises(InputError):
        sweep(np.zeros((3, 3)), [[0, 0, 1, 1]], np.array([0.2, 1.0]), multi_contour=True)


def test_quantize_checked_matches_numpy_and_flags_bad_values():
    kern = _kernel()
    rng = np.random.default_rng(6)
    for dtype in (np.float64, np.float32):
        s = rng.random((31, 17)).astype(dtype)
        s[0, 0], s[0, 1] = 0.0, 1.0
        q, hist, ok = kern.quantize_checked(s)
        assert ok
        np.testing.assert_array_equal(q, quantize_scoremap(s.astype(np.float64)))
        np.testing.assert_array_equal(hist, np.bincount(q.ravel(), minlength=256))
    for bad in (np.nan, np.inf, -np.inf, 1.0000001, -1e-300):
        s = np.zeros((4, 4))
        s[2, 3] = bad
        assert not kern.quantize_checked(s)[2]


@pytest.mark.parametrize("normalize", ["max", "minmax", "none"])
@pytest.mark.parametrize("compare", [">", ">="])
def test_old_protocol_box_matches_numpy_and_opencv(normalize, compare):
    assert _kernel() is not None  # loaded: box_at_fixed_threshold takes the compiled pass
    rng = np.random.default_rng(hash((normalize, compare)) % 1000)
    for it in range(120):
        kind = KINDS[it % len(KINDS)]
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        s = make_map(rng, kind, h, w)
        if it % 4 == 1:
            s = s.astype(np.float32)
        sigma = float(rng.choice([0.15, 0.5, rng.random(), 0.0, 1.0]))
        s64 = s.astype(np.float64)
        if normalize == "max":
            top = s64.max()
            ref = np.zeros(4, np.int64) if top <= 0 else None
            n = s64 / top if top > 0 else None
        elif normalize == "minmax":
            lo, hi = s64.min(), s64.max()
            ref = np.zeros(4, np.int64) if hi <= lo else None
            n = (s64 - lo) / (hi - lo) if hi > lo else None
        else:
            ref, n = None, s64
        if ref is None:
            ref = largest_component_box(n >= sigma if compare == ">=" else n > sigma)
        got = box_at_fixed_threshold(s, sigma, normalize=normalize, compare=compare)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, ref, err_msg=f"{kind} {h}x{w} sigma={sigma}")


def test_old_protocol_box_ties_and_errors():
    assert _kernel() is not None
    s = np.zeros((9, 9))
    s[6:8, 1:3] = 1.0  # 4 pixels, starts at row 6
    s[1:3, 6:8] = 1.0  # 4 pixels, starts at row 1: first in row-major order
    s[4, 4] = 1.0
    np.testing.assert_array_equal(box_at_fixed_threshold(s, 0.5), [6, 1, 7, 2])
    for bad, msg in ((np.full((3, 3), np.nan), "NaN"), (np.full((3, 3), 2.0), r"\[0, 1\]")):
        with pytest.raises(InputError, match=msg):
            box_at_fixed_threshold(bad, 0.15, where="img_7")
    with pytest.raises(InputError, match="normalize"):
        box_at_fixed_threshold(np.full((3, 3), 0.5), 0.15, normalize="bogus")
    with pytest.raises(InputError, match="compare"):
        box_at_fixed_threshold(np.full((3, 3), 0.5), 0.15, compare="<")


def _python(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_importing_the_sweep_does_not_import_numba():
    out = _python("import sys, eval.sweep, eval.metrics; print('numba' in sys.modules)")
    assert out == "False"


def test_kernel_start_leaves_scipy_importable():
    out = _python(
        "import sys, eval.sweep as s; s.warm_up(); a = 'scipy' in sys.modules; "
        "import scipy.linalg; print(a, s._kernel is not None)"
    )
    assert out == "False True"
