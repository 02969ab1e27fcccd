"""LatentMIEstimator's codes and flags against closed forms (bits): the lossless reduction to the numerical rank,
embedded Gaussian pairs and classes, the reliability flags (symmetric dependence, unconverged k-NN stage,
unconverged codes, training cut short) and bad input.

Closed forms: for pairs (A_i, B_i) correlated rho and independent across i, I(A;B) = -1/2 log2(1 - rho^2) per
pair; an injective map of A (a linear isometry into D columns) leaves it unchanged. Two equiprobable classes
N(+-sep/2 e_1, I): I(T;Y) = 1 - E H(P(Y | t_1)) by a 1-D quadrature of the exact posterior.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from _latent_tasks import _isometry, _pairs, _two_class_bits

from infoplane.estimators import LatentMIEstimator
from infoplane.estimators._kernels.latent_linear import SKETCH, lda_code, reduce_columns


# ---------------------------------------------------------------------------------------------------
# The reduction to the numerical rank
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,width", [(400, 300), (1200, 2 * SKETCH)])  # exact Gram path; random sketch path
def test_reduce_columns_finds_the_rank_of_a_linear_embedding_and_loses_nothing(n, width):
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((n, 5)) * np.array([3.0, 2.0, 1.0, 0.5, 0.1])
    t = _isometry(signal, width, rng) + 2.0  # an offset: standardising removes it
    kept = reduce_columns(t, latent_dim=8, seed=0)
    assert kept.rank == 5 and kept.rotated and kept.kept and kept.x.shape == (n, 5)
    # an injective linear map of the signal: the signal is recovered exactly from the 5 coordinates
    coef, *_ = np.linalg.lstsq(np.c_[kept.x, np.ones(n)], signal, rcond=None)
    assert np.abs(np.c_[kept.x, np.ones(n)] @ coef - signal).max() < 1e-3
    assert np.allclose(kept.x.std(axis=0), 1.0, atol=1e-4)
    # wider than the code: the rotation onto the span keeps every pairwise distance (up to one scale factor)
    encoded = reduce_columns(t, latent_dim=3, seed=0)
    assert encoded.rank == 5 and encoded.rotated and not encoded.kept
    std_t = (t - t.mean(0)) / t.std(0)
    d0 = np.linalg.norm(std_t[:50, None] - std_t[None, :50], axis=2)
    d1 = np.linalg.norm(encoded.x[:50, None].astype(float) - encoded.x[None, :50], axis=2)
    ratio = d1[d0 > 0] / d0[d0 > 0]
    assert ratio.std() / ratio.mean() < 1e-4


def test_reduce_columns_leaves_a_full_rank_layer_and_a_narrow_one_as_they_are():
    rng = np.random.default_rng(1)
    wide = np.tanh(rng.standard_normal((300, 40)))
    r = reduce_columns(wide, latent_dim=8, seed=0)
    assert r.rank == 40 and not r.rotated and not r.kept and r.x.shape == (300, 40)
    narrow = reduce_columns(wide[:, :3], latent_dim=8, seed=0)
    assert narrow.kept and not narrow.rotated and narrow.x.shape == (300, 3)


@pytest.mark.parametrize("n,d", [(600, 40), (300, 500)])  # more rows than columns; fewer (span path)
def test_lda_code_spans_the_textbook_shrinkage_discriminant_directions(n, d):
    """Reference: the generalised eigenproblem Sb v = λ Sw v in all d columns, Sw the pooled within-class
    covariance shrunk toward its diagonal by scikit-learn's Ledoit-Wolf weight of the standardised residuals."""
    from scipy.linalg import eigh
    from sklearn.covariance import ledoit_wolf_shrinkage

    rng = np.random.default_rng(12)
    y = rng.integers(0, 4, n)
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d)
    x[:, :3] += 2.0 * rng.standard_normal((4, 3))[y]
    train, test = np.arange(0, n, 2), np.arange(1, n, 2)
    z, _ = lda_code(x, y, train, test, dim=8, h_y=2.0)
    xt, yt = x[train], y[train]
    means = np.array([xt[yt == c].mean(0) for c in range(4)])
    resid = xt - means[yt]
    sd = resid.std(0)
    alpha = ledoit_wolf_shrinkage(resid / sd, assume_centered=True)
    corr = (resid / sd).T @ (resid / sd) / len(yt)
    sw = np.outer(sd, sd) * ((1 - alpha) * corr + alpha * np.eye(d))
    priors = np.bincount(yt) / len(yt)
    mc = means - priors @ means
    _, v = eigh(mc.T @ np.diag(priors) @ mc, sw)
    ref = x[test] @ v[:, ::-1][:, :3]  # K - 1 = 3 directions
    assert z.shape == (len(test), 3)
    a, _ = np.linalg.qr(z - z.mean(0))
    b, _ = np.linalg.qr(ref - ref.mean(0))
    assert np.linalg.svd(a.T @ b, compute_uv=False).min() > 1 - 1e-6  # the same 3-dimensional code space


