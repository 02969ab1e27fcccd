"""The estimators' own verdicts reach every table (``self_check``) and every plane (grey points)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from infoplane import information_plane
from infoplane.estimators import BinningEstimator, KNNEstimator
from infoplane.plotting import plot_information_plane
from infoplane.plotting._utils import GID_UNRELIABLE
from infoplane.store import MemoryStore


def _store(d: int, n: int = 300, seed: int = 0) -> MemoryStore:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    store = MemoryStore()
    store.set_labels(y)
    for epoch in (0,):
        store.write_epoch(epoch, {"a": (rng.normal(size=(n, d)) + y[:, None]).astype(np.float32)})
    return store


def test_self_check_column_carries_the_estimators_verdict():
    # 200 columns, 300 rows: the k-NN dimension rule says the rows are too few (flagged); binning has
    # no complaint about 2 classes in one column (True), and every row says which.
    wide = information_plane(_store(200), estimators={"knn": KNNEstimator()}, progress=False)
    assert str(wide["self_check"].dtype) == "boolean"
    assert not wide["self_check"].any()
    assert wide["self_check_note"].str.len().gt(0).all()
    narrow = information_plane(_store(1), estimators={"knn": KNNEstimator(), "bin": BinningEstimator(n_bins=4)},
                               progress=False)
    assert narrow["self_check"].all(), narrow[["estimator", "self_check_note"]]


def test_self_checks_off_drops_the_columns():
    df = information_plane(_store(1), estimators={"bin": BinningEstimator(n_bins=4)}, self_checks=False,
                           progress=False)
    assert "self_check" not in df.columns


def test_plane_draws_self_check_failures_grey():
    df = pd.DataFrame({"run": "r", "epoch": [0, 1, 2], "layer": "a", "estimator": "e", "I_XT": [1.0, 2.0, 3.0],
                       "I_TY": [0.1, 0.2, 0.3], "self_check": pd.array([True, False, pd.NA], dtype="boolean")})
    ax = plot_information_plane(df, estimator="e")
    grey = [c for c in ax.collections if c.get_gid() == GID_UNRELIABLE]
    assert len(grey) == 1 and grey[0].get_offsets().shape[0] == 1
    assert np.allclose(grey[0].get_offsets()[0], [2.0, 0.2])
