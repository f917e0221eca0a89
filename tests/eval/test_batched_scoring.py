"""Batched accumulation and the one-search PxAP histograms equal their one-image forms."""

from __future__ import annotations

import numpy as np
import pytest

from eval.errors import InputError
from eval.evaluator import LocalizationEvaluator, score_image
from eval.metrics import pxap_edges, pxap_histograms
from eval.settings import MetricSettings


def _np_hist(s: np.ndarray, m: np.ndarray, e: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64)
    return np.stack([np.histogram(s[m == 1], bins=e)[0], np.histogram(s[m == 0], bins=e)[0]])


@pytest.mark.parametrize("interval", [0.01, 0.001, 0.05])
def test_pxap_histograms_equal_np_histogram(interval):
    rng = np.random.default_rng(3)
    e = pxap_edges(interval)
    for t in range(120):
        h, w = rng.integers(1, 30, 2)
        kind = t % 4
        if kind == 0:
            s = rng.random((h, w))
        elif kind == 1:
            s = rng.choice(e[e <= 1], size=(h, w))  # values exactly on the edges, 0 and 1 included
        elif kind == 2:
            s = rng.integers(0, 256, (h, w)) / 255.0
        else:
            s = np.ones((h, w))
        s = s.astype(np.float32) if t % 3 == 0 else s
        m = rng.choice(np.array([0, 1, 255], dtype=np.uint8), size=(h, w))
        assert np.array_equal(pxap_histograms(s, m, e), _np_hist(s, m, e))


def test_pxap_histograms_hand_case():
    # edges 0, 0.5, 1: a value on an inner edge goes up, a value on the last edge stays in
    e = np.array([0.0, 0.5, 1.0])
    s = np.array([[0.0, 0.5, 1.0, 0.25]])
    m = np.array([[1, 1, 0, 255]], dtype=np.uint8)
    assert pxap_histograms(s, m, e).tolist() == [[1, 1], [0, 1]]


def _scores(st, n, rng, masks):
    out = []
    for _ in range(n):
        s = rng.random((12, 14))
        gt = np.array([[2, 3, 9, 10]])
        m = rng.choice(np.array([0, 1], dtype=np.uint8), size=(12, 14)) if masks else None
        out.append(score_image(st, s, gt, m))
    return out


def test_add_many_equals_repeated_add():
    st = MetricSettings(cam_curve_interval=0.05)
    rng = np.random.default_rng(0)
    scores = _scores(st, 9, rng, masks=True)
    ids = [f"im{i}" for i in range(9)]
    labels = [int(v) for v in rng.integers(0, 4, 9)]
    topks = [[int(v) for v in rng.permutation(6)[:5]] for _ in range(9)]
    one = LocalizationEvaluator(st, boxes=True, masks=True)
    for i, s, lab, top in zip(ids, scores, labels, topks):
        one.add(i, s, lab, top)
    many = LocalizationEvaluator(st, boxes=True, masks=True)
    many.add_many(ids[:4], scores[:4], labels[:4], topks[:4])
    many.add_many(ids[4:], scores[4:], labels[4:], topks[4:])
    a, b = one.state_dict(), many.state_dict()
    assert a.keys() == b.keys()
    assert one.compute()[0] == many.compute()[0]
    assert one.compute()[1] == many.compute()[1]


def test_add_many_refuses_before_changing_the_state():
    st = MetricSettings(cam_curve_interval=0.05)
    scores = _scores(st, 3, np.random.default_rng(1), masks=False)
    scores[2].hits = None
    ev = LocalizationEvaluator(st, boxes=True, ks=(1,))
    with pytest.raises(InputError, match="c: no box hits"):
        ev.add_many(["a", "b", "c"], scores, [0, 1, 2], [[0], [1], [2]])
    assert len(ev) == 0 and ev.cls is not None and ev.cls.count == 0