# ---------------------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------------------
def test_latent_gaussian_pairs_linearly_embedded_in_1024_columns_within_a_tenth_of_a_bit():
    """N = 2,000: the rank (2) is found, the code is the signal itself (no training), KSG runs on all rows."""
    z, w, truth, rng = _pairs(2000, 2, 0.8, 2)
    res = LatentMIEstimator(target="continuous").estimate(_isometry(z, 1024, rng), w)
    c = res.conventions
    assert res.I_TY == pytest.approx(truth, abs=0.1)
    assert c["rank_t"] == 2 and c["t_code"] == "kept" and c["code_dim"] == 2 and c["n_train"] == 0
    assert c["reliable"] is True


def test_latent_two_classes_in_100_columns_within_a_tenth_of_a_bit():
    """N = 2,000, a class signal along one of 100 axes (full rank: codes are learned on 1,000 rows)."""
    rng = np.random.default_rng(3)
    n, sep = 2000, 2.0
    y = rng.integers(0, 2, n)
    t = rng.standard_normal((n, 100))
    t[:, 0] += np.where(y == 1, -sep / 2, sep / 2)
    res = LatentMIEstimator().estimate(t, y)
    assert res.I_TY == pytest.approx(_two_class_bits(sep), abs=0.1)
    assert res.conventions["t_code"] == "encoded" and res.conventions["n_train"] == 1000


@pytest.mark.parametrize("seed", [5, 6])
def test_latent_independent_wide_layer_reads_near_zero_and_says_it_saw_nothing(seed):
    """No dependence: the larger of the two candidate codes' estimates stays within the k-NN noise of 0 (Ross on
    1,000 rows: a standard deviation of about 0.03 bits), and no code predicts y on the held-out rows."""
    rng = np.random.default_rng(seed)
    t, y = rng.standard_normal((2000, 100)), rng.integers(0, 4, 2000)
    res = LatentMIEstimator().estimate(t, y)
    assert res.I_TY < 0.1
    assert res.conventions["reliable"] is False and "no held-out cross-prediction" in res.conventions["reliability_note"]


def test_latent_learned_codes_keep_the_largest_candidate_estimate():
    """A 2-dimensional signal through tanh into 48 columns with 14 nuisance coordinates (I = 1.47 bits): the
    autoencoder's codes, the cross-predictions and the two residual bounds are all estimated; the largest is the
    result, and every one is lower than the truth plus its noise."""
    z, w, truth, rng = _pairs(1500, 2, 0.8, 13)
    s = np.hstack([z, rng.standard_normal((1500, 14))])
    t = np.tanh(s @ rng.standard_normal((16, 48)) / 4.0)
    res = LatentMIEstimator(target="continuous").estimate(t, w)
    c = res.conventions
    assert set(c["candidates"]) == {"autoencoder", "prediction", "residual_ty", "residual_yt"}
    assert c["I_TY_raw"] == max(c["candidates"].values()) == c["candidates"][c["chosen"]]
    assert max(c["candidates"].values()) < truth + 0.1
    assert c["code_dim"] == (8 if c["chosen"] == "autoencoder" else 2)


