"""The estimation engine behind `information_plane`: sources -> tasks -> rows -> table.

One `Task` is one (run, epoch, layer); every estimator runs on its array, loaded once. The steps, each a
small function:

1. `open_sources` / `plan` — the stores (anything satisfying the `Store` protocol of `infoplane._core.types`),
   and the tasks with their labels (checked in the caller, not in a worker), the layer order and the Gaussian
   estimators skipped on deterministic layers;
2. `estimate_task` — the rows of one task, a dict per estimator (`result_row` turns an `MIResult` into one),
   plus the columns of the column providers' ``task_columns`` / ``row_columns`` hooks;
3. `run_tasks` — the tasks in batches, serial or with joblib; each task carries one data source (`TaskData`:
   its store in this process, its arrays, or the path of a zarr store its worker opens), never a whole store
   shipped to a worker;
4. `assemble` — the rows as a typed, sorted DataFrame with its attrs, then each provider's ``table`` hook.

New columns do not go here: they are column providers (`infoplane.analysis._providers`: a `Provider`
subclass appended to ``PROVIDERS``).
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
from .._core.types import ArrayLike, MIResult, Store, TensorLike, json_safe
from .._core.validation import check_input_ids, check_labels
from . import _noisy
from ._providers import ColumnProvider, RowContext, TableContext

__all__ = [
    "RESULT_COLUMNS", "Task", "TaskData", "FromStore", "FromArrays", "FromPath", "open_sources", "plan",
    "estimate_task", "run_tasks", "assemble", "provider_columns",
]

#: The columns every results table has, in this order.
RESULT_COLUMNS = ["run", "epoch", "layer", "estimator", "I_XT", "I_TY", "bound_XT", "bound_TY", "n_samples"]

_DTYPES = {"epoch": "int64", "I_XT": "float64", "I_TY": "float64", "n_samples": "int64"}

#: The column providers of one call, in column order (`infoplane.analysis._providers`).
Providers = tuple[ColumnProvider, ...]


def provider_columns(providers: Providers) -> list[str]:
    """The columns the providers add, in table order; a name given twice, or a result column, is refused."""
    out: list[str] = []
    for provider in providers:
        for col in provider.columns():
            if col in RESULT_COLUMNS or col in out:
                raise ValueError(
                    f"column provider {type(provider).__name__} adds column {col!r}, which the table already has "
                    f"(columns so far: {RESULT_COLUMNS + out})."
                )
            out.append(col)
    return out


# --------------------------------------------------------------------------------------------------
# Where a task's activations are: exactly one data source per task
# --------------------------------------------------------------------------------------------------
class TaskData:
    """Where one task's activations come from; ``load`` returns ``(t, log_var)`` (log_var None unless needed).

    ``opened`` is the worker's cache {path: store} of stores opened for a batch (closed by the caller).
    """

    def load(self, task: Task, need_log_var: bool, opened: dict[str, Any]) -> tuple[Any, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class FromStore(TaskData):
    """A store in this process, read when the task runs (only one (epoch, layer) in memory at a time)."""

    store: Store

    def load(self, task: Task, need_log_var: bool, opened: dict[str, Any]) -> tuple[Any, Any]:
        return _load(self.store, task, need_log_var)


@dataclass(frozen=True)
class FromArrays(TaskData):
    """The arrays themselves, shipped with the task to a worker."""

    t: Any
    log_var: Any = None

    def load(self, task: Task, need_log_var: bool, opened: dict[str, Any]) -> tuple[Any, Any]:
        return self.t, self.log_var


@dataclass(frozen=True)
class FromPath(TaskData):
    """A zarr store on disk that the worker opens (read-only) itself, once per batch."""

    path: str

    def load(self, task: Task, need_log_var: bool, opened: dict[str, Any]) -> tuple[Any, Any]:
        if self.path not in opened:
            from ..store import open_store

            opened[self.path] = open_store(self.path, mode="r")
        return _load(opened[self.path], task, need_log_var)


@dataclass(frozen=True)
class Task:
    """One (run, epoch, layer) to estimate, with its labels and its one data source (`TaskData`).

    ``data`` is None while planning; `run_tasks` sets it (`FromStore` in this process, `FromPath` for a
    zarr store, `FromArrays` otherwise).
    """

    run: str
    epoch: int
    layer: str
    kind: str  # the store's layer kind: "deterministic" or "gaussian"
    y: np.ndarray
    data: TaskData | None = None
    noise: Any = None  # a noisy layer's {"spec", "draws", "seed"} (`infoplane.analysis._noisy`)


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------
def _as_store(source: Any, where: str) -> tuple[Any, bool]:
    """(store, opened_here) from a Recorder, a store, or a path to a zarr store."""
    if isinstance(source, (str, os.PathLike)):
        if not Path(source).exists():
            raise FileNotFoundError(f"{where}: no store at {str(source)!r}.")
        from ..store import open_store

        return open_store(source, mode="r"), True
    inner = getattr(source, "store", None)
    if isinstance(inner, Store) and not isinstance(source, Store):
        return inner, False
    if isinstance(source, Store):
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
    n_rows = int(n_rows)
    y = check_labels(y_src, n_rows, name="labels" if labels is not None else f"stored labels of run {run!r}")
    check_input_ids(x, n_rows)  # fail early, in the caller, not inside a worker
    return y


def plan(
    stores: Mapping[str, Any], labels: ArrayLike, estimators: Mapping[str, Any], layers: Any, epochs: Any, x: ArrayLike
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
    _noisy.check_planned(tasks, estimators, layer_order)
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


def _load(store: Store, task: Task, need_log_var: bool) -> tuple[Any, Any]:
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


def warm_starting(estimators: Mapping[str, Any]) -> bool:
    """Whether any estimator takes warm starts (``supports_warm_start`` and its ``warm_start`` switched on)."""
    return any(getattr(e, "supports_warm_start", False) and getattr(e, "warm_start", False)
               for e in estimators.values())


def _estimate(est: Any, label: str, task: Task, t: Any, x: Any, kwargs: dict, states: dict | None) -> MIResult:
    """One estimate; a warm-starting estimator gets the state of the previous epoch of (run, layer)."""
    if states is None or not (getattr(est, "supports_warm_start", False) and getattr(est, "warm_start", False)):
        return est.estimate(t, task.y, x, **kwargs)
    key = (task.run, task.layer, label)
    res, states[key] = est.estimate_with_state(t, task.y, x, state=states.get(key), **kwargs)
    return res


def estimate_task(
    task: Task, t: TensorLike, log_var: TensorLike, estimators: Mapping[str, Any], x: ArrayLike, providers: Providers = (),
    states: dict | None = None,
) -> list[dict[str, Any]]:
    """The rows of one task: every estimator on activations ``t`` (and ``log_var``), one dict each.

    Beside the `RESULT_COLUMNS`, the columns of the providers' ``task_columns`` (once per task) and
    ``row_columns`` (once per estimator) hooks. ``states``: the warm-start states per (run, layer,
    estimator label), read and updated in place (None: every estimate starts cold).
    """
    from ..estimators.kde import shared_kde_results

    draws_t = t
    if task.noise:  # a noisy layer: its draws for a noisy estimator, its first draw for every other
        t = _noisy.first_draw(t, task.noise)
    # KDE bounds of one noise variance share one pass over the pairs.
    shared = shared_kde_results(estimators, t, task.y, x, layer=task.layer, epoch=task.epoch)
    common: dict[str, Any] = {}
    for provider in providers:
        common.update(provider.task_columns(task, t, log_var))
    rows = []
    for label, est in estimators.items():
        kwargs: dict[str, Any] = {"layer": task.layer, "epoch": task.epoch}
        if est.input_kind == "gaussian":
            if task.kind != "gaussian":
                continue  # documented: a Gaussian estimator has nothing to say about a deterministic layer
            kwargs["log_var"] = log_var
        if not _noisy.applies(est, task.noise):
            continue  # a noisy estimator without a spec has nothing to say about a layer without noise
        t_est, y_est, x_est = t, task.y, x
        if task.noise and _noisy.uses_noise(est):
            t_est, y_est, x_est = _noisy.noisy_view(est, draws_t, task.y, x, task.noise, kwargs)
            res = est.estimate(t_est, y_est, x_est, **kwargs)
        else:
            res = shared[label] if label in shared else _estimate(est, label, task, t, x, kwargs, states)
        row = result_row(task, label, res)
        ctx = RowContext(task=task, label=label, estimator=est, t=t_est, x=x_est, kwargs=kwargs, result=res)
        for provider in providers:
            # Row resampling (shuffles, bootstraps) would split one input's draws apart: on the noisy
            # rows only providers that say they handle draws run; the other columns stay NaN.
            if not (task.noise and _noisy.uses_noise(est)) or getattr(provider, "handles_draws", False):
                row.update(provider.row_columns(ctx))
        row.update(common)
        rows.append(row)
    return rows


def _estimate_batch(
    batch: list[Task], estimators: Mapping[str, Any], x: Any, providers: Providers
) -> tuple[int, list[dict]]:
    """Estimate every task of ``batch`` (in a worker or in process); opens each zarr path once.

    Warm starts chain within the batch, per (run, layer) in epoch order (`run_tasks` keeps each
    (run, layer) in one batch when an estimator warm-starts, so serial and parallel runs agree).
    """
    opened: dict[str, Any] = {}
    rows: list[dict] = []
    states: dict | None = {} if warm_starting(estimators) else None
    if states is not None:
        batch = sorted(batch, key=lambda task: (task.run, task.layer, task.epoch))
    try:
        for task in batch:
            if task.data is None:
                raise ValueError(f"task {task.run, task.epoch, task.layer} has no data source (run_tasks sets it).")
            t, log_var = task.data.load(task, _needs_log_var(task, estimators), opened)
            rows.extend(estimate_task(task, t, log_var, estimators, x, providers, states))
    finally:
        close_all(opened.values())
    return len(batch), rows


def _layer_batches(tasks: list[tuple[Any, Task]], workers: int, per_worker: int) -> list[list]:
    """Batches of whole (run, layer) groups (each in epoch order), about ``per_worker`` per worker."""
    groups: dict[tuple[str, str], list] = {}
    for store, task in tasks:
        groups.setdefault((task.run, task.layer), []).append((store, task))
    ordered = [sorted(g, key=lambda st: st[1].epoch) for g in groups.values()]
    return [sum(chunk, []) for chunk in _parallel.split_batches(ordered, workers, per_worker=per_worker)]


def run_tasks(
    tasks: list[tuple[Any, Task]],
    estimators: Mapping[str, Any],
    x: ArrayLike,
    providers: Providers = (),
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
        if warm_starting(estimators):  # one (run, layer)'s epochs in one batch, whatever the workers
            # shipped: each (run, layer) its own batch, so workers take the next chain as they free up (two
            # batches of 3 and 2 layers kept the three wide ones on one worker: 1.1x on two workers)
            chunks = _layer_batches(tasks, workers, len(tasks) if ships else 4)
        else:
            chunks = _parallel.split_batches(tasks, workers, per_worker=len(tasks) if ships else 4)

        def with_data(store: Store, task: Task) -> Task:
            if in_process:
                return replace(task, data=FromStore(store))
            path = _store_path(store)
            if path is not None:
                return replace(task, data=FromPath(path))
            t, log_var = _load(store, task, _needs_log_var(task, estimators))
            return replace(task, data=FromArrays(t, log_var))

        def batches() -> Iterator[tuple]:
            # Lazily, so a MemoryStore's arrays are copied into only the few batches joblib holds at once.
            for chunk in chunks:
                yield [with_data(store, task) for store, task in chunk], estimators, x, tuple(providers)

        return _parallel.run_batches(
            _estimate_batch, batches(), n_tasks=len(tasks), n_jobs=n_jobs, workers=workers,
            progress=progress, desc="information plane",
        )


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------
def frame(rows: list[dict], columns: list[str], providers: Providers = ()) -> pd.DataFrame:
    """Rows as a DataFrame with these columns, the table's dtypes (and the providers' ``dtypes``)."""
    df = pd.DataFrame(rows, columns=columns)
    dtypes = dict(_DTYPES)
    for provider in providers:
        dtypes.update(provider.dtypes())
    return df.astype({c: t for c, t in dtypes.items() if c in df.columns})


def assemble(
    rows: list[dict],
    providers: Providers,
    estimators: Mapping[str, Any],
    runs: list[str],
    layer_order: list[str],
    skipped: Mapping[str, list[str]],
    x: ArrayLike | None = None,
) -> pd.DataFrame:
    """The results table: rows typed and sorted (run, epoch, layer, estimator), conventions in ``attrs``.

    Columns: the `RESULT_COLUMNS`, then the providers' columns (filled by their per-task and per-row hooks);
    then each provider's ``table`` hook runs on the whole table, in order.
    """
    df = frame(rows, RESULT_COLUMNS + provider_columns(providers), providers)
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
    ctx = TableContext(estimators=estimators, x=x, runs=runs, layer_order=layer_order)
    for provider in providers:
        df = provider.table(df, ctx)
    return df
