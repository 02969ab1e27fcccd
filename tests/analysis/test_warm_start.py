"""Warm starts in information_plane: each (run, layer) chained in epoch order, serial = parallel (the probe
and the critics warm-start; the latent estimator, which does not, is checked beside them), and a warm start
never worse than a cold one by more than the estimate's standard error."""
from __future__ import annotations

import math

import numpy as np
import pytest

from infoplane._core.types import MIResult
from infoplane.analysis import information_plane
from infoplane.estimators import CriticEstimator, LatentMIEstimator, ProbeEstimator
from infoplane.estimators._base import BaseEstimator
from infoplane.store import MemoryStore


class Chain(BaseEstimator):
    """Reports the epoch whose state it received (-1: a cold start) as I_TY; passes its own epoch on."""

    name = "chain"
    supports_warm_start = True

    def __init__(self, warm_start: bool = True) -> None:
        self.warm_start = warm_start

    def estimate(self, t, y, x=None, *, layer=None, epoch=None):
        return self.estimate_with_state(t, y, x, layer=layer, epoch=epoch)[0]

    def estimate_with_state(self, t, y, x=None, *, state=None, layer=None, epoch=None):
        got = -1.0 if state is None else float(state[1])
        assert state is None or state[0] == layer
        res = MIResult(I_XT=math.nan, I_TY=got, bound_XT="estimate", bound_TY="estimate", estimator="chain",
                       n_samples=len(t), conventions={"I_XT_note": "test", "warm_start": state is not None})
        return res, (layer, epoch)


def _store(epochs=(0, 2, 5, 9), seed=0):
    rng = np.random.default_rng(seed)
    store = MemoryStore()
    y = rng.integers(0, 3, 90)
    store.set_labels(y)
    for e in epochs:
        store.write_epoch(e, {"a": (np.eye(3)[y] * 2 + rng.normal(size=(90, 3))).astype(np.float32),
                              "b": rng.normal(size=(90, 2)).astype(np.float32)})
    return store


@pytest.mark.parametrize("n_jobs,backend", [(1, None), (2, "threading"), (3, "threading")])
def test_each_layer_chained_in_epoch_order(n_jobs, backend):
    runs = {"r1": _store(), "r2": _store(seed=1)}
    df = information_plane(runs, estimators={"chain": Chain()}, n_jobs=n_jobs, backend=backend, progress=False)
    for _, g in df.groupby(["run", "layer"]):
        g = g.sort_values("epoch")
        assert list(g.I_TY) == [-1.0, *g.epoch.iloc[:-1].astype(float)]  # each got the previous epoch
    cold = information_plane(runs, estimators={"chain": Chain(warm_start=False)}, progress=False)
    assert (cold.I_TY == -1.0).all()


def test_probe_warm_plane_serial_equals_parallel():
    runs = {"r1": _store(), "r2": _store(seed=3)}
    est = {"probe": ProbeEstimator(n_folds=3)}
    serial = information_plane(runs, estimators=est, layers=["a"], n_jobs=1, progress=False)
    parallel = information_plane(runs, estimators=est, layers=["a"], n_jobs=2, backend="threading", progress=False)
    assert serial.I_TY.tolist() == parallel.I_TY.tolist()
    cold = information_plane(runs, estimators={"probe": ProbeEstimator(n_folds=3, warm_start=False)}, layers=["a"],
                             progress=False)
    # the same Cs (the path is not warm-started) and a convex objective: the cold bound to the solver's tolerance
    assert np.allclose(serial.I_TY, cold.I_TY, atol=0.002)


@pytest.mark.slow
@pytest.mark.parametrize("est", [CriticEstimator("infonce", epochs=60, patience=5, batch_size=32),
                                 LatentMIEstimator(latent_dim=2, max_epochs=40, patience=4, batch_size=32, k=2)],
                         ids=["critic", "latent"])
def test_trained_estimators_plane_serial_equals_parallel(est):
    runs = {"r1": _store(), "r2": _store(seed=3)}
    serial = information_plane(runs, estimators={"e": est}, layers=["a"], n_jobs=1, progress=False)
    parallel = information_plane(runs, estimators={"e": est}, layers=["a"], n_jobs=2, backend="threading",
                                 progress=False)
    assert serial.I_TY.tolist() == parallel.I_TY.tolist()


def test_shipped_chains_go_one_per_batch(monkeypatch):
    # In-memory stores on two workers: the arrays travel with the tasks, and each (run, layer) chain is its own
    # batch, so a free worker takes the next chain (two fixed halves kept the wide layers on one worker).
    import infoplane.analysis._engine as engine

    seen = []
    real = engine._estimate_batch

    def spy(batch, *args):
        seen.append([(task.run, task.layer, task.epoch) for task in batch])
        return real(batch, *args)

    monkeypatch.setattr(engine, "_estimate_batch", spy)
    runs = {"r1": _store(), "r2": _store(seed=1)}
    information_plane(runs, estimators={"chain": Chain()}, n_jobs=2, backend="threading", progress=False)
    assert len(seen) == 4
    for batch in seen:
        assert len({(run, layer) for run, layer, _ in batch}) == 1
        assert [epoch for *_, epoch in batch] == [0, 2, 5, 9]
