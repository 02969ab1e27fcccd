"""What the Lightning and Hugging Face callbacks share: set up, record, estimate, log, checkpoint state."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from .._core.validation import param_error
from ..store import BaseStore
from ._logging import log_to
from .distributed import DistributedRecorder

__all__ = ["RecordingCore", "CallbackResults"]


class RecordingCore:
    """Arguments checked at construction; the recorder built on the model at ``start`` (trainer setup)."""

    def __init__(
        self,
        owner: str,
        *,
        layers: Any,
        probe: Any,
        labels: Any,
        schedule: Any,
        store: BaseStore | str | os.PathLike | None,
        estimators: Any,
        distributed: str,
        batch_size: int,
        figure: bool,
    ) -> None:
        if layers is None or (isinstance(layers, (list, tuple)) and not layers):
            raise param_error(owner, "layers", "a name, glob, type, Layer or a non-empty list of them", layers)
        if probe is None:
            raise param_error(owner, "probe", "an array, tensor, tuple or dict of them", probe)
        if distributed not in ("rank0", "gather"):
            raise param_error(owner, "distributed", "one of 'rank0', 'gather'", distributed)
        if store is not None and not isinstance(store, (str, os.PathLike, BaseStore)):
            raise TypeError(f"{owner}: store must be None, a path or a MemoryStore/ZarrStore. Got {type(store).__name__}.")
        if estimators is not None:
            from ..estimators.presets import resolve_estimators

            resolve_estimators(estimators)  # a bad estimator fails here, not after the first epoch
        self.owner = owner
        self.layers, self.probe, self.labels, self.schedule = layers, probe, labels, schedule
        self.store_arg = store
        self.estimators = estimators
        self.distributed = distributed
        self.batch_size = batch_size
        self.figure = bool(figure)
        self.recorder: DistributedRecorder | None = None
        self.results: pd.DataFrame | None = None  # rank 0: the estimated plane so far (when estimators)
        self._restored: dict[str, Any] | None = None
        self._closed_store: BaseStore | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, model: nn.Module) -> DistributedRecorder:
        """Build the recorder on ``model`` (checks the layers now: a missing one lists the model's names)."""
        if self.recorder is not None and self.recorder.model is model:
            return self.recorder
        self.close()
        self.recorder = DistributedRecorder(
            model, self.layers, self.probe, labels=self.labels, schedule=self.schedule, store=self.store_arg,
            mode=self.distributed, batch_size=self.batch_size,
        )
        self._check_restored()
        return self.recorder

    def close(self) -> None:
        """Release the store (its writer lock); it stays readable as `store`, and a new `start` resumes it."""
        if self.recorder is not None:
            self.recorder.close()
            self._closed_store = self.recorder.store
            self.recorder = None

    @property
    def store(self) -> BaseStore | None:
        """The store written (rank 0; None elsewhere and before setup); after ``close``, read-only."""
        return self._closed_store if self.recorder is None else self.recorder.store

    def step(self, epoch: int, logger: Any = None) -> bool:
        """Record ``epoch`` if scheduled; on rank 0 with estimators and a logger, estimate and log it."""
        if self.recorder is None:
            raise RuntimeError(f"{self.owner}: step before setup; the trainer calls setup first.")
        recorded = self.recorder.step(epoch)
        if recorded and self.recorder.is_writer and self.estimators is not None and logger is not None:
            self._estimate_and_log(epoch, logger)
        return recorded

    def _estimate_and_log(self, epoch: int, logger: Any) -> None:
        from ..analysis import information_plane

        store = self.recorder.store
        have = set() if self.results is None else set(self.results["epoch"].astype(int))
        missing = [e for e in store.epochs if e not in have and e <= epoch]  # after a resume: earlier epochs
        new = information_plane(store, estimators=self.estimators, epochs=missing, progress=False)
        self.results = new if self.results is None else pd.concat([self.results, new], ignore_index=True)
        self.results = self.results.sort_values(["epoch"], kind="stable").reset_index(drop=True)
        self.results.attrs = new.attrs
        log_to(logger, self.results, epochs=[epoch], figure=self.figure)

    # ------------------------------------------------------------------ checkpoint state
    def _store_path(self) -> str | None:
        if isinstance(self.store_arg, (str, os.PathLike)):
            return str(Path(self.store_arg).resolve())
        path = getattr(self.store_arg, "path", None)
        return None if path is None else str(Path(path).resolve())

    def state_dict(self) -> dict[str, Any]:
        recorded = [] if self.recorder is None else list(self.recorder.recorded)
        if self.recorder is not None and self.recorder.is_writer:
            recorded = list(self.recorder.store.epochs)
        return {"store": self._store_path(), "epochs": recorded, "layers": None if self.recorder is None
                else self.recorder.layers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = dict(state)
        self._check_restored()

    def _check_restored(self) -> None:
        state = self._restored
        if state is None or self.recorder is None:
            return
        if state.get("layers") not in (None, self.recorder.layers):
            raise ValueError(
                f"{self.owner}: the checkpoint recorded layers {state['layers']}, this callback {self.recorder.layers}."
            )
        store = self.recorder.store
        if store is not None:
            lost = [e for e in state.get("epochs", []) if e not in store.epochs]
            if lost:
                raise ValueError(
                    f"{self.owner}: the checkpoint says epochs {lost} were recorded, but the store "
                    f"{self._store_path()!r} does not hold them (the checkpoint wrote {state.get('store')!r}); "
                    "resume with the store of that run to continue its trajectory."
                )


class CallbackResults:
    """``store`` and ``results`` of a callback that holds a `RecordingCore` as ``self.core``."""

    core: RecordingCore

    @property
    def store(self) -> BaseStore | None:
        """The store written (rank 0, once the trainer has set the callback up; read-only after training)."""
        return self.core.store

    @property
    def results(self) -> pd.DataFrame | None:
        """The estimated plane so far (rank 0, with ``estimators``): a tidy DataFrame, in bits."""
        return self.core.results
