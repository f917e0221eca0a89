"""eval/stats.py: bootstrap intervals and the exact McNemar test."""

import math

import numpy as np
import pytest

from eval.errors import InputError
from eval.stats import align_paired, bootstrap_ci, bootstrap_ci_weighted, mcnemar_exact


def test_bootstrap_is_deterministic_and_brackets_the_mean():
    rng = np.random.default_rng(0)
    hits = rng.random(500) < 0.7
    a = bootstrap_ci(hits, scale=100.0)
    b = bootstrap_ci(hits, scale=100.0)
    assert a == b
    lo, hi = a
    assert lo < 100 * hits.mean() < hi
    # binomial standard error ~ 2.05 points: a 95% interval about 8 points wide
    assert 6.0 < hi - lo < 10.5
    assert bootstrap_ci(hits, seed=1) != bootstrap_ci(hits, seed=0)
    assert bootstrap_ci(np.ones(10), scale=100.0) == (100.0, 100.0)
    assert bootstrap_ci(np.zeros(10)) == (0.0, 0.0)


def test_bootstrap_matches_index_resampling():
    """Drawing the multinomial counts of distinct values is the same distribution as resampling
    image indices: compare the quantiles with the naive bootstrap (many resamples)."""
    rng = np.random.default_rng(3)
    values = rng.choice([0.0, 1 / 3, 2 / 3, 1.0], size=200, p=[0.2, 0.3, 0.3, 0.2])
    lo, hi = bootstrap_ci(values, resamples=20000, seed=5)
    idx = np.random.default_rng(6).integers(0, 200, size=(20000, 200))
    naive = np.quantile(values[idx].mean(axis=1), [0.025, 0.975])
    assert lo == pytest.approx(naive[0], abs=0.006)
    assert hi == pytest.approx(naive[1], abs=0.006)


def test_bootstrap_weighted_pooled_statistic():
    rng = np.random.default_rng(1)
    records = rng.integers(0, 5, size=(50, 2)).astype(float)

    def ratio(pooled):  # pooled [B, 2]
        return pooled[:, 0] / pooled.sum(axis=1)

    lo, hi = bootstrap_ci_weighted(records, ratio, resamples=500)
    point = records[:, 0].sum() / records.sum()
    assert lo < point < hi
    assert (lo, hi) == bootstrap_ci_weighted(records, ratio, resamples=500)


def test_bootstrap_errors():
    with pytest.raises(InputError):
        bootstrap_ci([])
    with pytest.raises(InputError):
        bootstrap_ci([1.0, np.nan])
    with pytest.raises(InputError):
        bootstrap_ci([1.0], level=1.5)


def test_mcnemar_exact_hand_computed():
    # 9 images only a right, 1 only b right: p = 2 * P(X <= 1 | n=10) = 2 * 11 / 1024
    a = np.array([1] * 9 + [0] + [1] * 5 + [0] * 5, dtype=bool)
    b = np.array([0] * 9 + [1] + [1] * 5 + [0] * 5, dtype=bool)
    r = mcnemar_exact(a, b)
    assert (r["a_only"], r["b_only"], r["both"], r["neither"], r["n"]) == (9, 1, 5, 5, 20)
    assert r["p_value"] == 2 * 11 / 1024
    assert r["difference"] == pytest.approx(40.0)
    assert mcnemar_exact(b, a)["p_value"] == r["p_value"]
    assert mcnemar_exact(a, a)["p_value"] == 1.0
    # balanced discordance: p = 1
    assert mcnemar_exact([1, 0], [0, 1])["p_value"] == 1.0


def test_mcnemar_large_n_uses_log_space_consistently():
    n = 30000
    k = 14500
    r = mcnemar_exact(np.r_[np.ones(k), np.zeros(n - k)].astype(bool), np.r_[np.zeros(k), np.ones(n - k)].astype(bool))
    # normal approximation of the two-sided tail as a sanity check
    z = (k + 0.5 - n / 2) / math.sqrt(n / 4)
    approx = math.erfc(-z / math.sqrt(2))
    assert r["p_value"] == pytest.approx(approx, rel=0.05)


def test_align_paired():
    ids, va, vb = align_paired(["x", "y", "z"], [1, 0, 1], ["z", "x", "y"], [0, 1, 1])
    assert ids == ["x", "y", "z"]
    np.testing.assert_array_equal(vb, [1, 1, 0])
    with pytest.raises(InputError, match="different images"):
        align_paired(["x", "y"], [1, 0], ["x", "w"], [1, 1])
    with pytest.raises(InputError):
        mcnemar_exact([1, 0], [1])
