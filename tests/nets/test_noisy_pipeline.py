"""The noisy path end to end: specs, Recorder draws, information_plane's "noisy" preset, honesty, closed forms.

Every estimate is checked against a closed form within 3 of its own standard errors (plus the stated finite-N
gap where the closed form is a population value).
"""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

from infoplane import Layer, Recorder, SaturationWarning, compression_scores, information_plane
from infoplane.nets import ConvNet, load_digits_augmented, mlp, train
from infoplane.nets import GaussianDropout as NetsDropout
from infoplane.noise import GaussianDropout, GaussianNoise, add_noise, noise_from_dict, sample_propagation

LOG2E = 1 / math.log(2)


def test_specs_frozen_json_and_named_errors():
    g, d = GaussianNoise(0.5), GaussianDropout(0.2)
    assert NetsDropout is GaussianDropout
    assert noise_from_dict(json.loads(json.dumps(g.to_dict()))) == g
    assert noise_from_dict(d.to_dict()) == d and d.sigma == pytest.approx(0.5)
    with pytest.raises(AttributeError):
        g.std = 1.0
    for bad in (0.0, -1.0, math.nan, math.inf, "x"):
        with pytest.raises(ValueError, match=r"'std' parameter of GaussianNoise must be a finite float > 0"):
            GaussianNoise(bad)
    for bad in (0.0, 1.0, -0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match=r"'rate' parameter of GaussianDropout must be"):
            GaussianDropout(bad)
    with pytest.raises(ValueError, match=r"'noise' parameter of Layer must be a GaussianNoise"):
        Layer("0", noise="loud")


def _linear(w: np.ndarray, b: np.ndarray | None = None) -> torch.nn.Sequential:
    model = torch.nn.Sequential(torch.nn.Linear(w.shape[1], w.shape[0], bias=b is not None), torch.nn.Identity())
    with torch.no_grad():
        model[0].weight.copy_(torch.as_tensor(w))
        if b is not None:
            model[0].bias.copy_(torch.as_tensor(b))
    return model.double()


def _plane(model, x, y, layers, **kw):
    rec = Recorder(model, layers, x, labels=y, draws=kw.pop("draws", 8), **kw)
    rec.step(0)
    return rec, information_plane(rec, progress=False)


def test_additive_noise_on_linear_layer_closed_form_through_recorder():
    """T = W x + Z, x ~ N(0, Σ), Z ~ N(0, s² I): I(X;T) = ½ log2 det(I + W Σ Wᵀ / s²) = 1.93 bits.

    N = 2,000 inputs: the probe-set mixture's value lies within 0.03 bits of the population one (measured with
    N = 8,000); the Monte Carlo error is the stated I_XT_se."""
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.0]])
    w = np.array([[1.0, 0.5, -0.3], [0.2, -0.7, 0.8]])
    s = 0.6
    x = rng.multivariate_normal(np.zeros(3), cov, size=2000)
    true = 0.5 * np.linalg.slogdet(np.eye(2) + w @ cov @ w.T / s**2)[1] * LOG2E
    _, df = _plane(_linear(w), x, (x[:, 0] > 0).astype(np.int64), Layer("0", noise=GaussianNoise(s)))
    row = df.iloc[0]
    assert row.estimator == "noisy" and row.bound_XT == "estimate"
    assert abs(row.I_XT - true) < 3 * row.I_XT_se + 0.03, (row.I_XT, true, row.I_XT_se)
    assert 0 < row.I_XT_se < 0.05 and 0 < row.I_TY_se < 0.05 and row.I_TY <= 1.0
    assert not row.saturated and not row.dpi_violation


