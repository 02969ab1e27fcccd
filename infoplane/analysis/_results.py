"""Results tables on disk: `save_results` / `load_results`, crash-safe and self-checking.

``.csv`` (optionally ``.csv.gz``, ``.csv.bz2``, ``.csv.xz``, ``.csv.zst``): the table, floats written to
round-trip exactly, and a JSON sidecar next to it (`sidecar_path`: ``results.csv`` -> ``results.csv.json``)
holding ``df.attrs`` (the estimators' conventions, layer order, ...), the column dtypes, and the table
file's row count and SHA-256 checksum. ``.parquet``: one file; Parquet keeps the dtypes and pandas
(>= 2.1) keeps ``df.attrs`` in its schema metadata, so nothing of ours is added.

Every file is written to a temporary name, fsync'ed and moved into place with `os.replace`, so a process
killed while saving leaves the old file or the new one, never a truncated one. The table is replaced before
its sidecar; a sidecar that does not belong to its table (a save killed between the two, a file copied or
edited by hand) is detected by the checksum and refused with an error, never loaded under the wrong
conventions.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._core.files import atomic_write
from .._core.types import json_safe

__all__ = ["save_results", "load_results", "sidecar_path"]

_SIDECAR_FORMAT = "infoplane.results"
_SIDECAR_VERSION = 2
# pandas 3 reads floats back exactly by default (and deprecates the option); pandas 2 needs to be asked.
_READ_CSV_KW: dict[str, Any] = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
_CSV_COMPRESSION = {".csv": None, ".csv.gz": "gzip", ".csv.bz2": "bz2", ".csv.xz": "xz", ".csv.zst": "zstd"}
_STRING_DTYPES = ("str", "object", "string")


def _format(path: Path) -> tuple[str, str | None]:
    """``("csv", compression)`` or ``("parquet", None)`` from the file name."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet", None
    for suffix, compression in _CSV_COMPRESSION.items():
        if name.endswith(suffix):
            return "csv", compression
    raise ValueError(f"path must end in .csv (optionally compressed, e.g. .csv.gz) or .parquet. Got {str(path)!r}.")


