"""One contract, every estimator configuration: append (id, factory) to ESTIMATORS to enrol a new one.

Exact invariances (permutation, torch vs numpy) allow 1e-9 bits: binning is exact, KDE sums the same
terms in another order (float64 round-off ~1e-13).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from infoplane._types import MIResult
from infoplane.estimators import (
    BinningEstimator,
    CriticEstimator,
    KDEEstimator,
    KNNEstimator,
    NoisyEstimator,
    ProbeEstimator,
)

ESTIMATORS = [
    ("binning-edges", lambda: BinningEstimator(edges=np.linspace(-1, 1, 30))),
    ("binning-width", lambda: BinningEstimator(bin_width=0.07)),
    ("binning-nbins-range", lambda: BinningEstimator(n_bins=30, range=(-1, 1))),
    ("binning-nbins-data", lambda: BinningEstimator(n_bins=30)),
    ("binning-adaptive", lambda: BinningEstimator(n_bins=30, strategy="adaptive")),
    ("kde-upper", lambda: KDEEstimator(noise_variance=1e-3, bound="upper")),
    ("kde-lower", lambda: KDEEstimator(noise_variance=1e-3, bound="lower")),
    ("knn-ross", lambda: KNNEstimator(k=3)),
    ("knn-ross-euclidean", lambda: KNNEstimator(k=3, metric="euclidean")),
    ("probe", lambda: ProbeEstimator()),
    ("critic-infonce", lambda: CriticEstimator("infonce", epochs=15, patience=5, hidden=(16,), embed=8)),
    ("critic-smile", lambda: CriticEstimator("smile", epochs=15, patience=5, hidden=(16,), embed=8)),
    ("noisy", lambda: NoisyEstimator(noise_std=0.1, n_draws=4)),
]
IDS = [i for i, _ in ESTIMATORS]
FACTORIES = [f for _, f in ESTIMATORS]
TOL = 1e-9


def _same(a, b):
    """Equal within TOL, NaN equal to NaN (estimators that report I(T;Y) only give I_XT = NaN)."""
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=TOL)


def _data(n=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    t = np.tanh(x @ rng.normal(size=(8, d)) * 0.6)
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    return t, y


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_contract(factory):
    est = factory()
    t, y = _data()
    t0, y0 = t.copy(), y.copy()
    r = est.estimate(t, y)
    assert isinstance(r, MIResult)
    # Finite, in bits: bounded by log2 N and H(Y) (nats would exceed neither, but units are recorded).
    p = np.bincount(y) / len(y)
    h_y = -(p * np.log2(p)).sum()
    assert np.isfinite(r.I_TY) and 0.0 <= r.I_TY <= h_y + TOL
    if math.isnan(r.I_XT):  # I(T;Y)-only estimators say why
        assert r.conventions["I_XT_note"]
    else:
        assert np.isfinite(r.I_XT) and r.I_TY <= r.I_XT + TOL <= math.log2(len(t)) + 2 * TOL
    assert r.conventions["units"] == "bits"
    assert {r.bound_XT, r.bound_TY} <= {"estimate", "upper", "lower"}
    # Conventions: JSON-serialisable, with N and the estimator's name.
    json.dumps(r.conventions)
    json.dumps(est.conventions())
    assert r.n_samples == r.conventions["n_samples"] == len(t) and r.estimator == r.conventions["estimator"]
    # Inputs not mutated.
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_array_equal(y, y0)
    # Deterministic.
    r2 = est.estimate(t, y)
    assert _same(r2.I_XT, r.I_XT) and r2.I_TY == r.I_TY
    # Invariant to row permutation.
    perm = np.random.default_rng(1).permutation(len(t))
    rp = est.estimate(t[perm], y[perm])
    assert _same(rp.I_XT, r.I_XT) and _same(rp.I_TY, r.I_TY)
    # torch input (CPU) gives the same numbers, and the tensors are not mutated either.
    tt, yt = torch.from_numpy(t.copy()), torch.from_numpy(y.copy())
    rt = est.estimate(tt, yt)
    assert _same(rt.I_XT, r.I_XT) and _same(rt.I_TY, r.I_TY)
    assert torch.equal(tt, torch.from_numpy(t)) and torch.equal(yt, torch.from_numpy(y))
    # Explicit distinct input ids change nothing.
    rx = est.estimate(t, y, x=np.arange(len(t)))
    assert _same(rx.I_XT, r.I_XT) and _same(rx.I_TY, r.I_TY)
    # The shuffle baseline runs, is seeded, and keeps I_TY within [0, H(Y)].
    s1, s2 = est.shuffle_baseline(t, y, n_permutations=2, seed=3), est.shuffle_baseline(t, y, n_permutations=2, seed=3)
    assert s1.I_TY == s2.I_TY and 0.0 <= s1.I_TY <= h_y + TOL
    json.dumps(s1.conventions)


BAD_INPUTS = [
    ("nan", lambda t, y: (np.where(np.arange(t.size).reshape(t.shape) == 5, np.nan, t), y),
     ValueError, r"t contain NaN \(1 of 1,200 values\)"),
    ("inf", lambda t, y: (np.where(np.arange(t.size).reshape(t.shape) < 2, np.inf, t), y),
     ValueError, r"t contain Inf \(2 of 1,200 values\)"),
    ("nan-torch", lambda t, y: (torch.from_numpy(np.where(np.arange(t.size).reshape(t.shape) == 5, np.nan, t)), y),
     ValueError, r"t contain NaN \(1 of 1,200 values\)"),
    ("t-1d", lambda t, y: (t[:, 0], y), ValueError, r"t must be 2-D \(n_samples, n_units\). Got shape \(300,\)"),
    ("t-3d", lambda t, y: (t[:, :, None], y), ValueError, r"t must be 2-D .* Got shape \(300, 4, 1\)"),
    ("t-empty", lambda t, y: (t[:0], y[:0]), ValueError, r"t must be non-empty"),
    ("length", lambda t, y: (t, y[:-1]), ValueError, r"y must have one label per row of the activations \(300\). Got 299"),
    ("y-float", lambda t, y: (t, y + 0.5), TypeError, r"y must hold integer class labels. Got dtype float64"),
    ("y-single", lambda t, y: (t, np.zeros_like(y)), ValueError, r"y must hold at least 2 distinct classes. Got 1"),
    ("y-2d", lambda t, y: (t, y[:, None]), ValueError, r"y must be 1-D \(n_samples,\). Got shape \(300, 1\)"),
    ("t-strings", lambda t, y: (t.astype(str), y), TypeError, r"t must hold real numbers"),
]


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
@pytest.mark.parametrize("make,exc,match", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_rejected(factory, make, exc, match):
    t, y = make(*_data())
    with pytest.raises(exc, match=match):
        factory().estimate(t, y)


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_bad_input_ids_and_named_layer(factory):
    t, y = _data()
    with pytest.raises(ValueError, match=r"x must be \(n_samples,\) input ids .* n_samples = 300. Got shape \(299,\)"):
        factory().estimate(t, y, x=np.arange(299))
    t[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"t of layer 'fc2' at epoch 3 contain NaN \(1 of 1,200 values\)"):
        factory().estimate(t, y, layer="fc2", epoch=3)
