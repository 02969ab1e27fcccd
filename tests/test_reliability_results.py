"""Results files: atomic saves, self-checking sidecars, damaged metadata refused with a clear error."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from infoplane import load_results, save_results
from infoplane.results_io import sidecar_path


def _table(n: int, value: float) -> pd.DataFrame:
    df = pd.DataFrame({
        "run": ["r"] * n, "epoch": np.arange(n, dtype=np.int64), "layer": ["fc"] * n, "estimator": ["e"] * n,
        "I_XT": np.full(n, value) + np.arange(n) / 3, "I_TY": np.full(n, value / 2),
    })
    df.attrs = {"conventions": {"e": {"value": value}}}
    return df


def test_sidecar_from_another_save_is_refused(tmp_path):
    # Before the fix, a table saved without its sidecar being replaced loaded the new numbers under the old
    # conventions; now the table's checksum recorded in the sidecar no longer matches.
    path = save_results(_table(5, 1.0), tmp_path / "t.csv")
    old_side = sidecar_path(path).read_bytes()
    save_results(_table(5, 2.0), path)
    sidecar_path(path).write_bytes(old_side)
    with pytest.raises(ValueError, match="does not belong to the table"):
        load_results(path)


def test_truncated_table_is_refused(tmp_path):
    path = save_results(_table(50, 1.0), tmp_path / "t.csv")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="does not belong to the table"):
        load_results(path)


def test_save_leaves_no_temporary_files(tmp_path):
    for suffix in (".csv", ".csv.gz", ".parquet"):
        save_results(_table(3, 1.0), tmp_path / f"t{suffix}")
        save_results(_table(4, 2.0), tmp_path / f"t{suffix}")
        back = load_results(tmp_path / f"t{suffix}")
        pd.testing.assert_frame_equal(back, _table(4, 2.0), check_exact=True)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: "{not json", "is not valid JSON"),
        (lambda m: json.dumps([1, 2]), "not an infoplane results description"),
        (lambda m: json.dumps({**m, "dtypes": None}), "must hold 'dtypes'"),
        (lambda m: json.dumps({**m, "columns": "run"}), "must hold 'columns'"),
        (lambda m: json.dumps({**m, "dtypes": {**m["dtypes"], "I_XT": "bogus"}}), "column 'I_XT' the dtype 'bogus'"),
        (lambda m: json.dumps({**m, "dtypes": {**m["dtypes"], "I_XT": "int64"}}), "column 'I_XT' the dtype 'int64'"),
        (lambda m: json.dumps({**m, "table": {**m["table"], "n_rows": 99}}), "has 5 rows but"),
        (lambda m: json.dumps({**m, "table": "x"}), "malformed 'table'"),
    ],
)
def test_damaged_sidecar_gets_a_clear_error(tmp_path, edit, match):
    # Before: JSONDecodeError, AttributeError, "data type 'bogus' not understood", and an int64 dtype for
    # I_XT silently truncated 1.33 to 1.
    path = save_results(_table(5, 1.0), tmp_path / "t.csv")
    side = sidecar_path(path)
    side.write_text(edit(json.loads(side.read_text())))
    with pytest.raises(ValueError, match=match):
        load_results(path)


def test_truncated_parquet_is_refused(tmp_path):
    path = save_results(_table(50, 1.0), tmp_path / "t.parquet")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        load_results(path)
