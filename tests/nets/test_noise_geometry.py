"""Noisy networks (hooks, sample propagation, NoisyEstimator) and geometric compression, against closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infoplane.analysis import geometric_compression
from infoplane.estimators import KDEEstimator, NoisyEstimator
from infoplane.noise import add_noise, sample_propagation


def _linear_gaussian(n=1500, seed=0, s=0.6):
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.0]])
    x = rng.multivariate_normal(np.zeros(3), cov, size=n)
    w = np.array([[1.0, 0.5, -0.3], [0.2, -0.7, 0.8]])
    true = 0.5 * np.linalg.slogdet(np.eye(2) + w @ cov @ w.T / s**2)[1] / math.log(2)
    return x, w, s, true


def test_linear_gaussian_layer_closed_form_through_hooks():
    """T = W x + Z, x ~ N(0, Σ): I(X;T) = ½ log2 det(I + W Σ Wᵀ / s²) (1.93 bits here).

    The estimate is the probe-set (mixture of N = 1,500 Gaussians) value, which approaches the population
    value as N grows; 0.06 bits covers that gap plus Monte Carlo error (stderr ~0.01 bits) at this N."""
    x, w, s, true = _linear_gaussian()
    model = torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), torch.nn.Identity())
    with torch.no_grad():
        model[0].weight.copy_(torch.as_tensor(w))
    model.double()
    y = (x[:, 0] > 0).astype(np.int64)
    layer = sample_propagation(model, x, ["0"], s, labels=y, n_samples=1)["0"]
    np.testing.assert_allclose(layer.centres, x @ w.T, rtol=1e-6, atol=1e-6)
    r = NoisyEstimator(noise_std=s, n_draws=8).estimate(layer.centres, layer.labels, x=layer.inputs)
    se = r.conventions["stderr_XT_bits"]
    assert abs(r.I_XT - true) < 3 * se and se < 0.04  # 4,096 Monte Carlo points


def test_between_kolchinsky_tracey_bounds():
    x, w, s, _ = _linear_gaussian(n=800, seed=1, s=0.3)
    centres = x @ w.T
    y = (x[:, 1] > 0).astype(np.int64)
    mc = NoisyEstimator(noise_std=s, n_draws=16).estimate(centres, y)
    lo = KDEEstimator(noise_variance=s**2, bound="lower").estimate(centres, y)
    hi = KDEEstimator(noise_variance=s**2, bound="upper").estimate(centres, y)
    se = mc.conventions["stderr_XT_bits"]
    assert lo.I_XT - 3 * se <= mc.I_XT <= hi.I_XT + 3 * se
    assert hi.I_XT - lo.I_XT > 0.2  # the bracket is not trivially tight here


@pytest.mark.slow
def test_two_noisy_layers_deeper_is_mixture_and_obeys_dpi():
    """T1 = W1 x + Z1, T2 = W2 T1 + Z2: both Gaussian given nothing, so
    I(X;T2) = ½ log2 det(I + A Σ Aᵀ (s² (W2 W2ᵀ + I))⁻¹) with A = W2 W1 (1.39 bits here; measured 1.50). The deeper layer's
    h(T2|X=x) is a mixture over m = 16 propagated draws: 0.15 bits covers its small-m bias at N = 250."""
    x, w1, s, true1 = _linear_gaussian(n=250, seed=2)
    cov = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.0]])
    w2 = np.array([[0.9, 0.4], [-0.3, 1.1]])
    a = w2 @ w1
    noise_cov = s**2 * (w2 @ w2.T + np.eye(2))
    true2 = 0.5 * (np.linalg.slogdet(a @ cov @ a.T + noise_cov)[1] - np.linalg.slogdet(noise_cov)[1]) / math.log(2)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False), torch.nn.Linear(2, 2, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.as_tensor(w1))
        model[1].weight.copy_(torch.as_tensor(w2))
    y = (x[:, 0] > 0).astype(np.int64)
    layers = sample_propagation(model, x, ["0", "1"], s, labels=y, n_samples=16, seed=3)
    est = NoisyEstimator(noise_std=s, n_draws=2)
    r1 = est.estimate(layers["0"].centres, layers["0"].labels, x=layers["0"].inputs)
    r2 = est.estimate(layers["1"].centres, layers["1"].labels, x=layers["1"].inputs)
    assert r1.I_XT == pytest.approx(true1, abs=0.1)
    assert r2.I_XT == pytest.approx(true2, abs=0.15)
    assert r2.I_XT <= r1.I_XT + 0.05 and r2.I_TY <= r1.I_TY + 0.05


def test_add_noise_hooks_modes_and_removal():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    x = torch.randn(5, 3)
    clean = model(x)
    model.eval()
    with add_noise(model, ["1"], 0.5, training=False, seed=0) as hooks:
        a = model(x)
        model.train()
        b = model(x)  # training mode: no noise with training=False
    assert not torch.allclose(a, clean) and torch.allclose(b, clean)
    assert hooks.layers.keys() == {"1"}
    with add_noise(model, model[1], 0.5, seed=0, training=True):
        c = model(x)
    assert torch.allclose(c, a)  # same seed, same noise, whatever the mode
    assert all(not m._forward_hooks for m in model.modules())

    class Boom(torch.nn.Module):
        def forward(self, z):
            raise RuntimeError("boom")

    model2 = torch.nn.Sequential(torch.nn.Linear(3, 3), Boom())
    with pytest.raises(RuntimeError, match="boom"), add_noise(model2, ["0"], 0.1):
        model2(x)
    assert all(not m._forward_hooks for m in model2.modules())
    with pytest.raises(KeyError, match=r"no module named 'fc9' in the model.* Available named_modules\(\) names: '0', '1', '2'"):
        with add_noise(model, ["fc9"], 0.1):
            pass
    with pytest.raises(ValueError, match=r"'spec' parameter of add_noise must be a finite float > 0. Got 0"):
        with add_noise(model, ["1"], 0):
            pass


def test_noisy_estimator_bad_input_named():
    with pytest.raises(ValueError, match=r"'noise_std' parameter of NoisyEstimator must be a finite float > 0"):
        NoisyEstimator(noise_std=-1.0)
    with pytest.raises(ValueError, match=r"'n_draws' parameter of NoisyEstimator must be an int >= 1. Got 0"):
        NoisyEstimator(n_draws=0)


def _clusters(m=2.0, sigma=0.5, d=3):
    """Two classes at ±m e1; each class's rows are its mean ± sigma·sqrt(d)·e_k, so Σ_W = sigma² I exactly."""
    rows, labels = [], []
    for c, sign in enumerate((-1.0, 1.0)):
        mean = np.zeros(d)
        mean[0] = sign * m
        for k in range(d):
            for pm in (-1.0, 1.0):
                e = np.zeros(d)
                e[k] = pm * sigma * math.sqrt(d)
                rows.append(mean + e)
                labels.append(c)
    return np.array(rows), np.array(labels)


