"""Recording under ``torch.distributed`` (DDP) with one writer per store.

A store has one writer (its lock file), so under ``torch.distributed`` only rank 0 writes. Two ways to get
there, both into one store on rank 0:

* ``mode="rank0"`` (the default): rank 0 runs the whole probe set through its copy of the model; the other
  ranks do nothing at all (no collective, no hook), so they never wait on rank 0.
* ``mode="gather"``: every rank runs its contiguous shard of the probe rows (``numpy.array_split`` order)
  and rank 0 gathers the shards (``torch.distributed.gather_object``) and writes them in the original row
  order. ``step`` is then a collective: every rank must call it with the same epochs.

Before every gathered recording the ranks exchange the epoch they are at and a fingerprint (SHA-256) of the
probe they hold; a rank at another epoch (one that skipped a ``step``) or with another probe is refused with
a ValueError on every rank, naming the rank. Rank 0 checks each gathered shard's layers, kinds and widths
before writing and, on a mismatch, every rank raises naming the rank and the layer; nothing is written.

DDP keeps the replicas' parameters equal after every optimiser step, so both modes record the same
activations (up to float rounding of different batch sizes). A `Recorder` (or anything else) asked to write
a store on a non-zero rank raises RuntimeError.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from .._core.rank import rank_and_world
from .._core.validation import check_int_param, param_error
from ..recording import Recorder, Schedule, record, resolve_layers
from ..store import BaseStore, ZarrStore

__all__ = ["DistributedRecorder", "shard_bounds"]


def shard_bounds(n: int, world_size: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` row ranges of ``n`` probe rows over ``world_size`` ranks (array_split)."""
    edges = np.cumsum([0] + [len(part) for part in np.array_split(np.arange(n), world_size)])
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _rows(probe: Any) -> int:
    parts = list(probe.values()) if isinstance(probe, Mapping) else probe if isinstance(probe, tuple) else [probe]
    if not parts:
        raise ValueError("probe must hold at least one input array. Got an empty container.")
    return len(parts[0])


def _slice(probe: Any, start: int, stop: int) -> Any:
    if isinstance(probe, Mapping):
        return {k: v[start:stop] for k, v in probe.items()}
    if isinstance(probe, tuple):
        return tuple(p[start:stop] for p in probe)
    return probe[start:stop]


def _fingerprint(probe: Any) -> str:
    """SHA-256 of the probe's arrays (shapes, dtypes and bytes), the same on every rank for the same probe."""
    parts = list(probe.items()) if isinstance(probe, Mapping) else list(enumerate(probe if isinstance(probe, tuple) else (probe,)))
    digest = hashlib.sha256()
    for key, part in parts:
        arr = part.detach().cpu().numpy() if isinstance(part, torch.Tensor) else np.asarray(part)
        arr = np.ascontiguousarray(arr)
        digest.update(repr((key, arr.shape, str(arr.dtype))).encode())
        digest.update(memoryview(arr).cast("B") if arr.size else b"")
    return digest.hexdigest()


def _check_headers(headers: list[dict[str, Any]]) -> None:
    """Every rank at rank 0's epoch, with rank 0's probe; else the same ValueError on every rank."""
    first = headers[0]
    for rank, header in enumerate(headers[1:], start=1):
        if (header["epoch"], header["force"]) != (first["epoch"], first["force"]):
            raise ValueError(
                f"DistributedRecorder.step: rank {rank} is at epoch {header['epoch']} (force={header['force']}) "
                f"while rank 0 is at epoch {first['epoch']} (force={first['force']}); every rank must call step "
                "with the same epochs (did one skip a step?). Nothing was recorded."
            )
        if header["probe"] != first["probe"]:
            raise ValueError(
                f"DistributedRecorder.step: rank {rank} holds another probe than rank 0 (SHA-256 fingerprint "
                f"{header['probe'][:12]}... vs {first['probe'][:12]}...); build the recorder with the same probe "
                "on every rank. Nothing was recorded."
            )


def _shape_of(value: Any) -> tuple[str, tuple[int, ...]]:
    if isinstance(value, Mapping):
        return "gaussian", tuple(np.shape(value.get("mu")))
    return "deterministic", tuple(np.shape(value))