def _check_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike naming a .csv or .parquet file. Got {type(path).__name__}.")
    return Path(path)


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where `save_results` writes a CSV table's conventions: the table's name plus ``.json``."""
    path = _check_path(path)
    return path.with_name(path.name + ".json")


def _meta(df: pd.DataFrame) -> dict[str, Any]:
    attrs = json_safe(dict(df.attrs))
    try:
        json.dumps(attrs, allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"df.attrs must be JSON-serialisable to be saved with the table: {exc}") from None
    return {
        "format": _SIDECAR_FORMAT,
        "version": _SIDECAR_VERSION,
        "columns": [str(c) for c in df.columns],
        "dtypes": {str(c): str(t) for c, t in df.dtypes.items()},
        "attrs": attrs,
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_results(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a results table with its conventions, atomically; `load_results` reads it back identical.

    Works for any table of infoplane (results, summaries, compression scores). The index is not saved
    (tables have a default RangeIndex). A kill at any moment leaves either the previous table (with its
    sidecar) or the new one; a table and sidecar from different saves are refused by `load_results`.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; ``df.attrs`` must be JSON-serialisable.
    path : str or PathLike
        ``*.csv`` (optionally ``.gz``/``.bz2``/``.xz``/``.zst``) or ``*.parquet``.

    Returns
    -------
    Path of the written table.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame (a results table). Got {type(df).__name__}.")
    path = _check_path(path)
    fmt, compression = _format(path)
    meta = _meta(df)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    if fmt == "csv":
        df.to_csv(buffer, index=False, compression=compression)
        data = buffer.getvalue()
        meta["table"] = {"file": path.name, "n_rows": int(len(df)), "sha256": _sha256(data)}
        atomic_write(path, data)
        atomic_write(sidecar_path(path), (json.dumps(meta, indent=1) + "\n").encode())
    else:
        # Parquet keeps the dtypes, and (pandas >= 2.1) df.attrs in its schema metadata: nothing of ours to add.
        plain = df.copy(deep=False)
        plain.attrs = meta["attrs"]  # JSON-safe (numpy values as Python ones), as pandas serialises attrs to JSON
        plain.to_parquet(buffer, index=False)
        atomic_write(path, buffer.getvalue())
    return path


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
def _parse_meta(raw: bytes | str, where: str) -> dict[str, Any]:
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where} is not valid JSON ({exc}); the results metadata is damaged.") from None
    if not isinstance(meta, dict) or meta.get("format") != _SIDECAR_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{where} is not an infoplane results description (format {got!r}).")
    for key, kind in (("columns", list), ("dtypes", dict), ("attrs", dict)):
        if not isinstance(meta.get(key), kind):
            raise ValueError(
                f"{where} must hold {key!r} as a JSON {kind.__name__}. Got {type(meta.get(key)).__name__}."
            )
    table = meta.get("table")
    if table is not None and not (isinstance(table, dict) and isinstance(table.get("n_rows"), int)):
        raise ValueError(f"{where} has a malformed 'table' entry {table!r}.")
    return meta


def _check_belongs(meta: dict[str, Any], data: bytes, path: Path, side: Path) -> None:
    table = meta.get("table")
    if table is None:
        warnings.warn(
            f"{str(side)!r} was written by an older infoplane and records no checksum; cannot check that it "
            f"belongs to {path.name!r}. Save the table again to add one.", stacklevel=3,
        )
        return
    if table.get("sha256") != _sha256(data):
        raise ValueError(
            f"the sidecar {str(side)!r} does not belong to the table {str(path)!r}: the table's SHA-256 "
            "differs from the one recorded when it was saved (a save_results interrupted between the table "
            "and its sidecar, or a file edited or copied by hand). Refusing to load numbers under the wrong "
            "conventions; save the table again."
        )


def _cast(df: pd.DataFrame, dtypes: dict[str, Any], where: str) -> pd.DataFrame:
    """Cast each column to its saved dtype, refusing unknown dtypes and casts that would change values."""
    out = {}
    for col in df.columns:
        target = dtypes.get(col)
        if target is None:
            raise ValueError(f"{where} gives no dtype for column {col!r}.")
        try:
            dtype = pd.api.types.pandas_dtype(target)
        except TypeError:
            raise ValueError(f"{where} gives column {col!r} the dtype {target!r}, which is not a dtype.") from None
        try:
            cast = df[col].astype(dtype)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {col!r} cannot be read as {target!r} ({where}): {exc}") from None
        if pd.api.types.is_numeric_dtype(df[col]) and pd.api.types.is_numeric_dtype(cast):
            before = df[col].to_numpy(dtype=np.float64, na_value=np.nan)
            after = cast.to_numpy(dtype=np.float64, na_value=np.nan)
            if not np.array_equal(before, after, equal_nan=True):
                raise ValueError(
                    f"{where} gives column {col!r} the dtype {target!r}, but its values "
                    f"(e.g. {before[~np.isclose(before, after, equal_nan=True)][0]!r}) would be changed by "
                    "that cast; the metadata was edited or does not belong to this table."
                )
        out[col] = cast
    return pd.DataFrame(out, index=df.index)


def _read_csv(path: Path, compression: str | None) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    data = path.read_bytes()
    side = sidecar_path(path)
    if not side.exists():
        warnings.warn(f"{str(path)!r} has no conventions sidecar ({side.name}); loading without attrs.", stacklevel=3)
        return pd.read_csv(io.BytesIO(data), compression=compression, **_READ_CSV_KW), None
    meta = _parse_meta(side.read_bytes(), f"the sidecar {str(side)!r}")
    _check_belongs(meta, data, path, side)
    str_cols = [c for c, t in meta["dtypes"].items() if t in _STRING_DTYPES]
    try:
        df = pd.read_csv(io.BytesIO(data), compression=compression, **_READ_CSV_KW, dtype={c: str for c in str_cols},
                         keep_default_na=False, na_values={c: [""] for c in meta["columns"] if c not in str_cols})
    except (ValueError, OSError, EOFError, pd.errors.ParserError) as exc:
        raise ValueError(f"the table {str(path)!r} cannot be parsed as CSV: {exc}") from None
    return df, meta


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"the table {str(path)!r} is not a readable Parquet file: {exc}") from None
    if b"PANDAS_ATTRS" not in (table.schema.metadata or {}):
        warnings.warn(f"{str(path)!r} has no pandas attrs; loading without conventions.", stacklevel=3)
    return pd.read_parquet(path)  # dtypes and attrs as saved


def load_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by `save_results`: same rows, columns, dtypes and ``attrs``.

    A CSV without its sidecar still loads (pandas' inferred dtypes, empty attrs) with a warning that its
    conventions are unknown. A sidecar that does not belong to its table (checksum or row count differ),
    malformed metadata, or a saved dtype that would change the values raise ValueError naming the file.
    """
    path = _check_path(path)
    fmt, compression = _format(path)
    if not path.is_file():
        raise FileNotFoundError(f"No results table at {str(path)!r}.")
    if fmt == "parquet":
        return _read_parquet(path)
    df, meta = _read_csv(path, compression)
    if meta is None:
        return df
    where = f"the metadata of {str(path)!r}"
    if list(df.columns) != meta["columns"]:
        raise ValueError(
            f"{str(path)!r}: columns {list(df.columns)} differ from those saved {meta['columns']}; "
            "was the file edited?"
        )
    n_rows = (meta.get("table") or {}).get("n_rows")
    if n_rows is not None and n_rows != len(df):
        raise ValueError(f"{str(path)!r} has {len(df)} rows but {where} records {n_rows}; the file was truncated or edited.")
    df = _cast(df, meta["dtypes"], where)
    df.attrs = meta["attrs"]
    return df
