"""The estimators' self-checks (issue 19: an estimate off by more than 0.25 bits must say so).

Each check is shown on a task of known mutual information where the estimate is off by more than the
tolerance (it must flag: ``conventions["reliable"] is False`` with the reason) and on a well-posed one where
it is within the tolerance (it must not flag). The truths are closed forms, quadratures or stored Monte
Carlo values of `infoplane.groundtruth` (never the estimators' own output).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import infoplane.groundtruth as gt
from infoplane.estimators import (
    BinningEstimator,
    CriticEstimator,
    KDEEstimator,
    KNNEstimator,
    ProbeEstimator,
    SampleSizeCheck,
)
from infoplane.estimators._kernels import reliability as R

TOL = 0.25
N = 2000


def _sample(name: str, n: int = N, seed: int = 0):
    task = gt.get_task(name)
    t, y = task.sample(n, seed)
    return t, y, task.true_bits


def _discrete_channel(n: int = N, seed: int = 0):
    """T uniform on 8 values 0, 0.1, ..., 0.7; Y = (10 T) mod 4 kept with probability 0.9, else one of the
    other 3 classes at random. I(T;Y) = H(Y) − H(Y|T) = 2 − h(0.1) − 0.1 log2 3 bits."""
    rng = np.random.default_rng(seed)
    code = rng.integers(0, 8, n)
    y = code % 4
    flip = rng.random(n) < 0.1
    y[flip] = (y[flip] + rng.integers(1, 4, int(flip.sum()))) % 4
    h01 = -(0.1 * math.log2(0.1) + 0.9 * math.log2(0.9))
    return (code / 10.0)[:, None], y, 2.0 - h01 - 0.1 * math.log2(3)


def _flagged(res) -> bool:
    return res.conventions["reliable"] is False and bool(res.conventions["reliability_note"])


# ---------------------------------------------------------------------------------------------------------
# Pure rules
# ---------------------------------------------------------------------------------------------------------
def test_learned_bound_rules():
    assert R.learned_bound_notes(1.0, 1.1, 0.02, TOL) == []
    assert "over-fitting" in R.learned_bound_notes(1.0, 1.3, 0.02, TOL)[0]
    assert "imprecise" in R.learned_bound_notes(1.0, 1.0, 0.2, TOL)[0]
    assert "no dependence found" in R.learned_bound_notes(0.03, 0.03, 0.02, TOL)[0]
    assert R.learned_bound_notes(1.0, 1.0, 0.02, TOL, converged=False, rise=0.03) == []  # within noise
    assert "not converged" in R.learned_bound_notes(1.0, 1.0, 0.02, TOL, converged=False, rise=0.2)[0]
    assert R.smile_notes(0.1, TOL) == [] and R.smile_notes(float("nan"), TOL) == []
    assert "self-normalised" in R.smile_notes(-0.4, TOL)[0]
    assert R.verdict([]) == {"reliable": True, "reliability_note": None}
    assert R.verdict(["a", "b"]) == {"reliable": False, "reliability_note": "a; b"}


def test_chao_shen_entropy_equals_plug_in_when_every_symbol_is_seen_often():
    counts = np.array([500, 300, 200])
    p = counts / counts.sum()
    assert R._chao_shen_entropy_nats(counts) == pytest.approx(-(p * np.log(p)).sum(), abs=1e-12)


def test_knn_resolution_recovers_a_squared_radius_bias():
    """Per-row terms I_i(r) = I0 + c r_i² with r_2k = 2^(1/D) r_k: the extrapolation returns c·mean r_k²."""
    rng = np.random.default_rng(0)
    r1 = rng.uniform(0.5, 1.5, 5000)
    r2 = r1 * 2 ** (1 / 3)
    c, i0 = -0.2, 1.0
    rows1, rows2 = i0 + c * r1**2 + 0.01 * rng.normal(size=r1.size), i0 + c * r2**2
    out = R.knn_resolution(rows1, r1, rows2, r2)
    assert out["bias"] == pytest.approx(c * np.mean(r1**2), rel=0.05)
    assert out["radius_ratio"] == pytest.approx(2 ** (1 / 3))


# ---------------------------------------------------------------------------------------------------------
# Binning: the coverage-adjusted (Chao-Shen) estimate, and saturation
# ---------------------------------------------------------------------------------------------------------
def test_binning_flags_its_small_sample_bias():
    """4 Gaussian classes in 2 dims, bins of width 0.07: most rows alone in their bin, +0.49 bits."""
    t, y, truth = _sample("classes-K4-d2")
    r = BinningEstimator(bin_width=0.07).estimate(t, y)
    assert r.I_TY - truth > TOL
    assert _flagged(r) and "Chao-Shen" in r.conventions["reliability_note"]
    assert r.conventions["I_TY_chao_shen"] < r.I_TY - TOL


def test_binning_flags_a_saturated_layer():
    t, y, truth = _sample("classes-K10-d10")  # every row its own bin in 10 dims: I(T;Y) = H(Y)
    r = BinningEstimator(bin_width=0.07).estimate(t, y)
    assert r.I_TY - truth > TOL and _flagged(r) and "saturated" in r.conventions["reliability_note"]


@pytest.mark.parametrize("make", [lambda: BinningEstimator(bin_width=0.07), lambda: BinningEstimator(n_bins=30),
                                  lambda: BinningEstimator(np.linspace(-1, 1, 30))])
def test_binning_trusts_a_well_sampled_discrete_layer(make):
    t, y, truth = _discrete_channel()
    r = make().estimate(t, y)
    assert abs(r.I_TY - truth) < 0.1 and r.conventions["reliable"] is True
    assert r.conventions["reliability_note"] is None


def test_binning_trusts_a_deterministic_code_of_many_small_classes():
    """y = input index (1,000 classes of 2 rows), T a step network's code: the plug-in is exact (T = f(Y)),
    and the coverage adjustment sees it (the pairs have the counts of Y)."""
    t, y, truth = _sample("network-step-4")
    r = BinningEstimator(bin_width=0.07).estimate(t, y)
    assert abs(r.I_TY - truth) < 0.05 and r.conventions["reliable"] is True


# ---------------------------------------------------------------------------------------------------------
# KDE: resubstitution optimism (leave-one-out Parzen classifier)
# ---------------------------------------------------------------------------------------------------------
def test_kde_flags_kernels_too_narrow_for_the_rows():
    t, y, truth = _sample("classes-K4-d2")
    for bound in ("upper", "lower"):
        r = KDEEstimator(1e-3, bound).estimate(t, y)
        assert r.I_TY - truth > TOL
        assert _flagged(r) and "left out" in r.conventions["reliability_note"]
        assert r.conventions["resubstitution_gap_bits"] > TOL


@pytest.mark.parametrize("name", ["discrete", "network-step-4"])
def test_kde_trusts_well_populated_kernels(name):
    t, y, truth = _discrete_channel() if name == "discrete" else _sample(name)
    r = KDEEstimator(1e-3).estimate(t, y)
    assert abs(r.I_TY - truth) < TOL and r.conventions["reliable"] is True
    assert abs(r.conventions["I_TY_loo"] - r.I_TY) < 0.1


def test_kde_loo_equals_a_direct_leave_one_out_classifier():
    """`loo_parzen_bits` against the leave-one-out Parzen classifier written out with an explicit loop."""
    rng = np.random.default_rng(1)
    t = rng.normal(size=(60, 2))
    y = rng.integers(0, 3, 60)
    y[:2] = [0, 1]
    s = 2e-1
    d2 = ((t[:, None] - t[None]) ** 2).sum(-1)
    k = np.exp(-d2 / s)
    log_all = np.log(k.sum(1))
    log_cls = np.log(np.array([k[i, y == y[i]].sum() for i in range(60)]))
    n_c = np.bincount(y)
    q = []
    for i in range(60):  # the loop of the definition
        keep = np.arange(60) != i
        dens = np.array([k[i, keep & (y == c)].sum() / (n_c[c] - (c == y[i])) if n_c[c] - (c == y[i]) else 0.0
                         for c in range(3)])
        prior = n_c / 60
        q.append((prior[y[i]] * dens[y[i]] + prior[y[i]] / 60) / ((prior * dens).sum() + 1 / 60))
    h_y = -(prior * np.log2(prior)).sum()
    assert R.loo_parzen_bits(log_all, log_cls, y) == pytest.approx(h_y + np.log2(q).mean(), abs=1e-10)


# ---------------------------------------------------------------------------------------------------------
# k-NN: resolution extrapolation from k to 2k
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,target", [("symmetric-sign-3x3", "continuous"), ("symmetric-variance-K2-d9", "labels")])
def test_knn_flags_a_bias_that_moves_with_the_neighbourhood(name, target):
    t, y, truth = _sample(name)
    r = KNNEstimator(target=target).estimate(t, y)
    assert truth - r.I_TY > TOL
    assert _flagged(r) and "resolution bias" in r.conventions["reliability_note"]
    assert r.conventions["resolution_bias_bits"] < -TOL
    unchecked = KNNEstimator(target=target, resolution_check=False).estimate(t, y)
    assert unchecked.conventions["reliable"] is True and math.isnan(unchecked.conventions["resolution_bias_bits"])


@pytest.mark.parametrize("name,target", [("gauss-1x1", "continuous"), ("asinh-3x3", "continuous"),
                                         ("classes-K2-d2", "labels"), ("classes-K4-d2", "labels")])
def test_knn_trusts_a_well_resolved_estimate(name, target):
    t, y, truth = _sample(name)
    r = KNNEstimator(target=target).estimate(t, y)
    assert abs(r.I_TY - truth) < 0.1 and r.conventions["reliable"] is True
    assert abs(r.conventions["resolution_bias_bits"]) < 0.1


def test_knn_dimension_rule_is_part_of_the_verdict_and_said_once_by_the_sample_size_check():
    t, y, _ = _sample("gauss-dense-25x25", n=600)
    r = KNNEstimator(target="continuous", resolution_check=False).estimate(t, y)
    assert _flagged(r) and "dimensions" in r.conventions["reliability_note"]
    chk = SampleSizeCheck(KNNEstimator(target="continuous", resolution_check=False), min_rows=100).estimate(t, y)
    assert chk.reliability_note.count("fewer than two k-neighbourhoods per axis") == 1


def test_resolution_check_is_a_bool():
    with pytest.raises(TypeError, match="'resolution_check' parameter of KNNEstimator must be a bool"):
        KNNEstimator(resolution_check=1)


# ---------------------------------------------------------------------------------------------------------
# Probe: over-fitting gap, and a bound indistinguishable from 0
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_probe_flags_over_fitting():
    """10 classes in 100 dims, 5 of them informative: 1,000 weights on 1,600 training rows."""
    t, y, truth = _sample("classes-K10-d100-s5")
    r = ProbeEstimator().estimate(t, y)
    assert truth - r.I_TY > TOL
    assert _flagged(r) and "over-fitting" in r.conventions["reliability_note"]
    assert r.conventions["train_value_bits"] - r.conventions["I_TY_raw"] > TOL


def test_probe_flags_a_dependence_it_cannot_represent():
    """Two classes differing only in their spread: a linear probe finds nothing (truth 0.72 bits)."""
    t, y, truth = _sample("symmetric-variance-K2-d9")
    r = ProbeEstimator().estimate(t, y)
    assert truth - r.I_TY > TOL
    assert _flagged(r) and "no dependence found" in r.conventions["reliability_note"]


def test_probe_trusts_a_well_posed_task():
    t, y, truth = _sample("classes-K4-d2")
    r = ProbeEstimator().estimate(t, y)
    assert abs(r.I_TY - truth) < 0.1 and r.conventions["reliable"] is True
    assert abs(r.conventions["overfit_gap_bits"]) < 0.05 and r.conventions["clipped"] is None


# ---------------------------------------------------------------------------------------------------------
# Critics: over-fitting gap, convergence, standard error
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_critic_flags_over_fitting_on_many_small_classes():
    t, y, truth = _sample("network-step-4")  # 1,000 classes of 2 rows
    r = CriticEstimator("infonce", epochs=60).estimate(t, y)
    assert truth - r.I_TY > TOL
    assert _flagged(r) and "over-fitting" in r.conventions["reliability_note"]


@pytest.mark.slow
def test_critic_flags_training_stopped_while_still_improving():
    t, y, truth = _sample("classes-K10-d10")
    r = CriticEstimator("infonce", epochs=4, patience=20).estimate(t, y)
    assert truth - r.I_TY > TOL
    assert r.conventions["converged"] is False and r.conventions["still_rising_bits"] > 0
    assert _flagged(r) and "not converged" in r.conventions["reliability_note"]


@pytest.mark.slow
def test_smile_flags_a_critic_that_is_not_self_normalised():
    """10 classes in 10 dims: the JS-trained critic's partition over the product of the marginals is far from 1,
    and SMILE's E_p[f] − ln Z is 0.44 bits low, with neither over-fitting nor unfinished training to show it."""
    t, y, truth = _sample("classes-K10-d10")
    r = CriticEstimator("smile", epochs=60).estimate(t, y)
    assert truth - r.I_TY > TOL
    assert _flagged(r) and "self-normalised" in r.conventions["reliability_note"]
    assert r.conventions["log_partition_bits"] > TOL and r.conventions["overfit_gap_bits"] < TOL


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["infonce", "smile"])
def test_critic_trusts_a_well_posed_task(objective):
    t, y, truth = _sample("classes-K2-d2")
    r = CriticEstimator(objective, epochs=60).estimate(t, y)
    assert abs(r.I_TY - truth) < 0.1 and r.conventions["reliable"] is True
    assert 0 < r.conventions["I_TY_se"] < 0.05
    if objective == "smile":
        assert abs(r.conventions["log_partition_bits"]) < 0.1


