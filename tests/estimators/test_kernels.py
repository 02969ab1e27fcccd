"""The pure kernels of infoplane.estimators: codes, row ids, discrete information, KDE log-sums.

Exact integer/discrete results are compared with == or 1e-12 (round-off of a handful of float64 ops);
KDE sums against a dense float64 reference with 1e-10 (same math, different summation order).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from infoplane._core.units import entropy_bits
from infoplane.estimators._kernels import binning as K


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labellings group the rows identically (ids may be numbered differently)."""
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return pairs.shape[0] == np.unique(a).size == np.unique(b).size


def test_row_ids_packed_matches_unique_rows():
    rng = np.random.default_rng(0)
    codes = rng.integers(-3, 4, size=(2000, 5))
    ids, n = K.row_ids(codes)
    _, ref = np.unique(codes, axis=0, return_inverse=True)
    assert n == np.unique(codes, axis=0).shape[0]
    assert _same_partition(ids, ref.reshape(-1))
    assert ids.max() == n - 1 and ids.min() == 0


@pytest.mark.parametrize("high", [50, 2**40])  # bincount table and hash-table branches
def test_factorize_int64(high):
    rng = np.random.default_rng(7)
    keys = rng.integers(-high, high, size=3000)
    keys[1000:2000] = keys[:1000]
    ids, n = K.factorize_int64(keys)
    _, ref = np.unique(keys, return_inverse=True)
    assert n == np.unique(keys).size and _same_partition(ids, ref.reshape(-1))


def test_row_ids_wide_rows_are_packed_block_by_block():
    rng = np.random.default_rng(1)
    # 40 columns with 1,000 values each: 1000**40 >> 2**63, so the key is built over several column blocks.
    codes = rng.integers(0, 1000, size=(300, 40))
    codes[100:150] = codes[:50]  # 50 repeated rows
    codes[200:210, :39] = codes[:10, :39]  # rows equal to others except in the last column
    ids, n = K.row_ids(codes)
    _, ref = np.unique(codes, axis=0, return_inverse=True)
    assert n == 250 and _same_partition(ids, ref.reshape(-1))


