"""Where recorded activations live: in memory (`MemoryStore`) or on disk with zarr (`ZarrStore`).

Both stores offer one API. Reading: ``.epochs`` (completed epochs, ascending), ``.layers`` (logical layer
names), ``.metadata`` (JSON-able dict), ``.labels`` (int64 probe labels or None), ``.layer_kind(layer)``
and ``.activations(epoch, layer, part=None)`` -> float32 (N, d). Writing: ``.write_epoch(epoch, {layer:
array | {"mu": array, "log_var": array}})``, ``.set_metadata(**kv)``, ``.set_labels(y)``.

The on-disk layout of a `ZarrStore` at ``path`` (a directory)::

    path/manifest.json                the commit record: epochs, layers, metadata (JSON)
    path/infoplane.lock               present while a writer holds the store (pid, host as JSON)
    path/zarr.json                    a zarr v3 group, so ``zarr.open_group(path)`` browses it
    path/labels                       int64 (N,) probe labels, if any
    path/epochs/e000012/l000          float32 (N, d) activations of the first layer at epoch 12
    path/epochs/e000012/l001.mu       the mean of a Gaussian layer ...
    path/epochs/e000012/l001.log_var  ... and its log-variance

Losing nothing: an epoch's arrays are written (and fsync'ed when ``durable``) *before* the manifest that
lists it is replaced atomically (write a temporary file, fsync, `os.replace`, fsync the directory). Readers
trust only the manifest, so a process killed mid-epoch leaves every completed epoch readable and the
partial one invisible; a writer that reopens the store (mode ``"a"``) deletes uncommitted epoch folders.
Opening a store never executes code: the manifest is JSON, arrays are zarr v3 of plain numeric dtypes
(float32 activations, int64 labels), and their dtypes are checked before reading. Requires zarr >= 3.

A second writer gets `StoreLockedError`. A lock left by a dead process on the same host (killed, crashed)
is stale and is taken over silently; a lock from another host must be removed by hand.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._lock import StoreLockedError, WriterLock
from ._types import json_safe
from ._validation import check_activations, check_int_param, check_labels, param_error

__all__ = ["BaseStore", "MemoryStore", "ZarrStore", "open_store", "StoreLockedError"]

LayerKind = Literal["deterministic", "gaussian"]
_GAUSSIAN_PARTS = ("mu", "log_var")
_FORMAT = "infoplane.store"
_FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_LOCK = "infoplane.lock"
#: Target size of one stored chunk: whole (epoch, layer) arrays up to this size are one chunk; larger probes
#: are split into row blocks so a reader of a few rows does not decompress everything.
_CHUNK_BYTES = 16 * 2**20


def _stored_dtype(name: Any) -> str:
    """The manifest's dtype of a layer: only float32 (the default) and float16 are ever read."""
    if name not in ("float32", "float16"):
        raise ValueError(f"the store's manifest names layer dtype {name!r}; expected 'float32' or 'float16'.")
    return name


def _package_version() -> str:
    try:
        import infoplane

        return str(getattr(infoplane, "__version__", "unknown"))
    except Exception:  # pragma: no cover - partial imports
        return "unknown"


def _listing(items) -> str:
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:50])
    return shown + (f", ... ({len(items)} in all)" if len(items) > 50 else "") if items else "none"


