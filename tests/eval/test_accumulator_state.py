"""Accumulators declare their state once; reset / merge / state_dict / load_state_dict follow from it.

For every accumulator (and the evaluator that bundles them): fed in chunks and merged == fed in
one shot, bit for bit; a state_dict round trip is exact; merging two halves gives the whole; the
state_dict holds exactly the declared states (plus ``kind``, ``config``, ``keep_per_image`` and
``children``); incompatible merges and loads are refused without changing anything.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from eval.errors import InputError
from eval.evaluator import LocalizationEvaluator, score_image
from eval.metrics import (
    STATE_META_KEYS,
    Accumulator,
    BoxAccuracy,
    Classification,
    PxAP,
    TopKLocalization,
    pxap_histograms,
)
from eval.settings import MetricSettings
from tests.eval.test_sweep import make_map, random_gt

N = 11
SPLIT = 6  # chunks [0, 6) and [6, 11)
KINDS = ("smooth", "noisy", "blocks", "constant", "noise")


def _data(seed: int = 0, size: int = 32) -> dict:
    rng = np.random.default_rng(seed)
    maps = np.stack([make_map(rng, KINDS[i % len(KINDS)], size, size) for i in range(N)])
    masks = rng.choice(np.array([0, 1, 255], dtype=np.uint8), size=(N, size, size), p=[0.6, 0.3, 0.1])
    masks[:, :2, :2] = 1  # every image has foreground
    return {
        "maps": maps,
        "masks": masks,
        "gts": [random_gt(rng, size, size) for _ in range(N)],
        "labels": rng.integers(0, 4, N),
        "preds": np.stack([rng.permutation(6)[:5] for _ in range(N)]),
        "ious": rng.random(N),
        "ids": [f"c{i % 3}/img_{i:02d}.jpg" for i in range(N)],
    }


# accumulator factory, and how to feed it the images [lo, hi)
def _box(d, lo, hi, acc):
    acc.update(d["maps"][lo:hi], d["gts"][lo:hi], d["ids"][lo:hi])


def _pxap(d, lo, hi, acc):
    acc.update(d["maps"][lo:hi], d["masks"][lo:hi], d["ids"][lo:hi])


def _topk(d, lo, hi, acc):
    acc.add_ious(d["ious"][lo:hi], d["labels"][lo:hi], d["preds"][lo:hi], d["ids"][lo:hi])


def _cls(d, lo, hi, acc):
    acc.update(d["labels"][lo:hi], d["preds"][lo:hi], d["ids"][lo:hi])


def _evaluator(d, lo, hi, ev):
    st = ev.settings
    for i in range(lo, hi):
        score = score_image(
            st,
            d["maps"][i],
            d["gts"][i] if ev.has_boxes else None,
            d["masks"][i] if ev.has_masks else None,
            where=d["ids"][i],
        )
        ev.add(d["ids"][i], score, int(d["labels"][i]), d["preds"][i])


ST = MetricSettings(cam_curve_interval=0.05)
CASES = {
    "BoxAccuracy": (lambda: BoxAccuracy(0.05), _box),
    "BoxAccuracy-V1-no-per-image": (lambda: BoxAccuracy(0.1, (50,), multi_contour=False, keep_per_image=False), _box),
    "BoxAccuracy.from_settings": (lambda: BoxAccuracy.from_settings(ST), _box),
    "PxAP": (lambda: PxAP(0.05), _pxap),
    "PxAP.from_settings": (lambda: PxAP.from_settings(ST), _pxap),
    "TopKLocalization": (lambda: TopKLocalization(), _topk),
    "TopKLocalization.from_settings": (lambda: TopKLocalization.from_settings(ST, (1, 5)), _topk),
    "Classification": (lambda: Classification(), _cls),
    "Classification-no-per-image": (lambda: Classification((1, 3), keep_per_image=False), _cls),
    "LocalizationEvaluator-boxes": (lambda: LocalizationEvaluator(ST), _evaluator),
    "LocalizationEvaluator-masks": (lambda: LocalizationEvaluator(ST, boxes=False, masks=True), _evaluator),
    "LocalizationEvaluator-both": (lambda: LocalizationEvaluator(ST, boxes=True, masks=True), _evaluator),
}


def assert_same_state(a, b, where="state"):
    """Bit-exact equality of two state dicts: same keys, arrays of the same dtype, shape and bytes."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), where
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, where