# ---------------------------------------------------------------------------------------------------
# Flags
# ---------------------------------------------------------------------------------------------------
def test_latent_flags_symmetric_dependence_on_a_narrow_layer():
    """t_i = S_i U_i with a random sign, y_i = V_i (3 pairs, rho = 0.9): E[t|y] = E[t]. The 3 columns are their
    own code, and the k-NN estimate, far below the truth, is flagged as still rising with the rows."""
    rng = np.random.default_rng(6)
    n = 2000
    u = rng.standard_normal((n, 3))
    v = 0.9 * u + math.sqrt(1 - 0.81) * rng.standard_normal((n, 3))
    t = np.where(rng.random((n, 3)) < 0.5, -1.0, 1.0) * u
    res = LatentMIEstimator(target="continuous").estimate(t, v)
    assert res.conventions["reliable"] is False and "still rises with the rows" in res.conventions["reliability_note"]


def test_latent_residual_bound_reaches_strong_dependence_where_k_nn_undershoots():
    """5 Gaussian pairs (3.68 bits) in 64 columns: the codes are exact (rank 5), but KSG in 10 dimensions on
    2,000 rows reads about a bit too little (and says so: still rising with the rows). The residual bound of
    each side given the other (cross-fitted least squares) is exact here up to its sampling error: it wins and
    reads within 0.1 bits, converged."""
    z, w, truth, rng = _pairs(2000, 5, 0.8, 7)
    res = LatentMIEstimator(target="continuous").estimate(_isometry(z, 64, rng), w)
    c = res.conventions
    assert c["candidates"]["knn"] < truth - 0.5
    assert c["chosen"] in ("residual_ty", "residual_yt") and abs(res.I_TY - truth) < 0.1
    assert c["residual"]["negentropy_bits"] < 0.1  # Gaussian codes: no negentropy to speak of
    assert c["reliable"] is True and abs(c["knn_gain"]) < 0.1


def test_latent_flags_the_resolution_bias_of_its_k_nn_stage_on_a_spiral():
    """The spiral of 3 Gaussian pairs (rho = 0.75, 0.966 bits; Czyż et al. 2023) on 2,000 rows: 3 columns are
    their own code and KSG reads about a third of a bit low while converging slowly in N; the k-to-2k
    resolution check on the codes extrapolates −0.23 ± 0.06 bits and, within one standard error of the
    tolerance, says so. On the Gaussian pairs themselves (no spiral) it stays quiet."""
    from infoplane.groundtruth import get_task

    task = get_task("spiral-3x3")
    t, y = task.sample(2000, 0)
    res = LatentMIEstimator(target="continuous").estimate(t, y)
    assert res.I_TY < task.true_bits - 0.25
    assert res.conventions["reliable"] is False and "resolution bias" in res.conventions["reliability_note"]
    c = res.conventions
    assert c["resolution_bias_bits"] - c["resolution_bias_se"] < -0.25 < c["resolution_bias_bits"] + c["resolution_bias_se"]
    z, w, truth, _ = _pairs(2000, 1, 0.8, 3)
    plain = LatentMIEstimator(target="continuous").estimate(z, w)
    assert abs(plain.I_TY - truth) < 0.1 and plain.conventions["reliable"] is True
    assert abs(plain.conventions["candidates"]["knn"] - truth) < 0.1


