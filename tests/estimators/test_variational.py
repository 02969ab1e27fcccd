"""Variational bounds against closed forms (THEORY.md), an independent dense reference, and bad input."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from infoplane._core.types import MIResult
from infoplane.estimators.variational import (
    MixtureEstimator,
    RateEstimator,
    VariationalBounds,
    barber_agakov,
    gaussian_rate,
    gaussian_rate_nats,
    mixture_mi_bounds,
    vib_loss,
)

LOG2 = math.log(2.0)


def linear_gaussian(n: int, a: float, s: float, v: float, seed: int = 0):
    """μ = a·x, σ² = v with x ~ N(0, s²), standardised so the sample has exactly mean 0 and variance s²."""
    x = np.random.default_rng(seed).normal(size=n)
    x = (x - x.mean()) / x.std() * s
    return (a * x)[:, None], np.full((n, 1), math.log(v)), x


def closed_forms(a: float, s: float, v: float) -> dict[str, float]:
    """THEORY.md, linear-Gaussian encoder, in bits."""
    q = a * a * s * s
    return {
        "R": 0.5 * (-math.log(v) - 1 + q + v) / LOG2,
        "I": 0.5 * math.log(1 + q / v) / LOG2,
        "KL": 0.5 * (-math.log(q + v) - 1 + q + v) / LOG2,
    }


def dense_reference(mu, log_var, n_samples, seed):
    """Independent numpy reference: the full (N·M, N) log-density matrix by broadcasting (small N only), the
    rows drawn in the estimator's canonical order (np.lexsort over every column, the first column first)."""
    order = np.lexsort(np.column_stack([mu, log_var]).T[::-1])
    mu, log_var = mu[order], log_var[order]
    n, d = mu.shape
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((n, n_samples, d), generator=g, dtype=torch.float64).numpy()
    z = (mu[:, None, :] + np.exp(0.5 * log_var)[:, None, :] * eps).reshape(-1, d)
    L = -0.5 * (((z[:, None, :] - mu[None]) ** 2) / np.exp(log_var)[None] + log_var[None]
                + math.log(2 * math.pi)).sum(-1)
    own_idx = np.repeat(np.arange(n), n_samples)
    own = L[np.arange(n * n_samples), own_idx]
    lower = (own - logsumexp(L, axis=1) + math.log(n)).mean() / LOG2
    L[np.arange(n * n_samples), own_idx] = -np.inf
    upper = (own - logsumexp(L, axis=1) + math.log(n - 1)).mean() / LOG2
    return lower, upper


# ------------------------------------------------------------------------------------------------ rate
def test_rate_of_the_prior_is_exactly_zero():
    assert gaussian_rate(np.zeros((7, 3)), np.zeros((7, 3))) == 0.0


def test_rate_matches_the_linear_gaussian_closed_form():
    # Sample standardised to variance s² exactly, so the mean of a²x² is a²s² and only round-off remains.
    mu, lv, _ = linear_gaussian(1000, a=2.0, s=0.7, v=0.3)
    assert gaussian_rate(mu, lv) == pytest.approx(closed_forms(2.0, 0.7, 0.3)["R"], abs=1e-12)


def test_rate_is_the_analytic_kl_per_row_in_bits(rng):
    mu, lv = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    expected = np.mean(np.sum(0.5 * (-lv - 1 + mu**2 + np.exp(lv)), axis=1)) / LOG2
    assert gaussian_rate(mu, lv) == pytest.approx(expected, rel=1e-12)
    assert float(gaussian_rate_nats(torch.as_tensor(mu), torch.as_tensor(lv))) == pytest.approx(expected * LOG2)


