"""eval/sweep.py: exact agreement with the straightforward OpenCV evaluator, and the OpenCV facts
the one-pass kernel relies on (checked against the installed OpenCV)."""

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

# the repo root, for benchmarks/ and tests/ (also when pytest is run from elsewhere)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.baseline_boxes import baseline_best_iou, baseline_boxes
from eval.errors import InputError
from eval.sweep import (
    HAVE_NUMBA,
    binarization_levels,
    box_at_fixed_threshold,
    boxes_at_threshold,
    largest_component_box,
    opencv_tie_order,
    quantize_scoremap,
    sweep,
    sweep_best_iou,
    sweep_hits,
    thresholds_from_interval,
)

METHODS = ["opencv"] + (["numba"] if HAVE_NUMBA else [])


# ---------------------------------------------------------------------------- random score maps


def _normalize(m):
    m = m - m.min()
    top = m.max()
    return m / top if top > 0 else m


def make_map(rng, kind, h, w):
    """Score maps of the kinds the protocol meets (and a few it should survive)."""
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
    elif kind == "blocks":  # few levels, large flat areas, holes, touching borders
        g = (max(1, h // int(rng.integers(1, 6))), max(1, w // int(rng.integers(1, 6))))
        m = cv2.resize(rng.integers(0, 4, g).astype(np.float64), (w, h), interpolation=cv2.INTER_NEAREST)
    elif kind == "constant":
        return np.full((h, w), rng.choice([0.0, 1.0, rng.random()]))
    else:
        raise ValueError(kind)
    m = _normalize(m)
    if rng.random() < 0.25:
        m = m * rng.uniform(0.0, 1.0)  # max below 1: tau is relative to the quantized max
    return m


def random_gt(rng, h, w):
    k = int(rng.integers(1, 4))
    x0 = rng.integers(0, w, k)
    y0 = rng.integers(0, h, k)
    x1 = np.minimum(w - 1, x0 + rng.integers(0, w, k))
    y1 = np.minimum(h - 1, y0 + rng.integers(0, h, k))
    return np.stack([x0, y0, x1, y1], axis=1)


KINDS = ("smooth", "noisy", "noise", "rings", "blocks", "constant")


# ------------------------------------------------------------------------------- hand examples


def _map_4x5():
    q = np.array([[0, 0, 0, 0, 0], [0, 200, 200, 0, 100], [0, 200, 255, 0, 100], [0, 0, 0, 0, 0]], dtype=np.float64)
    s = (q + 0.5) / 255  # (s * 255).astype(uint8) == q exactly
    s[2, 2] = 1.0
    return s


def test_quantization_and_levels():
    s = _map_4x5()
    q = quantize_scoremap(s)
    assert q.dtype == np.uint8 and q.max() == 255 and q[1, 4] == 100
    t = np.array([0.0, 0.3, 0.5, 0.9, 0.999])
    np.testing.assert_array_equal(binarization_levels(255, t), [0, 76, 127, 229, 254])
    np.testing.assert_array_equal(binarization_levels(100, t), [0, 30, 50, 90, 99])
    # np.arange edge cases are kept: 0.6000000000000001 etc.
    assert thresholds_from_interval(0.1)[6] == np.arange(0, 1, 0.1)[6]
    assert len(thresholds_from_interval(0.001)) == 1000


@pytest.mark.parametrize(
    "tau, v2_boxes, v1_box",
    [
        (0.0, [[4, 1, 4, 3], [1, 1, 3, 3]], [1, 1, 3, 3]),  # two components; the 2x2 square has area 1
        (0.3, [[4, 1, 4, 3], [1, 1, 3, 3]], [1, 1, 3, 3]),  # thr 76 < 100: same
        (0.5, [[1, 1, 3, 3]], [1, 1, 3, 3]),  # thr 127: the column of 100s is gone
        (0.9, [[2, 2, 3, 3]], [2, 2, 3, 3]),  # thr 229: the single 255 pixel
        (0.999, [[2, 2, 3, 3]], [2, 2, 3, 3]),  # thr 254
    ],
)
def test_4x5_map_expected_boxes(tau, v2_boxes, v1_box):
    s = _map_4x5()
    got_v2 = boxes_at_threshold(s, tau, multi_contour=True)
    assert sorted(got_v2.tolist()) == sorted(v2_boxes)
    np.testing.assert_array_equal(boxes_at_threshold(s, tau, multi_contour=False), [v1_box])
    gt = np.array([[1, 1, 3, 3]])
    expected = 1.0 if v1_box == [1, 1, 3, 3] else 4 / 9
    for method in METHODS:
        for mc in (True, False):
            out = sweep_best_iou(s, gt, np.array([tau]), multi_contour=mc, method=method)
            assert out[0] == expected


def test_empty_foreground_gives_zero_box():
    s = np.zeros((6, 7))
    np.testing.assert_array_equal(boxes_at_threshold(s, 0.5, True), [[0, 0, 0, 0]])
    for method in METHODS:
        # [0,0,0,0] against GT (0,0,0,0): two one-pixel boxes, IoU 1
        assert sweep_best_iou(s, [[0, 0, 0, 0]], np.array([0.0, 0.5]), multi_contour=True, method=method).tolist() == [
            1.0,
            1.0,
        ]
        assert sweep_best_iou(s, [[0, 0, 1, 1]], np.array([0.0]), multi_contour=False, method=method).tolist() == [0.25]


def test_hole_contour_box_counts_in_v2():
    # a 5x5 square at (1,1) with a hole pixel at (3,3): boundingRects (1,1,5,5) and (2,2,3,3),
    # so boxes (1,1,6,6) and (2,2,5,5)
    s = np.zeros((8, 8))
    s[1:6, 1:6] = 1.0
    s[3, 3] = 0.0
    boxes = boxes_at_threshold(s, 0.5, multi_contour=True)
    assert sorted(boxes.tolist()) == [[1, 1, 6, 6], [2, 2, 5, 5]]
    for method in METHODS:
        assert sweep_best_iou(s, [[2, 2, 5, 5]], np.array([0.5]), multi_contour=True, method=method)[0] == 1.0
        v1 = sweep_best_iou(s, [[2, 2, 5, 5]], np.array([0.5]), multi_contour=False, method=method)[0]
        assert v1 == 16 / 36  # V1 keeps the outer contour only


# ------------------------------------------------------------------------------ OpenCV facts


def _depths(hierarchy):
    h = hierarchy[0]
    depth = np.zeros(len(h), dtype=int)
    for i in range(len(h)):
        j = h[i, 3]
        while j != -1:
            depth[i] += 1
            j = h[j, 3]
    return depth


def _block_area(mask):
    """#(2x2 blocks fully inside) + 0.5 * #(blocks with 3 pixels inside)."""
    p = np.pad(mask.astype(int), 1)
    k = p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:]
    return float((k == 4).sum() + 0.5 * (k == 3).sum())


def _filled(mask):
    """The 8-connected set ``mask`` with its 4-connected holes filled."""
    n, lab = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    border = set(np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])))
    hole = (~mask) & ~np.isin(lab, list(border))
    return mask | hole