def _check_shards(shards: list[dict[str, Any]], layers: list[str]) -> str | None:
    """Why the gathered shards cannot be put together (naming the rank and the layer), or None."""
    ranks = [(r, s) for r, s in enumerate(shards) if s]
    ref_rank, ref = ranks[0]
    for rank, shard in ranks:
        if sorted(shard) != sorted(layers):
            return f"rank {rank} sent layers {sorted(shard)}, expected {sorted(layers)}"
        for layer in layers:
            (kind, shape), (ref_kind, ref_shape) = _shape_of(shard[layer]), _shape_of(ref[layer])
            if kind != ref_kind or len(shape) != 2 or shape[1:] != ref_shape[1:]:
                return (
                    f"rank {rank} recorded layer {layer!r} as {kind} with {shape[-1] if shape else 0} units, but "
                    f"rank {ref_rank} as {ref_kind} with {ref_shape[-1]} units"
                )
    return None


def _concat(shards: list[dict[str, Any]]) -> dict[str, Any]:
    shards = [s for s in shards if s]  # a rank with no rows sends {}
    out: dict[str, Any] = {}
    for layer, first in shards[0].items():
        if isinstance(first, Mapping):
            out[layer] = {p: np.concatenate([s[layer][p] for s in shards]) for p in first}
        else:
            out[layer] = np.concatenate([s[layer] for s in shards])
    return out