# ------------------------------------------------------------------------------------------------ mixture
def test_mixture_matches_the_linear_gaussian_closed_forms():
    # N = 2,000 probe points, M = 16: the probe-set mixture converges to the population I(Z;X) as N grows
    # (its bias is O(e^I / N) ≈ 0.003 bits here) and the Monte Carlo standard error is ~0.007 bits, so a
    # 0.03-bit tolerance (>4 standard errors) on I and on the implied KL gap cannot fail by chance but would
    # catch a wrong constant, a missing ½ or nats-for-bits (errors of 0.1 bit or more).
    a, s, v = 1.0, 1.0, 0.25
    cf = closed_forms(a, s, v)
    mu, lv, _ = linear_gaussian(2000, a, s, v)
    res = mixture_mi_bounds(mu, lv, n_samples=16, seed=0)
    assert res.rate == pytest.approx(cf["R"], abs=1e-12)
    assert res.estimate == pytest.approx(cf["I"], abs=0.03)
    assert res.gap == pytest.approx(cf["KL"], abs=0.03)
    assert res.lower <= cf["I"] + 0.03 and res.upper >= cf["I"] - 0.03
    # R − gap = I: exactly in the closed forms, and by construction in the result.
    assert cf["R"] - cf["KL"] == pytest.approx(cf["I"], abs=1e-12)
    assert res.rate - res.gap == pytest.approx(res.estimate, abs=1e-12)
    assert res.stderr < 0.01
    assert (res.n, res.M, res.seed) == (2000, 16, 0)


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])
def test_mixture_agrees_with_a_dense_reference_and_chunking_never_changes_it(scale):
    # Same samples (same seed, same draw order): the chunked float64 log-sum-exp must equal the dense one to
    # round-off (1e-9 bits), for overlapping, intermediate and well-separated codes, at any block size.
    rng = np.random.default_rng(1)
    mu, lv = rng.normal(size=(120, 3)) * scale, rng.normal(size=(120, 3)) - 1.0
    ref_lower, ref_upper = dense_reference(mu, lv, 4, seed=3)
    for memory_mb in (0.001, 0.05, 16.0):
        res = mixture_mi_bounds(mu, lv, n_samples=4, seed=3, memory_mb=memory_mb)
        assert res.lower == pytest.approx(ref_lower, abs=1e-9)
        assert res.upper == pytest.approx(ref_upper, abs=1e-9)


def test_mixture_lower_is_at_most_log2_n_and_below_upper():
    # Well-separated codes: every posterior is far from the others, so I(Z;X) of the probe set is log2 N and
    # the all-j bound saturates there while the leave-one-out bound is far above.
    mu = np.arange(64, dtype=float)[:, None] * 100.0
    res = mixture_mi_bounds(mu, np.zeros((64, 1)), n_samples=4, seed=0)
    assert res.lower <= math.log2(64) + 1e-12
    assert res.lower == pytest.approx(math.log2(64), abs=1e-9)
    assert res.upper > res.lower
    # Identical posteriors: Z carries nothing about X; both bounds are exactly 0.
    same = mixture_mi_bounds(np.ones((10, 2)), np.zeros((10, 2)), n_samples=3, seed=0)
    assert same.lower == pytest.approx(0.0, abs=1e-12) and same.upper == pytest.approx(0.0, abs=1e-12)


def test_mixture_monte_carlo_converges_as_m_grows():
    # Spread of the estimate over 6 seeds shrinks like 1/sqrt(M): from M = 1 to M = 64 it should fall ~8×;
    # we require 3× (the spread of a 6-seed standard deviation is ~30%).
    mu, lv, _ = linear_gaussian(300, 1.0, 1.0, 0.25)
    spread = {
        m: np.std([mixture_mi_bounds(mu, lv, n_samples=m, seed=k).estimate for k in range(6)]) for m in (1, 64)
    }
    assert spread[64] < spread[1] / 3
    # Deterministic under a seed.
    assert mixture_mi_bounds(mu, lv, n_samples=5, seed=9) == mixture_mi_bounds(mu, lv, n_samples=5, seed=9)


def test_mixture_accepts_torch_and_numpy_alike():
    mu, lv, _ = linear_gaussian(50, 1.0, 1.0, 0.5)
    a = mixture_mi_bounds(mu, lv, n_samples=3, seed=1)
    b = mixture_mi_bounds(torch.as_tensor(mu, dtype=torch.float32), torch.as_tensor(lv), n_samples=3, seed=1)
    assert a.lower == pytest.approx(b.lower, abs=1e-5)


