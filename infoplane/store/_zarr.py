"""Where recorded activations live: in memory (`MemoryStore`) or on disk with zarr (`ZarrStore`).

Both stores offer one API. Reading: ``.epochs`` (completed epochs, ascending), ``.layers`` (logical layer
names), ``.metadata`` (JSON-able dict), ``.labels`` (int64 probe labels or None), ``.layer_kind(layer)``
and ``.activations(epoch, layer, part=None)`` -> float32 (N, d). Writing: ``.write_epoch(epoch, {layer:
array | {"mu": array, "log_var": array}})``, ``.set_metadata(**kv)``, ``.set_labels(y)``.

The on-disk layout of a `ZarrStore` at ``path`` (a directory)::

    path/manifest.json                the commit record: epochs, layers, metadata (JSON)
    path/infoplane.lock               the writer's lock file (an OS advisory lock; holder pid and host as JSON)
    path/zarr.json                    a zarr v3 group marked as an infoplane store; ``zarr.open_group(path)``
    path/labels                       int64 (N,) probe labels, if any
    path/epochs/e000012/l000          float32 (N, d) activations of the first layer at epoch 12
    path/epochs/e000012/l001.mu       the mean of a Gaussian layer ...
    path/epochs/e000012/l001.log_var  ... and its log-variance

Losing nothing: an epoch's arrays are written (and fsync'ed when ``durable``) *before* the manifest that
lists it is replaced atomically (write a temporary file, fsync, `os.replace`, fsync the directory). Readers
trust only the manifest, so a process killed mid-epoch leaves every completed epoch readable and the
partial one invisible; a writer that reopens the store (mode ``"a"``) deletes uncommitted epoch folders and
leftover temporary files. Creating a store writes the marked root group first and the manifest last, so a
store whose creation (or overwrite) was killed is recognised and completed by the next writer.

Detecting damage: every chunk carries a crc32c checksum (zarr's codec), missing chunks read as NaN (the fill
value), and each array records the CRC-32 of its content and its own name, checked on every read; a missing,
truncated, altered or swapped chunk raises ValueError naming the epoch and the layer.

Touching nothing outside: every name read from the manifest is checked against a strict pattern before it
becomes a path, symbolic links inside a store are refused (never followed), and only entries a valid manifest
proves are ours are ever deleted. Opening a store never executes code: the manifest is JSON, arrays are zarr
v3 of plain numeric dtypes (float32 activations, int64 labels), and their dtypes are checked before reading.
Requires zarr >= 3.

A second writer gets `StoreLockedError`. The lock is the operating system's (``flock``, via `filelock`): the
kernel releases it when the holder exits or dies, so a crashed writer never blocks the next one.
"""
from __future__ import annotations

import json
import os
import shutil
import weakref
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._core.files import atomic_write, fsync_path
from .._core.validation import check_int_param, check_path_param, param_error
from . import _files as files
from ._base import FORMAT, FORMAT_VERSION, BaseStore, MemoryStore, _package_version
from ._lock import StoreLockedError, WriterLock

__all__ = ["BaseStore", "MemoryStore", "ZarrStore", "open_store", "StoreLockedError"]

#: Target size of one stored chunk: whole (epoch, layer) arrays up to this size are one chunk; larger probes
#: are split into row blocks so a reader of a few rows does not decompress everything.
_CHUNK_BYTES = 16 * 2**20
_FSYNC_POOL = None


