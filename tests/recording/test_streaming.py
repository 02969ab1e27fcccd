"""information_plane at scale: one (epoch, layer) in memory at a time, and the two KDE bounds in one pass."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from infoplane.analysis import information_plane
from infoplane.estimators import KDEEstimator
from infoplane.estimators._kernels import kde as K
from infoplane.estimators.presets import make_estimator
from infoplane.store import MemoryStore, ZarrStore


def _store(store, n_epochs=16, n=2000, d=256):
    rng = np.random.default_rng(0)
    store.set_labels(rng.integers(0, 4, n))
    for e in range(n_epochs):
        store.write_epoch(e, {"conv": np.tanh(rng.normal(size=(n, d))).astype(np.float32)})
    return store


@pytest.mark.parametrize("kind", ["memory", "zarr"])
def test_peak_memory_is_one_array_plus_the_estimators_working_set(kind, tmp_path):
    store = _store(MemoryStore() if kind == "memory" else ZarrStore(tmp_path / "s.zarr", mode="w"))
    est = make_estimator("binning")
    array = store.activations(0, "conv")
    information_plane(store, estimators={"binning": est}, epochs=[0], progress=False)  # first-use imports
    tracemalloc.start()
    store.activations(1, "conv")
    # zarr decodes chunks beside the output (about 2x the array, in its own event-loop thread, which may
    # release them a moment after the read returns): that much may overlap the estimate.
    read_buffers = tracemalloc.get_traced_memory()[1] - array.nbytes if kind == "zarr" else 0
    tracemalloc.stop()
    tracemalloc.start()
    est.estimate(array, store.labels)
    working_set = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    tracemalloc.start()
    df = information_plane(store, estimators={"binning": est}, progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(df) == 16
    # The bound: 2x the largest single array plus the estimator's own working set (16 arrays of 2 MB
    # here; reading a batch of them at once, as before, exceeded it by 6 MB).
    assert peak < 2 * array.nbytes + working_set + read_buffers, (peak, array.nbytes, working_set, read_buffers)


def test_two_kde_bounds_of_one_noise_variance_share_one_pass(monkeypatch):
    store = _store(MemoryStore(), n_epochs=2, n=300, d=5)
    calls = []
    real = K.kde_log_sums_multi

    def counting(h, scales, *args, **kwargs):
        calls.append(tuple(scales))
        return real(h, scales, *args, **kwargs)

    monkeypatch.setattr(K, "kde_log_sums_multi", counting)
    df = information_plane(store, estimators={"kde-upper": KDEEstimator(1e-3, "upper"), "kde-lower": KDEEstimator(1e-3, "lower"),
                                                 "wide": KDEEstimator(1e-1)}, progress=False)
    # Per (epoch, layer): one pass for the pair at σ² = 1e-3 (both scales), one for the lone σ² = 0.1.
    assert calls == [(2e-3, 8e-3), (2e-1,)] * 2
    for kind in ("upper", "lower"):
        alone = KDEEstimator(1e-3, kind).estimate(store.activations(1, "conv"), store.labels)
        row = df[(df.epoch == 1) & (df.estimator == f"kde-{kind}")].iloc[0]
        assert abs(row.I_XT - alone.I_XT) < 1e-6 and abs(row.I_TY - alone.I_TY) < 1e-6
        assert row.bound_XT == kind
