"""Column providers of information_plane: the hooks, the keyword options, the checks; the Store protocol."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from infoplane._core.types import Store
from infoplane.analysis import (
    RESULT_COLUMNS,
    ColumnProvider,
    Provider,
    RowContext,
    TableContext,
    _providers,
    information_plane,
)
from infoplane.recording import Recorder
from infoplane.store import MemoryStore, ZarrStore

N = 8
LABELS = np.array([0, 1] * (N // 2))


def _store(store):
    store.set_labels(LABELS)
    for e in (0, 1, 2):
        t = (np.arange(N) // 2**e).astype(np.float32)[:, None]
        store.write_epoch(e, {"stair": t, "onehot": np.eye(2, dtype=np.float32)[LABELS]})
    return store


@dataclass(frozen=True)
class _Probe(Provider):
    """A provider that uses every hook: the row count of the task, I_XT doubled, a rank over the table."""

    def columns(self) -> list[str]:
        return ["rows", "twice_I_XT", "rank"]

    def dtypes(self) -> dict[str, str]:
        return {"rows": "int64", "twice_I_XT": "float64"}

    def task_columns(self, task, t, log_var) -> dict[str, Any]:
        return {"rows": int(np.asarray(t).shape[0])}

    def row_columns(self, ctx: RowContext) -> dict[str, Any]:
        assert ctx.kwargs["layer"] == ctx.task.layer and ctx.kwargs["epoch"] == ctx.task.epoch
        return {"twice_I_XT": 2.0 * ctx.result.I_XT}

    def table(self, df: pd.DataFrame, ctx: TableContext) -> pd.DataFrame:
        assert list(ctx.layer_order) == ["stair", "onehot"] and list(ctx.estimators) == ["binning"]
        out = df.copy()
        out["rank"] = out["I_XT"].rank(method="first").astype("int64")
        return out


def test_store_protocol():
    assert isinstance(MemoryStore(), Store)
    assert not isinstance(object(), Store)
    rec = Recorder(torch.nn.Sequential(torch.nn.Linear(2, 2)), ["0"], torch.zeros(2, 2), store=MemoryStore())
    assert isinstance(rec.store, Store) and not isinstance(rec, Store)


def test_custom_provider_every_hook():
    df = information_plane(_store(MemoryStore()), estimators="binning", providers=[_Probe()], progress=False)
    assert list(df.columns) == RESULT_COLUMNS + ["saturated", "dpi_violation", "self_check", "self_check_note", "rows",
                                                  "twice_I_XT", "rank"]
    assert (df["rows"] == N).all() and df["rows"].dtype == np.int64
    np.testing.assert_array_equal(df["twice_I_XT"], 2 * df["I_XT"])
    # The provider adds columns and changes nothing else.
    plain = information_plane(_store(MemoryStore()), estimators="binning", progress=False)
    pd.testing.assert_frame_equal(df[list(plain.columns)], plain)
    assert sorted(df["rank"]) == list(range(1, len(df) + 1))


@pytest.mark.slow
def test_custom_provider_in_workers(tmp_path):
    store = _store(ZarrStore(tmp_path / "r.zarr", mode="w", durable=False))
    store.close()
    serial = information_plane(tmp_path / "r.zarr", providers=[_Probe()], progress=False)
    parallel = information_plane(tmp_path / "r.zarr", providers=[_Probe()], n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(serial, parallel)


def test_keyword_options_are_providers():
    store = _store(MemoryStore())
    df = information_plane(store, shuffle=2, geometry=True, diagnostics=False, self_checks=False, subsample=[0.5],
                           progress=False)
    assert list(df.columns) == RESULT_COLUMNS + ["I_TY_shuffled", "I_XT_at_0.5", "I_TY_at_0.5", "geo_compression"]
    assert [type(p) for p in _providers.from_options({"shuffle": 2, "geometry": True}, "f")] == [
        _providers.ShuffleBaseline, _providers.Geometry, _providers.Flags, _providers.SelfCheck]
    assert _providers.from_options({"diagnostics": False, "self_checks": False}, "f") == []
    # Every built-in provider keyword is documented in information_plane's docstring.
    for cls in _providers.PROVIDERS:
        for key in cls.keywords:
            assert re.search(rf"^    (\w+, )*{key}\b.* :", information_plane.__doc__, re.M), key
            assert isinstance(cls.from_options("f", dict(cls.keywords)), (type(None), ColumnProvider))


def test_bad_options_and_providers():
    store = _store(MemoryStore())
    with pytest.raises(TypeError, match="unexpected keyword argument 'shufle'.*'shuffle'"):
        information_plane(store, shufle=2, progress=False)
    with pytest.raises(ValueError, match="'shuffle' parameter of information_plane"):
        information_plane(store, shuffle=-1, progress=False)
    with pytest.raises(TypeError, match="'providers' parameter of information_plane must hold column providers"):
        information_plane(store, providers=[object()], progress=False)

    @dataclass(frozen=True)
    class Clash(Provider):
        def columns(self) -> list[str]:
            return ["saturated"]

    with pytest.raises(ValueError, match="Clash adds column 'saturated'"):
        information_plane(store, providers=[Clash()], progress=False)
