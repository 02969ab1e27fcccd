"""The store API shared by every store (`BaseStore`) and the in-memory store (`MemoryStore`).

See `infoplane.store` for the API and the on-disk `ZarrStore`.
"""
from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from .._core.types import ArrayLike, json_safe
from .._core.validation import check_activations, check_int_param, check_labels

__all__ = ["BaseStore", "MemoryStore", "LayerKind", "GAUSSIAN_PARTS", "FORMAT", "FORMAT_VERSION", "listing"]

LayerKind = Literal["deterministic", "gaussian"]
GAUSSIAN_PARTS = ("mu", "log_var")
FORMAT = "infoplane.store"
#: 2: arrays carry a crc32c codec per chunk and a checksum of their content (with their epoch and name).
FORMAT_VERSION = 2

def _package_version() -> str:
    """infoplane's installed version (package metadata); "unknown" when run from an uninstalled tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("infoplane")
    except PackageNotFoundError:  # pragma: no cover - an uninstalled source tree
        return "unknown"


def listing(items) -> str:
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
            store_format=f"{FORMAT} v{FORMAT_VERSION}",
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
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral):
            raise TypeError(f"The 'epoch' parameter of activations must be an int. Got {epoch!r} instead.")
        if epoch not in self._epochs:
            self.refresh()
        if epoch not in self._epochs:
            raise KeyError(f"epoch {epoch!r} is not in the store; stored epochs: {listing(self._epochs)}.")
        if info["kind"] == "gaussian":
            part = "mu" if part is None else part
            if part not in GAUSSIAN_PARTS:
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
        if out.dtype != np.float32:  # float16 storage (a recorder's dtype="float16"): handed out as float32
            out = out.astype(np.float32)
        out.flags.writeable = False
        return out

    def refresh(self) -> None:
        """Re-read what a live writer committed (a no-op for stores this process writes)."""

    def _info(self, layer: str) -> dict[str, Any]:
        try:
            return self._layer_info[layer]
        except (KeyError, TypeError):
            raise KeyError(f"layer {layer!r} is not in the store; stored layers: {listing(self.layers)}.") from None

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

    def set_labels(self, labels: ArrayLike) -> None:
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
            if set(value) != set(GAUSSIAN_PARTS):
                raise ValueError(
                    f"a Gaussian layer's value must be {{'mu': array, 'log_var': array}}; layer {layer!r} at "
                    f"epoch {epoch} has keys {sorted(map(str, value))}."
                )
            parts = {p: self._as_float32(value[p], f"{layer}.{p}", epoch) for p in GAUSSIAN_PARTS}
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