@pytest.mark.parametrize("seed", [0, 2])
def test_latent_flags_codes_still_improving_with_training_rows(seed):
    """4 Gaussian classes differing in 2 directions of 300 (the suite's wide-classes-K4-d300-s2, rotated at
    random so no column is special; I = 0.81 bits), N = 1,000: codes learned from 500 rows lose about 0.25 bits
    and gain more than 0.05 bits from 250 to 500 training rows; the result says so."""
    from scipy.stats import ortho_group

    import infoplane.groundtruth as gt

    task = gt.get_task("wide-classes-K4-d300-s2")
    t, y = task.sample(1000, seed)
    res = LatentMIEstimator().estimate(t @ ortho_group.rvs(300, random_state=0), y)
    c = res.conventions
    assert res.I_TY < task.true_bits - 0.15
    assert c["reliable"] is False and "still improve with the training rows" in c["reliability_note"]
    assert res.I_TY - c["I_TY_half_train"] > 0.05


def test_latent_flags_training_cut_short():
    z, w, _, rng = _pairs(400, 1, 0.8, 9)
    res = LatentMIEstimator(latent_dim=2, target="continuous", max_epochs=2, hidden=8).estimate(
        np.tanh(z @ rng.standard_normal((1, 32))), w)
    assert res.conventions["stopped_early"] is False and "reached max_epochs=2" in res.conventions["reliability_note"]


# ---------------------------------------------------------------------------------------------------
# Defaults and bad input
# ---------------------------------------------------------------------------------------------------
def test_latent_default_code_on_a_narrow_layer_and_explicit_latent_dim_above_the_width():
    rng = np.random.default_rng(10)
    t, y = rng.standard_normal((300, 3)), rng.integers(0, 2, 300)
    res = LatentMIEstimator().estimate(t, y)  # default latent_dim: 8, or the width when narrower
    assert res.conventions["code_dim"] == 3 and res.conventions["latent_dim"] is None
    with pytest.raises(ValueError, match=r"'latent_dim' .* at most the width of t \(3 columns\). Got 4"):
        LatentMIEstimator(latent_dim=4).estimate(t, y)
    with pytest.raises(ValueError, match=r"'latent_dim' .* at most the width of t of layer 'fc1' \(3 columns\)"):
        LatentMIEstimator(latent_dim=4).estimate(t, y, layer="fc1")
    for bad in (0, -1, 2.5, "8"):
        with pytest.raises((ValueError, TypeError), match=r"'latent_dim' parameter of LatentMIEstimator"):
            LatentMIEstimator(latent_dim=bad)


def test_latent_too_few_rows_and_classes_named():
    rng = np.random.default_rng(11)
    t = rng.standard_normal((40, 20))
    with pytest.raises(ValueError, match=r"t has 6 rows; .* needs at least 4 held-out rows .* Got 3 held out"):
        LatentMIEstimator(target="continuous").estimate(t[:6], t[:6, 0])
    small = LatentMIEstimator(2, target="continuous", hidden=4, max_epochs=3).estimate(t[:8], t[:8, :2] * 2.0)
    assert math.isfinite(small.I_TY) and small.conventions["n_train"] == 4  # the smallest split still runs
    y = np.r_[np.zeros(37, dtype=np.int64), np.ones(3, dtype=np.int64)]
    with pytest.raises(ValueError, match=r"every class needs k \+ 1 = 4 held-out rows"):
        LatentMIEstimator().estimate(t, y)


def test_latent_flags_codes_learned_from_fewer_rows_than_the_layer_has_dimensions():
    """A full-rank tanh layer of 256 units on 400 rows (200 to train the encoder): the code is under-determined,
    and the result says so whatever it reads; with 64 units (rank 64 < 200 rows) that reason is absent."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 400)
    signal = np.eye(3)[y] * 2.0 + rng.standard_normal((400, 3))
    for width, flagged in ((256, True), (64, False)):
        t = np.tanh(np.hstack([signal, rng.standard_normal((400, width - 3))]) @ rng.standard_normal((width, width))
                    / math.sqrt(width))
        note = LatentMIEstimator(max_epochs=30).estimate(t, y).conventions["reliability_note"] or ""
        assert ("training rows, no more than its" in note) is flagged, note
