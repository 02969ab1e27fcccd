"""Results files: atomic saves, self-checking sidecars, damaged metadata refused with a clear error."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from infoplane import load_results, save_results
from infoplane.analysis import sidecar_path


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


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_save_killed_at_every_file_operation_loads_old_new_or_a_clear_error(tmp_path, suffix):
    # Before: killed while overwriting, 10 of 12 tables loaded back truncated with no error, and a kill
    # between the CSV and its sidecar loaded new numbers under old conventions. Now a kill at any write,
    # fsync or replace leaves the old table, the new one, or a pair that load_results refuses by name.
    from tests.store.test_reliability_store import _Crash, in_child

    old, new = _table(40, 1.0), _table(60, 2.0)
    outcomes = []
    for k in range(1, 100):
        path = save_results(old, tmp_path / f"k{k}{suffix}")
        code = in_child(lambda path=path, k=k: (_Crash(k).install(), save_results(new, path)))
        assert code in (0, 9)
        try:
            back = load_results(path)
        except ValueError as exc:
            assert "does not belong to the table" in str(exc)
            outcomes.append("refused")
        else:
            same_as = [name for name, df in (("old", old), ("new", new)) if back.equals(df) and back.attrs == df.attrs]
            assert same_as, f"kill at operation {k} loaded a table that is neither the old nor the new one"
            outcomes.append(same_as[0])
        if code == 0:
            break
    assert outcomes[0] == "old" and outcomes[-1] == "new"
    assert set(outcomes) <= {"old", "new", "refused"}
    if suffix != ".parquet":  # killed after the table, before its sidecar: the mismatch is caught
        assert "refused" in outcomes
    print(suffix, len(outcomes), "file operations:", {o: outcomes.count(o) for o in set(outcomes)})


# --------------------------------------------------------------------------------------------------
# Issue 21: Parquet integrity; a killed save_results leaves no temporary files behind
# --------------------------------------------------------------------------------------------------
def _plane_table() -> pd.DataFrame:
    df = pd.DataFrame({"epoch": np.arange(5, dtype=np.int64), "layer": ["fc"] * 5,
                       "I_XT": [8.1824, 1.5, 2.25, 3.0, 4.75], "I_TY": [0.5, 0.25, 0.75, 1.0, 0.125]})
    df.attrs = {"conventions": {"e": {"bound": "lower", "units": "bits"}}}
    return df


def test_a_flipped_bit_in_a_parquet_table_is_refused(tmp_path):
    # Before: one flipped bit loaded I_XT 8.1824 as 8.6824, silently.
    import struct

    path = save_results(_plane_table(), tmp_path / "t.parquet")
    data = bytearray(path.read_bytes())
    at = data.find(struct.pack("<d", 8.1824))
    assert at > 0
    data[at + 6] ^= 0x01  # 8.1824 -> 8.6824
    path.write_bytes(bytes(data))
    import pyarrow.parquet as pq

    assert pq.read_table(path).column("I_XT")[0].as_py() == pytest.approx(8.6824)  # Parquet itself reads it
    with pytest.raises(ValueError, match=r"t.parquet.*checksum.*data"):
        load_results(path)


def _rewrite_schema_metadata(path, edit):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    edit(meta)
    pq.write_table(table.replace_schema_metadata(meta), path)


def test_edited_parquet_conventions_are_refused(tmp_path):
    # Before: conventions edited in PANDAS_ATTRS loaded as genuine.
    path = save_results(_plane_table(), tmp_path / "t.parquet")

    def edit(meta):
        attrs = json.loads(meta[b"PANDAS_ATTRS"])
        attrs["conventions"]["e"]["bound"] = "upper"
        meta[b"PANDAS_ATTRS"] = json.dumps(attrs).encode()

    _rewrite_schema_metadata(path, edit)
    with pytest.raises(ValueError, match=r"conventions.*checksum"):
        load_results(path)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_malformed_parquet_attrs_get_a_sentence(tmp_path, raw):
    # Before: a raw JSONDecodeError from pandas.
    path = save_results(_plane_table(), tmp_path / "t.parquet")
    _rewrite_schema_metadata(path, lambda meta: meta.update({b"PANDAS_ATTRS": raw}))
    with pytest.raises(ValueError, match=r"t.parquet.*PANDAS_ATTRS.*(not valid JSON|not a JSON object)"):
        load_results(path)


def test_a_genuine_parquet_table_round_trips_with_its_checksum(tmp_path):
    df = _plane_table()
    back = load_results(save_results(df, tmp_path / "t.parquet"))
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    assert back.attrs == df.attrs


def _killed_save(df, path, at: str) -> None:
    """Fork a child that runs save_results and is SIGKILLed at its ``at`` file operation (os.replace)."""
    import signal

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            real = getattr(os, at)

            def die(*args, **kw):
                os.kill(os.getpid(), signal.SIGKILL)
                return real(*args, **kw)

            setattr(os, at, die)
            save_results(df, path)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_a_killed_save_leaves_no_temporary_files_after_the_next_save(tmp_path, suffix):
    # Before: each killed save_results left a full-size temporary file forever (5 of 5).
    path = tmp_path / f"t{suffix}"
    big = _table(20_000, 1.0)
    for _ in range(3):
        _killed_save(big, path, "replace")
    left = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    # each killed save cleaned the one before it: only the last one's (full-size) temporary file is left
    assert len(left) == 1 and os.path.getsize(tmp_path / left[0]) > 50_000, left
    save_results(_table(4, 2.0), path)
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []
    pd.testing.assert_frame_equal(load_results(path), _table(4, 2.0), check_exact=True)


def test_a_live_savers_temporary_file_is_kept(tmp_path):
    # Cleaning must not pull the file from under a save still in progress in another live process.
    import subprocess
    import sys

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".t.csv.{sleeper.pid}.0123abcd.tmp"
        live.write_bytes(b"in progress")
        dead = tmp_path / ".t.csv.999999999.0123abcd.tmp"
        dead.write_bytes(b"left by a killed save")
        foreign = tmp_path / ".notes.txt.1.tmp"
        foreign.write_bytes(b"not ours")
        save_results(_table(4, 2.0), tmp_path / "t.csv")
        assert live.exists() and foreign.exists() and not dead.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
