"""The files of an on-disk store: what belongs to it, the strict manifest check, safe removal, checksums.

Nothing here trusts a name read from disk: layer keys and epoch numbers from the manifest must match strict
patterns before they become paths, every directory a store reads or deletes is checked not to be a symbolic
link, and a directory is only ever deleted from when a valid infoplane manifest (or the infoplane marker of a
store being created) proves it is ours.
"""
from __future__ import annotations

import json
import numbers
import os
import re
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .._core.files import atomic_write, fsync_path
from ._base import FORMAT, FORMAT_VERSION, GAUSSIAN_PARTS

__all__ = [
    "MANIFEST", "LOCK", "ROOT_GROUP", "KEY_PATTERN", "parse_manifest", "classify", "wipe", "write_marked_group",
    "remove_temporaries", "refuse_links", "checksum", "EPOCH_DIR", "array_name", "is_marked_root",
]

MANIFEST = "manifest.json"
LOCK = "infoplane.lock"
ROOT_GROUP = "zarr.json"
#: A layer's array name in the store: ``l`` and at least three digits.
KEY_PATTERN = re.compile(r"^l\d{3,9}$")
EPOCH_DIR = re.compile(r"^e(\d{6,})$")
#: Temporary files of `infoplane._core.files.atomic_write` (and of infoplane <= 0.1's manifest commit).
_TEMPORARY = re.compile(r"^\.(manifest|zarr)\.json\.\d+(\.[0-9a-f]+)?\.tmp$")
#: Marks a zarr group as an infoplane store root, written before anything else when a store is created.
_MARK = {"infoplane": FORMAT}
_OURS = {MANIFEST, LOCK, ROOT_GROUP, "epochs", "labels"}
_KINDS = ("deterministic", "gaussian")


# --------------------------------------------------------------------------------------------------
# The manifest
# --------------------------------------------------------------------------------------------------
def _bad(where: str, field: str, expected: str, got: Any) -> ValueError:
    shown = repr(got)
    shown = shown if len(shown) <= 200 else shown[:200] + "..."
    return ValueError(f"the store manifest {where} is malformed: {field!r} must be {expected}. Got {shown}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_epochs(epochs: Any, where: str) -> list[int]:
    ok = isinstance(epochs, list) and all(_is_int(e) and e >= 0 for e in epochs)
    if not ok or len(set(epochs)) != len(epochs):
        raise _bad(where, "epochs", "a list of distinct ints >= 0", epochs)
    return sorted(int(e) for e in epochs)


def _check_layer(name: Any, info: Any, where: str) -> dict[str, Any]:
    if not isinstance(name, str) or not name:
        raise _bad(where, "layers", "a mapping from non-empty layer names", name)
    if not isinstance(info, dict):
        raise _bad(where, f"layers.{name}", "a JSON object {kind, shape, key}", info)
    kind, shape, key = info.get("kind"), info.get("shape"), info.get("key")
    if kind not in _KINDS:
        raise _bad(where, f"layers.{name}.kind", "'deterministic' or 'gaussian'", kind)
    if not (isinstance(shape, list) and len(shape) == 2 and all(_is_int(s) and s >= 1 for s in shape)):
        raise _bad(where, f"layers.{name}.shape", "a list of two ints >= 1 (rows, units)", shape)
    if not (isinstance(key, str) and KEY_PATTERN.match(key)):
        raise _bad(where, f"layers.{name}.key", f"an array name matching {KEY_PATTERN.pattern}", key)
    dtype = info.get("dtype", "float32")  # absent in stores written before float16 layers existed
    if dtype not in ("float32", "float16"):
        raise _bad(where, f"layers.{name}.dtype", "'float32' or 'float16'", dtype)
    return {"kind": kind, "shape": [int(s) for s in shape], "key": key, "dtype": dtype}


def parse_manifest(raw: bytes, where: str) -> dict[str, Any]:
    """Parse and validate a manifest; every field is checked before anything uses it.

    Returns ``{"version", "epochs", "layers", "metadata", "has_labels"}``; raises ValueError naming the field.
    """
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the store manifest {where} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{where} is not an infoplane store manifest.")
    version = manifest.get("format_version", 1)
    if not _is_int(version) or version < 1:
        raise _bad(where, "format_version", "an int >= 1", version)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"the store manifest {where} has format version {version}; this infoplane reads up to "
            f"{FORMAT_VERSION}. Upgrade infoplane."
        )
    layers = manifest.get("layers")
    if not isinstance(layers, dict):
        raise _bad(where, "layers", "a JSON object {layer: {kind, shape, key}}", layers)
    layer_info = {name: _check_layer(name, info, where) for name, info in layers.items()}
    keys = [info["key"] for info in layer_info.values()]
    if len(set(keys)) != len(keys):
        raise _bad(where, "layers", "layers with distinct keys", keys)
    if len({info["shape"][0] for info in layer_info.values()}) > 1:
        raise _bad(where, "layers", "layers with one row count", {k: v["shape"] for k, v in layer_info.items()})
    metadata = manifest.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _bad(where, "metadata", "a JSON object", metadata)
    has_labels = manifest.get("has_labels", False)
    if not isinstance(has_labels, bool):
        raise _bad(where, "has_labels", "true or false", has_labels)
    order = manifest.get("layer_order", list(layer_info))
    if isinstance(order, list) and sorted(map(str, order)) == sorted(layer_info) and len(order) == len(layer_info):
        layer_info = {name: layer_info[name] for name in order}
    return {
        "version": int(version), "epochs": _check_epochs(manifest.get("epochs"), where), "layers": layer_info,
        "metadata": metadata, "has_labels": has_labels,
    }


