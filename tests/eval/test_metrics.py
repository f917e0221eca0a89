"""eval/metrics.py: accumulators (batches == one shot, merge == whole, protocol numbers)."""

import sys
from pathlib import Path

import numpy as np
import pytest

# the repo root, for benchmarks/ and tests/ (also when pytest is run from elsewhere)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.baseline_boxes import BaselineBoxAccuracy
from eval.errors import InputError
from eval.metrics import (
    BoxAccuracy,
    Classification,
    PxAP,
    TopKLocalization,
    box_hits_job,
    pxap_edges,
    pxap_from_histograms,
    pxap_histograms,
)
from eval.sweep import SweepPool
from tests.eval.test_sweep import make_map, random_gt


def _dataset(n=16, size=48, seed=0):
    rng = np.random.default_rng(seed)
    maps = np.stack([make_map(rng, ("smooth", "noisy", "blocks", "constant")[i % 4], size, size) for i in range(n)])
    gts = [random_gt(rng, size, size) for _ in range(n)]
    return maps, gts


# ------------------------------------------------------------------------------- BoxAccuracy


@pytest.mark.parametrize("multi_contour", [True, False])
def test_box_accuracy_matches_reference_evaluator(multi_contour):
    maps, gts = _dataset()
    ours = BoxAccuracy(0.01, multi_contour=multi_contour)
    ref = BaselineBoxAccuracy(0.01, multi_contour=multi_contour)
    ours.update(maps, gts)
    for m, g in zip(maps, gts):
        ref.accumulate(m, g)
    for i, d in enumerate((30, 50, 70)):
        np.testing.assert_array_equal(ours.num_correct[i], ref.num_correct[d])
    r = ours.compute()
    assert r["MaxBoxAcc"] == {str(d): v for d, v in ref.compute().items()}
    assert r["MaxBoxAccV2"] == float(np.average(list(ref.compute().values())))
    assert r["num_images"] == 16 and "protocol" in r and r["settings"]["multi_contour"] == multi_contour
    for d in ("30", "50", "70"):
        idx = r["best_threshold_index"][d]
        assert r["best_threshold"][d] == np.arange(0, 1, 0.01)[idx]
        assert r["box_acc"][d][idx] == r["MaxBoxAcc"][d]
        lo, hi = r["ci95"][f"MaxBoxAcc@{d}"]
        assert lo <= r["MaxBoxAcc"][d] <= hi


def test_batches_equal_one_shot_and_merge_equals_whole():
    maps, gts = _dataset(n=12)
    ids = [f"img{i}" for i in range(12)]
    whole = BoxAccuracy(0.05)
    whole.update(maps, gts, ids)
    batched = BoxAccuracy(0.05)
    for i in range(0, 12, 5):
        batched.update(maps[i : i + 5], gts[i : i + 5], ids[i : i + 5])
    single = BoxAccuracy(0.05)
    for m, g, i in zip(maps, gts, ids):
        single.update(m, g, i)
    a, b = BoxAccuracy(0.05), BoxAccuracy(0.05)
    a.update(maps[:7], gts[:7], ids[:7])
    b.update(maps[7:], gts[7:], ids[7:])
    merged = a.merge(b)
    expected = whole.compute()
    for acc in (batched, single, merged):
        assert acc.compute() == expected
        np.testing.assert_array_equal(acc.per_image_hits(), whole.per_image_hits())
        assert acc.image_ids == ids
    # state round trip
    restored = BoxAccuracy(0.05)
    restored.load_state_dict(whole.state_dict())
    assert restored.compute() == expected
    with pytest.raises(InputError):
        BoxAccuracy(0.1).load_state_dict(whole.state_dict())
    with pytest.raises(InputError):
        whole.merge(BoxAccuracy(0.05, multi_contour=False))


def test_workers_give_identical_results():
    # accumulators run no processes: the caller maps box_hits_job over its own pool
    maps, gts = _dataset(n=10, seed=4)
    one = BoxAccuracy(0.01)
    one.update(maps, gts)
    two = BoxAccuracy(0.01)
    with SweepPool(2) as pool:
        jobs = [two.job(m, g, f"image #{i}") for i, (m, g) in enumerate(zip(maps, gts))]
        two.add_hits(np.stack(list(pool.imap(box_hits_job, jobs))))
    assert two.compute() == one.compute()