def test_opencv_contour_facts_on_random_binary_maps():
    rng = np.random.default_rng(1)
    tie_order = opencv_tie_order()
    for it in range(300):
        h, w = (int(v) for v in rng.integers(1, 28, 2))
        kind = KINDS[it % 5]
        b = make_map(rng, kind, h, w) > rng.uniform(0.05, 0.9)
        img = b.astype(np.uint8) * 255
        contours, hier = cv2.findContours(img, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
        n8, lab8, stats8, _ = cv2.connectedComponentsWithStats(img, connectivity=8)
        if not contours:
            assert n8 == 1
            continue
        depth = _depths(hier)
        outer = sorted(cv2.boundingRect(c) for c, d in zip(contours, depth) if d % 2 == 0)
        holes = sorted(cv2.boundingRect(c) for c, d in zip(contours, depth) if d % 2 == 1)
        # fact 2: outer contours = 8-connected components, boundingRect = pixel box
        assert outer == sorted(tuple(int(v) for v in stats8[i, :4]) for i in range(1, n8))
        # fact 3: holes = 4-connected background components off the border, box grown by 1
        n4, lab4, stats4, _ = cv2.connectedComponentsWithStats((~b).astype(np.uint8), connectivity=4)
        border = set(np.unique(np.concatenate([lab4[0], lab4[-1], lab4[:, 0], lab4[:, -1]])).tolist())
        exp_holes = sorted(
            (int(x) - 1, int(y) - 1, int(ww) + 2, int(hh) + 2)
            for i, (x, y, ww, hh, _) in enumerate(stats4)
            if i > 0 and i not in border and not b[lab4 == i].any()
        )
        assert holes == exp_holes
        areas = [cv2.contourArea(c) for c in contours]
        parent = hier[0][:, 3]
        firsts = []
        for i, c in enumerate(contours):
            if depth[i] % 2 == 0:
                x, y = c[0, 0]
                comp = lab8 == lab8[y, x]
                # fact 4: polygon area = block area of the component with its holes filled
                assert areas[i] == _block_area(_filled(comp))
                if depth[i] == 0:
                    firsts.append(int(np.flatnonzero(comp.ravel())[0]))
            if parent[i] != -1:
                # fact 5: parents first; holes never larger than their component; nested strictly smaller
                assert parent[i] < i
                assert areas[i] <= areas[parent[i]]
                if depth[i] % 2 == 0:
                    assert areas[i] < areas[parent[parent[i]]]
        if tie_order:  # fact 6: top-level components listed by decreasing first pixel
            assert firsts == sorted(firsts, reverse=True)


# ----------------------------------------------------------------------- exactness vs baseline


@pytest.mark.parametrize("method", METHODS)
def test_exact_against_baseline_small_random_maps(method):
    rng = np.random.default_rng(7)
    n_checked = 0
    for it in range(72 if method == "numba" else 12):
        kind = KINDS[it % len(KINDS)]
        h, w = (int(v) for v in rng.integers(1, 32, 2))
        s = make_map(rng, kind, h, w)
        gt = random_gt(rng, h, w)
        for interval in (0.01, 0.001) if it % 3 == 0 else (0.01,):
            t = thresholds_from_interval(interval)
            for mc in (True, False):
                expected = baseline_best_iou(s, gt, t, mc)
                got = sweep(s, gt, t, multi_contour=mc, method=method)
                np.testing.assert_array_equal(got.best_iou, expected, err_msg=f"{kind} {h}x{w} {interval} {mc}")
                hits = sweep_hits(s, gt, t, (30, 50, 70), multi_contour=mc, method=method)
                np.testing.assert_array_equal(hits, expected[None] >= np.array([0.3, 0.5, 0.7])[:, None])
                n_checked += 1
    assert n_checked > 0


def test_exact_against_baseline_224_maps():
    rng = np.random.default_rng(11)
    t = thresholds_from_interval(0.01)
    for it in range(4):
        kind = ("smooth", "noisy")[it % 2]
        s = make_map(rng, kind, 224, 224)
        gt = random_gt(rng, 224, 224)
        for mc in (True, False):
            np.testing.assert_array_equal(
                sweep_best_iou(s, gt, t, multi_contour=mc), baseline_best_iou(s, gt, t, mc), err_msg=f"{it} {kind} {mc}"
            )


def test_boxes_at_threshold_matches_baseline():
    rng = np.random.default_rng(3)
    for it in range(20):
        s = make_map(rng, KINDS[it % len(KINDS)], 30, 25)
        tau = float(rng.random())
        for mc in (True, False):
            np.testing.assert_array_equal(boxes_at_threshold(s, tau, mc), baseline_boxes(s, [tau], mc)[0])


def test_float32_and_float16_maps_are_taken_as_float64():
    rng = np.random.default_rng(5)
    s = make_map(rng, "smooth", 40, 40).astype(np.float32)
    t = thresholds_from_interval(0.01)
    gt = np.array([[5, 5, 30, 30]])
    np.testing.assert_array_equal(
        sweep_best_iou(s, gt, t, multi_contour=True), baseline_best_iou(s.astype(np.float64), gt, t, True)
    )


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((4, 4), np.nan), "NaN"),
        (np.full((4, 4), np.inf), "infinite"),
        (np.full((4, 4), 1.5), r"\[0, 1\]"),
        (np.full((4, 4), -0.1), r"\[0, 1\]"),
        (np.zeros((2, 4, 4)), "2-D"),
        (np.zeros((4, 4), dtype=np.uint8), "float"),
    ],
)
def test_bad_maps_raise_naming_the_image(bad, message):
    with pytest.raises(InputError, match=message) as exc:
        sweep(bad, [[0, 0, 1, 1]], np.array([0.5]), multi_contour=True, where="img_042.jpg")
    assert "img_042.jpg" in str(exc.value)


