"""The estimation engine behind `information_plane`: sources -> tasks -> rows -> table.

One `Task` is one (run, epoch, layer); every estimator runs on its array, loaded once. The steps, each a
small function so new columns have one place to go:

1. `open_sources` / `plan` — the stores, and the tasks with their labels (checked in the caller, not in a
   worker), the layer order and the Gaussian estimators skipped on deterministic layers;
2. `estimate_task` — the rows of one task, a dict per estimator (`result_row` turns an `MIResult` into one);
3. `run_tasks` — the tasks in batches, serial or with joblib (a task carries its arrays, or the path of a
   zarr store its worker opens itself, never a whole store);
4. `assemble` — the rows as a typed, sorted DataFrame with its attrs (post-processing of the whole table
   goes here).
"""
from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._core import parallel as _parallel
from .._core.tables import sort_rows
from .._core.types import MIResult, json_safe
from .._core.validation import check_input_ids, check_labels
from . import _diagnostics, _noisy
from ._geometry import geometric_compression

__all__ = ["RESULT_COLUMNS", "Task", "Options", "open_sources", "plan", "estimate_task", "run_tasks", "assemble"]

#: The columns every results table has, in this order.
RESULT_COLUMNS = ["run", "epoch", "layer", "estimator", "I_XT", "I_TY", "bound_XT", "bound_TY", "n_samples"]

_DTYPES = {"epoch": "int64", "I_XT": "float64", "I_TY": "float64", "n_samples": "int64", "I_TY_shuffled": "float64",
           "geo_compression": "float64"}


@dataclass(frozen=True)
class Options:
    """What each task computes beside the estimates: a new per-row column is a field here and a step in
    `estimate_task`, its name in `columns`.

    ``shuffle``: permutations of the shuffle baseline (``I_TY_shuffled``; 0 = none); ``resampling``: the
    bootstrap / subsample columns of `infoplane.analysis`; ``geometry``: ``geo_compression``.
    """

    shuffle: int = 0
    resampling: _diagnostics.Resampling | None = None
    geometry: bool = False
    stderr: bool = False

    def columns(self) -> list[str]:
        """The extra columns, in table order."""
        out = list(_noisy.SE_COLUMNS) if self.stderr else []
        out += ["I_TY_shuffled"] if self.shuffle else []
        out += self.resampling.columns() if self.resampling is not None else []
        return out + (["geo_compression"] if self.geometry else [])


@dataclass(frozen=True)
class Task:
    """One (run, epoch, layer) to estimate, with its labels and where its activations are.

    Exactly one of: ``store``, in this process, read when the task runs (so only one (epoch, layer) is in
    memory at a time); ``t`` (and ``log_var`` for a Gaussian layer whose estimators need it) shipped with the
    task to a worker; or ``path``, a zarr store the worker opens (read-only) itself.
    """

    run: str
    epoch: int
    layer: str
    kind: str  # the store's layer kind: "deterministic" or "gaussian"
    y: np.ndarray
    t: Any = None
    log_var: Any = None
    path: str | None = None
    store: Any = None
    noise: Any = None  # a noisy layer's {"spec", "draws", "seed"} (`infoplane.analysis._noisy`)


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------
def _is_store(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("epochs", "layers", "activations", "layer_kind"))


def _as_store(source: Any, where: str) -> tuple[Any, bool]:
    """(store, opened_here) from a Recorder, a store, or a path to a zarr store."""
    if isinstance(source, (str, os.PathLike)):
        if not Path(source).exists():
            raise FileNotFoundError(f"{where}: no store at {str(source)!r}.")
        from ..store import open_store

        return open_store(source, mode="r"), True
    inner = getattr(source, "store", None)
    if inner is not None and _is_store(inner) and not _is_store(source):
        return inner, False
    if _is_store(source):
        return source, False
    raise TypeError(
        f"{where} must be a Recorder, a store (MemoryStore/ZarrStore) or a path to a zarr store. "
        f"Got {type(source).__name__}."
    )


def _runs(source: Any) -> dict[str, Any]:
    """{run name: source}: a dict as given, a list named "0", "1", ..., one source as run "0"."""
    if isinstance(source, Mapping):
        if not source:
            raise ValueError("source must hold at least one run. Got an empty dict.")
        return {str(k): v for k, v in source.items()}
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("source must hold at least one run. Got an empty list.")
        return {str(i): s for i, s in enumerate(source)}
    return {"0": source}