def test_thresholds_as_first_argument_and_hits_api():
    t = np.arange(0, 1, 0.25)
    acc = BoxAccuracy(t, iou_thresholds=(50,), keep_per_image=False)
    assert acc.cam_curve_interval is None and len(acc.thresholds) == 4
    acc.update_hits(np.array([[True, False, True, False]]))
    acc.add_hits(np.array([[[True, True, False, False]]]))
    r = acc.compute()
    assert r["box_acc"]["50"] == [100.0, 50.0, 50.0, 0.0]
    assert r["MaxBoxAcc"]["50"] == 100.0 and r["best_threshold"]["50"] == 0.0
    assert "ci95" not in r
    with pytest.raises(InputError):
        acc.add_hits(np.zeros((2, 3), dtype=bool))


def test_v1_vs_v2_on_two_blobs():
    # big blob (top-left) and a small blob (bottom-right); the GT box is the small blob's
    s = np.zeros((40, 40))
    s[2:20, 2:20] = 1.0
    s[30:35, 30:35] = 0.9
    gt = [np.array([[30, 30, 35, 35]])]
    v2 = BoxAccuracy(0.1, iou_thresholds=(50,), multi_contour=True)
    v1 = BoxAccuracy(0.1, iou_thresholds=(50,), multi_contour=False)
    v2.update(s[None], gt)
    v1.update(s[None], gt)
    assert v2.compute()["MaxBoxAcc"]["50"] == 100.0  # the small blob's box (30,30,35,35) matches
    # V1 takes the largest contour, always the big blob (at tau 0.9, thr 229, the small blob, whose
    # quantized value is 229, is gone anyway)
    assert v1.compute()["MaxBoxAcc"]["50"] == 0.0


def test_single_image_with_several_gt_boxes():
    s = np.zeros((20, 20))
    s[2:6, 2:6] = 1.0
    acc = BoxAccuracy(0.5, iou_thresholds=(50,))
    acc.update(s, [[10, 10, 15, 15], [2, 2, 6, 6]], "one")  # one image, two GT boxes
    assert acc.compute()["MaxBoxAcc"]["50"] == 100.0 and acc.image_ids == ["one"]


def test_box_accuracy_errors():
    with pytest.raises(InputError, match="no image"):
        BoxAccuracy(0.1).compute()
    with pytest.raises(InputError):
        BoxAccuracy(0.1, iou_thresholds=(150,))
    acc = BoxAccuracy(0.1)
    with pytest.raises(InputError, match="img_7"):
        acc.update(np.full((1, 5, 5), np.nan), [np.array([[0, 0, 1, 1]])], ["img_7"])
    with pytest.raises(InputError):
        acc.update(np.zeros((2, 5, 5)), [np.array([[0, 0, 1, 1]])])


# ------------------------------------------------------------------------------------- PxAP


def _naive_pxap(scoremaps, masks, interval):
    """Protocol 3.2 by direct counting: operating points s >= edge, from the highest edge down."""
    edges = np.append(np.arange(0, 1, interval), [1.0, 2.0, 3.0])
    s = np.concatenate([m.ravel() for m in scoremaps])
    g = np.concatenate([k.ravel() for k in masks])
    s, g = s[g != 255], g[g != 255]
    ops = edges[:-1][::-1]  # bins [e_i, e_{i+1}); the reversed cumulative sums are "s >= e_i"
    tp = np.array([((s >= e) & (g == 1)).sum() for e in ops], dtype=float)
    fp = np.array([((s >= e) & (g == 0)).sum() for e in ops], dtype=float)
    prec = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    rec = tp / (g == 1).sum()
    return 100 * sum(prec[i] * (rec[i] - rec[i - 1]) for i in range(1, len(ops)) if tp[i] + fp[i] > 0)


