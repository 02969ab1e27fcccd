"""k-NN estimators against straightforward scipy references (same samples, 1e-9 bits) and closed forms.

The references below are written for clarity, not speed: scipy's cKDTree for the k-th neighbour, then
counts with ``query_ball_point(r = nextafter(eps, 0))`` (i.e. dist < eps), digamma from scipy.
Tolerance 1e-9 bits: both sides count the same integers; only float64 summation order differs (~1e-15).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist
from scipy.special import digamma

from infoplane.estimators.knn import KNNEstimator, kl_entropy, ksg_mi, ross_mi

LN2 = math.log(2)
TOL = 1e-9


def ref_ksg_max(a, b, k):
    """KSG algorithm 1 with the max norm, by cKDTree (p = inf)."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    n = len(a)
    joint = np.hstack([a, b])
    eps = cKDTree(joint).query(joint, k=k + 1, p=np.inf)[0][:, -1]  # k + 1: the row itself is returned first
    r = np.nextafter(eps, 0)
    n_a = np.array([len(cKDTree(a).query_ball_point(a[i], r[i], p=np.inf)) - 1 for i in range(n)])
    n_b = np.array([len(cKDTree(b).query_ball_point(b[i], r[i], p=np.inf)) - 1 for i in range(n)])
    return (digamma(k) + digamma(n) - np.mean(digamma(n_a + 1) + digamma(n_b + 1))) / LN2


def ref_ksg_euclid(a, b, k):
    """KSG with Euclidean marginal norms, brute force with scipy's cdist."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    n = len(a)
    da, db = cdist(a, a), cdist(b, b)
    np.fill_diagonal(da, np.inf)
    np.fill_diagonal(db, np.inf)
    eps = np.sort(np.maximum(da, db), axis=1)[:, k - 1]
    n_a, n_b = (da < eps[:, None]).sum(1), (db < eps[:, None]).sum(1)
    return (digamma(k) + digamma(n) - np.mean(digamma(n_a + 1) + digamma(n_b + 1))) / LN2


def ref_ross(t, y, k, p=np.inf):
    """Ross (2014) with scikit-learn's counting: d_i within the class by cKDTree, m_i = #{dist < d_i} incl. i."""
    n = len(t)
    d = np.empty(n)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        d[idx] = cKDTree(t[idx]).query(t[idx], k=k + 1, p=p)[0][:, -1]
    tree = cKDTree(t)
    m = np.array([len(tree.query_ball_point(t[i], np.nextafter(d[i], 0), p=p)) for i in range(n)])
    n_c = np.bincount(y)[y]
    return (digamma(n) - np.mean(digamma(n_c)) + digamma(k) - np.mean(digamma(m))) / LN2


def _pair(n=400, da=3, db=2, seed=0, rho=0.6):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, da))
    b = rho * a[:, :db] + math.sqrt(1 - rho**2) * rng.normal(size=(n, db))
    return a, b


@pytest.mark.parametrize("k", [1, 3, 7])
def test_ksg_max_matches_ckdtree_reference(k):
    a, b = _pair()
    assert ksg_mi(a, b, k=k, memory_mb=0.05) == pytest.approx(ref_ksg_max(a, b, k), abs=TOL)


def test_ksg_euclidean_matches_reference():
    a, b = _pair(da=4, db=3, seed=1)
    assert ksg_mi(a, b, k=3, metric="euclidean") == pytest.approx(ref_ksg_euclid(a, b, 3), abs=TOL)


def test_ksg_ties_strict_less_than():
    """Integer data: many exact ties at the radius; strict "<" must decide them as the reference does."""
    rng = np.random.default_rng(2)
    a = rng.integers(0, 6, size=(300, 2)).astype(float)
    b = (a[:, :1] + rng.integers(0, 3, size=(300, 1))).astype(float)
    a += 1e-3 * np.arange(300)[:, None]  # distinct rows (radius > 0), ties in b remain exact
    for k in (1, 4):
        assert ksg_mi(a, b, k=k, ties="keep") == pytest.approx(ref_ksg_max(a, b, k), abs=TOL)
        assert ksg_mi(a, b, k=k, metric="euclidean", ties="keep") == pytest.approx(ref_ksg_euclid(a, b, k), abs=TOL)


@pytest.mark.parametrize("metric,p", [("max", np.inf), ("euclidean", 2)])
def test_ross_matches_reference(metric, p):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, size=500)
    t = rng.normal(size=(500, 3)) + y[:, None] * np.array([1.0, 0.5, 0.0])
    assert ross_mi(t, y, k=3, metric=metric) == pytest.approx(ref_ross(t, y, 3, p), abs=TOL)
    est = KNNEstimator(k=3, metric=metric).estimate(t, y)
    assert est.I_TY == pytest.approx(ref_ross(t, y, 3, p), abs=TOL) and math.isnan(est.I_XT)
    assert "deterministic layer" in est.conventions["I_XT_note"]


def test_ross_matches_sklearn_private_kernel_in_1d():
    sk = pytest.importorskip("sklearn.feature_selection._mutual_info")
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, size=600)
    t = rng.normal(size=600) + y
    expected = sk._compute_mi_cd(t, y, n_neighbors=3) / LN2  # sklearn clips at 0: positive here
    assert expected > 0.1
    assert ross_mi(t, y, k=3) == pytest.approx(expected, abs=TOL)


