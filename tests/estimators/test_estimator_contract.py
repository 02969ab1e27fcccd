"""One contract, every estimator: append one `Entry` to ESTIMATORS to enrol a new one.

Checked for each: an `MIResult` in bits with JSON-able conventions, no mutation of the inputs, determinism
(seeded), invariance to a permutation of the rows, torch == numpy, explicit distinct input ids change
nothing, a seeded shuffle baseline, and the same errors (naming the argument, the layer and the epoch) for
bad input. Gaussian estimators (``input_kind="gaussian"``) get ``log_var=`` beside the mean ``t``.

Every entry is invariant to a permutation of the rows to ``tol`` = 1e-9 bits (binning is exact, KDE sums
the same terms in another order, float64 round-off ~1e-13; estimators that sample or split put the rows in a
canonical order first). An estimator that cannot would be enrolled with its Monte Carlo error as ``tol``.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from infoplane import MIResult
from infoplane.estimators import (
    BinningEstimator,
    CriticEstimator,
    KDEEstimator,
    KNNEstimator,
    LatentMIEstimator,
    MixtureEstimator,
    NoisyEstimator,
    ProbeEstimator,
    RateEstimator,
)


@dataclass(frozen=True)
class Entry:
    id: str
    factory: Callable[[], Any]
    tol: float = 1e-9  # permutation invariance, bits


ESTIMATORS = [
    Entry("binning-edges", lambda: BinningEstimator(edges=np.linspace(-1, 1, 30))),
    Entry("binning-width", lambda: BinningEstimator(bin_width=0.07)),
    Entry("binning-nbins-range", lambda: BinningEstimator(n_bins=30, range=(-1, 1))),
    Entry("binning-nbins-data", lambda: BinningEstimator(n_bins=30)),
    Entry("binning-adaptive", lambda: BinningEstimator(n_bins=30, strategy="adaptive")),
    Entry("kde-upper", lambda: KDEEstimator(noise_variance=1e-3, bound="upper")),
    Entry("kde-lower", lambda: KDEEstimator(noise_variance=1e-3, bound="lower")),
    # Small M and folds keep the test fast; the rows are put in a canonical order before drawing (exact).
    Entry("rate-probe", lambda: RateEstimator("probe", n_samples=2, n_folds=2)),
    Entry("mixture-lower", lambda: MixtureEstimator("lower", n_samples=2, n_folds=2)),
    Entry("mixture-upper", lambda: MixtureEstimator("upper", n_samples=2, n_folds=2)),
    # I(T;Y)-only estimators (I_XT NaN with a note); critics, probe and noisy put rows in a canonical order
    # before splitting or drawing, so a permutation changes nothing.
    Entry("knn-ross", lambda: KNNEstimator(k=3)),
    Entry("knn-ross-euclidean", lambda: KNNEstimator(k=3, metric="euclidean")),
    Entry("probe", lambda: ProbeEstimator(n_folds=3)),
    Entry("critic-infonce", lambda: CriticEstimator("infonce", epochs=12, patience=4, hidden=(16,), embed=8)),
    Entry("critic-smile", lambda: CriticEstimator("smile", epochs=12, patience=4, hidden=(16,), embed=8)),
    Entry("noisy", lambda: NoisyEstimator(noise_std=0.1, n_draws=2)),
    Entry("latent", lambda: LatentMIEstimator(latent_dim=2, hidden=8, max_epochs=4, patience=2)),
]
IDS = [e.id for e in ESTIMATORS]
LOG_VAR = -2.0  # Gaussian estimators: every unit has variance e^-2 around the mean t


def _same(a, b, tol=1e-9):
    """Equal within tol, NaN equal to NaN (estimators that report I(T;Y) only give I_XT = NaN)."""
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=tol)


def _data(n=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    t = np.tanh(x @ rng.normal(size=(8, d)) * 0.6)
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)
    return t, y


def _run(est, t, y, x=None, *, log_var=None, **kwargs):
    """``est.estimate`` with the uniform signature, plus ``log_var`` (shaped like ``t``) for Gaussian ones."""
    if est.input_kind == "gaussian":
        kwargs["log_var"] = log_var if log_var is not None else np.full(np.shape(t), LOG_VAR)
    return est.estimate(t, y, x, **kwargs)


def _shuffled(est, t, y, **kw):
    if est.input_kind == "gaussian":
        kw["log_var"] = np.full(np.shape(t), LOG_VAR)
    return est.shuffle_baseline(t, y, **kw)


@pytest.mark.parametrize("entry", ESTIMATORS, ids=IDS)
def test_contract(entry):
    est, tol = entry.factory(), entry.tol
    t, y = _data()
    t0, y0 = t.copy(), y.copy()
    r = _run(est, t, y)
    assert isinstance(r, MIResult)
    # Finite, in bits: bounded by H(Y) (and by log2 N unless an upper bound), I(T;Y) <= I(T;X).
    p = np.bincount(y) / len(y)
    h_y = -(p * np.log2(p)).sum()
    assert np.isfinite(r.I_TY) and r.I_TY <= h_y + 1e-9
    if math.isnan(r.I_XT):  # an I(T;Y)-only estimator says why
        assert r.conventions["I_XT_note"]
    else:
        assert np.isfinite(r.I_XT) and r.I_TY <= r.I_XT + 1e-9
    if r.bound_XT != "upper" and not math.isnan(r.I_XT):  # an upper bound on I(T;X) (the VIB rate, leave-one-out) may exceed log2 N
        assert r.I_XT <= math.log2(len(t)) + 1e-9
    if r.bound_TY != "lower":  # a lower bound (Barber-Agakov) may be negative
        assert r.I_TY >= 0.0
    assert r.conventions["units"] == "bits"
    assert {r.bound_XT, r.bound_TY} <= {"estimate", "upper", "lower"}
    # Conventions: JSON-serialisable, with N and the estimator's name.
    json.dumps(r.conventions)
    json.dumps(est.conventions())
    assert r.n_samples == len(t) and r.estimator == r.conventions["estimator"] == est.name
    # Inputs not mutated.
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_array_equal(y, y0)
    # Deterministic (seeded).
    r2 = _run(est, t, y)
    assert _same(r2.I_XT, r.I_XT, 0.0) and r2.I_TY == r.I_TY
    # Invariant to row permutation (within Monte Carlo error for those that sample).
    perm = np.random.default_rng(1).permutation(len(t))
    rp = _run(est, t[perm], y[perm])
    assert _same(rp.I_XT, r.I_XT, tol) and _same(rp.I_TY, r.I_TY, tol)
    # torch input (CPU) gives the same numbers, and the tensors are not mutated either.
    tt, yt = torch.from_numpy(t.copy()), torch.from_numpy(y.copy())
    rt = _run(est, tt, yt)
    assert _same(rt.I_XT, r.I_XT) and _same(rt.I_TY, r.I_TY)
    assert torch.equal(tt, torch.from_numpy(t)) and torch.equal(yt, torch.from_numpy(y))
    # Explicit distinct input ids change nothing; layer/epoch only name things.
    rx = _run(est, t, y, x=np.arange(len(t)), layer="fc1", epoch=3)
    assert _same(rx.I_XT, r.I_XT) and _same(rx.I_TY, r.I_TY)
    # The shuffle baseline runs, is seeded, and keeps I_TY below H(Y) (at least 0 unless a lower bound).
    s1 = _shuffled(est, t, y, n_permutations=2, seed=3)
    s2 = _shuffled(est, t, y, n_permutations=2, seed=3)
    assert s1.I_TY == s2.I_TY and s1.I_TY <= h_y + 1e-9
    assert s1.I_TY >= 0.0 or s1.bound_TY == "lower"
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


@pytest.mark.parametrize("entry", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("make,exc,match", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_rejected(entry, make, exc, match):
    t, y = make(*_data())
    with pytest.raises(exc, match=match):
        _run(entry.factory(), t, y, log_var=np.full((300, 4), LOG_VAR))


@pytest.mark.parametrize("entry", ESTIMATORS, ids=IDS)
def test_bad_input_ids_and_named_layer(entry):
    t, y = _data()
    with pytest.raises(ValueError, match=r"x must be \(n_samples,\) input ids .* n_samples = 300. Got shape \(299,\)"):
        _run(entry.factory(), t, y, x=np.arange(299))
    t[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"t of layer 'fc2' at epoch 3 contain NaN \(1 of 1,200 values\)"):
        _run(entry.factory(), t, y, layer="fc2", epoch=3)


def test_every_estimator_class_has_a_functional_twin_giving_its_result():
    """Each class of the contract list has a twin in `functional`; the twin with the class's parameters
    returns the class's result (the twin is the class's computation, not a second one)."""
    from infoplane.estimators import functional

    t, y = _data(n=120)
    for entry in ESTIMATORS:
        est = entry.factory()
        twin = functional.TWINS[type(est)]
        kw = {"log_var": np.full(t.shape, LOG_VAR)} if est.input_kind == "gaussian" else {}
        params = {k: v for k, v in est.get_params().items() if not k.startswith("_")}
        assert twin(t, y, **kw, **params) == est.estimate(t, y, **kw), entry.id
