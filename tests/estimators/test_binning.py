"""BinningEstimator: closed forms, exact tiny cases, the SZT convention, schemes, errors, shuffle baseline.

Discrete plug-in values are exact up to float64 round-off of a few logs: compared with abs=1e-12.
"""
from __future__ import annotations

import collections
import math

import numpy as np
import pytest
import torch

from infoplane.estimators import BinningEstimator
from infoplane.estimators._kernels import binning as K

SZT_EDGES = np.linspace(-1, 1, 30)


def _szt_layer(n_inputs: int = 512, width: int = 5, scale: float = 1.5, seed: int = 0):
    """tanh of a random projection of n_inputs distinct 12-bit inputs, with SZT-like labels."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(4096, size=n_inputs, replace=False)
    x = ((rows[:, None] >> np.arange(11, -1, -1)) & 1).astype(np.float64)
    t = np.tanh(scale * (x - 0.5) @ rng.normal(size=(12, width)) / np.sqrt(12))
    y = (x.sum(1) + rng.normal(scale=0.5, size=n_inputs) > 6).astype(int)
    return t, y


def _original_szt(t: np.ndarray, y: np.ndarray, bins: np.ndarray) -> tuple[float, float]:
    """The original IDNNs algorithm written out: symbol = bins[digitize - 1], per-input/per-label loops."""
    bins = bins.astype(np.float32)
    digitized = bins[np.digitize(t.reshape(-1), bins) - 1].reshape(len(t), -1)

    def h_rows(rows):
        v = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))
        _, counts = np.unique(v, return_counts=True)
        p = counts / counts.sum()
        return -np.sum(p * np.log2(p))

    h_t = h_rows(digitized)
    h_t_x = sum(h_rows(digitized[i : i + 1]) / len(t) for i in range(len(t)))  # each input once
    h_t_y = sum(np.mean(y == c) * h_rows(digitized[y == c]) for c in np.unique(y))
    return h_t - h_t_x, h_t - h_t_y


@pytest.mark.parametrize("edges", [SZT_EDGES, SZT_EDGES.astype(np.float32)], ids=["float64", "float32"])
@pytest.mark.parametrize("scale", [0.5, 3.0, 20.0])  # 20: saturated, many values at exactly ±1 in float32
def test_szt_edges_reproduce_original(edges, scale):
    t, y = _szt_layer(scale=scale)
    t = t.astype(np.float32)  # the original network ran in float32
    ref_xt, ref_ty = _original_szt(t, y, edges)
    r = BinningEstimator(edges=edges.astype(np.float32)).estimate(t, y)
    assert (r.I_XT, r.I_TY) == pytest.approx((ref_xt, ref_ty), abs=1e-12)


def test_szt_below_range_does_not_wrap():
    t = np.array([[-1.5], [1.0], [0.0], [0.5]])
    y = np.array([0, 1, 0, 1])
    # The original maps -1.5 to the top symbol, merging rows 0 and 1: H(T) = 1.5 bits instead of 2.
    assert _original_szt(t, y, SZT_EDGES)[0] == pytest.approx(1.5)
    assert BinningEstimator(edges=SZT_EDGES).estimate(t, y).I_XT == pytest.approx(2.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"t has 1 of 4 values outside the binning range \[-1, 1\]"):
        BinningEstimator(edges=SZT_EDGES, out_of_range="raise").estimate(t, y)


ALL_SCHEMES = [
    BinningEstimator(edges=SZT_EDGES),
    BinningEstimator(bin_width=0.07),
    BinningEstimator(n_bins=30, range=(-1, 1)),
    BinningEstimator(n_bins=30),
    BinningEstimator(n_bins=30, strategy="adaptive"),
]


@pytest.mark.parametrize("est", ALL_SCHEMES, ids=repr)
def test_one_hot_labels_give_H_Y(est):
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    t = np.eye(4)[y] * 0.9
    p = np.array([10, 20, 30, 40]) / 100
    h_y = -(p * np.log2(p)).sum()
    r = est.estimate(t, y)
    assert r.I_TY == pytest.approx(h_y, abs=1e-12)
    assert r.I_XT == pytest.approx(h_y, abs=1e-12)  # T is a function of Y here, so I(T;X) = H(T) = H(Y)


@pytest.mark.parametrize("est", ALL_SCHEMES, ids=repr)
def test_distinct_rows_give_log2_n_and_constant_gives_zero(est):
    n = 25
    t = np.linspace(-0.95, 0.95, n)[:, None]  # spacing 0.079 > every bin width above
    if est.scheme == "uniform" and est.range is None:
        t = np.linspace(-0.95, 0.95, 30)[:n, None]  # 30 bins over the data range: one value per bin
    y = np.arange(n) % 2
    r = est.estimate(t, y)
    assert r.I_XT == pytest.approx(math.log2(n), abs=1e-12)
    h_y = -(13 / 25) * math.log2(13 / 25) - (12 / 25) * math.log2(12 / 25)
    assert r.I_TY == pytest.approx(h_y, abs=1e-12)  # every symbol has one label: H(T|Y) = H(T) - H(Y)
    const = est.estimate(np.full((n, 3), 0.3), y)
    assert (const.I_XT, const.I_TY) == (0.0, 0.0)


def test_hand_computed_tiny_case_and_repeated_inputs():
    # Width 1: rows (0.2, 0.4, 1.5, 2.5) -> symbols a a b c. H(T) = 1.5, I(T;Y) = 1.5 - 1 = 0.5 bit.
    t = np.array([[0.2], [0.4], [1.5], [2.5]])
    y = np.array([0, 1, 0, 1])
    est = BinningEstimator(bin_width=1.0)
    r = est.estimate(t, y)
    assert (r.I_XT, r.I_TY) == pytest.approx((1.5, 0.5), abs=1e-12)
    # Rows 0,1 are one input, rows 2,3 another: X=0 -> {a, a}, X=1 -> {b, c}, so H(T|X) = 0.5·0 + 0.5·1.
    r = est.estimate(t, y, x=np.array([7, 7, 9, 9]))
    assert r.I_XT == pytest.approx(1.5 - 0.5, abs=1e-12)
    assert r.conventions["inputs"] == "given"
    # x as (N, k) input rows works the same way.
    r2 = est.estimate(t, y, x=np.array([[1, 0], [1, 0], [0, 1], [0, 1]]))
    assert r2.I_XT == r.I_XT


def test_width_is_floor_anchored_at_zero():
    t = np.array([[-0.01], [0.01], [0.069], [0.071]])
    r = BinningEstimator(bin_width=0.07).estimate(t, np.array([0, 0, 1, 1]))
    assert r.I_XT == pytest.approx(1.5, abs=1e-12)  # bins -1, 0, 0, 1
    assert r.conventions["bin_width"] == 0.07 and r.conventions["scheme"] == "width"


def test_data_range_per_call_is_scale_invariant_fixed_range_is_not():
    t, y = _szt_layer(scale=3.0)
    per_call = BinningEstimator(n_bins=10)
    a, b = per_call.estimate(t, y), per_call.estimate(0.2 * t + 3.0, y)
    assert (a.I_XT, a.I_TY) == pytest.approx((b.I_XT, b.I_TY), abs=1e-12)
    assert b.conventions["range_source"] == "per_call"
    assert b.conventions["range"] == pytest.approx([0.2 * t.min() + 3, 0.2 * t.max() + 3])
    fixed = BinningEstimator(n_bins=10, range=(-1, 1))
    assert fixed.estimate(0.2 * t, y).I_XT < fixed.estimate(t, y).I_XT


def test_fit_gives_one_range_across_epochs():
    epochs = [_szt_layer(scale=s)[0] * s for s in (0.5, 1.0, 4.0)]
    y = _szt_layer()[1]
    base = BinningEstimator(n_bins=12, out_of_range="raise")
    fitted = BinningEstimator(n_bins=12, out_of_range="raise")
    assert fitted.fit(epochs) is fitted and not hasattr(base, "range_")  # scikit-learn style: returns self
    lo, hi = min(e.min() for e in epochs), max(e.max() for e in epochs)
    assert fitted.range_ == (lo, hi) and fitted.range is None  # the fitted attribute, not the parameter
    conv = fitted.estimate(epochs[0], y).conventions
    assert conv["range_source"] == "fit" and conv["range"] == pytest.approx([lo, hi])
    # Small early-epoch activations occupy few of the global bins: lower I(T;X) than under their own range.
    assert fitted.estimate(epochs[0], y).I_XT < base.estimate(epochs[0], y).I_XT
    with pytest.raises(ValueError, match="fit sets a global range"):
        BinningEstimator(bin_width=0.1).fit(epochs)
    with pytest.raises(ValueError, match=r"fit sets a global range .* range is given \(\(0.0, 1.0\)\)"):
        BinningEstimator(n_bins=4, range=(0, 1)).fit(epochs)
    with pytest.raises(ValueError, match=r"activations\[1\] contain NaN"):
        base.fit([epochs[0], np.full((3, 2), np.nan)])


def test_adaptive_bins_without_ties_are_equal_mass_per_call():
    rng = np.random.default_rng(1)
    t = rng.standard_cauchy(size=(4000, 1))
    y = rng.integers(0, 2, 4000)
    r = BinningEstimator(n_bins=8, strategy="adaptive").estimate(t, y)
    # The minimum alone, the other 3,999 values at ranks int(k * 3999/8): 499, 500 x 6, 499 rows; the maximum alone.
    p = np.array([1, 499] + [500] * 6 + [499, 1]) / 4000
    assert r.I_XT == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-12)
    assert r.conventions["n_bins_effective"] == 10 and len(r.conventions["edges"]) == 9  # edges above the bottom
    # One-hot codes pool to 75% zeros and 25% 0.9: two bins, the zeros and the top value each their own.
    onehot = BinningEstimator(n_bins=30, strategy="adaptive").estimate(np.eye(4)[np.arange(40) % 4] * 0.9,
                                                                       np.arange(40) % 4)
    assert onehot.conventions["n_bins_effective"] == 2 and onehot.I_XT == pytest.approx(2.0, abs=1e-12)


@pytest.mark.parametrize("as_torch", [False, True])
def test_adaptive_keeps_its_bins_as_a_layer_gets_sparse_and_quantile_loses_them(as_torch):
    # One unit, 2 classes; half the rows 0 (a dead ReLU half), the other half 600 distinct positive values.
    t = np.concatenate([np.zeros(600), np.arange(1, 601) / 600.0])[:, None]
    y = np.arange(1200) % 2
    tt = torch.from_numpy(t) if as_torch else t
    adaptive = BinningEstimator(n_bins=30, strategy="adaptive").estimate(tt, y)
    quantile = BinningEstimator(n_bins=30, strategy="quantile").estimate(tt, y)
    assert adaptive.conventions["n_bins_effective"] == 32 and quantile.conventions["n_bins_effective"] == 16
    # Quantile: the zeros in one bin (p = 1/2) and 15 bins of 40 rows: H = 1/2 + 1/2 log2(30) bits.
    assert quantile.I_XT == pytest.approx(0.5 + 0.5 * np.log2(30), abs=1e-12)
    # Adaptive: the zeros (600 rows), 29 bins of 20 rows, one of 19, the maximum alone.
    p = np.array([600] + [20] * 29 + [19, 1]) / 1200
    assert adaptive.I_XT == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-12)


def _chelombiev_reference(t: np.ndarray, y: np.ndarray, num_of_bins: int, relu: bool) -> tuple[float, float]:
    """Chelombiev et al.'s (2019) adaptive binning re-implemented from their description, loop by loop:
    bottom edge 0 (ReLU) or -1.000001 (tanh); the sorted distinct values of the layer other than it; the value
    at int(k * (size / num_of_bins)) for each k; the maximum; symbols bins[digitize(t, bins) - 1]; rows of
    symbols counted as one symbol. I(T;X) = H(T) (every row a distinct input); I(T;Y) = H(T) - H(T|Y)."""
    low = 0.0 if relu else -1.000001
    bins = [low]
    unique = np.sort(np.setdiff1d(np.unique(t.reshape(-1)), [low]))
    for k in range(num_of_bins):
        bins.append(unique[int(k * (unique.size / num_of_bins))])
    bins.append(unique[-1])
    bins = np.asarray(bins)
    symbols = bins[np.digitize(t.reshape(-1), bins) - 1].reshape(t.shape)
    rows = [tuple(r) for r in symbols.tolist()]

    def entropy(items):
        counts = np.array(list(collections.Counter(items).values()), dtype=float)
        p = counts / counts.sum()
        return float(-(p * np.log2(p)).sum())

    h_t = entropy(rows)
    h_t_given_y = sum((y == c).mean() * entropy([r for r, yy in zip(rows, y) if yy == c]) for c in np.unique(y))
    return h_t, h_t - h_t_given_y


@pytest.fixture(scope="module")
def szt_runs():
    """Hidden activations of two short SZT runs (tanh, ReLU) at epochs 0, 20 and 60, on the 4,096 SZT inputs."""
    from infoplane.nets import SZTNet, load_szt, train

    X, y = load_szt(return_X_y=True)
    out = {}
    for activation in ("tanh", "relu"):
        model = SZTNet(activation, seed=0)
        snaps = {}

        def grab(epoch, m, snaps=snaps):
            if epoch in (0, 20, 60):
                with torch.no_grad():
                    h, layers = torch.as_tensor(X, dtype=torch.float32), []
                    for i in range(1, 6):
                        h = getattr(m, f"act{i}")(getattr(m, f"fc{i}")(h))
                        layers.append(h.numpy().copy())
                snaps[epoch] = layers

        train(model, X, y, epochs=60, batch_size=512, lr=4e-3, seed=0, callback=grab, progress=False)
        out[activation] = snaps
    return out, np.asarray(y)


@pytest.mark.parametrize("relu", [False, True], ids=["tanh", "relu"])
def test_adaptive_is_chelombiev_rule_on_random_layers(relu):
    # A tanh layer, and a ReLU layer with about half its values exactly 0 (the bin Chelombiev et al. keep apart).
    t, y = _szt_layer(n_inputs=2048, width=6, scale=2.0, seed=3)
    if relu:
        t = np.maximum(np.arctanh(np.clip(t, -0.999999, 0.999999)), 0.0)
    for n_bins in (10, 30):
        ref_xt, ref_ty = _chelombiev_reference(t, y, n_bins, relu=relu)
        r = BinningEstimator(n_bins=n_bins, strategy="adaptive").estimate(t, y)
        assert r.I_XT == pytest.approx(ref_xt, abs=1e-9) and r.I_TY == pytest.approx(ref_ty, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_adaptive_is_chelombiev_rule_on_szt_runs(szt_runs, activation):
    # Every hidden layer of the run at three epochs, 30 bins: both quantities equal the reference to 1e-9 bits.
    runs, y = szt_runs
    est = BinningEstimator(n_bins=30, strategy="adaptive")
    for epoch, layers in runs[activation].items():
        for i, t in enumerate(layers):
            ref_xt, ref_ty = _chelombiev_reference(t, y, 30, relu=activation == "relu")
            r = est.estimate(t, y)
            assert r.I_XT == pytest.approx(ref_xt, abs=1e-9), (activation, epoch, i)
            assert r.I_TY == pytest.approx(ref_ty, abs=1e-9), (activation, epoch, i)
            r_torch = est.estimate(torch.from_numpy(t), y)
            assert r_torch.I_XT == pytest.approx(ref_xt, abs=1e-9)


def test_many_units_use_the_byte_view_and_agree_with_unique_rows():
    rng = np.random.default_rng(2)
    t = rng.normal(size=(500, 40)) * 50
    t[250:] = t[:250]  # every row twice
    y = rng.integers(0, 2, 500)
    r = BinningEstimator(bin_width=0.01).estimate(t, y)
    assert r.I_XT == pytest.approx(math.log2(250), abs=1e-12)
    codes = np.floor(t / 0.01)
    assert r.conventions["n_symbols"] == np.unique(codes, axis=0).shape[0] == 250


@pytest.mark.parametrize("est", ALL_SCHEMES + [BinningEstimator(n_bins=7, range=(-0.5, 0.5))], ids=repr)
def test_torch_cpu_path_matches_numpy(est):
    # torch input takes the torch code path (the one CUDA tensors use), here on CPU.
    t, y = _szt_layer(scale=8.0, width=4)
    t = np.concatenate([t, 1.3 * t[:50]]).astype(np.float32)  # some values outside [-1, 1]
    y = np.concatenate([y, y[:50]])
    a, b = est.estimate(t, y), est.estimate(torch.from_numpy(t), torch.from_numpy(y))
    assert (a.I_XT, a.I_TY) == (b.I_XT, b.I_TY)
    assert a.conventions == b.conventions


def test_torch_out_of_range_raises_too():
    t = torch.tensor([[0.0], [2.0]])
    with pytest.raises(ValueError, match=r"t has 1 of 2 values outside the binning range \[-1, 1\]"):
        BinningEstimator(n_bins=4, range=(-1, 1), out_of_range="raise").estimate(t, [0, 1])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({}, "exactly one of 'edges', 'bin_width' or 'n_bins'.*Got none"),
        ({"n_bins": 10, "bin_width": 0.1}, "exactly one of.*Got 'bin_width' and 'n_bins'"),
        ({"edges": SZT_EDGES, "n_bins": 10}, "exactly one of.*Got 'edges' and 'n_bins'"),
        ({"n_bins": 1}, r"'n_bins' parameter of BinningEstimator must be an int >= 2. Got 1"),
        ({"n_bins": 2.5}, r"'n_bins' parameter of BinningEstimator must be an int >= 2. Got 2.5"),
        ({"bin_width": 0.0}, r"'bin_width' parameter of BinningEstimator must be a finite float > 0. Got 0.0"),
        ({"bin_width": -1}, r"'bin_width' parameter .* > 0. Got -1"),
        ({"edges": [0.0, 1.0, 0.5]}, r"'edges' parameter .* strictly increasing. Got 'edges\[1\] = 1"),
        ({"edges": [0.0]}, r"'edges' parameter .* at least 2 values"),
        ({"edges": [0.0, np.inf]}, r"'edges' parameter .* finite"),
        ({"n_bins": 5, "range": (1, 0)}, r"'range' parameter .* lo < hi"),
        ({"bin_width": 0.1, "range": (0, 1)}, r"'range' parameter .* None unless 'n_bins'"),
        ({"n_bins": 5, "strategy": "adaptive", "range": (0, 1)}, r"'range' parameter .* strategy='adaptive'"),
        ({"edges": SZT_EDGES, "strategy": "adaptive"}, r"'strategy' parameter .* needs n_bins"),
        ({"n_bins": 5, "strategy": "kmeans"}, r"'strategy' parameter .* one of 'uniform', 'adaptive', 'quantile'"),
        ({"n_bins": 5, "out_of_range": "wrap"}, r"'out_of_range' parameter .* one of 'clip', 'raise'"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BinningEstimator(**kwargs)


def test_shuffle_baseline_is_the_value_under_independence():
    rng = np.random.default_rng(3)
    # Many distinct rows (N = 200 rows, fine bins): each row its own symbol, so I(T;Y) = H(Y) whatever y is;
    # the shuffle baseline equals it, exposing the whole estimate as bias.
    t = rng.normal(size=(200, 3))
    y = rng.integers(0, 2, 200)
    est = BinningEstimator(bin_width=0.01)
    real, shuffled = est.estimate(t, y), est.shuffle_baseline(t, y, n_permutations=4, seed=0)
    assert shuffled.I_TY > 0.9 and real.I_TY - shuffled.I_TY == pytest.approx(0.0, abs=1e-9)
    assert shuffled.conventions["shuffled"] == 4
    # N >> bins: 4 bins, 20,000 rows, y = sign of t. Real I(T;Y) = 1 bit, baseline ~ 0 (bias ~ 3/(2N ln2)).
    t = rng.normal(size=(20_000, 1))
    y = (t[:, 0] > 0).astype(int)
    p1 = y.mean()
    est = BinningEstimator(n_bins=4, range=(-4, 4))  # bin edges at -2, 0, 2: y is a function of the bin
    real, shuffled = est.estimate(t, y), est.shuffle_baseline(t, y, n_permutations=5, seed=1)
    assert real.I_TY == pytest.approx(-p1 * math.log2(p1) - (1 - p1) * math.log2(1 - p1), abs=1e-12)
    assert 0 <= shuffled.I_TY < 1e-3
    assert shuffled.I_XT == real.I_XT  # permuting labels leaves I(T;X) alone


def _plug_in_reference(t: np.ndarray, y: np.ndarray, edges: np.ndarray) -> tuple[float, float]:
    """I(T;X) = H(T), I(T;Y) from np.digitize (float64) and np.unique over rows: independent of infoplane."""
    e = np.asarray(edges, dtype=np.float64)
    codes = np.digitize(np.clip(t.astype(np.float64), e[0], e[-1]), e)
    _, inv = np.unique(codes, axis=0, return_inverse=True)
    inv = inv.reshape(-1)

    def h(*cols):
        _, c = np.unique(np.stack(cols, axis=1), axis=0, return_counts=True)
        p = c / len(t)
        return float(-(p * np.log2(p)).sum())

    return h(inv), h(inv) + h(y) - h(inv, y)


def _edge_heavy_layer(dtype, n: int = 3000, width: int = 6, seed: int = 5):
    """Activations with many values exactly on, and 1 ulp beside, the SZT edges, plus ±0.0 and ±1.5."""
    rng = np.random.default_rng(seed)
    e = SZT_EDGES.astype(dtype)
    pool = np.concatenate([e, np.nextafter(e, dtype(np.inf)), np.nextafter(e, dtype(-np.inf)),
                           np.array([0.0, -0.0, 1.5, -1.5], dtype=dtype)])
    t = rng.uniform(-1, 1, size=(n, width)).astype(dtype)
    mask = rng.random((n, width)) < 0.5
    t[mask] = rng.choice(pool, size=int(mask.sum()))
    # Codes (1, 30, ...) and (2, 1, ...): distinct rows that a too-small radix in a packed key would merge.
    t[1] = t[0]
    t[0, :2], t[1, :2] = (e[0], e[-1]), (e[1], e[0])
    t[n // 2 :] = t[: n - n // 2]  # repeated rows, so symbols have counts > 1
    return t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("edges", [SZT_EDGES, SZT_EDGES.astype(np.float32)], ids=["float64", "float32"])
@pytest.mark.parametrize("labels", ["binary", "gappy uint8", "bool"])
def test_edge_table_path_is_exact(edges, dtype, labels, monkeypatch):
    t = _edge_heavy_layer(dtype)
    rng = np.random.default_rng(6)
    y = {"binary": rng.integers(0, 2, len(t)), "gappy uint8": rng.choice([0, 3, 9], len(t)).astype(np.uint8),
         "bool": rng.random(len(t)) < 0.3}[labels]
    est = BinningEstimator(edges=edges)
    general = est.estimate(torch.from_numpy(t), torch.from_numpy(y))  # the general (torch) path
    # The fast path must be the one taken: it never builds ids by row_ids.
    monkeypatch.setattr(K, "row_ids", lambda *a, **k: pytest.fail("fast path not taken"))
    r = est.estimate(t, y)
    # Same codes and counts as the general path, entropies independent of numbering: identical bits.
    assert (r.I_XT, r.I_TY) == (general.I_XT, general.I_TY)
    assert r.conventions == general.conventions
    # Against an independent plug-in computation; 1e-12 bits covers summation-order round-off.
    assert (r.I_XT, r.I_TY) == pytest.approx(_plug_in_reference(t, y.astype(int), edges.astype(np.float64)),
                                             abs=1e-12)


def test_edge_table_path_declines_to_the_general_path_with_the_same_bits():
    est = BinningEstimator(edges=SZT_EDGES)
    rng = np.random.default_rng(7)
    t = rng.uniform(-1, 1, size=(400, 4)).astype(np.float32)
    y = rng.integers(0, 2, 400)
    assert est._edge_table_symbols(t) is not None
    wide = rng.choice([-0.5, 0.5], size=(400, 12)).astype(np.float32)  # 31**12 > 2**53: keys won't fit
    cases = {  # name: (estimator, t, y, whether the edge-table path applies)
        "float32": (est, t, y, True),
        "wide layer": (est, wide, y, False),
        "float16": (est, t.astype(np.float16), y, False),
        "uneven edges": (BinningEstimator(edges=[-1.0, -0.9, 0.0, 1.0]), t, y, False),
        # Labels never choose the path: one validation (check_labels) and one factorisation for all.
        "many classes": (est, t, rng.integers(0, 600, 400), True),
        "negative labels": (est, t, y - 1, True),
        "list labels": (est, t, y.tolist(), True),
    }
    for name, (e, tt, yy, applies) in cases.items():
        assert (e._edge_table_symbols(tt) is not None) == applies, name
        r = e.estimate(tt, yy)
        ref = _plug_in_reference(tt, np.asarray(yy), e.edges)
        assert (r.I_XT, r.I_TY) == pytest.approx(ref, abs=1e-12), name
        assert r.conventions["n_symbols"] > 1
    # out_of_range="raise" with values outside: the general path, which raises.
    strict = BinningEstimator(edges=SZT_EDGES, out_of_range="raise")
    assert strict._edge_table_symbols(t * 2) is None and strict._edge_table_symbols(t) is not None


@pytest.mark.parametrize(
    "t,y,kwargs,error,match",
    [
        (np.array([[0.1], [np.nan], [0.2]], dtype=np.float32), [0, 1, 0], {}, ValueError, r"t of layer .fc1. at epoch 2 contain NaN \(1 of 3"),
        (np.array([[0.1], [np.inf], [0.2]]), np.array([0, 1, 0]), {}, ValueError, r"t of layer .fc1. at epoch 2 contain Inf \(1 of 3"),
        (np.zeros((3, 1)), np.array([1, 1, 1]), {}, ValueError, "at least 2 distinct classes. Got 1"),
        (np.zeros((3, 1)), np.array([0.0, 1.0, 0.0]), {}, TypeError, "integer class labels"),
        (np.zeros((3, 1)), np.array([0, 1]), {}, ValueError, r"one label per row of the activations \(3\)"),
        (np.array([[0.0], [1.5]]), np.array([0, 1]), {"out_of_range": "raise"}, ValueError,
         r"t of layer 'fc1' at epoch 2 has 1 of 2 values outside the binning range \[-1, 1\]"),
    ],
)
def test_edges_path_keeps_the_checks(t, y, kwargs, error, match):
    with pytest.raises(error, match=match):
        BinningEstimator(edges=SZT_EDGES, **kwargs).estimate(t, y, layer="fc1", epoch=2)
