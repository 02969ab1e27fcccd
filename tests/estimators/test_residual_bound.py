"""The residual bound of latent MI's continuous codes, and the Barber-Agakov candidates of its label codes,
against closed forms (bits).

Closed forms: Gaussian pairs correlated rho, I = -1/2 log2(1 - rho^2) each; the negentropy of U(0, 1) is
1/2 log2(2 pi e / 12) per independent coordinate, of Exp(1) 1/2 log2(2 pi e) - log2 e; for T = U + sigma Z with
U ~ U(0, 1)^d, I(T;U) = d (h(T_1) - 1/2 log2(2 pi e sigma^2)) with h(T_1) by quadrature of its exact density
Phi(t / sigma) - Phi((t - 1) / sigma).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from _latent_tasks import _isometry, _pairs
from scipy import integrate, stats

from infoplane.estimators import LatentMIEstimator
from infoplane.estimators._kernels.residual_bound import (
    RIDGE_GRID,
    cross_fitted_predictions,
    gaussianized,
    negentropy_bits,
    residual_bound,
    ridge_predictions,
)


def _uniform_plus_noise_bits(sigma: float, dims: int) -> float:
    def p(t):
        return stats.norm.cdf(t / sigma) - stats.norm.cdf((t - 1) / sigma)

    h = integrate.quad(lambda t: -p(t) * math.log(max(p(t), 1e-300)), -8 * sigma, 1 + 8 * sigma, limit=500,
                       points=[0, 1])[0]
    return dims * (h - 0.5 * math.log(2 * math.pi * math.e * sigma**2)) / math.log(2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_negentropy_is_near_zero_for_gaussians_and_near_the_closed_form_otherwise(seed):
    rng = np.random.default_rng(seed)
    assert negentropy_bits(rng.standard_normal((2000, 4)) @ rng.standard_normal((4, 4)), 3, seed) < 0.06
    uniform = 0.5 * math.log2(2 * math.pi * math.e / 12)
    assert negentropy_bits(rng.random((2000, 1)), 3, seed) == pytest.approx(uniform, abs=0.07)
    exponential = 0.5 * math.log2(2 * math.pi * math.e) - math.log2(math.e)
    assert negentropy_bits(rng.exponential(size=(2000, 1)), 3, seed) == pytest.approx(exponential, abs=0.12)


def test_negentropy_is_undefined_for_repeated_rows_and_a_constant_column():
    rng = np.random.default_rng(0)
    assert negentropy_bits(np.repeat(rng.standard_normal((100, 2)), 5, axis=0), 3, 0) is None
    assert negentropy_bits(np.c_[rng.standard_normal(200), np.ones(200)], 3, 0) is None


def test_residual_bound_is_tight_for_a_linear_gaussian_dependence_and_blind_to_monotone_maps():
    """3 pairs at rho = 0.9 (3.59 bits): within 0.12 bits below (least squares fitted on half the rows), never
    above by more than the sampling noise; each column through a monotone map gives the same ranks, hence
    exactly the same bound (the sides are gaussianized first)."""
    truth = 3 * -0.5 * math.log2(1 - 0.81)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((2000, 3))
        y = 0.9 * x + math.sqrt(1 - 0.81) * rng.standard_normal((2000, 3))
        b = residual_bound(y, x, 3, seed)
        assert truth - 0.12 < b["bits"] < truth + 0.03
        assert b["negentropy_bits"] < 0.05
        assert residual_bound(np.exp(y) ** 3, np.arctan(x), 3, seed)["bits"] == b["bits"]


@pytest.mark.parametrize("sigma", [0.3, 0.1, 0.03])
def test_residual_bound_stays_below_the_truth_for_uniform_signals_in_noise(sigma):
    """T = U + sigma Z in 5 dimensions (2.3 to 15.5 bits): a bound, below the truth however loose it is; the
    estimator flags the loose ones (the residual's negentropy plus its dependence on the prediction)."""
    truth = _uniform_plus_noise_bits(sigma, 5)
    rng = np.random.default_rng(4)
    u = rng.random((2000, 5))
    t = u + sigma * rng.standard_normal((2000, 5))
    assert residual_bound(u, t, 3, 0)["bits"] < truth
    res = LatentMIEstimator(target="continuous").estimate(t, u)
    assert res.I_TY < truth + 0.05
    if res.I_TY < truth - 0.25:
        assert res.conventions["reliable"] is False and "loose" in res.conventions["reliability_note"]


def test_gaussianized_columns_are_standard_normal_scores_of_the_ranks():
    z = np.array([[3.0, -1.0], [1.0, 5.0], [2.0, 5.0], [10.0, 0.0]])
    g = gaussianized(z)
    expected_first = stats.norm.ppf((np.array([3, 1, 2, 4]) - 0.5) / 4)
    assert np.allclose(g[:, 0], expected_first)
    assert g[1, 1] == g[2, 1]  # ties share their mean rank


def test_cross_fitted_predictions_never_use_their_own_row():
    """A row whose target is changed changes no prediction of its own (it only enters the other fold's fit)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 2)), rng.standard_normal((40, 1))
    p = cross_fitted_predictions(a, b, seed=3)
    b2 = b.copy()
    b2[7] += 100.0
    assert cross_fitted_predictions(a, b2, seed=3)[7] == pytest.approx(p[7])


def test_latent_label_codes_compete_with_their_held_out_barber_agakov_bounds():
    """10 equiprobable Gaussian classes in 10 dimensions (means 2.5 e_k), embedded in 64 columns: Ross on the
    codes and the held-out Barber-Agakov bounds H(Y) - CE of the codes' classifiers all compete; the result is
    the largest, and no candidate is above the truth by more than its noise."""
    from infoplane.groundtruth import get_task

    task = get_task("classes-K10-d10")
    t, y = task.sample(2000, 0)
    rng = np.random.default_rng(0)
    res = LatentMIEstimator(latent_dim=4).estimate(_isometry(t, 64, rng), y)
    c = res.conventions
    assert set(c["candidates"]) == {"autoencoder", "ba_autoencoder", "linear", "ba_linear"}
    assert c["I_TY_raw"] == max(c["candidates"].values()) == c["candidates"][c["chosen"]]
    assert max(c["candidates"].values()) < task.true_bits + 0.05
    assert c["candidates"]["ba_linear"] == pytest.approx(c["linear_code"]["skill"] * c["H_Y_bits"])


@pytest.mark.parametrize("seed", [5, 6])
def test_latent_residual_bound_on_learned_codes_is_not_above_the_truth(seed):
    """2 Gaussian pairs (rho 0.9, 2.40 bits) in 2 of 40 tanh-mixed columns with 38 weak nuisance directions: the
    codes are learned and the residual bound of y given T's code, its prediction and a ridge prediction from
    all 40 columns wins: not above the truth by more than its noise, and tight for its features (gap < 0.05
    bits). It still reads 0.1-0.2 bits low (2.20 and 2.22) while the half-training check sees the codes
    converged on seed 5: a shortfall the estimator cannot see (docs/notes/wide_layers.md)."""
    z, w, truth, rng = _pairs(2000, 2, 0.9, seed)
    t = np.tanh(np.hstack([z, 0.1 * rng.standard_normal((2000, 38))]) @ rng.standard_normal((40, 40)) / 6.0)
    res = LatentMIEstimator(target="continuous").estimate(t, w)
    c = res.conventions
    assert c["chosen"] == "residual_ty" and c["residual"]["gap_bits"] < 0.05
    assert truth - 0.3 < res.I_TY < truth + 0.05


@pytest.mark.parametrize("randomised", [False, True])
def test_ridge_predictions_are_the_textbook_ridge_at_the_generalised_cross_validation_penalty(randomised, monkeypatch):
    """Reference: (X'X + lam I)^-1 X'z on centred rows for every penalty of the grid, GCV computed from the hat
    matrix directly; the prediction at the GCV minimiser must match. The randomised SVD of wide layers, asked for
    as many axes as the rows span, gives the same answer."""
    from infoplane.estimators._kernels import residual_bound as RB

    if randomised:
        monkeypatch.setattr(RB, "FULL_SVD", 10)
        monkeypatch.setattr(RB, "RIDGE_AXES", 30)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 30))
    z = x[:, :2] @ np.array([[1.0, 0.5], [-0.3, 2.0]]) + 0.5 * rng.standard_normal((120, 2))
    xt = rng.standard_normal((40, 30))
    xc, zc = x - x.mean(0), z - z.mean(0)
    scale = np.mean(np.linalg.svd(xc, compute_uv=False) ** 2)
    best, best_gcv = None, np.inf
    for lam in RIDGE_GRID * scale:
        hat = xc @ np.linalg.solve(xc.T @ xc + lam * np.eye(30), xc.T)
        gcv = 120 * np.sum((zc - hat @ zc) ** 2) / (120 - np.trace(hat)) ** 2
        if gcv < best_gcv:
            best_gcv, best = gcv, np.linalg.solve(xc.T @ xc + lam * np.eye(30), xc.T @ zc)
    assert np.allclose(ridge_predictions(x, z, xt), (xt - x.mean(0)) @ best + z.mean(0), atol=1e-4 if randomised else 1e-9)


def test_latent_finds_a_signal_among_many_noise_columns_through_the_linear_prediction():
    """2 Gaussian pairs (rho 0.8, 1.47 bits), t = the 2 signal columns among 200 pure-noise ones, N = 4,000:
    the autoencoder's codes keep little of the signal (k-NN on them reads well below 1 bit), the ridge
    prediction from all 202 columns (fitted on the training rows) recovers most of it through the residual
    bound; the result is within 0.25 bits or flagged, and never above the truth by more than its noise."""
    z, w, truth, rng = _pairs(4000, 2, 0.8, 11)
    t = np.hstack([z, rng.standard_normal((4000, 200))])
    res = LatentMIEstimator(target="continuous").estimate(t, w)
    c = res.conventions
    assert c["chosen"] == "residual_ty" and c["candidates"]["autoencoder"] < truth - 0.4
    assert truth - 0.35 < res.I_TY < truth + 0.05
    assert res.I_TY > truth - 0.25 or c["reliable"] is False
