"""LatentMIEstimator and SampleSizeCheck against closed forms (bits), their failure flags and their bad input.

Closed forms: for pairs (A_i, B_i) correlated rho and independent across i, I(A;B) = -1/2 log2(1 - rho^2) per
pair; an injective map of A (a linear isometry into D columns, tanh of a random linear map) leaves it unchanged.
For two equiprobable classes N(+-mu, I), I(T;Y) is computed here by a 1-D quadrature of the exact posterior.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from _latent_tasks import _isometry, _pairs, _two_class_bits

from infoplane.estimators import KNNEstimator, LatentMIEstimator, ReliabilityResult, SampleSizeCheck
from infoplane.estimators.functional import TWINS, extrapolate, latent_mi

FAST = dict(hidden=32, max_epochs=60, patience=5)


# ---------------------------------------------------------------------------------------------------
# LatentMIEstimator
# ---------------------------------------------------------------------------------------------------
def test_latent_recovers_a_gaussian_pair_embedded_in_64_columns():
    z, w, truth, rng = _pairs(1000, 1, 0.8, 0)
    t = _isometry(z, 64, rng)
    res = LatentMIEstimator(latent_dim=2, target="continuous", hidden=32).estimate(t, w)
    assert res.I_TY == pytest.approx(truth, abs=0.1)
    assert res.conventions["reliable"] is True and res.conventions["y_code"] == "kept"
    assert math.isnan(res.I_XT) and res.conventions["units"] == "bits"


@pytest.mark.slow
@pytest.mark.parametrize("embed,width", [("isometry", 512), ("isometry", 4096), ("tanh", 512), ("tanh", 4096)])
def test_latent_within_a_tenth_of_a_bit_on_embedded_wide_tasks(embed, width):
    """N = 4,000. The isometries are reduced to the 2-dimensional signal (no training); tanh of a 2-dimensional
    signal has a numerical rank of about 50, so the codes train on that many principal axes."""
    z, w, truth, rng = _pairs(4000, 2, 0.8, 1)
    if embed == "isometry":
        t = _isometry(z, width, rng)
    else:
        t = np.tanh(z @ rng.standard_normal((2, width)))
    res = LatentMIEstimator(target="continuous").estimate(t, w)
    assert res.I_TY == pytest.approx(truth, abs=0.1)


def test_latent_labels_closed_form_two_classes():
    rng = np.random.default_rng(3)
    n, sep = 2000, 2.0
    y = rng.integers(0, 2, n)
    signal = np.where(y == 1, -sep / 2, sep / 2)[:, None] + rng.standard_normal((n, 1))
    t = _isometry(np.hstack([signal, rng.standard_normal((n, 1))]), 64, rng)
    res = LatentMIEstimator(latent_dim=2, **FAST).estimate(t, y)
    assert res.I_TY == pytest.approx(_two_class_bits(sep), abs=0.1)
    assert res.conventions["H_Y_bits"] == pytest.approx(1.0, abs=0.01)


def test_latent_symmetric_dependence_is_flagged_unreliable():
    """T = Y * S with a random sign S: E[T|Y] = E[T] = 0 and E[Y|T] = E[Y] = 0, yet |T| = |Y| (dependence the
    mean-squared cross-prediction cannot see); the estimate must say reliable=False."""
    rng = np.random.default_rng(4)
    n = 2000
    y = rng.standard_normal((n, 1))
    s = rng.choice([-1.0, 1.0], size=(n, 1))
    noise = rng.standard_normal((n, 15))
    t = _isometry(np.hstack([y * s, noise]), 64, rng)
    res = LatentMIEstimator(latent_dim=2, target="continuous", **FAST).estimate(t, y)
    assert res.conventions["reliable"] is False
    assert "symmetric" in res.conventions["reliability_note"]


def test_latent_seeded_and_twin():
    z, w, _, rng = _pairs(300, 1, 0.8, 5)
    t = _isometry(z, 16, rng)
    a = LatentMIEstimator(latent_dim=2, target="continuous", hidden=8, max_epochs=5).estimate(t, w)
    b = latent_mi(t, w, latent_dim=2, target="continuous", hidden=8, max_epochs=5)
    assert a == b and TWINS[LatentMIEstimator] is latent_mi


def test_latent_bad_input_named():
    rng = np.random.default_rng(0)
    t, y = rng.standard_normal((200, 4)), rng.integers(0, 2, 200)
    with pytest.raises(ValueError, match=r"'latent_dim' parameter of LatentMIEstimator must be an int >= 1"):
        LatentMIEstimator(latent_dim=0)
    with pytest.raises(ValueError, match=r"'latent_dim' .* at most the width of t \(4 columns\). Got 8"):
        LatentMIEstimator(latent_dim=8).estimate(t, y)
    with pytest.raises(TypeError, match=r"y must hold integer class labels.*target='continuous'"):
        LatentMIEstimator(latent_dim=2).estimate(t, rng.standard_normal(200))
    with pytest.raises(TypeError, match=r"y holds integers .* target='labels'"):
        LatentMIEstimator(latent_dim=2, target="continuous").estimate(t, y)
    with pytest.raises(ValueError, match=r"t has 6 rows; .* needs at least 4 held-out rows"):
        LatentMIEstimator(latent_dim=2, target="continuous").estimate(t[:6], t[:6, 0])
    with pytest.raises(ValueError, match=r"'holdout' parameter of LatentMIEstimator must be a float in \(0, 1\)"):
        LatentMIEstimator(holdout=1.0)


# ---------------------------------------------------------------------------------------------------
# SampleSizeCheck
# ---------------------------------------------------------------------------------------------------
def test_extrapolate_recovers_an_exact_one_over_n_law():
    sizes = np.array([1000.0, 500.0, 333.0, 250.0])
    rng = np.random.default_rng(0)
    values = [1.2 + 30.0 / n + 1e-3 * rng.standard_normal(g) for g, n in zip((1, 2, 3, 4), sizes)]
    fit = extrapolate(sizes, values)
    assert fit["value"] == pytest.approx(1.2, abs=0.01) and fit["slope"] == pytest.approx(30.0, rel=0.1)
    assert fit["reliable"]


def test_extrapolate_rejects_curvature_and_too_few_sizes():
    sizes = np.array([1000.0, 500.0, 333.0, 250.0, 200.0])
    curved = [1.0 + 10.0 / n + 4e5 / n**2 + 1e-4 * np.arange(g) for g, n in zip((1, 2, 3, 4, 5), sizes)]
    fit = extrapolate(sizes, curved)
    assert not fit["reliable"] and "curvature" in fit["note"]
    few = extrapolate(sizes[:2], curved[:2])
    assert not few["reliable"] and "too few splits remain" in few["note"]


def test_sample_size_check_gaussian_pair_and_result_fields():
    z, w, truth, _ = _pairs(1000, 1, 0.8, 7)
    res = SampleSizeCheck(KNNEstimator(target="continuous")).estimate(z, w)
    assert isinstance(res, ReliabilityResult) and res.reliable
    assert abs(res.I_TY - truth) <= 3 * res.I_TY_se and 0 < res.I_TY_se < 0.2
    assert res.conventions["I_TY_se"] == res.I_TY_se and res.conventions["reliable"] is True
    assert res.conventions["splits"] == [1, 2, 3, 4, 5] and math.isnan(res.I_XT_se)


def test_sample_size_check_reports_i_xt_se_where_the_estimator_gives_it():
    from infoplane.estimators import BinningEstimator

    rng = np.random.default_rng(1)
    t, y = np.tanh(rng.standard_normal((1000, 2))), rng.integers(0, 2, 1000)
    res = SampleSizeCheck(BinningEstimator(n_bins=4, range=(-1, 1))).estimate(t, y)
    assert np.isfinite(res.I_XT) and np.isfinite(res.I_XT_se)


def test_sample_size_check_propagates_the_estimators_own_flag():
    rng = np.random.default_rng(4)
    y = rng.standard_normal((1500, 1))
    t = _isometry(np.hstack([y * rng.choice([-1.0, 1.0], size=(1500, 1)), rng.standard_normal((1500, 15))]), 64, rng)
    res = SampleSizeCheck(LatentMIEstimator(latent_dim=2, target="continuous", **FAST), max_splits=3).estimate(t, y)
    assert not res.reliable and "the estimator says" in res.reliability_note


def test_sample_size_check_bad_input_named():
    with pytest.raises(TypeError, match=r"SampleSizeCheck cannot wrap another SampleSizeCheck"):
        SampleSizeCheck(SampleSizeCheck(KNNEstimator()))
    with pytest.raises(TypeError, match=r"'estimator' parameter of SampleSizeCheck must be an estimator"):
        SampleSizeCheck(object())

    class Fixed(KNNEstimator):
        sample_size_check = False

    with pytest.raises(TypeError, match=r"cannot serve Fixed: it declares sample_size_check = False"):
        SampleSizeCheck(Fixed())
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"t has 120 rows: too few rows for the splits .* at least 150 rows"):
        SampleSizeCheck(KNNEstimator(target="continuous")).estimate(rng.standard_normal((120, 1)),
                                                                    rng.standard_normal(120))


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["gauss-1x1", "classes-K4-d2"])
def test_sample_size_check_intervals_cover_the_truth_in_90_percent_of_50_seeds(task_name):
    """95% intervals I_inf +- 1.96 se from disjoint splits (not the row bootstrap) cover the truth."""
    from infoplane.groundtruth import get_task

    task = get_task(task_name)
    check = SampleSizeCheck(KNNEstimator(target=task.kind))
    hits = 0
    for seed in range(50):
        t, y = task.sample(500, seed)
        res = check.estimate(t, y)
        hits += abs(res.conventions["I_TY_raw"] - task.true_bits) <= 1.96 * res.I_TY_se
    assert hits >= 45


# ---------------------------------------------------------------------------------------------------
# information_plane(..., reliability=True) and the grey points
# ---------------------------------------------------------------------------------------------------
def _plane_store(n=600, epochs=2):
    from infoplane.store import MemoryStore

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    store = MemoryStore()
    store.set_labels(y)
    for e in range(epochs):
        signal = (2 * y - 1)[:, None] * (1.0 + e) + rng.standard_normal((n, 1))
        store.write_epoch(e, {"h": np.hstack([signal, rng.standard_normal((n, 2))]).astype(np.float32)})
    return store


def test_information_plane_reliability_columns_and_grey_points():
    import matplotlib

    matplotlib.use("Agg")
    from infoplane.analysis import information_plane
    from infoplane.plotting import plot_information_plane

    df = information_plane(_plane_store(), estimators={"knn": KNNEstimator(), "bin": "binning"}, reliability=True,
                           progress=False)
    for col in ("I_XT_se", "I_TY_se", "I_XT_reliable", "I_TY_reliable", "reliability_note"):
        assert col in df.columns
    knn = df[df["estimator"] == "knn"]
    assert knn["I_TY_se"].between(0, 0.3).all() and knn["I_XT_reliable"].isna().all()
    assert str(df["I_XT_reliable"].dtype) == "boolean" and df["I_TY_reliable"].dtype == bool
    plain = information_plane(_plane_store(), estimators={"knn": KNNEstimator()}, progress=False)
    assert np.allclose(plain["I_TY"], knn["I_TY"])  # the values are the estimates on all rows
    bad = df[df["estimator"] == "bin"].copy()
    bad["I_TY_reliable"], bad["I_XT_reliable"] = [False, True], [True, True]
    ax = plot_information_plane(bad)
    grey = [c for c in ax.collections if c.get_gid() == "unreliable"]
    assert len(grey) == 1 and len(grey[0].get_offsets()) == 1
    assert "unreliable (self-check or sample-size check)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_knn_dimension_rule_and_evaluate_flag_column():
    from infoplane.estimators import knn_dimension_rule
    from infoplane.groundtruth import evaluate, flag_reason

    assert knn_dimension_rule(2000, 9) is None  # 2^9 = 512 < 2000/3
    assert "fewer than two k-neighbourhoods per axis" in knn_dimension_rule(2000, 10)
    df = evaluate({"ksg": KNNEstimator(target="continuous")}, tasks=["gauss-1x1", "gauss-sparse-5x5"],
                  n_samples=(400,), seeds=(0,), progress=False)
    assert list(df["flagged"]) == [False, True] and "k-NN in 10 dimensions" in df["flag_reason"].iloc[1]

    class Saturated:
        I_XT, n_samples, conventions = 9.9, 1000, {}

    assert flag_reason(Saturated()).startswith("saturated")