def _dropout_truth(f: np.ndarray, sigma: float) -> float:
    """I(X;T) in bits for T = f(x)(1 + σ ε), x uniform over the rows: h(T|X) = E ln(|f| σ √(2πe)) exactly,
    h(T) by quadrature of the N-component one-dimensional mixture on a fine grid."""
    h_cond = np.mean(np.log(np.abs(f) * sigma * math.sqrt(2 * math.pi * math.e)))
    sd = sigma * np.abs(f)
    grid = np.linspace((f - 9 * sd).min(), (f + 9 * sd).max(), 20_001)
    p = np.zeros_like(grid)
    for i in range(0, len(f), 250):  # loop over blocks of components
        fi, si = f[i : i + 250, None], sd[i : i + 250, None]
        p += (np.exp(-0.5 * ((grid - fi) / si) ** 2) / (si * math.sqrt(2 * math.pi))).sum(0)
    p /= len(f)
    h = -np.sum(np.where(p > 0, p * np.log(p), 0.0)) * (grid[1] - grid[0])
    return (h - h_cond) * LOG2E


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_gaussian_dropout_one_unit_closed_form(rate):
    """f(x) = a x + b on x ~ N(0, 1), T = f(x)(1 + σ ε): the estimate is within 3 SE of the quadrature."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1500, 1))
    a, b = 1.5, 6.0  # f(x) > 0 on the probe: every unit noisy
    spec = GaussianDropout(rate)
    true = _dropout_truth((a * x + b)[:, 0], spec.sigma)
    _, df = _plane(_linear(np.array([[a]]), np.array([b])), x, (x[:, 0] > 0).astype(np.int64),
                   Layer("0", noise=spec))
    row = df.iloc[0]
    assert abs(row.I_XT - true) < 3 * row.I_XT_se, (row.I_XT, true, row.I_XT_se)
    conv = df.attrs["conventions"]["noisy"]
    assert conv["noise"] is None  # the preset takes each layer's recorded spec


@pytest.mark.slow
def test_information_falls_as_noise_grows():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1500, 3))
    w = rng.normal(size=(4, 3))
    values = []
    for s in (0.3, 0.6, 1.2, 2.4):
        _, df = _plane(_linear(w), x, (x[:, 0] > 0).astype(np.int64), Layer("0", noise=GaussianNoise(s)))
        values.append((df.I_XT.iloc[0], df.I_XT_se.iloc[0]))
    for (hi, se_hi), (lo, se_lo) in zip(values, values[1:]):
        assert hi - lo > 3 * math.hypot(se_hi, se_lo)


def _two_noisy(seed=3):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3), torch.nn.Tanh())
    return model.double()


@pytest.mark.slow
def test_recorded_draws_equal_manual_sample_propagation_and_dpi_holds():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(600, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = _two_noisy()
    spec = GaussianNoise(0.3)
    rec = Recorder(model, [Layer("1", noise=spec), Layer("3", noise=spec)], x, labels=y, draws=8, noise_seed=5,
                   batch_size=256)
    rec.step(0)
    manual = sample_propagation(model, x, ["1", "3"], spec, labels=y, n_samples=8, seed=5, batch_size=256)
    for name in ("1", "3"):
        stored = rec.store.activations(0, name).reshape(600 * 8, -1)
        np.testing.assert_array_equal(stored, manual[name].centres.astype(np.float32))
    assert rec.store.metadata["noise"]["3"] == {"spec": spec.to_dict(), "draws": 8, "seed": 5}
    df = information_plane(rec, progress=False).set_index("layer")
    # DPI: X -> T1 -> T2, within the combined standard errors.
    for col in ("I_XT", "I_TY"):
        assert df.loc["3", col] <= df.loc["1", col] + 3 * math.hypot(df.loc["1", f"{col}_se"], df.loc["3", f"{col}_se"])
    assert not df["dpi_violation"].any()
    # Deterministic estimators see the first draw; binning saturates on them.
    both = information_plane(rec, estimators=["binning", "noisy"], progress=False)
    assert set(both.estimator) == {"binning", "noisy"} and both.query("estimator == 'binning'").I_XT_se.isna().all()


@pytest.mark.slow
def test_saturation_warning_on_deterministic_cnn_not_on_noisy_twin():
    x, y = load_digits_augmented(300, seed=0)
    model = ConvNet(channels=(4, 8, 8), hidden=16, seed=0)
    train(model, x, y, epochs=15, lr=1e-2, batch_size=64, progress=False)
    rec = Recorder(model, ["dense1", "dense2"], x, labels=y)
    rec.step(0)
    with pytest.warns(SaturationWarning, match=r"'binning-width' at layers \['dense1', 'dense2'\].*noise="):
        df = information_plane(rec, estimators="binning-width", progress=False)
    scores = compression_scores(df)
    assert scores["compression"].isna().all() and scores["reason"].str.startswith("saturated").all()
    noisy = Recorder(model, [Layer("dense1.1", noise=GaussianDropout(0.3)), Layer("dense2", noise=GaussianNoise(1.0))],
                     x, labels=y, draws=4)
    noisy.step(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SaturationWarning)
        with pytest.warns(UserWarning, match=r"fewer than 8 propagated draws"):
            df2 = information_plane(noisy, progress=False)
    assert (df2.I_XT < math.log2(300) - 0.5).all()


def test_bad_input_named():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    x = np.zeros((10, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"'draws' parameter of Recorder must be an int >= 2. Got 1"):
        Recorder(model, Layer("0", noise=GaussianNoise(1.0)), x, draws=1)
    with pytest.raises(ValueError, match=r"layer '0' has noise=.*pool/project/units/dtype would break the noise"):
        Recorder(model, Layer("0", noise=GaussianNoise(1.0), project=2), x)

    class Pair(torch.nn.Module):
        def forward(self, z):
            return z, z

    two = torch.nn.Sequential(torch.nn.Linear(3, 3), Pair())
    rec = Recorder(two, Layer("1", noise=GaussianNoise(1.0)), x)
    with pytest.raises(TypeError, match=r"noise needs a tensor output, but layer '1' returned tuple"):
        rec.step(0)
    with pytest.raises(ValueError, match=r"layer '0' has no noise"):
        with add_noise(model, "0"):
            pass
    dropout = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
    with pytest.warns(UserWarning, match=r"Bernoulli dropout \['1'\].*infinite.*Thm 3.1"):
        Recorder(dropout, Layer("2", noise=GaussianNoise(1.0)), x)
    store = Recorder(model, ["0"], x, labels=np.arange(10) % 2)
    store.step(0)
    with pytest.raises(ValueError, match=r"the noisy estimator needs noisy layers"):
        information_plane(store, estimators="noisy", progress=False)


def test_add_noise_resolves_layers_like_the_recorder_and_trains():
    model = mlp([4, 8, 8, 3], "tanh")
    x = torch.randn(64, 4)
    y = torch.randint(0, 3, (64,))
    with add_noise(model, torch.nn.Linear, GaussianDropout(0.2), seed=0) as hooks:
        assert sorted(hooks.layers) == ["0", "2", "4"]
        model.train()
        a, b = model(x), model(x)
        assert not torch.allclose(a, b)  # noisy in training mode by default
        train(model, x.numpy(), y.numpy(), epochs=2, batch_size=32)
    with add_noise(model, "[13]", 0.1) as hooks:  # a glob, as the Recorder reads it
        assert sorted(hooks.layers) == ["1", "3"]
    assert all(not m._forward_hooks for m in model.modules())


def test_plots_show_standard_errors_and_refuse_planes_without_i_xt():
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from infoplane.plotting import plot_information_plane, plot_mi_vs_epoch

    rows = [{"epoch": e, "layer": "a", "estimator": est, "I_XT": math.nan if est == "knn" else 2.0 - 0.1 * e,
             "I_TY": 0.5, "I_XT_se": 0.05, "I_TY_se": 0.02, "bound_XT": "estimate", "bound_TY": "estimate",
             "n_samples": 100} for e in range(3) for est in ("knn", "noisy")]
    df = pd.DataFrame(rows)
    ax = plot_information_plane(df, estimator="noisy")
    assert any(c.get_gid() == "standard-error" for c in ax.collections)
    with pytest.raises(ValueError, match=r"needs I\(T;X\), but estimator .knn. gives none.*plot_mi_vs_epoch"):
        plot_information_plane(df, estimator="knn")
    plot_mi_vs_epoch(df, "I_TY", estimator="knn")  # I(T;Y) alone is drawn against epoch