def test_bad_gt_and_thresholds():
    s = np.zeros((4, 4))
    with pytest.raises(InputError):
        sweep(s, np.zeros((0, 4)), np.array([0.5]), multi_contour=True)
    with pytest.raises(InputError):
        sweep(s, [[2, 0, 1, 1]], np.array([0.5]), multi_contour=True)
    with pytest.raises(InputError):
        sweep(s, [[0, 0, 1, 1]], np.array([1.0]), multi_contour=True)
    with pytest.raises(InputError):
        thresholds_from_interval(0)


# ------------------------------------------------------------------------- old protocol boxes


def test_largest_component_box_by_pixel_count_with_8_connectivity():
    m = np.zeros((10, 12), dtype=bool)
    m[1:3, 1:3] = True  # 4 pixels
    m[5, 5] = m[6, 6] = m[7, 7] = m[8, 8] = m[8, 9] = True  # 5 pixels, diagonal (8-connected)
    np.testing.assert_array_equal(largest_component_box(m), [5, 5, 9, 8])
    np.testing.assert_array_equal(largest_component_box(np.zeros((3, 3))), [0, 0, 0, 0])


def test_box_at_fixed_threshold_normalization_and_comparison():
    s = np.zeros((6, 8))
    s[1, 1:4] = 0.5
    s[4, 4:7] = 0.2
    s[4, 7] = 0.3
    # max-normalized: 0.2 / 0.5 = 0.4 and 0.3 / 0.5 = 0.6; sigma 0.4 with ">=" keeps 4 pixels in row 4
    np.testing.assert_array_equal(box_at_fixed_threshold(s, 0.4, normalize="max", compare=">="), [4, 4, 7, 4])
    np.testing.assert_array_equal(box_at_fixed_threshold(s, 0.4, normalize="max", compare=">"), [1, 1, 3, 1])
    np.testing.assert_array_equal(box_at_fixed_threshold(np.zeros((3, 3)), 0.15), [0, 0, 0, 0])
    # min-max: a constant map has no foreground
    np.testing.assert_array_equal(box_at_fixed_threshold(np.full((3, 3), 0.7), 0.15, normalize="minmax"), [0, 0, 0, 0])


