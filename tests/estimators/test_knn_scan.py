"""The numba row scans and the KSG one-dimensional path (issue 22): exact counts against brute force.

- `count_1d` (sorted searches) against the direct comparisons |b_i − b_j| < eps_i, on values where
  searching for b_i ± eps_i instead would round to the wrong side (the data is checked to contain such
  cases, so the test can fail);
- KSG with a one-dimensional variable (`_ksg_1d`: joint radius by the scans, 1-D counts by `count_1d`)
  against the general path (torch passes over both blocks) and against a brute-force float64 reference on
  small integer data with ties at every radius;
- the max-norm distance kernels against numpy, at shapes with remainders; the band overflow path, the
  grouping of blocks and the torch fallbacks (no numba; float32 products not "highest") give the same bits.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from infoplane.estimators._kernels import knn as K
from infoplane.estimators._kernels import knn_numba, knn_space


def _brute_counts(b: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """#{j ≠ i : |b_i − b_j| < eps_i} (where eps_i = 0: |b_i − b_j| <= 0), b one-dimensional (N,)."""
    d = np.abs(b[:, None] - b[None, :])
    np.fill_diagonal(d, np.inf)
    return np.where(eps[:, None] > 0, d < eps[:, None], d <= 0).sum(axis=1)


def _rounding_trap(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Values 0.1 · integers and radii equal to some |b_i − b_j|: fl(b_i + eps_i) and fl(b_j − b_i) < eps_i
    disagree for some pairs (a search for b_i ± eps_i would miscount)."""
    rng = np.random.default_rng(seed)
    b = 0.1 * rng.integers(0, 40, n) + 0.7
    j = rng.integers(0, n, n)
    return b, np.abs(b - b[j])


def test_count_1d_matches_direct_comparisons_with_ties_and_rounding_traps():
    b, eps = _rounding_trap()
    eps[::7] = 0.0  # radius 0: the duplicates themselves
    got = K.count_1d(torch.as_tensor(b), torch.as_tensor(eps)).numpy()
    assert np.array_equal(got, _brute_counts(b, eps))
    # the trap is real: counting by a search for b_i ± eps_i miscounts somewhere on this data
    bs = np.sort(b)
    naive = np.searchsorted(bs, b + eps, "left") - np.searchsorted(bs, b - eps, "right") - 1
    pos = eps > 0
    assert not np.array_equal(naive[pos], _brute_counts(b, eps)[pos])


@pytest.mark.parametrize("seed", [1, 2])
def test_count_1d_continuous_and_tiny_n(seed):
    rng = np.random.default_rng(seed)
    b = rng.normal(size=257)
    eps = np.abs(b - b[rng.permutation(257)])
    got = K.count_1d(torch.as_tensor(b), torch.as_tensor(eps)).numpy()
    assert np.array_equal(got, _brute_counts(b, eps))
    one = K.count_1d(torch.tensor([1.0]), torch.tensor([0.5]))
    assert one.tolist() == [0]


def _brute_ksg(a: np.ndarray, b: np.ndarray, k: int, metric: str):
    """KSG algorithm 1 by brute force (exact for data whose distances are exact in any order)."""
    def dist(x):
        diff = x[:, None, :] - x[None, :, :]
        d = np.abs(diff).max(axis=2) if metric == "max" else np.sqrt((diff * diff).sum(axis=2))
        np.fill_diagonal(d, np.inf)
        return d

    da, db = dist(a), dist(b)
    eps = np.sort(np.maximum(da, db), axis=1)[:, k - 1]
    e = eps[:, None]
    count = [np.where(e > 0, d < e, d <= 0).sum(axis=1) for d in (da, db)]
    return eps, count[0], count[1]


def _integer_pair(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, size=(n, d)).astype(float)
    b = (a[:, :1] + rng.integers(0, 3, size=(n, 1))).astype(float)
    return torch.as_tensor(a), torch.as_tensor(b)


@pytest.mark.parametrize("metric", ["max", "euclidean"])
@pytest.mark.parametrize("d", [2, 20])
@pytest.mark.parametrize("k", [1, 3])
def test_ksg_1d_path_matches_brute_force_and_general_path_on_ties(metric, d, k):
    a, b = _integer_pair(240, d, seed=d + k)
    assert knn_space.Space(a, metric).fused  # the 1-D path is the one under test
    got = K.ksg_counts(a, b, k, metric, memory_mb=0.3, backend="blocked")
    general = K._ksg_general(a, b, k, metric, 0.3)
    ref = _brute_ksg(a.numpy(), b.numpy(), k, metric)
    for x, y, z in zip(got, general, ref):
        assert torch.equal(x, y)
        assert np.array_equal(x.numpy(), z)
    swapped = K.ksg_counts(b, a, k, metric, memory_mb=0.3, backend="blocked")  # the 1-D variable first
    assert torch.equal(swapped[0], got[0]) and torch.equal(swapped[1], got[2]) and torch.equal(swapped[2], got[1])


@pytest.mark.parametrize("metric", ["max", "euclidean"])
def test_ksg_1d_path_identical_to_general_path_on_continuous_data(metric):
    rng = np.random.default_rng(4)
    a = torch.as_tensor(1e3 + rng.normal(size=(500, 30)) * np.logspace(-2, 1, 30))  # offset, mixed scales
    b = torch.as_tensor(a[:, :1].numpy() * 1e-3 + rng.normal(size=(500, 1)))
    got = K.ksg_counts(a, b, 3, metric, memory_mb=1.0, backend="blocked")
    general = K._ksg_general(a, b, 3, metric, 1.0)
    for x, y in zip(got, general):
        assert torch.equal(x, y)


@pytest.mark.parametrize("d", [3, knn_numba.PAIRS_MIN_DIM - 1, knn_numba.PAIRS_MIN_DIM, 37])
def test_max_kernels_match_numpy(d):
    rng = np.random.default_rng(d)
    b = rng.normal(size=(203, d)).astype(np.float32)  # 203: not a multiple of 4 nor of the chunk
    a = np.ascontiguousarray(b[5:16])  # 11 rows: not a multiple of 4
    ref = np.abs(a[:, None, :] - b[None, :, :]).max(axis=2)
    for bt in (np.ascontiguousarray(b.T), None):
        out = np.full((len(a), len(b)), np.nan, dtype=np.float32)
        with knn_numba.threads(2):
            knn_numba.max_block(a, b, bt, out)
        assert np.array_equal(out, ref)


@pytest.mark.parametrize("metric", ["max", "euclidean"])
def test_band_overflow_and_grouping_do_not_change_bits(monkeypatch, metric):
    """Integer data has ties at every radius: with one band slot per row every row overflows and is scanned
    again; resolving each block alone (group of 1 pair) or many together changes nothing."""
    rng = np.random.default_rng(7)
    t = torch.as_tensor(rng.integers(0, 3, size=(300, 6)).astype(float))
    lab = torch.as_tensor(rng.integers(0, 4, 300))
    a, b = _integer_pair(300, 6, seed=3)
    ref_ross = K.ross_counts(t, lab, 3, metric, memory_mb=0.3, backend="blocked")
    ref_ksg = K.ksg_counts(a, b, 3, metric, memory_mb=0.3, backend="blocked")
    calls = []
    orig = knn_numba._banded

    def spy(run, c, counts):
        calls.append(c)
        return orig(run, c, counts)

    monkeypatch.setattr(knn_numba, "_banded", spy)
    monkeypatch.setattr(knn_numba, "BAND_CAPACITY", 1)
    monkeypatch.setattr(K, "_GROUP_PAIRS", 1)
    for x, y in zip(K.ross_counts(t, lab, 3, metric, memory_mb=0.3, backend="blocked"), ref_ross):
        assert torch.equal(x, y)
    for x, y in zip(K.ksg_counts(a, b, 3, metric, memory_mb=0.3, backend="blocked"), ref_ksg):
        assert torch.equal(x, y)
    assert calls  # the numba scans ran


def test_euclidean_torch_fallbacks_identical(monkeypatch):
    """Without numba (torch passes) and with float32 products allowed below full precision (float64 blocks),
    the Euclidean Ross counts and KSG counts are the numba path's."""
    rng = np.random.default_rng(8)
    t = torch.as_tensor(rng.normal(size=(400, 12)))
    lab = torch.as_tensor(rng.integers(0, 5, 400))
    b = torch.as_tensor(rng.normal(size=(400, 1)))
    fast = (*K.ross_counts(t, lab, 3, "euclidean"), *K.ksg_counts(t, b, 3, "euclidean"))
    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        sp = knn_space.Space(t, "euclidean")
        assert sp.wd == torch.float64 and not sp.fused
        medium = (*K.ross_counts(t, lab, 3, "euclidean"), *K.ksg_counts(t, b, 3, "euclidean"))
    finally:
        torch.set_float32_matmul_precision(old)
    monkeypatch.setattr(knn_numba, "available", lambda: False)
    assert not knn_space.Space(t, "euclidean").fused
    slow = (*K.ross_counts(t, lab, 3, "euclidean"), *K.ksg_counts(t, b, 3, "euclidean"))
    for x, y, z in zip(fast, medium, slow):
        assert torch.equal(x, y) and torch.equal(x, z)


@pytest.mark.parametrize("metric", ["max", "euclidean"])
def test_exact_pairs_do_not_depend_on_chunking(monkeypatch, metric):
    """Each exact distance is the same float64 number however the pairs are chunked, a lone pair included."""
    rng = np.random.default_rng(9)
    sp = knn_space.Space(torch.as_tensor(rng.normal(size=(50, 3000))), metric)
    i, j = torch.as_tensor(rng.integers(0, 50, 41)), torch.as_tensor(rng.integers(0, 50, 41))
    ref = sp.exact_pairs(i, j)
    diff = sp.raw[i] - sp.raw[j]
    direct = diff.abs().amax(dim=1) if metric == "max" else (diff * diff).sum(dim=1).sqrt()
    assert torch.equal(ref, direct)  # the reference kernels' formula, on all pairs at once
    for chunk in (1, 3 * 3000, 1 << 30):
        monkeypatch.setattr(knn_space, "exact_pairs_chunk", chunk)
        assert torch.equal(sp.exact_pairs(i, j), ref)
        assert torch.equal(sp.exact_pairs(i[:1], j[:1]), ref[:1])


@pytest.mark.parametrize("metric,path", [("max", "numba"), ("euclidean", "numba"), ("max", "torch"),
                                         ("euclidean", "torch"), ("max", "kd-tree")])
def test_ross_counts_for_k_and_2k_from_one_distance_pass_equal_separate_calls(monkeypatch, metric, path):
    """The resolution check's two searches (k and 2k) share each distance block: the same radii and counts
    as two separate calls, bit for bit, with bands resolved per block (group of 1 pair) or together, on the
    numba scans, the torch passes and the KD-tree; and each block is computed once, not twice."""
    rng = np.random.default_rng(9)
    t = torch.as_tensor(np.round(rng.normal(size=(500, 3 if path == "kd-tree" else 12)), 1))  # ties too
    lab = torch.as_tensor(rng.integers(0, 4, 500))
    backend = "kd-tree" if path == "kd-tree" else "blocked"
    if path == "torch":
        monkeypatch.setattr(knn_numba, "available", lambda: False)
    for group in (1, K._GROUP_PAIRS):
        monkeypatch.setattr(K, "_GROUP_PAIRS", group)
        separate = [K.ross_counts(t, lab, k, metric, memory_mb=0.2, backend=backend) for k in (3, 6)]
        blocks = []
        orig = knn_space.Space.approx_block if path == "numba" else knn_space.Space.block
        monkeypatch.setattr(knn_space.Space, "approx_block" if path == "numba" else "block",
                            lambda self, *a, seen=blocks, f=orig: seen.append(a[:2]) or f(self, *a))
        shared = K.ross_counts_multi(t, lab, [3, 6], metric, memory_mb=0.2, backend=backend)
        monkeypatch.setattr(knn_space.Space, "approx_block" if path == "numba" else "block", orig)
        for (r1, m1), (r2, m2) in zip(separate, shared):
            assert torch.equal(r1, r2) and torch.equal(m1, m2)
        if path != "kd-tree":
            assert blocks and len(blocks) == len(set(blocks))  # one computation per block of rows
