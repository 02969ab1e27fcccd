"""Where recorded activations live: in memory (`MemoryStore`) or crash-safe on disk with zarr (`ZarrStore`).

`BaseStore` is the API both offer (``epochs``, ``layers``, ``metadata``, ``labels``, ``load``, ``write``);
`open_store(path, mode)` opens an existing on-disk store; `StoreLockedError` is raised when another live
process holds a store's single-writer lock. See `ZarrStore` for the on-disk promises.
"""
from __future__ import annotations

from ._base import BaseStore, MemoryStore
from ._lock import StoreLockedError
from ._zarr import ZarrStore, open_store

__all__ = ["BaseStore", "MemoryStore", "ZarrStore", "open_store", "StoreLockedError"]