# ------------------------------------------------------------------------------ fallbacks


def test_v1_ties_fall_back_to_opencv_when_its_order_is_unknown(monkeypatch):
    import eval.sweep as sweep_module

    rng = np.random.default_rng(2)
    maps = [make_map(rng, "noise", 24, 24) for _ in range(6)]
    gts = [random_gt(rng, 24, 24) for _ in range(6)]
    t = thresholds_from_interval(0.01)
    monkeypatch.setattr(sweep_module, "opencv_tie_order", lambda: False)
    fallbacks = 0
    for s, gt in zip(maps, gts):
        r = sweep(s, gt, t, multi_contour=False, method="numba")
        np.testing.assert_array_equal(r.best_iou, baseline_best_iou(s, gt, t, False))
        fallbacks += r.num_fallback_levels
    assert fallbacks > 0  # scattered noise pixels tie at area 0 with different boxes


def test_auto_method_without_numba_uses_opencv(monkeypatch):
    import eval.sweep as sweep_module

    monkeypatch.setattr(sweep_module, "HAVE_NUMBA", False)
    s = _map_4x5()
    r = sweep_module.sweep(s, [[1, 1, 3, 3]], np.array([0.0, 0.9]), multi_contour=True)
    assert r.method == "opencv" and r.best_iou.tolist() == [1.0, 4 / 9]
    with pytest.raises(InputError, match="numba"):
        sweep_module.sweep(s, [[1, 1, 3, 3]], np.array([0.0]), multi_contour=True, method="numba")