def test_critic_standard_error_matches_the_spread_over_held_out_splits():
    """The per-row standard error of the held-out InfoNCE value against its spread over 8 seeds (which
    redraw the split and the critic: at least the row noise), within a factor of 3."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(600, 1))
    b = 0.8 * a + 0.6 * rng.normal(size=(600, 1))
    from infoplane.estimators.functional import critic_mi

    runs = [critic_mi(a, b, epochs=15, patience=5, seed=s) for s in range(8)]
    spread = float(np.std([r.value for r in runs], ddof=1))
    se = float(np.mean([r.se for r in runs]))
    assert spread / 3 < se < 3 * spread


@pytest.mark.parametrize("objective", ["infonce", "nwj", "smile"])
def test_critic_row_terms_average_to_the_reported_value(objective):
    """One per-row decomposition serves both standard errors: its reported-value terms average to
    `_objective` (SMILE: to the mean of f_ii, its first-order terms' mean), its training terms to
    `_train_objective`, and the two coincide except for SMILE (trained on the JS bound)."""
    import torch

    from infoplane.estimators._kernels.critic_objectives import objective_value as _objective
    from infoplane.estimators._kernels.critic_objectives import row_terms as _row_terms
    from infoplane.estimators._kernels.critic_objectives import train_objective as _train_objective

    scores = torch.randn(9, 9, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    value_terms, train_terms = _row_terms(scores, objective, 5.0), _row_terms(scores, objective, 5.0, train=True)
    target = scores.diagonal().mean() if objective == "smile" else _objective(scores, objective, 5.0)
    assert float(value_terms.mean()) == pytest.approx(float(target), abs=1e-12)
    assert float(train_terms.mean()) == pytest.approx(float(_train_objective(scores, objective, 5.0)), abs=1e-12)
    assert torch.equal(value_terms, train_terms) is (objective != "smile")