def test_geometric_compression_known_scatter():
    """Σ_W = σ² I, Σ_B = m² e1 e1ᵀ: tr(Σ_W Σ_B⁺)/C = σ²/(m² C)."""
    for m, sigma in ((2.0, 0.5), (1.0, 1.0), (3.0, 0.1)):
        t, y = _clusters(m, sigma)
        assert geometric_compression(t, y) == pytest.approx(sigma**2 / (m**2 * 2), rel=1e-12)
    # Rotation and scale invariant; a random rotation of the known case.
    t, y = _clusters(2.0, 0.5)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    assert geometric_compression(3.0 * t @ q, y) == pytest.approx(0.5**2 / 8, rel=1e-10)
    assert geometric_compression(torch.from_numpy(t), torch.from_numpy(y)) == pytest.approx(0.5**2 / 8, rel=1e-12)


def test_geometric_compression_three_gaussian_clusters():
    """Three isotropic Gaussian classes (within variance v) at the vertices of a triangle of side L: Σ_B has
    two eigenvalues L²/6 (balanced), so tr(Σ_W Σ_B⁺)/C -> v · 2 · 6 / (L² · 3) = 4v / L² as N grows."""
    rng = np.random.default_rng(1)
    L, v, n = 4.0, 0.25, 20000
    verts = np.array([[0, 0], [L, 0], [L / 2, L * math.sqrt(3) / 2]])
    y = np.repeat(np.arange(3), n)
    t = verts[y] + math.sqrt(v) * rng.normal(size=(3 * n, 2))
    assert geometric_compression(t, y) == pytest.approx(4 * v / L**2, rel=0.03)
    assert geometric_compression(np.ones((6, 2)) + np.arange(6)[:, None] * 0, np.arange(6) % 2) == math.inf