# --------------------------------------------------------------------------------------------------
# What a directory is
# --------------------------------------------------------------------------------------------------
def is_marked_root(root: Path) -> bool:
    """Whether ``root``'s group is marked as an infoplane store (written by every store of format version 2)."""
    return _is_marked_group(root / ROOT_GROUP)


def _is_marked_group(path: Path) -> bool:
    try:
        group = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(group, dict) and (group.get("attributes") or {}).get("infoplane") == FORMAT


def _is_ours(name: str) -> bool:
    return name in _OURS or bool(_TEMPORARY.match(name))


def classify(path: Path) -> tuple[str, list[str]]:
    """What ``path`` is, without changing anything: ``(state, foreign)``.

    ``state``: ``"absent"``; ``"empty"`` (an empty directory, or one holding only a lock file or temporary
    files of ours); ``"partial"`` (a store whose creation or overwrite was interrupted: no manifest, every
    entry ours, and the infoplane marker in its root group); ``"store"`` (a valid infoplane manifest).
    ``foreign`` lists the top-level entries that are not a store's. Raises FileExistsError for a path that
    is not a directory, or a directory that is neither empty nor a store (naming why).
    """
    if not path.exists() and not path.is_symlink():
        return "absent", []
    if not path.is_dir():
        raise FileExistsError(f"{str(path)!r} exists and is not a directory; choose a new path for the store.")
    names = sorted(os.listdir(path))
    foreign = [n for n in names if not _is_ours(n)]
    if MANIFEST in names:
        try:
            head = json.loads((path / MANIFEST).read_bytes())
        except (OSError, ValueError):
            head = None
        if isinstance(head, dict) and head.get("format") == FORMAT:
            return "store", foreign
        raise FileExistsError(
            f"{str(path)!r} exists and is not an infoplane store: its {MANIFEST} is not an infoplane manifest. "
            "Nothing was changed; choose a new path."
        )
    if not foreign and set(names) <= {LOCK} | {n for n in names if _TEMPORARY.match(n)}:
        return "empty", []
    if not foreign and _is_marked_group(path / ROOT_GROUP):
        return "partial", []
    raise FileExistsError(
        f"{str(path)!r} exists and is not an infoplane store (no {MANIFEST}; it holds "
        f"{', '.join(repr(n) for n in names[:10])}{', ...' if len(names) > 10 else ''}). Nothing was changed; "
        "choose a new path."
    )


def refuse_links(root: Path, *relative: str) -> None:
    """Raise if ``root/relative[0]/...`` passes through a symbolic link (below ``root``)."""
    current = root
    for part in relative:
        current = current / part
        if current.is_symlink():
            raise ValueError(
                f"{str(current)!r} in the store is a symbolic link; infoplane never follows a link out of a "
                "store (it would read or delete files elsewhere). Replace it by a real directory."
            )


def write_marked_group(directory: Path, *, marked: bool, durable: bool) -> None:
    """Write a zarr v3 group's ``zarr.json`` atomically (marked as an infoplane store root if ``marked``)."""
    directory.mkdir(exist_ok=True)
    group = {"zarr_format": 3, "node_type": "group", "attributes": dict(_MARK) if marked else {}}
    atomic_write(directory / ROOT_GROUP, json.dumps(group, indent=1).encode(), durable=durable)


def remove_temporaries(root: Path) -> None:
    """Delete temporary files left by a writer that was killed mid-commit."""
    for name in os.listdir(root):
        if _TEMPORARY.match(name):
            (root / name).unlink(missing_ok=True)


def wipe(root: Path, *, durable: bool) -> None:
    """Delete a store's contents (not its lock), in an order that a kill at any point leaves recognisable.

    The marker goes in first and the manifest out next, so an interrupted wipe is a ``"partial"`` store that
    the next writer completes. Only names of a store are touched; symbolic links are refused.
    """
    write_marked_group(root, marked=True, durable=durable)
    (root / MANIFEST).unlink(missing_ok=True)
    if durable:
        fsync_path(root, directory=True)
    for name in ("epochs", "labels"):
        refuse_links(root, name)
        if (root / name).is_dir():
            shutil.rmtree(root / name)
        else:
            (root / name).unlink(missing_ok=True)
    remove_temporaries(root)


def checksum(data: np.ndarray) -> int:
    """CRC-32 of an array's bytes (C order), recorded with each array and checked on every read."""
    return zlib.crc32(memoryview(np.ascontiguousarray(data)).cast("B"))


def array_name(key: str, part: str | None) -> str:
    """The directory name of a layer's array (``l003``, ``l003.mu``, ``l003.log_var``)."""
    if part is not None and part not in GAUSSIAN_PARTS:  # pragma: no cover - callers check
        raise ValueError(f"unknown part {part!r}")
    return key if part is None else f"{key}.{part}"
