"""Results tables: the one check, the one row order and the one mean ± sd over runs, for analysis and plotting.

Imports nothing of infoplane but `_types`; pandas does the work.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["KEYS", "listed", "check_table", "check_finite_columns", "orders", "sort_rows", "check_unique_rows", "mean_sd"]

#: The key columns of a results table, in sort order.
KEYS = ["run", "epoch", "layer", "estimator"]


def listed(values: Iterable[Any]) -> str:
    """``'a', 'b'``: values as a readable list for messages."""
    return ", ".join(repr(v) for v in values)


def check_table(
    df: Any, required: Iterable[str], *, name: str = "df", numeric: Sequence[str] = (), purpose: str = "summarise"
) -> pd.DataFrame:
    """Return ``df`` if it is a non-empty DataFrame holding the ``required`` columns (``numeric`` ones numbers).

    Raises `TypeError` (not a DataFrame, a non-numeric column) or `ValueError` (missing columns, no rows),
    naming ``name`` and what it holds; ``purpose`` ("summarise", "plot") ends the empty-table message.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame (a tidy results table). Got {type(df).__name__}.")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name} is missing required column(s) {listed(missing)}; it has columns {listed(df.columns)}."
        )
    if len(df) == 0:
        raise ValueError(f"{name} is empty (0 rows); nothing to {purpose}.")
    for column in numeric:
        if column in df.columns and not pd.api.types.is_numeric_dtype(df[column]):
            raise TypeError(f"column {column!r} of {name} must hold numbers. Got dtype {df[column].dtype}.")
    return df


def check_finite_columns(df: pd.DataFrame, columns: Iterable[str], *, name: str = "df", allow_nan: bool = False) -> None:
    """Raise ValueError naming the column and a row when a column holds inf (or NaN, unless ``allow_nan``)."""
    for column in columns:
        if column not in df.columns:
            continue
        values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = np.isinf(values) if allow_nan else ~np.isfinite(values)
        if bad.any():
            row = df.iloc[int(np.argmax(bad))]
            at = ", ".join(f"{k}={row[k]!r}" for k in ("layer", "estimator", "epoch") if k in df.columns)
            raise ValueError(
                f"column {column!r} of {name} holds {int(bad.sum())} {'infinite' if allow_nan else 'non-finite'} "
                f"value(s) (e.g. {values[bad][0]} at {at}); an information estimate in bits must be finite."
            )


def orders(df: pd.DataFrame) -> dict[str, list]:
    """The order of layers, estimators and runs: ``df.attrs`` where recorded, else first appearance."""
    out = {}
    for col, attr in (("layer", "layers"), ("estimator", "estimators"), ("run", "runs")):
        known = df.attrs.get(attr)
        if col in df.columns:
            out[col] = list(known) if isinstance(known, list) else list(pd.unique(df[col]))
    return out


def sort_rows(df: pd.DataFrame, order: Mapping[str, list]) -> pd.DataFrame:
    """Rows sorted by run, epoch, layer, estimator (whichever exist), categorical keys in the given orders."""
    by = [c for c in KEYS if c in df.columns]

    def key(col: pd.Series) -> pd.Series:
        if col.name in order:
            known = list(order[col.name])
            extra = [v for v in pd.unique(col) if v not in known]
            rank = {v: i for i, v in enumerate(known + extra)}
            return col.map(rank)
        return col

    return df.sort_values(by, key=key, kind="stable").reset_index(drop=True)


def check_unique_rows(df: pd.DataFrame, name: str = "df") -> None:
    """Raise unless each (run, epoch, layer, estimator) — those present — names one row."""
    keys = [c for c in KEYS if c in df.columns]
    dup = df.duplicated(keys, keep=False)
    if dup.any():
        first = df.loc[dup, keys].iloc[0].to_dict()
        raise ValueError(
            f"{name} has {int(dup.sum())} rows sharing their {keys} with another row (e.g. {first}); "
            "give each run its own 'run' name."
        )


def mean_sd(
    df: pd.DataFrame,
    keys: Sequence[str],
    columns: Sequence[str],
    *,
    ddof: int = 1,
    extra: Mapping[str, tuple[str, Any]] | None = None,
) -> pd.DataFrame:
    """Mean and standard deviation of ``columns`` over the rows of each ``keys`` group (the runs).

    Returns ``keys``, then ``c`` (mean) and ``c_std`` (standard deviation with ``ddof``: 1 is the sample one,
    NaN for a single row) for each column, then the ``extra`` named aggregations (pandas ``agg`` pairs
    {output: (column, function)}), then ``n_runs`` (rows per group), float64 for means and deviations.
    Groups keep their order of first appearance.
    """
    grouped = df.groupby(list(keys), sort=False)
    cols = list(columns)
    mean = grouped[cols].mean()
    std = grouped[cols].std(ddof=ddof)
    out = pd.DataFrame(index=mean.index)
    for c in cols:
        out[c] = mean[c].astype("float64")
        out[f"{c}_std"] = std[c].astype("float64")
    if extra:
        out = out.join(grouped.agg(**extra))
    out["n_runs"] = grouped.size().astype("int64")
    return out.reset_index()