@pytest.mark.slow
def test_ksg_close_to_gaussian_closed_form():
    """Correlated Gaussians, I = -1/2 log2(1 - rho^2) per pair of coordinates; KSG's bias is small at N=4000."""
    rng = np.random.default_rng(5)
    n, rho = 4000, 0.8
    a = rng.normal(size=(n, 2))
    b = rho * a + math.sqrt(1 - rho**2) * rng.normal(size=(n, 2))
    true = -2 * 0.5 * math.log2(1 - rho**2)  # 1.474 bits
    assert ksg_mi(a, b, k=3) == pytest.approx(true, abs=0.05)
    # KNNEstimator with a continuous target is the same KSG.
    r = KNNEstimator(target="continuous").estimate(a, b)
    assert r.I_TY == pytest.approx(ksg_mi(a, b), abs=TOL)


@pytest.mark.slow
def test_kl_entropy_gaussian_and_uniform():
    rng = np.random.default_rng(6)
    z = rng.normal(size=(3000, 3)) * np.array([1.0, 2.0, 0.5])
    true = 0.5 * math.log2((2 * math.pi * math.e) ** 3 * (1.0 * 4.0 * 0.25))
    assert kl_entropy(z, k=3) == pytest.approx(true, abs=0.05)
    u = rng.uniform(size=(3000, 2)) * np.array([2.0, 4.0])  # h = log2(8) = 3 bits
    assert kl_entropy(u, k=3, metric="max") == pytest.approx(3.0, abs=0.05)


def test_kl_entropy_matches_reference():
    rng = np.random.default_rng(7)
    z = rng.normal(size=(300, 4))
    for metric, p in (("euclidean", 2), ("max", np.inf)):
        r = cKDTree(z).query(z, k=4, p=p)[0][:, -1]
        log_v = 4 * math.log(2) if metric == "max" else 2 * math.log(math.pi) - math.lgamma(3)
        ref = (digamma(300) - digamma(3) + log_v + 4 * np.mean(np.log(r))) / LN2
        assert kl_entropy(z, k=3, metric=metric) == pytest.approx(ref, abs=TOL)


def test_torch_input_and_blocks_do_not_change_answer():
    a, b = _pair(n=300, seed=8)
    ref = ksg_mi(a, b)
    assert ksg_mi(torch.from_numpy(a), torch.from_numpy(b), memory_mb=0.01) == pytest.approx(ref, abs=1e-12)
    assert ksg_mi(a.astype(np.float32), b) == pytest.approx(ref_ksg_max(a.astype(np.float32), b, 3), abs=TOL)


def test_bad_input_named():
    a, b = _pair(n=50)
    y = np.arange(50) % 2
    with pytest.raises(ValueError, match=r"'k' parameter of KNNEstimator must be an int >= 1. Got 0"):
        KNNEstimator(k=0)
    with pytest.raises(ValueError, match=r"'k' parameter of ksg_mi must be < the number of rows \(50\)"):
        ksg_mi(a, b, k=50)
    with pytest.raises(ValueError, match=r"'k' parameter of KNNEstimator must be < the number of rows \(50\)"):
        KNNEstimator(k=60).estimate(a, y)
    with pytest.raises(TypeError, match=r"y must hold integer class labels. Got dtype float64"):
        KNNEstimator().estimate(a, b[:, 0])
    with pytest.raises(ValueError, match=r"y: class 1 has 2 rows; KNNEstimator needs at least 4 rows"):
        KNNEstimator(k=3).estimate(a[:10], np.array([0] * 8 + [1] * 2))
    with pytest.raises(ValueError, match=r"b must have shape \(50,\) or \(50, k\). Got shape \(49, 2\)"):
        ksg_mi(a, b[:-1])
    with pytest.raises(ValueError, match=r"'metric' parameter of ksg_mi must be one of 'max', 'euclidean'"):
        ksg_mi(a, b, metric="l1")
    with pytest.raises(ValueError, match=r"t has 50 of 50 rows with k=3 .* distance 0"):
        kl_entropy(np.zeros((50, 2)))
    with pytest.warns(RuntimeWarning, match=r"rows have k or more identical neighbours"):
        r = KNNEstimator(ties="keep").estimate(np.zeros((50, 2)) + (np.arange(50) // 10)[:, None], y)
    assert r.conventions["zero_radius_rows"] == 50


def test_repeated_rows_counted_as_scikit_learn_does():
    """Discrete data (radius 0 for every row): counts become the duplicates (dist <= 0), as the cKDTree
    reference with r = nextafter(0, 0) = 0 does; the estimate stays finite and equals the reference."""
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 300)
    t = (y[:, None] + rng.integers(0, 3, size=(300, 1))).astype(float)
    with pytest.warns(RuntimeWarning, match="identical neighbours"):
        value = ross_mi(t, y, k=3, ties="keep")
    assert value == pytest.approx(ref_ross(t, y, 3), abs=TOL)
    b = (t + rng.integers(0, 2, size=(300, 1))).astype(float)
    with pytest.warns(RuntimeWarning, match="identical neighbours"):
        assert ksg_mi(t, b, k=3, ties="keep") == pytest.approx(ref_ksg_max(t, b, 3), abs=TOL)