# ------------------------------------------------------------------------------------------------ BA
def _one_hot_decoder(scale: float = 50.0):
    return lambda z: scale * z


def test_ba_with_a_perfect_decoder_on_a_deterministic_label_is_h_y():
    # z = one-hot(y) with tiny noise and logits 50·z: log q(y|z) ≈ −9·e^−50 ≈ 0, so I_BA = H(Y) to 1e-12.
    y = np.array([0, 1, 2, 2, 1, 0, 2, 2])
    mu = np.eye(3)[y]
    res = barber_agakov(mu, np.full(mu.shape, -30.0), y, _one_hot_decoder(), n_samples=4, seed=0)
    counts = np.bincount(y) / len(y)
    h_y = -(counts * np.log2(counts)).sum()
    assert res.h_y == pytest.approx(h_y, abs=1e-12)
    assert res.value == pytest.approx(h_y, abs=1e-9)
    assert res.h_y_kind == "label frequencies"


def test_ba_never_exceeds_h_y_for_classes(rng):
    y = rng.integers(0, 4, size=200)
    mu, lv = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    for k in range(3):
        w = torch.as_tensor(rng.normal(size=(3, 4)) * 5)
        res = barber_agakov(mu, lv, y, lambda z, w=w: z @ w, n_samples=3, seed=k)
        assert res.value <= res.h_y and res.mean_log_q <= 0
    probe = barber_agakov(mu, lv, y, "probe", n_samples=2, seed=0)
    assert probe.value <= probe.h_y


def test_ba_probe_decoder_recovers_most_of_a_separable_label():
    # Two well-separated clusters: the cross-fitted logistic probe is near perfect, so I_BA ≈ H(Y) = 1 bit.
    y = np.repeat([0, 1], 100)
    mu = np.where(y[:, None] == 1, 3.0, -3.0) * np.ones((200, 2))
    res = barber_agakov(mu, np.full((200, 2), math.log(0.1)), y, "probe", n_samples=4, seed=0)
    assert 0.9 < res.value <= 1.0
    assert "cross-fitted" in res.decoder