class BaseStore:
    """The read/write API shared by `MemoryStore` and `ZarrStore`; subclasses say where arrays go."""

    def __init__(self) -> None:
        self._epochs: list[int] = []
        self._layer_info: dict[str, dict[str, Any]] = {}  # name -> {"kind", "shape", "key"}
        self._user_meta: dict[str, Any] = {}
        self._labels: np.ndarray | None = None
        self._writable = True

    # ------------------------------------------------------------------ reading
    @property
    def epochs(self) -> list[int]:
        """Completed epochs, ascending. A partially written epoch is never listed."""
        return list(self._epochs)

    @property
    def layers(self) -> list[str]:
        """Logical layer names in recording order (a Gaussian layer is one name)."""
        return list(self._layer_info)

    @property
    def labels(self) -> np.ndarray | None:
        """int64 (N,) labels of the probe set, or None."""
        if self._labels is None:
            return None
        out = self._labels.view()
        out.flags.writeable = False
        return out

    @property
    def n_probe(self) -> int | None:
        """Number of probe rows (N), once anything is stored."""
        for info in self._layer_info.values():
            return int(info["shape"][0])
        return None if self._labels is None else int(self._labels.shape[0])

    @property
    def metadata(self) -> dict[str, Any]:
        """JSON-able metadata: what the writer set, plus layers, kinds, shapes, n_probe, epochs, version."""
        meta = dict(self._user_meta)
        meta.update(
            layers=self.layers,
            kinds={k: v["kind"] for k, v in self._layer_info.items()},
            shapes={k: list(v["shape"]) for k, v in self._layer_info.items()},
            n_probe=self.n_probe,
            epochs=self.epochs,
            has_labels=self._labels is not None,
            store_format=f"{_FORMAT} v{_FORMAT_VERSION}",
        )
        meta.setdefault("infoplane_version", _package_version())
        return json.loads(json.dumps(meta))  # a deep copy: callers cannot mutate the store

    def layer_kind(self, layer: str) -> LayerKind:
        """``"deterministic"`` or ``"gaussian"`` (recorded as mean and log-variance)."""
        return self._info(layer)["kind"]

    def activations(self, epoch: int, layer: str, part: str | None = None) -> np.ndarray:
        """Activations of ``layer`` at ``epoch``: float32 (N, d), read-only.

        For a Gaussian layer ``part`` is ``"mu"`` (default) or ``"log_var"`` (natural-log variance of each
        unit); for a deterministic layer ``part`` must be None.
        """
        info = self._info(layer)
        if epoch not in self._epochs:
            self.refresh()
        if epoch not in self._epochs:
            raise KeyError(f"epoch {epoch!r} is not in the store; stored epochs: {_listing(self._epochs)}.")
        if info["kind"] == "gaussian":
            part = "mu" if part is None else part
            if part not in _GAUSSIAN_PARTS:
                raise ValueError(
                    f"The 'part' parameter of activations must be one of 'mu', 'log_var' for the Gaussian "
                    f"layer {layer!r}. Got {part!r} instead."
                )
        elif part is not None:
            raise ValueError(
                f"The 'part' parameter of activations must be None for the deterministic layer {layer!r}. "
                f"Got {part!r} instead."
            )
        out = self._read(int(epoch), layer, info, part)
        if out.dtype != np.float32:  # float16 storage: handed out as float32, like every other layer
            out = out.astype(np.float32)
        out.flags.writeable = False
        return out

    def refresh(self) -> None:
        """Re-read what a live writer committed (a no-op for stores this process writes)."""

    def _info(self, layer: str) -> dict[str, Any]:
        try:
            return self._layer_info[layer]
        except (KeyError, TypeError):
            raise KeyError(f"layer {layer!r} is not in the store; stored layers: {_listing(self.layers)}.") from None

    def __contains__(self, epoch: object) -> bool:
        return epoch in self._epochs

    def __len__(self) -> int:
        return len(self._epochs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._where()}epochs={len(self._epochs)}, layers={self.layers!r}, "
            f"n_probe={self.n_probe})"
        )

    def _where(self) -> str:
        return ""

    # ------------------------------------------------------------------ writing
    def _check_writable(self) -> None:
        if not self._writable:
            raise PermissionError(f"{self!r} is read-only (opened with mode='r' or closed).")

    def set_metadata(self, **kv: Any) -> None:
        """Merge JSON-able key/values into the metadata (numpy values are converted)."""
        self._check_writable()
        clean = {}
        for key, value in kv.items():
            value = json_safe(value)
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"metadata {key!r} must be JSON-serialisable. Got {type(value).__name__}.") from exc
            clean[key] = value
        self._user_meta.update(clean)
        self._metadata_changed()

    def set_labels(self, labels: Any) -> None:
        """Store int64 (N,) labels of the probe rows (once; setting equal labels again is a no-op)."""
        self._check_writable()
        n = self.n_probe if self._layer_info else None
        y = check_labels(labels, n, name="labels", min_classes=1)
        if self._labels is not None:
            if self._labels.shape == y.shape and np.array_equal(self._labels, y):
                return
            raise ValueError("labels differ from the labels already in the store; a store holds one probe set.")
        self._labels = np.array(y, dtype=np.int64, copy=True)
        self._write_labels(self._labels)
        self._metadata_changed()

    def write_epoch(self, epoch: int, data: Mapping[str, Any]) -> None:
        """Store every layer of one epoch; the epoch becomes visible only once all of it is written.

        ``data`` maps each layer name to float (N, d) activations, or for a Gaussian layer to
        ``{"mu": (N, d), "log_var": (N, d)}``. The first epoch fixes the layers, their kinds and shapes;
        later epochs must match. Writing an epoch already stored raises ValueError (epochs are immutable).
        """
        self._check_writable()
        epoch = check_int_param(epoch, "epoch", "write_epoch", minimum=0)
        if epoch in self._epochs:
            raise ValueError(f"epoch {epoch} is already in the store; stored epochs are never overwritten.")
        if not isinstance(data, Mapping) or not data:
            raise ValueError(
                f"The 'data' parameter of write_epoch must be a non-empty mapping {{layer: array}}. "
                f"Got {type(data).__name__} {'(empty)' if isinstance(data, Mapping) else ''}instead."
            )
        arrays: dict[str, dict[str | None, np.ndarray]] = {}
        for layer, value in data.items():
            if not isinstance(layer, str) or not layer:
                raise TypeError(f"layer names must be non-empty strings. Got {layer!r}.")
            arrays[layer] = self._normalise(layer, epoch, value)
        self._check_consistent(epoch, arrays)
        for layer, parts in arrays.items():  # later epochs are stored in the dtype the first one fixed
            stored = np.dtype(self._layer_info.get(layer, {}).get("dtype", next(iter(parts.values())).dtype))
            arrays[layer] = {p: a.astype(stored, copy=False) for p, a in parts.items()}
        new_layers = not self._layer_info
        if new_layers:
            for i, (layer, parts) in enumerate(arrays.items()):
                first = next(iter(parts.values()))
                self._layer_info[layer] = {
                    "kind": "gaussian" if None not in parts else "deterministic",
                    "shape": [int(s) for s in first.shape],
                    "key": f"l{i:03d}",
                    "dtype": str(first.dtype),
                }
        previous = self._epochs
        try:
            self._write_arrays(epoch, arrays)
            self._epochs = sorted([*previous, epoch])
            self._commit()
        except BaseException:
            self._epochs = previous  # not committed: the next writer deletes its arrays
            if new_layers:
                self._layer_info = {}
            raise

    @staticmethod
    def _as_float32(value: Any, layer: str, epoch: int) -> np.ndarray:
        """float32 (N, d); float16 arrays stay float16 (reduced storage chosen by the recorder)."""
        t = check_activations(value, name="activations", layer=layer, epoch=epoch, allow_torch=False)
        if t.dtype not in (np.float32, np.float16):  # float64 beyond float32's range would become Inf: check again
            with np.errstate(over="ignore"):
                t = t.astype(np.float32)
            t = check_activations(t, name="activations", layer=layer, epoch=epoch)
        return t

    def _normalise(self, layer: str, epoch: int, value: Any) -> dict[str | None, np.ndarray]:
        if isinstance(value, Mapping):
            if set(value) != set(_GAUSSIAN_PARTS):
                raise ValueError(
                    f"a Gaussian layer's value must be {{'mu': array, 'log_var': array}}; layer {layer!r} at "
                    f"epoch {epoch} has keys {sorted(map(str, value))}."
                )
            parts = {p: self._as_float32(value[p], f"{layer}.{p}", epoch) for p in _GAUSSIAN_PARTS}
            if parts["mu"].shape != parts["log_var"].shape:
                raise ValueError(
                    f"mu and log_var of layer {layer!r} at epoch {epoch} must have the same shape. Got "
                    f"{parts['mu'].shape} and {parts['log_var'].shape}."
                )
            return parts
        return {None: self._as_float32(value, layer, epoch)}

    def _check_consistent(self, epoch: int, arrays: dict[str, dict[str | None, np.ndarray]]) -> None:
        rows = {layer: next(iter(p.values())).shape[0] for layer, p in arrays.items()}
        if len(set(rows.values())) > 1:
            raise ValueError(
                f"every layer at epoch {epoch} must have one row per probe input; rows per layer: {rows}."
            )
        n = next(iter(rows.values()))
        if self._labels is not None and n != self._labels.shape[0]:
            raise ValueError(
                f"activations at epoch {epoch} have {n:,} rows but the store's labels have "
                f"{self._labels.shape[0]:,}."
            )
        if not self._layer_info:
            return
        if set(arrays) != set(self._layer_info):
            missing = [k for k in self._layer_info if k not in arrays]
            extra = [k for k in arrays if k not in self._layer_info]
            raise ValueError(
                f"epoch {epoch} must hold the store's layers {self.layers}; missing {missing}, unexpected {extra}."
            )
        for layer, parts in arrays.items():
            info = self._layer_info[layer]
            kind = "gaussian" if None not in parts else "deterministic"
            if kind != info["kind"]:
                raise ValueError(f"layer {layer!r} is {info['kind']} in the store but {kind} at epoch {epoch}.")
            shape = list(next(iter(parts.values())).shape)
            if shape != list(info["shape"]):
                raise ValueError(
                    f"activations of layer {layer!r} at epoch {epoch} have shape {tuple(shape)}, but the "
                    f"store holds shape {tuple(info['shape'])} for it."
                )

    def close(self) -> None:
        """Stop writing (releases a writer lock); reading stays possible."""
        self._writable = False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # subclass hooks
    def _read(self, epoch: int, layer: str, info: dict, part: str | None) -> np.ndarray:
        raise NotImplementedError

    def _write_arrays(self, epoch: int, arrays: dict[str, dict[str | None, np.ndarray]]) -> None:
        raise NotImplementedError

    def _write_labels(self, labels: np.ndarray) -> None:
        pass

    def _commit(self) -> None:
        pass

    def _metadata_changed(self) -> None:
        pass