def test_number_of_boxes_matches_opencv():
    """The kernel counts hole contours with Euler numbers: compare with OpenCV's contour count."""
    rng = np.random.default_rng(9)
    t = thresholds_from_interval(0.05)
    for it in range(30):
        s = make_map(rng, KINDS[it % len(KINDS)], 20, 26)
        expected = sum(len(b) for b in baseline_boxes(s, t, True))
        assert sweep(s, [[0, 0, 3, 3]], t, multi_contour=True).num_boxes == expected


def test_largest_component_ties_go_to_the_first_in_row_major_order():
    m = np.zeros((9, 9), dtype=bool)
    m[6:8, 1:3] = True  # 4 pixels, starts at row 6
    m[1:3, 6:8] = True  # 4 pixels, starts at row 1: first in row-major order
    m[4, 4] = True
    np.testing.assert_array_equal(largest_component_box(m), [6, 1, 7, 2])
    rng = np.random.default_rng(0)
    for _ in range(100):
        m = rng.random((12, 15)) < 0.3
        n, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        sizes = np.bincount(lab.ravel())[1:]
        best = [i + 1 for i in range(n - 1) if sizes[i] == sizes.max()]
        first = min(best, key=lambda i: np.flatnonzero(lab.ravel() == i)[0])
        ys, xs = np.nonzero(lab == first)
        np.testing.assert_array_equal(largest_component_box(m), [xs.min(), ys.min(), xs.max(), ys.max()])


# ---------------------------------------------------------------------------- the process pool


def test_pool_start_forks_the_workers_once_and_gives_the_same_results():
    from eval.sweep import SweepPool

    maps = [_normalize(np.random.default_rng(i).random((9, 11))) for i in range(4)]
    gt = np.array([[1, 2, 6, 8]])
    t = thresholds_from_interval(0.1)
    with SweepPool(2) as pool:
        assert pool._pool is None  # lazy: nothing runs until started or used
        pool.start()
        started = pool._pool
        assert started is not None
        pool.start()  # idempotent
        assert pool._pool is started
        got = list(pool.imap(_best_iou_job, [(m, gt, t) for m in maps]))
        assert pool._pool is started  # imap uses the started pool
    assert got == [_best_iou_job((m, gt, t)) for m in maps]


def test_pool_start_in_process_loads_the_kernel():
    import eval.sweep as sw

    with sw.SweepPool(1) as pool:
        pool.start()
        assert pool._pool is None  # one worker: sweeps run in this process ...
        assert sw._kernel is not None  # ... with the kernel loaded


def _best_iou_job(job):
    m, gt, t = job
    return [float(v) for v in sweep(m, gt, t, multi_contour=True).best_iou]
