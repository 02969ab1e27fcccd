"""Results tables on disk: `save_results` / `load_results`, crash-safe and self-checking.

``.csv`` (optionally ``.csv.gz``, ``.csv.bz2``, ``.csv.xz``, ``.csv.zst``): the table, floats written to
round-trip exactly, and a JSON sidecar next to it (`sidecar_path`: ``results.csv`` -> ``results.csv.json``)
holding ``df.attrs`` (the estimators' conventions, layer order, ...), the column dtypes, and the table
file's row count and SHA-256 checksum. ``.parquet``: one file; Parquet keeps the dtypes, pandas
(>= 2.1) keeps ``df.attrs`` in its schema metadata (``PANDAS_ATTRS``), and infoplane adds the row count and
SHA-256 checksums of the data and of the conventions (schema metadata ``infoplane.results``), checked on load
like the CSV sidecar's.

Every file is written to a temporary name, fsync'ed and moved into place with `os.replace`, so a process
killed while saving leaves the old file or the new one, never a truncated one. The table is replaced before
its sidecar. Temporary files left by a save that was killed (their writer's pid no longer runs) are deleted
by the next save to the same path. A sidecar that does not belong to its table (a save killed between the two, a file copied or
edited by hand) is detected by the checksum and refused with an error, never loaded under the wrong
conventions.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
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
_PARQUET_KEY = b"infoplane.results"


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
    if "\0" in str(os.fsdecode(path)):
        raise ValueError(f"path must not hold a NUL byte (no file system accepts one). Got {path!r}.")
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's process, or a pid beyond the range
        return pid < 2**22 and not isinstance(pid, bool)
    return True


def _remove_dead_temporaries(path: Path) -> None:
    """Delete ``atomic_write`` temporaries of ``path`` and its sidecar whose writer (by pid) no longer runs."""
    names = "|".join(re.escape(n) for n in (path.name, sidecar_path(path).name))
    pattern = re.compile(rf"^\.(?:{names})\.(\d+)\.[0-9a-f]{{8}}\.tmp$")
    try:
        entries = os.listdir(path.parent)
    except OSError:
        return
    for name in entries:
        match = pattern.match(name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            (path.parent / name).unlink(missing_ok=True)


def _digest(df: pd.DataFrame) -> str:
    """SHA-256 of a table's column names, dtypes and values (numbers by their bytes, others as text)."""
    digest = hashlib.sha256(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    for col in df.columns:
        column = df[col]
        if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biufcmM":
            digest.update(np.ascontiguousarray(column.to_numpy()).tobytes())
        else:
            digest.update(column.isna().to_numpy().tobytes())
            digest.update("\x00".join(column.astype(str).tolist()).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _attrs_digest(attrs: Any) -> str:
    return _sha256(json.dumps(attrs, sort_keys=True, allow_nan=True).encode())


def _parquet_bytes(df: pd.DataFrame, attrs: dict[str, Any]) -> bytes:
    """The Parquet file: pandas' own (dtypes, PANDAS_ATTRS) plus infoplane's checksums in the schema metadata."""
    import pyarrow.parquet as pq

    plain = df.copy(deep=False)
    plain.attrs = attrs  # JSON-safe (numpy values as Python ones), as pandas serialises attrs to JSON
    first = io.BytesIO()
    plain.to_parquet(first, index=False)
    table = pq.read_table(io.BytesIO(first.getvalue()))
    back = pd.read_parquet(io.BytesIO(first.getvalue()))  # the checksum is of what load_results will see
    record = {"format": _SIDECAR_FORMAT, "version": _SIDECAR_VERSION, "n_rows": int(len(back)),
              "data_sha256": _digest(back), "attrs_sha256": _attrs_digest(back.attrs)}
    meta = {**(table.schema.metadata or {}), _PARQUET_KEY: json.dumps(record).encode()}
    out = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), out)
    return out.getvalue()


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
    _remove_dead_temporaries(path)
    buffer = io.BytesIO()
    if fmt == "csv":
        df.to_csv(buffer, index=False, compression=compression)
        data = buffer.getvalue()
        meta["table"] = {"file": path.name, "n_rows": int(len(df)), "sha256": _sha256(data)}
        atomic_write(path, data)
        atomic_write(sidecar_path(path), (json.dumps(meta, indent=1) + "\n").encode())
    else:
        atomic_write(path, _parquet_bytes(df, meta["attrs"]))
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
    schema_meta = table.schema.metadata or {}
    if b"PANDAS_ATTRS" not in schema_meta:
        warnings.warn(f"{str(path)!r} has no pandas attrs; loading without conventions.", stacklevel=3)
    else:
        try:
            attrs = json.loads(schema_meta[b"PANDAS_ATTRS"])
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"the table {str(path)!r} has conventions (PANDAS_ATTRS) that are not valid JSON ({exc}).") from None
        if not isinstance(attrs, dict):
            raise ValueError(f"the table {str(path)!r} has conventions (PANDAS_ATTRS) that are not a JSON object.")
    df = pd.read_parquet(path)  # dtypes and attrs as saved
    _check_parquet(df, schema_meta.get(_PARQUET_KEY), path)
    return df


def _check_parquet(df: pd.DataFrame, raw: bytes | None, path: Path) -> None:
    if raw is None:
        warnings.warn(
            f"{str(path)!r} was written by an older infoplane and records no checksum; cannot check its data "
            "and conventions. Save the table again to add one.", stacklevel=4,
        )
        return
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or record.get("format") != _SIDECAR_FORMAT:
        raise ValueError(f"the table {str(path)!r} has a malformed infoplane.results record {raw[:100]!r}.")
    if record.get("n_rows") != len(df) or record.get("data_sha256") != _digest(df):
        raise ValueError(
            f"the table {str(path)!r} does not match the checksum of its data recorded when it was saved "
            "(a flipped bit, or a file edited or copied by hand). Refusing to load altered numbers; save it again."
        )
    if record.get("attrs_sha256") != _attrs_digest(df.attrs):
        raise ValueError(
            f"the table {str(path)!r} has conventions (df.attrs) that do not match the checksum recorded when "
            "it was saved (edited by hand?). Refusing to load numbers under altered conventions; save it again."
        )


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