def _forget_pool_after_fork() -> None:
    # A forked child inherits the pool object but not its threads: work submitted to it would wait forever.
    global _FSYNC_POOL
    _FSYNC_POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root``, concurrently.

    Issued together, the fsyncs share one journal commit (ext4: ~3 ms for an SZT epoch's 32 entries
    instead of ~120 ms one after another).
    """
    global _FSYNC_POOL
    entries = []
    for dirpath, _dirs, names in os.walk(root):
        entries += [(Path(dirpath) / name, False) for name in names]
        entries.append((Path(dirpath), True))
    if _FSYNC_POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _FSYNC_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="infoplane-fsync")
    for _ in _FSYNC_POOL.map(lambda entry: fsync_path(entry[0], directory=entry[1]), entries):
        pass


def _damaged(path: Path, what: str, name: str, why: str) -> ValueError:
    return ValueError(f"the store {str(path)!r} is damaged: {what} (array {name!r}) {why}.")


class ZarrStore(BaseStore):
    """Activations on disk in a zarr v3 hierarchy, committed one epoch at a time (see the module docstring).

    Parameters
    ----------
    path : str or PathLike
        A directory.
    mode : {"r", "a", "w-", "w"}, default "a"
        ``"r"``: read only (the store must exist; takes no lock; `epochs` follows a live writer).
        ``"a"``: read and write, creating the store if needed and resuming an existing one (uncommitted
        partial epochs are deleted). ``"w-"``: create; fail if a store exists. ``"w"``: create, deleting an
        existing *infoplane store* at ``path`` (only what its manifest proves is a store's: a directory that is
        not a store, or a store holding other files, is refused and left untouched). A store whose creation
        or overwrite was interrupted is recognised (by the marker in its root group) and created anew.
    durable : bool, default True
        fsync each epoch's files before committing it, so a power cut (not only a killed process) cannot
        leave a committed epoch with missing data. Turning it off is safe against process kills.
    compression_level : int in 0..9, default 1
        zstd level of the Blosc compressor, with bit-shuffling (suited to float32: on tanh activations
        level 1 compresses as well as level 3 (~1.1-1.2x) at ~1.7x the write speed).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        mode: Literal["r", "a", "w-", "w"] = "a",
        *,
        durable: bool = True,
        compression_level: int = 1,
    ) -> None:
        super().__init__()
        if mode not in ("r", "a", "w-", "w"):
            raise param_error("ZarrStore", "mode", "one of 'r', 'a', 'w-', 'w'", mode)
        check_path_param(path, "path", "ZarrStore")
        if not isinstance(durable, bool):
            raise param_error("ZarrStore", "durable", "True or False", durable)
        level = check_int_param(compression_level, "compression_level", "ZarrStore", minimum=0)
        if level > 9:
            raise param_error("ZarrStore", "compression_level", "an int in 0..9 (zstd level of Blosc)", level)
        import zarr

        if int(zarr.__version__.split(".")[0]) < 3:  # pragma: no cover - environment guard
            raise ImportError(f"infoplane's ZarrStore needs zarr >= 3. Found zarr {zarr.__version__}.")
        self.path = Path(path)
        self.mode = mode
        self.durable = durable
        self.compression_level = level
        self._version = FORMAT_VERSION
        self._manifest_stamp: tuple[int, int] | None = None
        self._lock: WriterLock | None = None
        self._writable = mode != "r"
        if mode == "r":
            self._load_manifest()
            return
        self._check_mode(*files.classify(self.path))  # refuse before touching anything
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = WriterLock(self.path / files.LOCK)
        self._lock.acquire(what=f"the store {str(self.path)!r}")
        self._finalizer = weakref.finalize(self, self._lock.release)
        try:
            state, foreign = files.classify(self.path)  # again: now no other writer can change it
            self._check_mode(state, foreign)
            if state == "store" and mode == "a":
                self._load_manifest()
                self._remove_uncommitted()
            else:
                if state in ("store", "partial"):
                    files.wipe(self.path, durable=self.durable)
                files.remove_temporaries(self.path)
                self._create()
        except BaseException:
            self.close()
            raise

    def _check_writable(self) -> None:
        super()._check_writable()
        if self._lock is not None and not self._lock.held:
            raise StoreLockedError(
                f"the store {str(self.path)!r} was opened for writing by pid {self._lock.owner_pid}; this process "
                f"(pid {os.getpid()}) is a forked child that inherited the store object, not its lock. Nothing "
                "was written. Write from the process that opened it, or close it there and open the store in "
                "this process with ZarrStore(path, mode='a')."
            )
        self._follow_disk()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = (self.path / files.MANIFEST).stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _follow_disk(self) -> None:
        """The lock holder re-reads a manifest it did not write itself: nothing committed is ever dropped."""
        if self._manifest_stamp is None or self._stamp() in (None, self._manifest_stamp):
            return
        known = dict(self._layer_info)
        self._load_manifest()
        if known and self._layer_info != known:  # pragma: no cover - a writer that bypassed every check
            raise ValueError(f"the store {str(self.path)!r} was changed by another process (its layers differ).")

    def _check_mode(self, state: str, foreign: list[str]) -> None:
        if self.mode == "w-" and state == "store":
            raise FileExistsError(f"an infoplane store already exists at {str(self.path)!r} (mode='w-').")
        if self.mode == "w" and state == "store" and foreign:
            raise FileExistsError(
                f"the store {str(self.path)!r} also holds files that are not a store's ({', '.join(map(repr, foreign))}); "
                "mode='w' deletes only a store. Nothing was changed; move them out or choose a new path."
            )

    def _create(self) -> None:
        files.write_marked_group(self.path, marked=True, durable=self.durable)
        files.write_marked_group(self.path / "epochs", marked=False, durable=self.durable)
        self._version = FORMAT_VERSION
        self._commit()

    def _not_a_store_message(self) -> str:
        return f"no infoplane store at {str(self.path)!r} (no {files.MANIFEST} there)."

    def _where(self) -> str:
        return f"{str(self.path)!r}, mode={self.mode!r}, "

    # ------------------------------------------------------------------ manifest
    def _load_manifest(self) -> None:
        manifest_path = self.path / files.MANIFEST
        try:
            files.refuse_links(self.path, files.MANIFEST)
            stamp = self._stamp()
            raw = manifest_path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(self._not_a_store_message()) from None
        manifest = files.parse_manifest(raw, repr(str(manifest_path)))
        if manifest["version"] < 2 and files.is_marked_root(self.path):
            raise ValueError(
                f"the store {str(self.path)!r} is damaged: its manifest says format version 1, but the store was "
                "created by a version-2 infoplane (its root group is marked); a downgraded version would skip "
                "every checksum, so it is refused."
            )
        self._version = manifest["version"]
        self._epochs = manifest["epochs"]
        self._layer_info = manifest["layers"]
        self._user_meta = dict(manifest["metadata"])
        self._labels = None
        if manifest["has_labels"]:
            n = self.n_probe
            labels = self._read_array("labels", np.int64, "the labels", None if n is None else (n,))
            n = self.n_probe if self._layer_info else labels.shape[0]
            if labels.ndim != 1 or labels.shape[0] != n:
                raise _damaged(self.path, "the labels", "labels", f"have shape {labels.shape}, expected ({n},)")
            self._labels = labels
        self._manifest_stamp = stamp

    def refresh(self) -> None:
        """Re-read the manifest (a reader following a live writer); `epochs` does this by itself in mode 'r'."""
        if self.mode == "r":
            stamp = self._stamp()
            if stamp is not None and stamp != self._manifest_stamp:
                self._load_manifest()

    @property
    def epochs(self) -> list[int]:
        self.refresh()
        return super().epochs

    def _commit(self) -> None:
        self._merge_committed()
        manifest = {
            "format": FORMAT,
            "format_version": self._version,
            "epochs": self._epochs,
            "layers": self._layer_info,
            "layer_order": list(self._layer_info),
            "has_labels": self._labels is not None,
            "metadata": {"infoplane_version": _package_version(), **self._user_meta},
        }
        text = json.dumps(manifest, indent=1, allow_nan=False)
        # atomic: readers see the old or the new manifest, never half of one
        atomic_write(self.path / files.MANIFEST, text.encode(), durable=True)
        self._manifest_stamp = self._stamp()

    def _merge_committed(self) -> None:
        """Before a commit, under the lock: keep every epoch the manifest on disk lists (issue 21)."""
        if self._manifest_stamp is None or self._stamp() in (None, self._manifest_stamp):
            return
        try:
            disk = files.parse_manifest((self.path / files.MANIFEST).read_bytes(), "")
        except (OSError, ValueError):
            return
        if disk["layers"] == self._layer_info:
            self._epochs = sorted(set(self._epochs) | set(disk["epochs"]))

    def _metadata_changed(self) -> None:
        self._commit()

    def _remove_uncommitted(self) -> None:
        files.remove_temporaries(self.path)
        files.refuse_links(self.path, "epochs")
        epochs_dir = self.path / "epochs"
        if not epochs_dir.is_dir():
            files.write_marked_group(epochs_dir, marked=False, durable=self.durable)
            return
        committed = set(self._epochs)
        for child in epochs_dir.iterdir():
            match = files.EPOCH_DIR.match(child.name)
            if not match or int(match.group(1)) in committed:
                continue
            if child.is_symlink():
                child.unlink()  # the link only, never what it points to
            elif child.is_dir():
                shutil.rmtree(child)

    # ------------------------------------------------------------------ arrays
    def _epoch_dir(self, epoch: int) -> str:
        return f"epochs/e{epoch:06d}"

    def _create_array(self, name: str, data: np.ndarray) -> None:
        import zarr
        from zarr.codecs import BloscCodec, Crc32cCodec

        chunks = self._expected_chunks(tuple(data.shape), data.itemsize)
        # NaN (never a valid activation) for a chunk that is missing; the labels' fill is int64's minimum.
        fill = np.nan if data.dtype.kind == "f" else int(np.iinfo(data.dtype).min)
        array = zarr.create_array(
            store=str(self.path / name),
            shape=data.shape,
            dtype=data.dtype,
            chunks=chunks,
            compressors=(BloscCodec(cname="zstd", clevel=self.compression_level, shuffle="bitshuffle"), Crc32cCodec()),
            fill_value=fill,
            attributes={"infoplane": {"array": name, "crc32": files.checksum(data)}},
            zarr_format=3,
            overwrite=True,
        )
        array[...] = data

    def _expected_chunks(self, shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
        if len(shape) == 2:
            rows = max(1, min(shape[0], _CHUNK_BYTES // max(1, shape[1] * itemsize)))
            return (rows, shape[1])
        return tuple(shape)

    def _check_layout(self, array: Any, name: str, what: str, shape: tuple[int, ...] | None) -> None:
        """The array's shape, chunks, codecs and chunk files against the manifest, before reading any data."""
        if shape is not None and tuple(array.shape) != tuple(shape):
            raise _damaged(self.path, what, name, f"has shape {tuple(array.shape)}, but the manifest says {tuple(shape)}")
        expected = self._expected_chunks(tuple(array.shape), array.dtype.itemsize)
        if tuple(array.chunks) != expected:
            raise _damaged(self.path, what, name, f"has chunks {tuple(array.chunks)}; expected {expected}")
        crc = any(type(c).__name__ == "Crc32cCodec" for c in array.metadata.codecs)
        if crc and self._version < 2 and array.attrs.get("infoplane") is None:
            raise _damaged(
                self.path, what, name, "was written in version 2 of the format (it has a crc32c codec) but has lost "
                "its checksum record, and the manifest says format version 1: a downgraded store, refused"
            )
        if not crc:
            return  # infoplane 0.1: chunks equal to the fill value were not written
        n_chunks = int(np.prod([-(-s // c) for s, c in zip(array.shape, expected)]))
        present = sum(len(f) for _d, _s, f in os.walk(self.path / name / "c"))
        if present < n_chunks:
            raise _damaged(self.path, what, name, f"has a missing chunk ({present} of {n_chunks} chunks present)")

    def _read_array(self, name: str, dtype: Any, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        import zarr

        files.refuse_links(self.path, *name.split("/"))
        for dirpath, dirnames, filenames in os.walk(self.path / name):
            for entry in dirnames + filenames:
                files.refuse_links(Path(dirpath), entry)
        try:
            array = zarr.open_array(store=str(self.path / name), mode="r", zarr_format=3)
        except Exception as exc:  # zarr raises many kinds: missing or unreadable metadata
            raise _damaged(self.path, what, name, f"cannot be opened ({type(exc).__name__}: {exc})") from None
        # Only plain numeric arrays are read, so no codec that could deserialise objects is ever involved.
        if array.dtype != np.dtype(dtype):
            raise _damaged(self.path, what, name, f"has dtype {array.dtype}; expected {np.dtype(dtype)}")
        self._check_layout(array, name, what, shape)
        try:
            data = np.asarray(array[...])
        except Exception as exc:  # a chunk that fails its crc32c, or that Blosc cannot decompress
            raise _damaged(self.path, what, name, f"has a truncated or altered chunk ({type(exc).__name__}: {exc})") from None
        record = array.attrs.get("infoplane")
        if record is None and self._version < 2:
            return data  # written by infoplane 0.1, before checksums
        if not isinstance(record, dict) or record.get("array") != name:
            got = record.get("array") if isinstance(record, dict) else record
            raise _damaged(self.path, what, name, f"is not the array written there (it records {got!r}); it was moved or copied")
        if files.checksum(data) != record.get("crc32"):
            if data.dtype.kind == "f" and np.isnan(data).any():
                raise _damaged(self.path, what, name, "has a missing chunk (read as NaN)")
            raise _damaged(self.path, what, name, "does not match the checksum recorded when it was written (a chunk was altered or copied from another array)")
        return data

    def _write_arrays(self, epoch, arrays):
        import zarr

        files.refuse_links(self.path, "epochs")
        epoch_dir = self.path / self._epoch_dir(epoch)
        if epoch_dir.is_symlink():
            epoch_dir.unlink()
        elif epoch_dir.exists():  # uncommitted leftovers of an earlier attempt at this epoch
            shutil.rmtree(epoch_dir)
        zarr.open_group(str(epoch_dir), mode="w", zarr_format=3)
        for layer, parts in arrays.items():
            key = self._layer_info[layer]["key"]
            for part, data in parts.items():
                self._create_array(f"{self._epoch_dir(epoch)}/{files.array_name(key, part)}", data)
        if self.durable:
            _fsync_tree(epoch_dir)
            fsync_path(epoch_dir.parent, directory=True)

    def _write_labels(self, labels):
        self._create_array("labels", labels)
        if self.durable:
            _fsync_tree(self.path / "labels")

    def _read(self, epoch, layer, info, part):
        name = f"{self._epoch_dir(epoch)}/{files.array_name(info['key'], part)}"
        what = f"layer {layer!r}{'' if part is None else f' ({part})'} at epoch {epoch}"
        data = self._read_array(name, np.dtype(info.get("dtype", "float32")), what, tuple(info["shape"]))
        if list(data.shape) != list(info["shape"]):
            raise _damaged(self.path, what, name, f"has shape {data.shape}, but the manifest says {tuple(info['shape'])}")
        if not np.isfinite(data).all():
            raise _damaged(self.path, what, name, "holds NaN or infinite values (a missing chunk?)")
        return data

    def close(self) -> None:
        """Release the writer lock (the store stays readable)."""
        self._writable = False
        if self._lock is not None:
            self._lock.release()
            self._finalizer.detach()
            self._lock = None


def open_store(path: str | os.PathLike, mode: Literal["r", "a"] = "r", **kwargs: Any) -> ZarrStore:
    """Reopen a `ZarrStore`: ``mode="r"`` to read (the default), ``"a"`` to resume writing.

    ``.epochs`` lists the completed epochs in order, ``.layers`` the layer names and
    ``.activations(epoch, layer)`` returns a float32 ndarray. Raises FileNotFoundError if no store is there.
    """
    if mode not in ("r", "a"):
        raise param_error("open_store", "mode", "one of 'r', 'a'", mode)
    check_path_param(path, "path", "open_store")
    if not (Path(path) / files.MANIFEST).is_file():
        raise FileNotFoundError(f"no infoplane store at {str(path)!r} (no {files.MANIFEST} there).")
    return ZarrStore(path, mode=mode, **kwargs)