def _compute(acc):
    """compute() with a short bootstrap, NaN made comparable (``nan == nan`` is False)."""
    return _nan_to_text(acc.compute(resamples=200))


def _nan_to_text(obj):
    if isinstance(obj, dict):
        return {k: _nan_to_text(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_nan_to_text(v) for v in obj)
    if isinstance(obj, float) and math.isnan(obj):
        return "nan"
    return obj


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.mark.parametrize("case", list(CASES))
def test_chunks_merged_equal_one_shot(case, data):
    make, feed = CASES[case]
    whole = make()
    feed(data, 0, N, whole)
    a, b = make(), make()
    feed(data, 0, SPLIT, a)
    feed(data, SPLIT, N, b)
    merged = a.merge(b)
    assert merged is a
    assert_same_state(merged.state_dict(), whole.state_dict())
    assert _compute(merged) == _compute(whole)
    # one image at a time == one shot
    single = make()
    for i in range(N):
        feed(data, i, i + 1, single)
    assert_same_state(single.state_dict(), whole.state_dict())


@pytest.mark.parametrize("case", list(CASES))
def test_state_dict_round_trip_and_halves(case, data):
    make, feed = CASES[case]
    whole = make()
    feed(data, 0, N, whole)
    restored = make()
    restored.load_state_dict(whole.state_dict())
    assert_same_state(restored.state_dict(), whole.state_dict())
    assert _compute(restored) == _compute(whole)
    # the halves travel as state dicts (as between processes) and merge in order
    halves = []
    for lo, hi in ((0, SPLIT), (SPLIT, N)):
        part = make()
        feed(data, lo, hi, part)
        halves.append(part.state_dict())
    total = make()
    for state in halves:
        part = make()
        part.load_state_dict(state)
        total.merge(part)
    assert_same_state(total.state_dict(), whole.state_dict())
    # the state dict holds copies: changing the accumulator later does not change it
    saved = whole.state_dict()
    feed(data, 0, 2, whole)
    assert_same_state(restored.state_dict(), saved)


@pytest.mark.parametrize("case", list(CASES))
def test_state_declared_once(case, data):
    make, feed = CASES[case]
    acc = make()
    assert isinstance(acc, Accumulator)
    names = acc.state_names
    assert names and len(set(names)) == len(names)
    sd = acc.state_dict()
    meta = {"kind", "config", "keep_per_image"} | ({"children"} if acc._children else set())
    assert set(sd) == set(names) | meta and meta <= set(STATE_META_KEYS)
    assert sd["kind"] == type(acc).__name__
    for child_name, child in acc._children.items():
        assert set(sd["children"][child_name]) - set(STATE_META_KEYS) == set(child.state_names)
    # every declared state is an attribute; reset brings back the fresh state
    fresh = make().state_dict()
    feed(data, 0, 3, acc)
    for name in names:
        assert hasattr(acc, name)
    acc.reset()
    assert_same_state(acc.state_dict(), fresh)


@pytest.mark.parametrize("case", list(CASES))
def test_incompatible_merge_and_load_change_nothing(case, data):
    make, feed = CASES[case]
    acc = make()
    feed(data, 0, 3, acc)
    before = acc.state_dict()
    other = {
        BoxAccuracy: lambda: BoxAccuracy(0.2),
        PxAP: lambda: PxAP(0.2),
        TopKLocalization: lambda: TopKLocalization(sigma=0.3),
        Classification: lambda: Classification((2,)),
        LocalizationEvaluator: lambda: LocalizationEvaluator(
            ST.replace(multi_contour=False), boxes=acc.has_boxes, masks=acc.has_masks
        ),
    }[type(acc)]()
    with pytest.raises(InputError):
        acc.merge(other)
    with pytest.raises(InputError):
        acc.merge(Classification() if not isinstance(acc, Classification) else TopKLocalization())
    with pytest.raises(InputError):
        acc.load_state_dict(other.state_dict())
    assert_same_state(acc.state_dict(), before)


def test_evaluator_merge_checks_children_before_changing_anything(data):
    a = LocalizationEvaluator(ST)
    _evaluator(data, 0, 3, a)
    b = LocalizationEvaluator(ST)
    _evaluator(data, 3, 5, b)
    b.box.keep_per_image = False  # only a child differs
    before = a.state_dict()
    with pytest.raises(InputError):
        a.merge(b)
    assert_same_state(a.state_dict(), before)


def test_add_state_rules():
    acc = Accumulator()
    acc.add_state("count", 0)
    acc.add_state("ids", np.zeros(0, dtype=str), "cat")
    with pytest.raises(ValueError):
        acc.add_state("count", 0)  # declared twice
    with pytest.raises(ValueError):
        acc.add_state("kind", 0)  # reserved
    with pytest.raises(ValueError):
        acc.add_state("x", np.zeros(3), "cat")  # a cat default is an empty [0, ...] array
    with pytest.raises(ValueError):
        acc.add_state("y", np.zeros(2, dtype=str))  # a sum state is numeric
    with pytest.raises(ValueError):
        acc.add_state("z", 0, "max")  # type: ignore[arg-type]
    acc._accumulate(count=2, ids=["a", "bb"])
    acc._accumulate(count=1, ids=["ccc"])
    assert acc.count == 3 and acc.ids == ["a", "bb", "ccc"]
    sd = acc.state_dict()
    assert sd["ids"].tolist() == ["a", "bb", "ccc"]  # long ids are not truncated to the declared dtype
    other = Accumulator()
    other.add_state("count", 0)
    other.add_state("ids", np.zeros(0, dtype=str), "cat")
    other.load_state_dict(sd)
    assert other.ids == ["a", "bb", "ccc"] and type(other.ids[0]) is str and other.count == 3


def test_from_settings_uses_the_settings_grid():
    st = MetricSettings(cam_curve_interval=0.02, iou_thresholds=(40, 60), multi_contour=False, sigma=0.2)
    box = BoxAccuracy.from_settings(st)
    assert box.thresholds is st.thresholds  # built once, in the settings
    plain = BoxAccuracy(0.02, (40, 60), multi_contour=False)
    assert box.settings() == plain.settings() and box.protocol() == plain.protocol()
    assert_same_state(box.state_dict(), plain.state_dict())
    px = PxAP.from_settings(st)
    assert px.edges is st.pxap_edges and px.thresholds is st.thresholds
    assert_same_state(px.state_dict(), PxAP(0.02).state_dict())
    assert px.protocol() == PxAP(0.02).protocol() and px.settings() == PxAP(0.02).settings()
    old = TopKLocalization.from_settings(st, (1,))
    assert old.settings() == TopKLocalization(sigma=0.2, k=(1,)).settings()
    ev = LocalizationEvaluator(st, masks=True)
    assert ev.box.thresholds is st.thresholds and ev.pxap.edges is st.pxap_edges


def test_checked_pxap_histograms_equal_checked_ones(data):
    st = MetricSettings(cam_curve_interval=0.05)
    for m, k in zip(data["maps"], data["masks"]):
        m32 = m.astype(np.float32)
        np.testing.assert_array_equal(
            pxap_histograms(m32, k, st.pxap_edges, checked=True), pxap_histograms(m32, k, st.pxap_edges)
        )
    with pytest.raises(InputError, match="NaN"):
        pxap_histograms(np.full((3, 3), np.nan), np.zeros((3, 3), dtype=np.uint8), st.pxap_edges)