class DistributedRecorder:
    """A `Recorder` for data-parallel training: rank 0 alone writes the store (one writer per store).

    Build it on every rank with the same arguments and call `step` on every rank; outside
    ``torch.distributed`` (or with one process) it is a plain `Recorder`.

    Parameters
    ----------
    model : nn.Module
        The model; a ``DistributedDataParallel`` wrapper is unwrapped (the probe pass must not run DDP's
        collectives on one rank only), so layer names are those of ``ddp.module``.
    layers, probe, labels, schedule, batch_size, device, on_existing
        As for `Recorder` (every rank checks ``layers`` at construction, so a missing layer fails everywhere
        before training).
    store : None, path or store
        Rank 0's store. Give the same path on every rank: only rank 0 opens it; the other ranks ignore it.
        A store object opened for writing on a non-zero rank is an error (it already took the lock).
    mode : {"rank0", "gather"}, default "rank0"
        Who runs the probe: rank 0 alone, or every rank its shard, gathered on rank 0 (see the module
        docstring).

    Examples
    --------
    >>> ddp = torch.nn.parallel.DistributedDataParallel(model)
    >>> rec = DistributedRecorder(ddp, layers=["act1", "act2"], probe=X, labels=y, schedule=10,
    ...                           store="run.zarr", mode="gather")
    >>> for epoch in range(101):
    ...     rec.step(epoch)        # on every rank
    ...     train_one_epoch(ddp)
    >>> rec.close()
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Any,
        probe: Any,
        *,
        labels: Any = None,
        schedule: Any = None,
        store: BaseStore | str | os.PathLike | None = None,
        mode: Literal["rank0", "gather"] = "rank0",
        batch_size: int = 1024,
        device: str | torch.device | None = None,
        on_existing: Literal["skip", "raise"] = "skip",
    ) -> None:
        if mode not in ("rank0", "gather"):
            raise param_error("DistributedRecorder", "mode", "one of 'rank0', 'gather'", mode)
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        self.model = model
        self.mode = mode
        self.rank, self.world_size = rank_and_world()
        self.layer_specs = resolve_layers(model, layers)  # on every rank: a missing layer fails everywhere
        self._layers = layers
        self.batch_size = check_int_param(batch_size, "batch_size", "DistributedRecorder", minimum=1)
        self.device = device
        self.on_existing = on_existing
        self.recorder: Recorder | None = None
        if self.rank == 0:
            self.recorder = Recorder(
                model, layers, probe, labels=labels, schedule=schedule, store=store, batch_size=batch_size,
                device=device, on_existing=on_existing,
            )
        elif isinstance(store, ZarrStore) and store.mode != "r":
            raise RuntimeError(
                f"DistributedRecorder: rank {self.rank} of {self.world_size} was given a store opened for "
                "writing; only rank 0 writes. Pass the store's path on every rank (rank 0 opens it)."
            )
        self.recorded: list[int] = []
        self._last_step: int | None = None
        if mode == "gather":
            n = _rows(probe)
            start, stop = shard_bounds(n, self.world_size)[self.rank]
            self._shard = _slice(probe, start, stop) if stop > start else None
            self._probe_sha256 = _fingerprint(probe)
            self.schedule = self._shared(lambda: self.recorder.schedule.to_dict(), Schedule.from_dict)
        else:
            self._shard = None
            self.schedule = self.recorder.schedule if self.recorder is not None else Schedule.coerce(schedule)

    # ------------------------------------------------------------------ collectives
    def _shared(self, on_rank0, convert=lambda v: v):
        """A value computed on rank 0 and broadcast to every rank (as is, outside torch.distributed)."""
        value = [on_rank0() if self.rank == 0 else None]
        if self.world_size > 1:
            torch.distributed.broadcast_object_list(value, src=0)
        return convert(value[0])

    def _all(self, value: Any) -> list[Any]:
        """Every rank's ``value``, on every rank (``all_gather_object``)."""
        if self.world_size == 1:
            return [value]
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, value)
        return out

    def _gather(self, shard: dict[str, Any]) -> list[dict[str, Any]] | None:
        if self.world_size == 1:
            return [shard]
        gathered = [None] * self.world_size if self.rank == 0 else None
        torch.distributed.gather_object(shard, gathered, dst=0)
        return gathered

    # ------------------------------------------------------------------ public API
    @property
    def store(self) -> BaseStore | None:
        """Rank 0's store (None on the other ranks)."""
        return None if self.recorder is None else self.recorder.store

    @property
    def layers(self) -> list[str]:
        """Logical names of the recorded layers."""
        return [layer.name for layer in self.layer_specs]

    @property
    def is_writer(self) -> bool:
        """Whether this process writes the store (rank 0)."""
        return self.recorder is not None

    def due(self, epoch: int) -> bool:
        """Whether the schedule records ``epoch``."""
        return epoch in self.schedule

    def step(self, epoch: int, model: nn.Module | None = None, *, force: bool = False) -> bool:
        """Record ``epoch`` if scheduled; True on the ranks that took part in a recording.

        ``mode="rank0"``: only rank 0 records; the other ranks return False at once. ``mode="gather"``: a
        collective, to be called on every rank with the same ``epoch`` and ``force``.
        """
        if self.mode == "rank0":
            if self.recorder is None:
                return False
            done = self.recorder.step(epoch, None, force=force)
            if done:
                self.recorded.append(epoch)
            return done
        epoch = check_int_param(epoch, "epoch", "DistributedRecorder.step", minimum=0)
        if self._last_step is not None and epoch < self._last_step:
            raise ValueError(
                f"epochs passed to DistributedRecorder.step must not decrease: got {epoch} after {self._last_step}."
            )
        repeated = epoch == self._last_step
        self._last_step = epoch
        if repeated or not (force or epoch in self.schedule):
            return False
        header = {"epoch": epoch, "force": bool(force), "probe": self._probe_sha256,
                  "verdict": self._verdict(epoch) if self.rank == 0 else None}
        headers = self._all(header)
        _check_headers(headers)
        verdict = headers[0]["verdict"]
        if verdict == "raise":
            raise ValueError(f"epoch {epoch} is already in the store (on_existing='raise').")
        if verdict == "skip":
            return False
        shard = {}
        if self._shard is not None:
            shard = record(self.model, self._shard, self._layers, batch_size=self.batch_size, device=self.device)
        gathered = self._gather(shard)
        problem = self._shared(lambda: _check_shards(gathered, self.layers))
        if problem is not None:
            raise ValueError(f"DistributedRecorder.step at epoch {epoch}: {problem}. Nothing was recorded.")
        if self.recorder is not None:
            self.recorder.store.write_epoch(epoch, _concat(gathered))
        self.recorded.append(epoch)
        return True

    def _verdict(self, epoch: int) -> str:
        if epoch not in self.recorder.store:
            return "record"
        return "raise" if self.on_existing == "raise" else "skip"

    def close(self) -> None:
        """Close rank 0's store if it was opened from a path (releases the writer lock)."""
        if self.recorder is not None:
            self.recorder.close()

    def __enter__(self) -> DistributedRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"DistributedRecorder(mode={self.mode!r}, rank={self.rank}, world_size={self.world_size}, "
            f"layers={self.layers!r}, store={self.store!r})"
        )
