"""The fast k-NN kernels (float32 Gram / numba max norm with exact float64 bands; KD-trees) give exactly the
counts, radii and bits of the direct float64 search they replaced (kept verbatim in `_knn_reference`)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from infoplane.estimators._kernels import knn as K
from infoplane.estimators._kernels import knn_numba, knn_space


def _load_reference():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_knn_reference", Path(__file__).with_name("_knn_reference.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


R = _load_reference()


def _data(kind: str, n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        return rng.normal(size=(n, d))
    if kind == "offset":  # large common offset and mixed scales: cancellation in the Gram expansion
        return 1e4 + rng.normal(size=(n, d)) * np.logspace(-3, 1, d)
    if kind == "clusters":  # tight clusters: tiny radii next to large distances
        centres = rng.normal(size=(8, d)) * 10
        return centres[rng.integers(0, 8, n)] + 1e-6 * rng.normal(size=(n, d))
    if kind == "integer":  # exact ties at every radius
        return rng.integers(0, 3, size=(n, d)).astype(float)
    raise ValueError(kind)


_FAST = {("gauss", 7), ("offset", 40), ("clusters", 2), ("integer", 7)}
CASES = [pytest.param(kind, d, marks=() if (kind, d) in _FAST else pytest.mark.slow)
         for kind in ("gauss", "offset", "clusters", "integer") for d in (2, 7, 40)]


def _labels(n: int, seed: int) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed + 1).integers(0, 4, n))


@pytest.mark.parametrize("metric", ["euclidean", "max"])
@pytest.mark.parametrize("kind,d", CASES)
def test_ross_and_kth_identical_to_direct_search(kind, d, metric):
    t = torch.as_tensor(_data(kind, 300, d, 3))
    lab = _labels(300, 3)
    ref_r, ref_m = R.ross_counts(t, lab, 3, metric, memory_mb=0.5)
    backends = ["blocked"] + (["kd-tree"] if metric == "max" else [])
    for backend in backends:
        r, m = K.ross_counts(t, lab, 3, metric, memory_mb=0.5, backend=backend)
        assert torch.equal(m, ref_m), backend
        assert torch.equal(r, ref_r), backend
        assert torch.equal(K.kth_radius(t, 4, metric, memory_mb=0.5, backend=backend),
                           R.kth_radius(t, 4, metric, memory_mb=0.5)), backend


@pytest.mark.parametrize("metric", ["euclidean", "max"])
@pytest.mark.parametrize("kind,d", CASES)
def test_ksg_identical_to_direct_search(kind, d, metric):
    a = torch.as_tensor(_data(kind, 300, d, 5))
    b = torch.as_tensor(a[:, :1].numpy() + np.random.default_rng(9).normal(size=(300, 1)))
    if kind == "integer":
        b = torch.round(b)
    for bb in (b, torch.as_tensor(_data(kind, 300, 3, 11))):
        ref = R.ksg_counts(a, bb, 3, metric, memory_mb=0.5)
        backends = ["blocked"] + (["kd-tree"] if metric == "max" else [])
        for backend in backends:
            got = K.ksg_counts(a, bb, 3, metric, memory_mb=0.5, backend=backend)
            for x, y in zip(got, ref):
                assert torch.equal(x, y), backend


def test_blocked_max_norm_without_numba_identical(monkeypatch):
    t = torch.as_tensor(_data("gauss", 200, 12, 0))
    lab = _labels(200, 0)
    fast = K.ross_counts(t, lab, 3, "max", backend="blocked")
    monkeypatch.setattr(knn_numba, "available", lambda: False)
    assert knn_space.Space(t, "max").kind == "exact"
    slow = K.ross_counts(t, lab, 3, "max", backend="blocked")
    for x, y in zip(fast, slow):
        assert torch.equal(x, y)


def test_choose_backend():
    cpu = torch.device("cpu")
    assert K.choose_backend("max", 3, cpu) == "kd-tree"
    assert K.choose_backend("max", K.TREE_MAX_DIM + 1, cpu) == "blocked"
    assert K.choose_backend("euclidean", 2, cpu) == "blocked"


def test_band_is_narrow_on_continuous_data():
    """The float32 approximation decides almost every entry: few exact recomputations per row."""
    t = torch.as_tensor(_data("gauss", 2000, 100, 1))
    calls = []
    orig = knn_space.Space.exact_pairs

    def spy(self, i, j):
        calls.append(i.numel())
        return orig(self, i, j)

    knn_space.Space.exact_pairs = spy
    try:
        K.kth_radius(t, 3, "euclidean")
    finally:
        knn_space.Space.exact_pairs = orig
    assert sum(calls) < 50 * 2000