@pytest.mark.parametrize("shape,high", [((1000, 4), 5), ((200, 40), 1000)])
def test_row_ids_torch_same_partition_as_numpy(shape, high):
    rng = np.random.default_rng(2)
    codes = rng.integers(0, high, size=shape)
    codes[: shape[0] // 4] = codes[shape[0] // 4 : shape[0] // 2]
    ids, n = K.row_ids(codes)
    ids_t, n_t = K.row_ids_torch(torch.as_tensor(codes))
    assert n == n_t
    assert _same_partition(ids, ids_t.numpy())


def test_entropy_of_ids_exact():
    assert K.entropy_of_ids_bits(np.array([0, 0, 1, 2])) == pytest.approx(1.5, abs=1e-12)
    assert K.entropy_of_ids_bits(np.zeros(7, dtype=np.int64)) == 0.0
    # Joint entropy of two independent fair bits laid out exhaustively: 2 bits.
    a, b = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    assert K.entropy_of_ids_bits(a, b) == pytest.approx(2.0, abs=1e-12)


def test_discrete_information_hand_computed():
    # T = {a, a, b, c}: H(T) = 1.5 bits. Y = (0, 1, 0, 1): T|Y=0 = {a, b}, T|Y=1 = {a, c}, 1 bit each.
    t_ids, y_ids = np.array([0, 0, 1, 2]), np.array([0, 1, 0, 1])
    i_xt, i_ty, h_t = K.discrete_information_bits(t_ids, y_ids)
    assert (i_xt, i_ty, h_t) == pytest.approx((1.5, 0.5, 1.5), abs=1e-12)
    # Inputs 0 and 1 repeated as rows (0,1) and (2,3): H(T|X) = 1/2·H{a,a} + 1/2·H{b,c} = 0.5 bit.
    i_xt, _, _ = K.discrete_information_bits(t_ids, y_ids, np.array([0, 0, 1, 1]))
    assert i_xt == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("edges", [np.linspace(-1, 1, 30), np.linspace(-1, 1, 30).astype(np.float32),
                                   np.array([-2.0, -0.3, 0.0, 0.01, 5.0])], ids=["linspace", "float32", "uneven"])
def test_digitize_edges_is_np_digitize_inside_the_range(edges):
    rng = np.random.default_rng(8)
    t = np.concatenate([rng.uniform(edges[0], edges[-1], 20_000), edges, np.nextafter(edges, np.inf),
                        np.nextafter(edges, -np.inf)]).astype(np.float64)
    t = np.clip(t, edges[0], edges[-1]).reshape(-1, 1)
    np.testing.assert_array_equal(K.digitize_edges(t, edges), np.digitize(t, edges.astype(np.float64)))
    # float32 activations against float32 edges: float32 comparisons, as the original code made.
    t32 = t.astype(np.float32)
    e32 = edges.astype(np.float32)
    np.testing.assert_array_equal(K.digitize_edges(t32, e32), np.digitize(t32, e32))


def test_digitize_edges_never_wraps():
    edges = np.linspace(-1, 1, 30)
    t = np.array([[-1.5], [-1.0], [0.0], [1.0], [1.5]])
    codes = K.digitize_edges(t, edges).ravel()
    # Below the range joins the bottom bin (code 1), above the top symbol (code 30, as t == 1 itself).
    assert codes.tolist() == [1, 1, 15, 30, 30]
    with pytest.raises(ValueError, match=r"t has 2 of 5 values outside the binning range \[-1, 1\]"):
        K.digitize_edges(t, edges, "raise")


def test_digitize_width_and_uniform():
    t = np.array([-0.071, -0.01, 0.0, 0.069, 0.07])
    assert K.digitize_width(t, 0.07).tolist() == [-2, -1, 0, 0, 1]
    # 4 bins on [0, 1], last bin closed: 1.0 is in bin 3, values outside clip to the end bins.
    u = K.digitize_uniform(np.array([-0.5, 0.0, 0.24, 0.25, 0.99, 1.0, 3.0]), 4, 0.0, 1.0)
    assert u.tolist() == [0, 0, 0, 1, 3, 3, 3]


def test_adaptive_edges_equal_mass():
    rng = np.random.default_rng(3)
    t = rng.normal(size=(1000, 1)) ** 3  # heavy-tailed: equal-width bins would be very unequal
    # Quantile: all values distinct, equal masses.
    counts = np.bincount(K.adaptive_codes(t, K.adaptive_edges(t, 4, distinct=False)).ravel())
    assert counts.tolist() == [250, 250, 250, 250]
    # Adaptive (Chelombiev et al.): the minimum (< -1.000001, so it is its own bottom edge) alone; the other 999
    # distinct values at ranks int(k * 999/4) = 0, 249, 499, 749: bins of 249, 250, 250, 249; the maximum alone.
    counts = np.bincount(K.adaptive_codes(t, K.adaptive_edges(t, 4)).ravel())
    assert counts.tolist() == [1, 249, 250, 250, 249, 1]
    # A layer with 3 distinct values cannot have more than 3 bins (tanh-like: bottom edge -1.000001, empty).
    ties = np.repeat([[-1.0], [0.0], [1.0]], 10, axis=0)
    assert K.adaptive_edges(ties, 30).tolist() == [-1.0, 0.0, 1.0]
    assert K.adaptive_edges(ties, 30, distinct=False).tolist() == [-1.0, 0.0, 1.0]
    assert K.adaptive_low(0.0) == 0.0 and K.adaptive_low(-0.99) == -1.000001 and K.adaptive_low(-3.0) == -3.0


def test_adaptive_edges_count_distinct_values_so_ties_cost_no_bins():
    # A sparse ReLU-like layer: 600 zeros and 600 distinct positive values, 1,200 values in all.
    rng = np.random.default_rng(4)
    t = np.concatenate([np.zeros(600), rng.permutation(np.arange(1, 601) / 600.0)])[:, None]
    distinct = K.adaptive_edges(t, 30)
    codes = K.adaptive_codes(t, distinct).ravel()
    # The zeros alone in [0, 1/600); the 600 positives at ranks 0, 20, ..., 580: 29 bins of 20 distinct values,
    # one of 19 (up to the maximum, excluded), and the maximum alone: 32 bins.
    per_bin = [np.unique(t[codes == c]).size for c in np.unique(codes)]
    assert per_bin == [1] + [20] * 29 + [19, 1]
    # Equal mass: the 600 zeros fill the ranks of 15 edges, which collapse into one: 16 bins.
    mass = K.adaptive_edges(t, 30, distinct=False)
    assert np.unique(K.adaptive_codes(t, mass)).size == 16


def _dense_log_sums(h, scale, y=None):
    d2 = ((h[:, None, :] - h[None, :, :]) ** 2).sum(-1)
    a = logsumexp(-d2 / scale, axis=1)
    if y is None:
        return a, None
    masked = np.where(y[:, None] == y[None, :], -d2 / scale, -np.inf)
    return a, logsumexp(masked, axis=1)


@pytest.mark.parametrize("memory_mb", [256.0, 0.01])
def test_kde_log_sums_match_dense(memory_mb):
    rng = np.random.default_rng(4)
    h = rng.normal(size=(300, 3)) * 0.1 + 50.0  # far from the origin: centring must keep accuracy
    y = rng.integers(0, 3, 300)
    sums = K.kde_log_sums(h, 2e-3, y, np.arange(300), memory_mb=memory_mb)
    a, c = _dense_log_sums(h, 2e-3, y)
    # float32 exponents and exponentials (relative error a few ulps per term) and float32 partial sums of 64
    # terms: < 1e-6 nats per log-sum (observed ~1e-7), stated in the kernel's docstring.
    np.testing.assert_allclose(sums["all"].numpy(), a, rtol=0, atol=1e-6)
    np.testing.assert_allclose(sums["class"].numpy(), c, rtol=0, atol=1e-6)
    np.testing.assert_allclose(sums["input"].numpy(), 0.0, atol=1e-12)  # only j = i shares the input


def test_kde_chunk_rows_bounded():
    # At N = 60,000 and the default 256 MiB the chunk is far below N: no N x N matrix is ever made.
    rows = K.kde_chunk_rows(60_000, 256.0)
    assert 1 <= rows < 200
    assert K.kde_chunk_rows(10, 256.0) == 10


def test_kde_information_bits_vs_nats():
    rng = np.random.default_rng(5)
    h, y = rng.normal(size=(200, 2)), rng.integers(0, 2, 200)
    out = K.kde_information_bits(h, y, 0.1, "upper")
    a, c = _dense_log_sums(h, 0.2, y)
    i_xt_nats = math.log(200) - a.mean()
    assert out["I_XT"] == pytest.approx(i_xt_nats / math.log(2), abs=1e-6)  # float32 exponentials
    p = np.bincount(y) / 200
    i_ty_nats = -(p * np.log(p)).sum() - (a - c).mean()
    assert out["I_TY"] == pytest.approx(i_ty_nats / math.log(2), abs=1e-6)


def _edge_probes(edges: np.ndarray, dtype, rng) -> np.ndarray:
    """Values that stress exactness: uniform draws, each edge and its neighbours 1 ulp away in ``dtype``
    (around both the nearest and the ceiled representation), ±0.0, and values outside the range."""
    e = np.asarray(edges, dtype=np.float64)
    near = e.astype(dtype)
    lo, hi = e[0], e[-1]
    width = hi - lo
    probes = [rng.uniform(lo, hi, 20_000).astype(dtype), near, np.nextafter(near, dtype(np.inf)),
              np.nextafter(near, dtype(-np.inf)), np.array([0.0, -0.0, lo - width, hi + width,
                                                             lo - 1e-30, hi + 1e-30]).astype(dtype)]
    return np.concatenate(probes).reshape(-1, 1)


UNIFORMISH_EDGES = {
    "linspace": np.linspace(-1, 1, 30),
    "float32 linspace": np.linspace(-1, 1, 30).astype(np.float32),
    "tiny range": np.linspace(0, 1e-3, 7),
    "257 edges": np.linspace(-3, 5, 257),
    # Not linspace, but each interior edge within 0.15 step of it (the table allows 0.25).
    "jittered": np.linspace(-1, 1, 30) + np.r_[0, np.random.default_rng(0).uniform(-0.15, 0.15, 28), 0] * (2 / 29),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("edges", list(UNIFORMISH_EDGES.values()), ids=list(UNIFORMISH_EDGES))
def test_digitize_table_is_exactly_np_digitize(edges, dtype):
    # The arithmetic path must equal np.digitize in float64 on the clipped values, bit for bit: compared
    # with ==, including values on an edge, 1 ulp either side of it, -0.0 and out-of-range (clipped) values.
    rng = np.random.default_rng(11)
    t = _edge_probes(edges, dtype, rng)
    e64 = np.asarray(edges, dtype=np.float64)
    table = K.edge_table(e64, dtype)
    assert table is not None and table[0].dtype == dtype
    expected = np.digitize(np.clip(t.astype(np.float64), e64[0], e64[-1]), e64)
    np.testing.assert_array_equal(K.digitize_table(t, *table), expected)
    np.testing.assert_array_equal(K.digitize_edges(t, e64), expected)


def test_edge_table_declines_where_the_arithmetic_guess_is_not_safe():
    assert K.edge_table(np.array([-2.0, -0.3, 0.0, 0.01, 5.0]), np.float64) is None  # far from uniform
    # Edges 1e-4 apart near 1e6 collapse in float32 (spacing 0.0625): no float32 table, float64 works.
    crowded = np.linspace(1e6, 1e6 + 4e-4, 5)
    assert K.edge_table(crowded, np.float32) is None and K.edge_table(crowded, np.float64) is not None
    assert K.edge_table(np.linspace(-1, 1, 30), np.float16) is None
    # A span that overflows (hi − lo = inf) or a float32 1/step that would be denormal: no table.
    assert K.edge_table(np.array([-1e308, 0.0, 1e308]), np.float64) is None
    assert K.edge_table(np.array([-3e38, 0.0, 3e38]), np.float32) is None
    # digitize_edges then falls back (float32 values compared in float64) and still equals np.digitize.
    t = np.concatenate([crowded, np.nextafter(crowded, np.inf), [1e6 - 1, 1e6 + 1]]).astype(np.float32)[:, None]
    np.testing.assert_array_equal(K.digitize_edges(t, crowded),
                                  np.digitize(np.clip(t.astype(np.float64), crowded[0], crowded[-1]), crowded))


def test_row_keys_are_lexicographic_and_exact_up_to_2_53():
    rng = np.random.default_rng(12)
    codes = rng.integers(0, 31, size=(3000, 10))  # 31**10 ~ 8e14 < 2**53
    codes[1500:] = codes[:1500]
    keys = K.row_keys(codes, 31)
    uniq, inv = np.unique(codes, axis=0, return_inverse=True)
    # Same partition as unique rows, and key order is row order: sorted distinct keys <-> sorted rows.
    assert _same_partition(keys, inv.reshape(-1))
    np.testing.assert_array_equal(np.unique(keys), K.row_keys(uniq, 31))
    assert np.all(np.diff(K.row_keys(uniq, 31)) > 0)
    top = np.full((1, 10), 30)
    assert K.row_keys(top, 31)[0] == 31**10 - 1  # exact integer at the top of the range
    with pytest.raises(ValueError, match="radix\\*\\*d <= 2\\*\\*53"):
        K.row_keys(np.zeros((2, 11), dtype=np.int64), 31)


def test_entropies_do_not_depend_on_symbol_numbering():
    # Bits are a function of the multiset of counts: relabelling symbols (hash order vs sorted order, as numpy
    # and torch number them) must give identical floats, compared with ==.
    rng = np.random.default_rng(13)
    t_ids = rng.integers(0, 700, 4096)
    y = rng.integers(0, 3, 4096)
    perm = rng.permutation(700)
    a = K.discrete_information_bits(t_ids, y)
    b = K.discrete_information_bits(perm[t_ids], y)
    assert a == b
    counts = np.bincount(t_ids)
    assert entropy_bits(counts) == entropy_bits(counts[::-1].copy())
    p = counts[counts > 0] / 4096
    assert entropy_bits(counts) == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-12)
    # Float counts (weights) give the same entropy; a single symbol has none, no symbol none either.
    assert entropy_bits(counts.astype(float)) == pytest.approx(entropy_bits(counts), abs=1e-12)
    assert entropy_bits([0, 7, 0]) == 0.0 and entropy_bits([0, 0]) == 0.0
    assert entropy_bits([1, 1, 2]) == pytest.approx(1.5, abs=1e-15)
