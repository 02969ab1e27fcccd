"""MemoryStore / ZarrStore: one API, exact round trips, atomic epochs, one writer, no code on open."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from infoplane.store import MemoryStore, StoreLockedError, ZarrStore, open_store
from infoplane.store import _zarr as store_module

RNG = np.random.default_rng(0)
A = RNG.normal(size=(6, 3)).astype(np.float32)
MU = RNG.normal(size=(6, 2)).astype(np.float32)
LV = RNG.normal(size=(6, 2)).astype(np.float32)
Y = np.array([0, 1, 0, 1, 1, 0])


def payload(shift: float = 0.0) -> dict:
    return {"a": A + shift, "z": {"mu": MU + shift, "log_var": LV - shift}}


@pytest.fixture(params=["memory", "zarr"])
def store(request, tmp_path):
    s = MemoryStore() if request.param == "memory" else ZarrStore(tmp_path / "s.zarr", "w")
    yield s
    s.close()


def test_round_trip_is_exact_and_epochs_sorted(store):
    store.set_labels(Y)
    store.set_metadata(run="r1", lr=np.float64(4e-4))
    for epoch in (5, 0, 2):  # written out of order: listed ascending
        store.write_epoch(epoch, payload(epoch))
    assert store.epochs == [0, 2, 5]
    assert store.layers == ["a", "z"]
    assert store.layer_kind("a") == "deterministic" and store.layer_kind("z") == "gaussian"
    for epoch in store.epochs:
        got = store.activations(epoch, "a")
        assert got.dtype == np.float32 and np.array_equal(got, A + epoch)  # bit-exact: lossless compression
        assert np.array_equal(store.activations(epoch, "z"), MU + epoch)  # part defaults to "mu"
        assert np.array_equal(store.activations(epoch, "z", part="log_var"), LV - epoch)
    assert np.array_equal(store.labels, Y) and store.labels.dtype == np.int64
    meta = store.metadata
    assert meta["run"] == "r1" and meta["lr"] == 4e-4
    assert meta["layers"] == ["a", "z"] and meta["shapes"] == {"a": [6, 3], "z": [6, 2]}
    assert meta["kinds"] == {"a": "deterministic", "z": "gaussian"} and meta["n_probe"] == 6
    assert meta["epochs"] == [0, 2, 5] and "infoplane_version" in meta
    json.dumps(meta)


def test_stored_arrays_are_copies_and_read_only(store):
    data = A.copy()
    store.write_epoch(0, {"a": data})
    data[:] = 0  # the caller's buffer changes after writing ...
    got = store.activations(0, "a")
    assert np.array_equal(got, A)  # ... the store does not
    with pytest.raises(ValueError, match="read-only"):
        got[0, 0] = 1.0


def test_unknown_epoch_layer_and_part(store):
    store.write_epoch(3, payload())
    with pytest.raises(KeyError, match=r"epoch 4 is not in the store; stored epochs: 3"):
        store.activations(4, "a")
    with pytest.raises(KeyError, match=r"layer 'b' is not in the store; stored layers: 'a', 'z'"):
        store.activations(3, "b")
    with pytest.raises(KeyError, match="layer 'b'"):
        store.layer_kind("b")
    with pytest.raises(ValueError, match="'part' parameter .* must be None for the deterministic layer 'a'"):
        store.activations(3, "a", part="mu")
    with pytest.raises(ValueError, match="must be one of 'mu', 'log_var' for the Gaussian layer 'z'"):
        store.activations(3, "z", part="sigma")


def test_write_errors_name_layer_and_epoch(store):
    store.write_epoch(0, payload())
    with pytest.raises(ValueError, match="epoch 0 is already in the store"):
        store.write_epoch(0, payload())
    bad = A.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"activations of layer 'a' at epoch 1 contain NaN \(1 of 18 values\)"):
        store.write_epoch(1, {**payload(), "a": bad})
    huge = A.astype(np.float64)
    huge[0, 0] = 1e300  # finite in float64, Inf once stored as float32
    with pytest.raises(ValueError, match=r"layer 'a' at epoch 1 contain Inf \(1 of 18"):
        store.write_epoch(1, {**payload(), "a": huge})
    with pytest.raises(ValueError, match=r"layer 'a' at epoch 1 have shape \(6, 4\).*holds shape \(6, 3\)"):
        store.write_epoch(1, {**payload(), "a": np.zeros((6, 4))})
    with pytest.raises(ValueError, match=r"missing \['z'\]"):
        store.write_epoch(1, {"a": A})
    with pytest.raises(ValueError, match="one row per probe input"):
        store.write_epoch(1, {"a": A, "z": {"mu": MU[:5], "log_var": LV[:5]}})
    with pytest.raises(ValueError, match="layer 'z' is gaussian in the store but deterministic at epoch 1"):
        store.write_epoch(1, {"a": A, "z": MU})
    with pytest.raises(ValueError, match="keys"):
        store.write_epoch(1, {"a": A, "z": {"mu": MU}})
    with pytest.raises(ValueError, match="must be 2-D"):
        store.write_epoch(1, {"a": A.ravel(), "z": payload()["z"]})
    with pytest.raises(ValueError, match="'epoch' parameter of write_epoch must be an int >= 0"):
        store.write_epoch(-1, payload())
    with pytest.raises(ValueError, match="non-empty mapping"):
        store.write_epoch(1, {})
    with pytest.raises(TypeError, match="metadata 'f' must be JSON-serialisable"):
        store.set_metadata(f=object())
    with pytest.raises(ValueError, match="labels must have one label per row"):
        store.set_labels([0, 1])
    assert store.epochs == [0]  # nothing half-written became visible


def test_zarr_reopen_reads_everything(tmp_path):
    path = tmp_path / "run.zarr"
    with ZarrStore(path, "w") as s:
        s.set_labels(Y)
        s.set_metadata(schedule={"kind": "every", "k": 1})
        for epoch in range(3):
            s.write_epoch(epoch, payload(epoch))
    r = open_store(path)
    assert isinstance(r, ZarrStore) and r.epochs == [0, 1, 2] and r.layers == ["a", "z"]
    assert np.array_equal(r.activations(2, "z", "log_var"), LV - 2)
    assert np.array_equal(r.labels, Y) and r.metadata["schedule"] == {"kind": "every", "k": 1}
    with pytest.raises(PermissionError, match="read-only"):
        r.write_epoch(3, payload())


def test_no_pickle_only_json_and_plain_numeric_arrays(tmp_path):
    path = tmp_path / "run.zarr"
    with ZarrStore(path, "w") as s:
        s.set_labels(Y)
        s.write_epoch(0, payload())
    metas = list(path.rglob("zarr.json"))
    arrays = [json.loads(m.read_text()) for m in metas]
    arrays = [m for m in arrays if m["node_type"] == "array"]
    assert len(arrays) == 4  # a, z.mu, z.log_var, labels
    for meta in arrays:
        assert meta["data_type"] in ("float32", "int64")
        assert {c["name"] for c in meta["codecs"]} == {"bytes", "blosc", "crc32c"}  # no object/pickle codec
    json.loads((path / "manifest.json").read_text())  # the manifest is plain JSON


def test_large_probes_are_chunked_by_rows(tmp_path, monkeypatch):
    import zarr

    monkeypatch.setattr(store_module, "_CHUNK_BYTES", 4 * 3 * 100)  # 100 rows of 3 float32 per chunk
    data = np.arange(1000 * 3, dtype=np.float32).reshape(1000, 3)
    with ZarrStore(tmp_path / "big.zarr", "w") as s:
        s.write_epoch(0, {"a": data})
        assert np.array_equal(s.activations(0, "a"), data)
    array = zarr.open_array(str(tmp_path / "big.zarr" / "epochs" / "e000000" / "l000"), mode="r")
    assert array.chunks == (100, 3)


def test_second_writer_gets_a_clear_error_and_readers_follow(tmp_path):
    path = tmp_path / "run.zarr"
    writer = ZarrStore(path, "a")
    with pytest.raises(StoreLockedError, match=r"already open for writing by pid \d+ on host"):
        ZarrStore(path, "a")
    with pytest.raises(StoreLockedError, match="already open for writing"):
        open_store(path, mode="a")
    reader = open_store(path)  # readers take no lock
    assert reader.epochs == []
    writer.write_epoch(0, payload())
    assert reader.epochs == [0]  # the reader follows the live writer through the manifest
    assert np.array_equal(reader.activations(0, "a"), A)
    writer.close()
    with open_store(path, mode="a") as again:  # released on close
        again.write_epoch(1, payload(1))
        assert again.epochs == [0, 1]


def test_a_lock_file_left_behind_never_blocks(tmp_path):
    # The lock is the kernel's (flock): whatever a dead writer, another host or a half-written file left in
    # the lock file, nobody holds it, so the next writer opens the store.
    path = tmp_path / "run.zarr"
    ZarrStore(path, "w").close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid is no longer alive
    lock = path / "infoplane.lock"
    for content in (json.dumps({"pid": dead.pid, "host": socket.gethostname()}),
                    json.dumps({"pid": os.getpid(), "host": "another-host"}), "", '{"pid": 12', "[1, 2]", "null"):
        lock.write_text(content)
        with ZarrStore(path, "a") as s:
            assert json.loads(lock.read_text())["pid"] == os.getpid()
            if not s.epochs:
                s.write_epoch(0, payload())


def test_modes_protect_existing_data(tmp_path):
    path = tmp_path / "run.zarr"
    with ZarrStore(path, "w") as s:
        s.write_epoch(0, payload())
    with pytest.raises(FileExistsError, match="already exists"):
        ZarrStore(path, "w-")
    with ZarrStore(path, "w") as s:  # "w" starts over
        assert s.epochs == [] and s.layers == []
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an infoplane store"):
        ZarrStore(other, "w")
    assert (other / "todo.txt").exists()
    with pytest.raises(FileNotFoundError, match="no infoplane store"):
        open_store(tmp_path / "missing")
    with pytest.raises(ValueError, match="'mode' parameter of ZarrStore"):
        ZarrStore(path, "x")


def test_uncommitted_epoch_is_invisible_and_removed_on_resume(tmp_path, monkeypatch):
    path = tmp_path / "run.zarr"
    s = ZarrStore(path, "w")
    s.write_epoch(0, payload())

    def crash():
        raise KeyboardInterrupt  # dies after the arrays, before the manifest: the worst moment

    monkeypatch.setattr(s, "_commit", crash)
    with pytest.raises(KeyboardInterrupt):
        s.write_epoch(1, payload(1))
    assert s.epochs == [0]
    partial = path / "epochs" / "e000001"
    assert partial.is_dir()  # the data is there ...
    assert open_store(path).epochs == [0]  # ... but no reader sees it
    with pytest.raises(KeyError, match="epoch 1 is not in the store"):
        open_store(path).activations(1, "a")
    monkeypatch.undo()
    s.close()
    with ZarrStore(path, "a") as resumed:
        assert not partial.exists()  # a resumed writer deletes uncommitted data
        resumed.write_epoch(1, payload(1))
    assert np.array_equal(open_store(path).activations(1, "a"), A + 1)