def open_sources(source: Any) -> tuple[dict[str, Any], list[Any]]:
    """({run: store}, the stores opened here, which the caller closes) from `information_plane`'s source."""
    sources = _runs(source)
    stores, opened_here = {}, []
    try:
        for run, src in sources.items():
            store, opened = _as_store(src, "source" if len(sources) == 1 else f"source[{run!r}]")
            stores[run] = store
            if opened:
                opened_here.append(store)
    except BaseException:
        close_all(opened_here)
        raise
    return stores, opened_here


def close_all(stores: Any) -> None:
    for store in stores:
        close = getattr(store, "close", None)
        if callable(close):
            close()


def _store_path(store: Any) -> str | None:
    """The on-disk location of a zarr-backed store, so workers can open it themselves; None for memory."""
    path = getattr(store, "path", None)
    if isinstance(path, (str, os.PathLike)) and Path(path).exists():
        return os.fspath(path)
    return None


def _epoch(value: Any) -> int:
    """An epoch as int; 1.7 or "1" are refused (never truncated)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"The 'epochs' parameter of information_plane must hold ints. Got {value!r} instead.")
    return int(value)


def _select(requested: Any, available: list, what: str, run: str, cast: Callable[[Any], Any]) -> list:
    if requested is None:
        return list(available)
    if isinstance(requested, (str, numbers.Number)):
        requested = [requested]
    requested = [cast(r) for r in requested]
    missing = [r for r in requested if r not in available]
    if missing:
        raise KeyError(
            f"{what} {missing} not recorded in run {run!r}; recorded {what}: {list(available)}."
        )
    if not requested:
        raise ValueError(f"{what} must select at least one entry. Got an empty selection.")
    return requested


# --------------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------------
def _run_labels(store: Any, run: str, labels: Any, x: Any, first: tuple[int, str]) -> np.ndarray:
    """The checked labels of one run (given, else the store's); ``x`` checked against the same rows."""
    y_src = labels if labels is not None else getattr(store, "labels", None)
    if y_src is None:
        raise ValueError(
            f"labels are needed for I(T;Y): pass labels=..., or record them with Recorder(..., labels=y). "
            f"Run {run!r} has no stored labels."
        )
    n_rows = getattr(store, "n_probe", None)
    if not isinstance(n_rows, (int, np.integer)):
        n_rows = int(store.activations(*first).shape[0])
    y = check_labels(y_src, n_rows, name="labels" if labels is not None else f"stored labels of run {run!r}")
    check_input_ids(x, n_rows)  # fail early, in the caller, not inside a worker
    return y


def plan(
    stores: Mapping[str, Any], labels: Any, estimators: Mapping[str, Any], layers: Any, epochs: Any, x: Any
) -> tuple[list[tuple[Any, Task]], list[str], dict[str, list[str]]]:
    """([(store, task)], layer order, {label: layers skipped}) for every selected (run, epoch, layer).

    A Gaussian estimator (``input_kind="gaussian"``) has nothing to say about a deterministic layer: such
    pairs are listed as skipped, and a deterministic layer with only Gaussian estimators gets no task.
    """
    gaussian = [label for label, est in estimators.items() if est.input_kind == "gaussian"]
    has_det = len(gaussian) < len(estimators)
    tasks: list[tuple[Any, Task]] = []
    layer_order: list[str] = []
    skipped: dict[str, list[str]] = {label: [] for label in gaussian}
    for run, store in stores.items():
        run_layers = _select(layers, list(store.layers), "layers", run, str)
        run_epochs = _select(epochs, [int(e) for e in store.epochs], "epochs", run, _epoch)
        if not run_layers or not run_epochs:
            raise ValueError(f"run {run!r} has nothing recorded (layers {run_layers}, epochs {run_epochs}).")
        y = _run_labels(store, run, labels, x, (run_epochs[0], run_layers[0]))
        noise = _noisy.store_noise(store)
        for layer in run_layers:
            if layer not in layer_order:
                layer_order.append(layer)
            kind = store.layer_kind(layer)
            idle = [label for label, est in estimators.items() if not _noisy.applies(est, noise.get(layer))]
            if kind != "gaussian":
                idle += [label for label in gaussian if label not in idle]
            for label in idle:
                if layer not in skipped.setdefault(label, []):
                    skipped[label].append(layer)
            if len(idle) == len(estimators) or (kind != "gaussian" and not has_det):
                continue
            tasks.extend((store, Task(run, int(epoch), layer, kind, y, noise=noise.get(layer)))
                         for epoch in run_epochs)
    if not tasks and any(_noisy.uses_noise(e) for e in estimators.values()):
        raise ValueError(
            f"Nothing to compute: the noisy estimator needs noisy layers (Layer(name, noise=...)) and the "
            f"selected layers {layer_order} have none recorded. Record with noise, or choose another estimator "
            "(e.g. 'binning')."
        )
    if not tasks:
        raise ValueError(
            "Nothing to compute: every estimator needs Gaussian layers (input_kind='gaussian') and the "
            f"selected layers {layer_order} are all deterministic. Add a deterministic estimator "
            "(e.g. 'binning') or record a Gaussian layer."
        )
    return tasks, layer_order, {k: v for k, v in skipped.items() if v}


# --------------------------------------------------------------------------------------------------
# Estimation
# --------------------------------------------------------------------------------------------------
def _needs_log_var(task: Task, estimators: Mapping[str, Any]) -> bool:
    return task.kind == "gaussian" and any(e.input_kind == "gaussian" for e in estimators.values())


def _load(store: Any, task: Task, need_log_var: bool) -> tuple[Any, Any]:
    t = store.activations(task.epoch, task.layer)
    log_var = store.activations(task.epoch, task.layer, part="log_var") if need_log_var else None
    return t, log_var


def _checked_i_xt(res: Any, label: str) -> float:
    """I_XT as float; NaN only from an estimator that says why (``conventions["I_XT_note"]``)."""
    value = float(res.I_XT)
    if np.isnan(value) and not res.conventions.get("I_XT_note"):
        raise ValueError(
            f"estimator {label!r} returned I_XT = NaN without a reason (conventions['I_XT_note']); "
            "only estimators that report I(T;Y) alone may leave I(T;X) empty."
        )
    return value


def result_row(task: Task, label: str, res: MIResult) -> dict[str, Any]:
    """The table row of one estimator's result on one task (the `RESULT_COLUMNS`)."""
    return {
        "run": task.run, "epoch": task.epoch, "layer": task.layer, "estimator": label,
        "I_XT": _checked_i_xt(res, label), "I_TY": float(res.I_TY),
        "bound_XT": str(res.bound_XT), "bound_TY": str(res.bound_TY),
        "n_samples": int(res.n_samples),
    }


def estimate_task(
    task: Task, t: Any, log_var: Any, estimators: Mapping[str, Any], x: Any, options: Options = Options()
) -> list[dict[str, Any]]:
    """The rows of one task: every estimator on activations ``t`` (and ``log_var``), one dict each.

    Beside the `RESULT_COLUMNS`, the columns ``options`` asks for (`Options.columns`).
    """
    from ..estimators.kde import shared_kde_results

    draws_t = t
    if task.noise:  # a noisy layer: its draws for a noisy estimator, its first draw for every other
        t = _noisy.first_draw(t, task.noise)
    # KDE bounds of one noise variance share one pass over the pairs.
    shared = shared_kde_results(estimators, t, task.y, x, layer=task.layer, epoch=task.epoch)
    geo = geometric_compression(t, task.y, layer=task.layer, epoch=task.epoch) if options.geometry else None
    rows = []
    for label, est in estimators.items():
        kwargs: dict[str, Any] = {"layer": task.layer, "epoch": task.epoch}
        if est.input_kind == "gaussian":
            if task.kind != "gaussian":
                continue  # documented: a Gaussian estimator has nothing to say about a deterministic layer
            kwargs["log_var"] = log_var
        if not _noisy.applies(est, task.noise):
            continue  # a noisy estimator without a spec has nothing to say about a layer without noise
        if task.noise and _noisy.uses_noise(est):
            rows.append(_noisy_row(task, label, est, draws_t, x, kwargs, options, geo))
            continue
        res = shared[label] if label in shared else est.estimate(t, task.y, x, **kwargs)
        row = result_row(task, label, res)
        if options.stderr:
            row.update(_noisy.se_values(res))
        if options.shuffle:
            # The same permutations for every task (seed 0): the baseline is comparable across the table.
            base = est.shuffle_baseline(t, task.y, x, n_permutations=options.shuffle, seed=0, **kwargs)
            row["I_TY_shuffled"] = float(base.I_TY)
        if options.resampling is not None:
            where = (task.run, task.epoch, task.layer)
            row.update(_diagnostics.resampled_columns(est, t, task.y, x, kwargs, options.resampling, where))
        if options.geometry:
            row["geo_compression"] = geo
        rows.append(row)
    return rows


def _noisy_row(task: Task, label: str, est: Any, t: Any, x: Any, kwargs: dict, options: Options,
               geo: Any) -> dict[str, Any]:
    """The row of a noise-taking estimator on a noisy layer: the N·m draws; no shuffle or resampling (they
    permute rows, which would break the draws of one input apart), so those columns are NaN."""
    t_est, y_est, x_est = _noisy.noisy_view(est, t, task.y, x, task.noise, kwargs)
    res = est.estimate(t_est, y_est, x_est, **kwargs)
    row = result_row(task, label, res)
    row.update({c: np.nan for c in options.columns()})
    if options.stderr:
        row.update(_noisy.se_values(res))
    if options.geometry:
        row["geo_compression"] = geo
    return row


def _estimate_batch(
    batch: list[Task], estimators: Mapping[str, Any], x: Any, options: Options
) -> tuple[int, list[dict]]:
    """Estimate every task of ``batch`` (in a worker or in process); opens each zarr path once."""
    opened: dict[str, Any] = {}
    rows: list[dict] = []
    try:
        for task in batch:
            if task.path is not None:
                if task.path not in opened:
                    from ..store import open_store

                    opened[task.path] = open_store(task.path, mode="r")
                t, log_var = _load(opened[task.path], task, _needs_log_var(task, estimators))
            elif task.store is not None:  # in this process: read this one (epoch, layer) now, not before
                t, log_var = _load(task.store, task, _needs_log_var(task, estimators))
            else:
                t, log_var = task.t, task.log_var
            rows.extend(estimate_task(task, t, log_var, estimators, x, options))
    finally:
        close_all(opened.values())
    return len(batch), rows


def run_tasks(
    tasks: list[tuple[Any, Task]],
    estimators: Mapping[str, Any],
    x: Any,
    options: Options = Options(),
    *,
    n_jobs: int | None = None,
    backend: str | None = None,
    progress: bool = True,
) -> list[dict]:
    """The rows of every task, in batches over joblib workers (serial for one worker)."""
    with _parallel.backend_context(backend, n_jobs):
        workers = _parallel.n_workers(n_jobs)
        in_process = workers == 1 and not _parallel.is_dask_backend()
        # Arrays shipped to workers (stores without a path) travel one task per batch, so a worker holds one
        # (epoch, layer) at a time; in this process a task carries its store and reads when it runs.
        ships = not in_process and any(_store_path(store) is None for store, _ in tasks)
        chunks = _parallel.split_batches(tasks, workers, per_worker=len(tasks) if ships else 4)

        def with_data(store: Any, task: Task) -> Task:
            if in_process:
                return replace(task, store=store)
            path = _store_path(store)
            if path is not None:
                return replace(task, path=path)
            t, log_var = _load(store, task, _needs_log_var(task, estimators))
            return replace(task, t=t, log_var=log_var)

        def batches() -> Iterator[tuple]:
            # Lazily, so a MemoryStore's arrays are copied into only the few batches joblib holds at once.
            for chunk in chunks:
                yield [with_data(store, task) for store, task in chunk], estimators, x, options

        return _parallel.run_batches(
            _estimate_batch, batches(), n_tasks=len(tasks), n_jobs=n_jobs, workers=workers,
            progress=progress, desc="information plane",
        )


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------
def frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """Rows as a DataFrame with these columns, the table's dtypes."""
    df = pd.DataFrame(rows, columns=columns)
    return df.astype({c: t for c, t in _DTYPES.items() if c in df.columns})


def assemble(
    rows: list[dict],
    columns: list[str],
    estimators: Mapping[str, Any],
    runs: list[str],
    layer_order: list[str],
    skipped: Mapping[str, list[str]],
) -> pd.DataFrame:
    """The results table (``columns``): rows typed and sorted (run, epoch, layer, estimator), conventions in ``attrs``."""
    df = frame(rows, columns)
    df = sort_rows(df, {"run": runs, "layer": layer_order, "estimator": list(estimators)})
    df.attrs = json_safe(
        {
            "conventions": {label: est.conventions() for label, est in estimators.items()},
            "layers": layer_order,
            "estimators": list(estimators),
            "runs": runs,
            "skipped": dict(skipped),
            "units": "bits",
        }
    )
    return df