def test_pxap_perfect_constant_and_naive():
    rng = np.random.default_rng(0)
    mask = np.zeros((20, 30), dtype=np.uint8)
    mask[5:15, 3:20] = 1
    mask[0:2, :] = 255
    perfect = mask.astype(np.float64) * (mask == 1)
    p = PxAP(0.01)
    p.update(perfect, mask)
    assert p.compute()["PxAP"] == 100.0
    const = PxAP(0.01)
    const.update(np.full((20, 30), 0.37), mask)
    n_fg, n_bg = (mask == 1).sum(), (mask == 0).sum()
    assert const.compute()["PxAP"] == pytest.approx(100 * n_fg / (n_fg + n_bg), rel=1e-12)
    maps = [rng.random((20, 30)) for _ in range(3)]
    maps[1][3, 3] = 1.0  # a score of exactly 1.0 falls in [1, 2)
    masks = [mask, (rng.random((20, 30)) > 0.7).astype(np.uint8), mask]
    acc = PxAP(0.05)
    acc.update(np.stack(maps), np.stack(masks))
    assert acc.compute()["PxAP"] == pytest.approx(_naive_pxap(maps, masks, 0.05), rel=1e-12)
    # batches == one shot, merge == whole, histogram API
    a, b = PxAP(0.05), PxAP(0.05)
    a.update(maps[0], masks[0])
    fg, bg = pxap_histograms(maps[1], masks[1], 0.05)
    b.update_histograms(fg, bg)
    b.add_histograms(pxap_histograms(maps[2], masks[2], pxap_edges(0.05))[None])
    assert a.merge(b).compute()["PxAP"] == acc.compute()["PxAP"]
    r = acc.compute()
    assert r["ci95"]["PxAP"][0] <= r["PxAP"] <= r["ci95"]["PxAP"][1]


def test_pxap_errors():
    with pytest.raises(InputError, match="foreground"):
        pxap_from_histograms(np.zeros(5), np.ones(5))
    p = PxAP(0.1)
    with pytest.raises(InputError, match="mask values"):
        p.update(np.zeros((3, 3)), np.full((3, 3), 2, dtype=np.uint8))
    with pytest.raises(InputError, match="shape"):
        p.update(np.zeros((3, 3)), np.zeros((3, 4), dtype=np.uint8))
    p.update(np.zeros((3, 3)), np.full((3, 3), 255, dtype=np.uint8))  # all ignore
    with pytest.raises(InputError):
        p.compute()


# ------------------------------------------------------------------------ old protocol, classes


def test_topk_localization_and_classification():
    s = np.zeros((20, 20))
    s[2:10, 2:10] = 1.0
    gt = [np.array([[2, 2, 9, 9]]), np.array([[2, 2, 9, 9]]), np.array([[12, 12, 19, 19]])]
    labels = [3, 4, 5]
    preds = np.array([[3, 0, 1, 2, 9], [0, 4, 1, 2, 9], [5, 0, 1, 2, 9]])
    loc = TopKLocalization(sigma=0.15)
    loc.update(np.stack([s, s, s]), gt, labels, preds, ["a", "b", "c"])
    r = loc.compute()
    # image a: IoU 1 and top-1 right; b: IoU 1, label only in the top-5; c: right class, box misses
    assert r["gt_known_loc"] == pytest.approx(200 / 3)
    assert r["top1_loc"] == pytest.approx(100 / 3)
    assert r["top5_loc"] == pytest.approx(200 / 3)
    np.testing.assert_array_equal(loc.per_image_hits(), [[1, 1, 1], [1, 0, 1], [0, 0, 0]])
    assert r["settings"]["compare"] == ">" and "CutMix" in r["protocol"]
    # IoU exactly 0.5: ">" (CutMix) misses, ">=" (wsolevaluation) hits
    strict, loose = TopKLocalization(k=()), TopKLocalization(k=(), compare=">=")
    strict.add_ious([0.5])
    loose.add_ious([0.5])
    assert strict.compute()["gt_known_loc"] == 0.0 and loose.compute()["gt_known_loc"] == 100.0
    cls = Classification()
    cls.update(labels, preds)
    c = cls.compute()
    assert c["top1_cls"] == pytest.approx(200 / 3) and c["top5_cls"] == 100.0
    one = Classification()
    for lab, p in zip(labels, preds):
        one.update_one(lab, p)
    assert one.compute() == c
    half = Classification()
    half.update(labels[:1], preds[:1])
    rest = Classification()
    rest.update(labels[1:], preds[1:])
    assert half.merge(rest).compute() == c
    restored = TopKLocalization(sigma=0.15)
    restored.load_state_dict(loc.state_dict())
    assert restored.compute() == r
    with pytest.raises(InputError, match="top-5"):
        Classification().update([1], [[1, 2]])


@pytest.mark.parametrize("sigma", [float("nan"), 1.0, 5.0, -0.1])
def test_metric_settings_refuse_a_sigma_outside_the_unit_interval(sigma):
    from eval.settings import MetricSettings

    with pytest.raises(InputError, match=r"sigma is a fraction of the map's max in \[0, 1\)"):
        MetricSettings(sigma=sigma)
    assert MetricSettings(sigma=0.0).sigma == 0.0