def test_ba_probe_keeps_each_inputs_samples_on_one_side_of_its_inner_split():
    """The probe's C is chosen on an inner split of each training fold. With the M samples of one input on
    both sides (a tight encoder: samples nearly equal), the validation rows were near copies of training
    rows and weak penalties looked best: here 8 samples gave 0.066 bits less than 1 (on 1,500 inputs × 32
    units, 0.75 bits less: C = 10 to 100 chosen). Inputs kept whole, more samples can only help the probe."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 1000)
    mu = 0.6 * rng.normal(size=(10, 16))[y] + rng.normal(size=(1000, 16))
    lv = np.full_like(mu, 2 * math.log(0.05))
    one = barber_agakov(mu, lv, y, "probe", n_samples=1, seed=0).value
    eight = barber_agakov(mu, lv, y, "probe", n_samples=8, seed=0).value
    assert eight > one - 0.03, (one, eight)


def test_ba_probe_does_not_depend_on_the_row_order():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    mu = rng.normal(size=(3, 4))[y] + rng.normal(size=(300, 4))
    lv = np.full_like(mu, -1.0)
    perm = rng.permutation(300)
    a = barber_agakov(mu, lv, y, "probe", n_samples=3, seed=0).value
    b = barber_agakov(mu[perm], lv[perm], y[perm], "probe", n_samples=3, seed=0).value
    assert a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("decoder", ["optimal", "probe"])
def test_ba_regression_matches_the_jointly_gaussian_closed_form(decoder):
    # y = x ~ N(0,1) (standardised exactly), z = x + ε, ε ~ N(0, v): y, z jointly Gaussian with ρ² = 1/(1+v),
    # so I(Z;Y) = −½ log2(1 − ρ²) = ½ log2(1 + 1/v). The optimal linear decoder is z/(1+v) with residual
    # variance v/(1+v); H(Y) is the fitted-Gaussian entropy (exact here). With N·M = 80,000 samples the
    # fitted s² has relative sd ~0.5%, i.e. ~0.004 bits: tolerance 0.015 bits.
    v = 0.5
    _, lv, x = linear_gaussian(20_000, 1.0, 1.0, v)
    dec = (lambda z: z / (1 + v)) if decoder == "optimal" else "probe"
    res = barber_agakov(x[:, None], lv, x, dec, task="regression", n_samples=4, seed=0)
    assert res.value == pytest.approx(0.5 * math.log2(1 + 1 / v), abs=0.015)
    assert res.h_y == pytest.approx(0.5 * math.log2(2 * math.pi * math.e), abs=1e-9)
    assert res.h_y_kind == "differential, fitted Gaussian"
    assert res.noise_variance[0] == pytest.approx(v / (1 + v), rel=0.03)


def test_ba_regression_with_a_given_variance_and_h_y():
    _, lv, x = linear_gaussian(1000, 1.0, 1.0, 0.5)
    res = barber_agakov(x[:, None], lv, x, lambda z: z / 1.5, task="regression", noise_variance=1.0, h_y=2.0)
    assert res.h_y == 2.0 and res.h_y_kind == "given" and res.noise_variance == [1.0]


# ------------------------------------------------------------------------------------------------ loss
def test_vib_loss_gradient_flows_to_mu_log_var_and_logits():
    torch.manual_seed(0)
    mu = torch.randn(6, 3, requires_grad=True)
    lv = torch.randn(6, 3, requires_grad=True)
    logits = torch.randn(6, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    loss = vib_loss(logits, y, mu, lv, beta=0.1)
    loss.backward()
    for t in (mu, lv, logits):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    expected = torch.nn.functional.cross_entropy(logits, y) + 0.1 * gaussian_rate_nats(mu, lv)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()))


def test_vib_loss_with_samples_and_regression():
    mu, lv = torch.zeros(4, 2), torch.zeros(4, 2)
    pred = torch.ones(3, 4, 1)  # S = 3 samples
    assert float(vib_loss(pred, torch.zeros(4), mu, lv, beta=1.0, task="regression")) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="pred must have shape"):
        vib_loss(torch.ones(4, 2), torch.zeros(4), mu, lv, beta=1.0, task="regression")
    with pytest.raises(ValueError, match="'beta' parameter of vib_loss"):
        vib_loss(torch.ones(4, 2), torch.zeros(4, dtype=torch.long), mu, lv, beta=-1.0)


# ------------------------------------------------------------------------------------------------ accumulator
def test_accumulator_over_batches_equals_the_whole_epoch(rng):
    mu, lv = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    y = rng.integers(0, 3, size=40)
    logits = rng.normal(size=(40, 3))
    acc = VariationalBounds(mixture=True, n_samples=2)
    for s in range(0, 40, 10):
        acc.update(mu[s : s + 10], lv[s : s + 10], y[s : s + 10], logits[s : s + 10])
    out = acc.compute()
    assert out["rate_bits"] == pytest.approx(gaussian_rate(mu, lv))
    log_q = torch.log_softmax(torch.as_tensor(logits), 1)[np.arange(40), y].mean().item() / LOG2
    assert out["ba_bits"] == pytest.approx(out["h_y_bits"] + log_q)
    assert out["mixture_lower_bits"] <= math.log2(10) + 1e-12
    assert acc.compute() == out  # compute has no side effects
    acc.reset()
    assert acc.compute()["n"] == 0 and math.isnan(acc.compute()["rate_bits"])


# ------------------------------------------------------------------------------------------------ estimators
def test_estimators_give_json_able_results_with_the_right_bounds(rng):
    y = rng.integers(0, 3, size=90)
    mu = np.eye(3)[y] * 4 + rng.normal(size=(90, 3))
    lv = np.full((90, 3), -1.0)
    decoder = torch.nn.Linear(3, 3)
    for est in (RateEstimator(decoder, beta=1e-3), MixtureEstimator("upper", n_samples=2), MixtureEstimator()):
        res = est.estimate(mu, y, log_var=lv)
        assert isinstance(res, MIResult) and est.input_kind == "gaussian"
        assert res.bound_TY == "lower" and res.n_samples == 90
        json.dumps(est.conventions())
        json.dumps(res.to_dict())
    r = RateEstimator("probe").estimate(mu, y, log_var=lv)
    assert r.bound_XT == "upper" and r.I_XT == pytest.approx(gaussian_rate(mu, lv))
    m = MixtureEstimator("lower").estimate(mu, y, log_var=lv)
    assert m.bound_XT == "lower" and m.I_XT <= math.log2(90)
    assert m.conventions["rate_bits"] - m.conventions["gap_bits"] == pytest.approx(m.I_XT)
    # Deterministic under a seed; the shuffle baseline of the base class works with log_var.
    assert MixtureEstimator(seed=3).estimate(mu, y, log_var=lv) == MixtureEstimator(seed=3).estimate(
        mu, y, log_var=lv
    )
    base = RateEstimator("probe", n_folds=2).shuffle_baseline(mu, y, n_permutations=2, log_var=lv)
    assert base.I_TY < 0.2


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_input_errors_name_the_argument():
    mu, lv = np.zeros((5, 2)), np.zeros((5, 2))
    bad = mu.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"mu contain NaN \(1 of 10 values\)"):
        gaussian_rate(bad, lv)
    bad_lv = lv.copy()
    bad_lv[1, 1] = np.inf
    with pytest.raises(ValueError, match=r"log_var contain Inf"):
        mixture_mi_bounds(mu, bad_lv)
    with pytest.raises(ValueError, match=r"log_var must have the same shape as mu \(5, 2\)\. Got shape \(5, 3\)"):
        mixture_mi_bounds(mu, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="'n_samples' parameter of mixture_mi_bounds must be an int >= 1"):
        mixture_mi_bounds(mu, lv, n_samples=0)
    with pytest.raises(ValueError, match="'n_samples' parameter of barber_agakov must be an int >= 1"):
        barber_agakov(mu, lv, np.array([0, 1, 0, 1, 0]), lambda z: z, n_samples=0)
    with pytest.raises(ValueError, match=r"y holds labels outside the decoder's classes 0\.\.1: found \[2\]"):
        barber_agakov(mu, lv, np.array([0, 1, 2, 1, 0]), lambda z: z)
    with pytest.raises(ValueError, match="at least 2 rows"):
        mixture_mi_bounds(mu[:1], lv[:1])
    with pytest.raises(ValueError, match="'decoder' parameter of barber_agakov"):
        barber_agakov(mu, lv, np.array([0, 1, 0, 1, 0]), "forest")
    with pytest.raises(TypeError, match="needs log_var"):
        RateEstimator("probe").estimate(mu, np.array([0, 1, 0, 1, 0]))
    with pytest.raises(ValueError, match="'bound' parameter of MixtureEstimator"):
        MixtureEstimator("middle")
    with pytest.raises(ValueError, match=r"y must have one label per row of the activations \(5\)\. Got 2"):
        RateEstimator("probe").estimate(mu, np.array([0, 1]), log_var=lv)


def test_mixture_upper_is_the_tighter_of_rate_and_leave_one_out():
    # Eight codes 0.29 apart with sigma^2 = 1e-4: each is far from the others, so the leave-one-out mixture
    # density at its samples is tiny and that bound (hundreds of bits) lies far above the rate (about 7 bits).
    mu = np.linspace(-1.0, 1.0, 8)[:, None]
    lv = np.full((8, 1), math.log(1e-4))
    y = np.arange(8) % 2
    r = MixtureEstimator("upper", n_samples=2, n_folds=2).estimate(mu, y, log_var=lv)
    rate = gaussian_rate(mu, lv)
    assert r.conventions["mixture_upper_bits"] > 10 * rate
    assert r.I_XT == r.conventions["mixture_tight_upper_bits"] == rate and r.bound_XT == "upper"
    bounds = mixture_mi_bounds(mu, lv, n_samples=2)
    assert bounds.tight_upper == min(bounds.rate, bounds.upper) == bounds.rate