class MemoryStore(BaseStore):
    """Activations held in memory (for notebooks and tests); arrays are copied in and handed out read-only.

    Examples
    --------
    >>> store = MemoryStore()
    >>> store.write_epoch(0, {"fc1": np.zeros((4, 3))})
    >>> store.epochs, store.activations(0, "fc1").shape
    ([0], (4, 3))
    """

    def __init__(self) -> None:
        super().__init__()
        self._data: dict[int, dict[str, dict[str | None, np.ndarray]]] = {}

    def _write_arrays(self, epoch, arrays):
        self._data[epoch] = {
            layer: {p: np.array(a, copy=True) for p, a in parts.items()}
            for layer, parts in arrays.items()
        }

    def _read(self, epoch, layer, info, part):
        return self._data[epoch][layer][part].view()

    def close(self) -> None:
        # A memory store has no lock to release and nobody else to protect it from: keep it writable.
        pass


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


_FSYNC_POOL = None


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root``, concurrently.

    Issued together, the fsyncs share one journal commit (ext4: ~3 ms for an SZT epoch's 32 entries
    instead of ~120 ms one after another).
    """
    global _FSYNC_POOL
    entries = []
    for dirpath, _dirs, files in os.walk(root):
        entries += [(Path(dirpath) / name, False) for name in files]
        entries.append((Path(dirpath), True))
    if _FSYNC_POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _FSYNC_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="infoplane-fsync")
    for _ in _FSYNC_POOL.map(lambda entry: _fsync_path(entry[0], directory=entry[1]), entries):
        pass


_EPOCH_DIR = re.compile(r"^e(\d+)$")


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
        existing *infoplane store* at ``path`` (never a directory that is not one).
    durable : bool, default True
        fsync each epoch's files before committing it, so a power cut (not only a killed process) cannot
        leave a committed epoch with missing data. Turning it off is safe against process kills.
    compression_level : int, default 1
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
        import zarr

        if int(zarr.__version__.split(".")[0]) < 3:  # pragma: no cover - environment guard
            raise ImportError(f"infoplane's ZarrStore needs zarr >= 3. Found zarr {zarr.__version__}.")
        self.path = Path(path)
        self.mode = mode
        self.durable = bool(durable)
        self.compression_level = check_int_param(compression_level, "compression_level", "ZarrStore", minimum=0)
        self._manifest_stamp: tuple[int, int] | None = None
        self._lock: WriterLock | None = None
        self._writable = mode != "r"
        manifest = self.path / _MANIFEST
        exists = manifest.is_file()
        if mode == "r":
            if not exists:
                raise FileNotFoundError(self._not_a_store_message())
            self._load_manifest()
            return
        if mode == "w-" and exists:
            raise FileExistsError(f"an infoplane store already exists at {str(self.path)!r} (mode='w-').")
        if not exists and self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            # Never write into (or delete) something that is not ours.
            raise FileExistsError(
                f"{str(self.path)!r} exists and is not an infoplane store (no {_MANIFEST}); choose a new path."
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = WriterLock(self.path / _LOCK)
        self._lock.acquire(what=f"the store {str(self.path)!r}")
        self._finalizer = weakref.finalize(self, self._lock.release)
        try:
            if exists and mode == "w":
                for child in self.path.iterdir():
                    if child.name == _LOCK:
                        continue
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
                exists = False
            if exists:
                self._load_manifest()
                self._remove_uncommitted()
            else:
                zarr.open_group(str(self.path), mode="a", zarr_format=3)
                zarr.open_group(str(self.path / "epochs"), mode="a", zarr_format=3)
                self._commit()
        except BaseException:
            self.close()
            raise

    def _not_a_store_message(self) -> str:
        return f"no infoplane store at {str(self.path)!r} (no {_MANIFEST} there)."

    def _where(self) -> str:
        return f"{str(self.path)!r}, mode={self.mode!r}, "

    # ------------------------------------------------------------------ manifest
    def _load_manifest(self) -> None:
        manifest_path = self.path / _MANIFEST
        try:
            stat = manifest_path.stat()
            manifest = json.loads(manifest_path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(self._not_a_store_message()) from None
        if manifest.get("format") != _FORMAT:
            raise ValueError(f"{str(manifest_path)!r} is not an infoplane store manifest.")
        if manifest.get("format_version", 0) > _FORMAT_VERSION:
            raise ValueError(
                f"the store at {str(self.path)!r} has format version {manifest['format_version']}; this "
                f"infoplane reads up to {_FORMAT_VERSION}. Upgrade infoplane."
            )
        self._epochs = sorted(int(e) for e in manifest["epochs"])
        self._layer_info = {
            layer: {"kind": info["kind"], "shape": list(info["shape"]), "key": info["key"],
                    "dtype": _stored_dtype(info.get("dtype", "float32"))}
            for layer, info in manifest["layers"].items()
        }
        self._user_meta = dict(manifest.get("metadata", {}))
        if manifest.get("has_labels"):
            labels = self._open_array("labels", np.int64)[...]
            self._labels = np.asarray(labels, dtype=np.int64)
        self._manifest_stamp = (stat.st_mtime_ns, stat.st_size)

    def refresh(self) -> None:
        """Re-read the manifest (a reader following a live writer); `epochs` does this by itself in mode 'r'."""
        if self.mode == "r":
            try:
                stat = (self.path / _MANIFEST).stat()
            except FileNotFoundError:
                return
            if (stat.st_mtime_ns, stat.st_size) != self._manifest_stamp:
                self._load_manifest()

    @property
    def epochs(self) -> list[int]:
        self.refresh()
        return super().epochs

    def _commit(self) -> None:
        manifest = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "epochs": self._epochs,
            "layers": self._layer_info,
            "layer_order": list(self._layer_info),
            "has_labels": self._labels is not None,
            "metadata": {"infoplane_version": _package_version(), **self._user_meta},
        }
        text = json.dumps(manifest, indent=1, allow_nan=False)
        tmp = self.path / f".{_MANIFEST}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / _MANIFEST)  # atomic: readers see the old or the new manifest, never half
        _fsync_path(self.path, directory=True)

    def _metadata_changed(self) -> None:
        self._commit()

    def _remove_uncommitted(self) -> None:
        committed = set(self._epochs)
        epochs_dir = self.path / "epochs"
        if not epochs_dir.is_dir():
            return
        for child in epochs_dir.iterdir():
            match = _EPOCH_DIR.match(child.name)
            if match and int(match.group(1)) not in committed and child.is_dir():
                shutil.rmtree(child)

    # ------------------------------------------------------------------ arrays
    def _epoch_dir(self, epoch: int) -> str:
        return f"epochs/e{epoch:06d}"

    @staticmethod
    def _array_name(key: str, part: str | None) -> str:
        return key if part is None else f"{key}.{part}"

    def _create_array(self, name: str, data: np.ndarray) -> None:
        import zarr
        from zarr.codecs import BloscCodec

        if data.ndim == 2:
            rows = max(1, min(data.shape[0], _CHUNK_BYTES // max(1, data.shape[1] * data.itemsize)))
            chunks = (rows, data.shape[1])
        else:
            chunks = data.shape
        array = zarr.create_array(
            store=str(self.path / name),
            shape=data.shape,
            dtype=data.dtype,
            chunks=chunks,
            compressors=BloscCodec(cname="zstd", clevel=self.compression_level, shuffle="bitshuffle"),
            zarr_format=3,
            overwrite=True,
        )
        array[...] = data

    def _open_array(self, name: str, dtype) -> Any:
        import zarr

        array = zarr.open_array(store=str(self.path / name), mode="r", zarr_format=3)
        # Only plain numeric arrays are read, so no codec that could deserialise objects is ever involved.
        if array.dtype != np.dtype(dtype):
            raise ValueError(f"array {name!r} of the store has dtype {array.dtype}; expected {np.dtype(dtype)}.")
        return array

    def _write_arrays(self, epoch, arrays):
        import zarr

        epoch_dir = self.path / self._epoch_dir(epoch)
        if epoch_dir.exists():  # uncommitted leftovers of an earlier attempt at this epoch
            shutil.rmtree(epoch_dir)
        zarr.open_group(str(epoch_dir), mode="w", zarr_format=3)
        for layer, parts in arrays.items():
            key = self._layer_info[layer]["key"]
            for part, data in parts.items():
                self._create_array(f"{self._epoch_dir(epoch)}/{self._array_name(key, part)}", data)
        if self.durable:
            _fsync_tree(epoch_dir)
            _fsync_path(epoch_dir.parent, directory=True)

    def _write_labels(self, labels):
        self._create_array("labels", labels)
        if self.durable:
            _fsync_tree(self.path / "labels")

    def _read(self, epoch, layer, info, part):
        name = f"{self._epoch_dir(epoch)}/{self._array_name(info['key'], part)}"
        data = np.asarray(self._open_array(name, np.dtype(info.get("dtype", "float32")))[...])
        if list(data.shape) != list(info["shape"]):
            raise ValueError(
                f"array {name!r} has shape {data.shape}, but the manifest says {tuple(info['shape'])}; "
                "the store was modified outside infoplane."
            )
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
    if not (Path(path) / _MANIFEST).is_file():
        raise FileNotFoundError(f"no infoplane store at {str(path)!r} (no {_MANIFEST} there).")
    return ZarrStore(path, mode=mode, **kwargs)
