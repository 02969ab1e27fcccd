"""Information-plane tables from recorded runs, summaries over seeds, compression scores, and table files.

`information_plane` turns a recorded run (a `Recorder`, a store, or a store path) — or several runs — into
one tidy pandas DataFrame, one row per (run, epoch, layer, estimator), numbers in bits, with every
estimator's conventions in ``df.attrs``. `summarize_runs` reduces several runs (seeds) to mean and spread;
`compression_scores` makes "does this layer compress?" a number. Tables are written and read by
`infoplane.results_io` (`save_results` / `load_results`, re-exported here).

Results-table contract (shared with `infoplane.plotting`): columns ``run, epoch, layer, estimator, I_XT,
I_TY, bound_XT, bound_TY, n_samples``; ``df.attrs["conventions"] = {estimator label: conventions}``,
``df.attrs["layers"]`` = layer order.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _parallel
from . import diagnostics as _diagnostics
from ._types import Estimator, json_safe
from ._validation import as_numpy, check_input_ids, check_int_param, check_labels, check_n_jobs
from .geometry import geometric_compression
from .results_io import load_results, save_results, sidecar_path  # noqa: F401  (moved; kept importable here)

__all__ = [
    "ESTIMATOR_PRESETS",
    "RESULT_COLUMNS",
    "make_estimator",
    "information_plane",
    "summarize_runs",
    "compression_scores",
    "save_results",
    "load_results",
]

#: The columns every results table has, in this order.
RESULT_COLUMNS = ["run", "epoch", "layer", "estimator", "I_XT", "I_TY", "bound_XT", "bound_TY", "n_samples"]

_KEYS = ["run", "epoch", "layer", "estimator"]


# --------------------------------------------------------------------------------------------------
# Estimator presets
# --------------------------------------------------------------------------------------------------
def _binning(**kwargs: Any) -> Callable[[], Any]:
    def make():
        from .estimators import BinningEstimator

        return BinningEstimator(**kwargs)

    return make


def _kde(bound: str) -> Callable[[], Any]:
    def make():
        from .estimators import KDEEstimator

        return KDEEstimator(noise_variance=1e-3, bound=bound)

    return make


#: Named estimator configurations (the command line's ``--estimators``): name -> (description, factory).
ESTIMATOR_PRESETS: dict[str, tuple[str, Callable[[], Any]]] = {
    "binning": (
        "BinningEstimator(edges=np.linspace(-1, 1, 30)): the 30 SZT edges on [-1, 1] (Shwartz-Ziv & Tishby "
        "2017); values outside join the end bins",
        lambda: _binning(edges=np.linspace(-1.0, 1.0, 30))(),
    ),
    "binning-width": (
        "BinningEstimator(bin_width=0.07): fixed-width bins over the whole real line (Saxe et al. 2018, SZT net)",
        _binning(bin_width=0.07),
    ),
    "binning-adaptive": (
        "BinningEstimator(n_bins=30, strategy='adaptive'): 30 equal-mass bins per layer and epoch "
        "(Chelombiev et al. 2019)",
        _binning(n_bins=30, strategy="adaptive"),
    ),
    "kde-upper": (
        "KDEEstimator(noise_variance=1e-3, bound='upper'): pairwise-KL upper bound (Kolchinsky & Tracey 2017; "
        "Saxe et al. 2018)",
        _kde("upper"),
    ),
    "kde-lower": (
        "KDEEstimator(noise_variance=1e-3, bound='lower'): Bhattacharyya lower bound",
        _kde("lower"),
    ),
}


def make_estimator(name: str) -> Any:
    """A fresh estimator from its preset name (see `ESTIMATOR_PRESETS`).

    Raises
    ------
    KeyError
        For an unknown name, listing the presets.
    """
    try:
        _, factory = ESTIMATOR_PRESETS[name]
    except (KeyError, TypeError):
        raise KeyError(
            f"Unknown estimator preset {name!r}; presets are: {', '.join(ESTIMATOR_PRESETS)}."
        ) from None
    return factory()


def _is_estimator(obj: Any) -> bool:
    return (
        isinstance(obj, Estimator)
        and isinstance(obj.name, str)
        and obj.input_kind in ("deterministic", "gaussian")
    )


def _auto_label(est: Any) -> str:
    """``name``, plus ``-bound`` when the estimator has a bound kind (``kde-upper``)."""
    label = est.name
    bound = est.conventions().get("bound")
    if isinstance(bound, str):
        label += f"-{bound}"
    return label


def _one_estimator(obj: Any, where: str) -> Any:
    if isinstance(obj, str):
        return make_estimator(obj)
    if not _is_estimator(obj):
        raise TypeError(
            f"{where} must be an estimator (with name, input_kind, conventions() and estimate()) or a "
            f"preset name ({', '.join(ESTIMATOR_PRESETS)}). Got {type(obj).__name__}."
        )
    return obj


def _resolve_estimators(estimators: Any) -> dict[str, Any]:
    """{label: estimator} from one estimator/preset name, a list of them, or a dict {label: ...}.

    A preset's label is its name, another estimator's `_auto_label`; two equal labels are an error (pass a
    dict to name them).
    """
    if isinstance(estimators, Mapping):
        if not estimators:
            raise ValueError("estimators must hold at least one estimator. Got an empty dict.")
        for label in estimators:
            if not isinstance(label, str) or not label:
                raise TypeError(f"estimators dict keys must be non-empty str labels. Got {label!r}.")
        return {label: _one_estimator(obj, f"estimators[{label!r}]") for label, obj in estimators.items()}
    items = [estimators] if isinstance(estimators, str) or _is_estimator(estimators) else estimators
    try:
        items = list(items)
    except TypeError:
        raise TypeError(
            "estimators must be an estimator, a preset name, a list of them or a dict {label: estimator}. "
            f"Got {type(estimators).__name__}."
        ) from None
    if not items:
        raise ValueError("estimators must hold at least one estimator. Got an empty list.")
    out: dict[str, Any] = {}
    where: dict[str, int] = {}
    for i, obj in enumerate(items):
        est = _one_estimator(obj, f"estimators[{i}]")
        label = obj if isinstance(obj, str) else _auto_label(est)
        if label in out:
            raise ValueError(
                f"estimators must have unique labels: estimators[{where[label]}] and estimators[{i}] are both "
                f"labelled {label!r}. Pass a dict {{label: estimator}} to name them."
            )
        out[label], where[label] = est, i
    return out


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
        from .store import open_store

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


def _store_path(store: Any) -> str | None:
    """The on-disk location of a zarr-backed store, so workers can open it themselves; None for memory."""
    path = getattr(store, "path", None)
    if isinstance(path, (str, os.PathLike)) and Path(path).exists():
        return os.fspath(path)
    return None


def _select(requested: Any, available: list, what: str, run: str, cast: Callable[[Any], Any]) -> list:
    if requested is None:
        return list(available)
    if isinstance(requested, (str, int, np.integer)):
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
# Work: one task = one (run, epoch, layer), all estimators on the array loaded once
# --------------------------------------------------------------------------------------------------
def _load(store: Any, epoch: int, layer: str, kind: str, need_log_var: bool):
    t = store.activations(epoch, layer)
    log_var = store.activations(epoch, layer, part="log_var") if need_log_var else None
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


def _estimate_batch(
    batch: list[tuple], estimators: dict[str, Any], x: Any, shuffle: int = 0,
    resampling: _diagnostics.Resampling | None = None, geometry: bool = False,
) -> tuple[int, list[dict]]:
    """Estimate every task of ``batch``; a task carries its arrays, or a store path its worker opens."""
    opened: dict[str, Any] = {}
    rows = []
    try:
        for run, epoch, layer, kind, y, data in batch:
            need_log_var = kind == "gaussian" and any(e.input_kind == "gaussian" for e in estimators.values())
            if isinstance(data, str):
                if data not in opened:
                    from .store import open_store

                    opened[data] = open_store(data, mode="r")
                t, log_var = _load(opened[data], epoch, layer, kind, need_log_var)
            elif isinstance(data, tuple):
                t, log_var = data
            else:  # the store itself (in this process): read this one (epoch, layer) now, not before
                t, log_var = _load(data, epoch, layer, kind, need_log_var)
            from .estimators.kde import shared_kde_results

            shared = shared_kde_results(estimators, t, y, x, layer=layer, epoch=int(epoch))
            geo = geometric_compression(t, y, layer=layer, epoch=int(epoch)) if geometry else None
            for label, est in estimators.items():
                kwargs: dict[str, Any] = {"layer": layer, "epoch": int(epoch)}
                if est.input_kind == "gaussian":
                    if kind != "gaussian":
                        continue  # documented: a Gaussian estimator has nothing to say about a deterministic layer
                    kwargs["log_var"] = log_var
                res = shared[label] if label in shared else est.estimate(t, y, x, **kwargs)
                row = {
                    "run": run, "epoch": int(epoch), "layer": layer, "estimator": label,
                    "I_XT": _checked_i_xt(res, label), "I_TY": float(res.I_TY),
                    "bound_XT": str(res.bound_XT), "bound_TY": str(res.bound_TY),
                    "n_samples": int(res.n_samples),
                }
                if shuffle:
                    # The same permutations for every task (seed 0): the baseline is comparable across the table.
                    base = est.shuffle_baseline(t, y, x, n_permutations=shuffle, seed=0, **kwargs)
                    row["I_TY_shuffled"] = float(base.I_TY)
                if resampling is not None:
                    row.update(_diagnostics.resampled_columns(est, t, y, x, kwargs, resampling, (run, epoch, layer)))
                if geometry:
                    row["geo_compression"] = geo
                rows.append(row)
    finally:
        for store in opened.values():
            close = getattr(store, "close", None)
            if callable(close):
                close()
    return len(batch), rows


def information_plane(
    source: Any,
    labels: Any = None,
    estimators: Any = "binning",
    *,
    layers: str | Sequence[str] | None = None,
    epochs: int | Sequence[int] | None = None,
    x: Any = None,
    n_jobs: int | None = None,
    backend: str | None = None,
    progress: bool = True,
    shuffle: int = 0,
    diagnostics: bool = True,
    ci: float | None = None,
    n_boot: int = 100,
    subsample: Sequence[float] | None = None,
    geometry: bool = False,
) -> pd.DataFrame:
    """Estimate I(T;X) and I(T;Y), in bits, for every recorded (epoch, layer) of one or several runs.

    Each layer T at each recorded epoch becomes one point (I(T;X), I(T;Y)) of the information plane
    (Shwartz-Ziv & Tishby 2017) per estimator; what the numbers mean (estimate, upper or lower bound) is in
    ``bound_XT`` / ``bound_TY``, and the conventions that produced them (edges, bin width, noise variance,
    bound kind, ...) in ``df.attrs["conventions"]``.

    Parameters
    ----------
    source : Recorder, store, path, or dict {run name: one of those}
        A `Recorder` (its ``.store`` is read), a `MemoryStore`/`ZarrStore`, or the path of a zarr store
        (opened read-only with `open_store`). A dict (or list, named "0", "1", ...) holds several runs,
        e.g. seeds; the ``run`` column names them. A single source is run ``"0"``.
    labels : array-like of int, shape (N,), optional
        Class labels of the probe rows. None: each store's own ``.labels`` (given to the recorder).
    estimators : estimator, preset name, list of those, or dict {label: estimator}
        Preset names are the keys of `ESTIMATOR_PRESETS` ("binning", "binning-width", "binning-adaptive",
        "kde-upper", "kde-lower"; a preset's label is its name). Other estimators are labelled by their
        ``name`` (plus ``-bound`` for bounded ones, e.g. ``kde-upper``). Labels must be unique: two
        estimators with the same label raise `ValueError`; pass a dict to name them.
    layers, epochs : optional
        Restrict to these layers / epochs (each must exist in every run; unknown ones raise `KeyError`
        listing what was recorded). Default: everything recorded.
    x : array-like, optional
        Input ids per probe row (N,) or input rows (N, k), for probe sets with repeated inputs; passed to
        every estimator. None: every row is a distinct input.
    n_jobs : int, optional
        Parallel workers over (epoch, layer) tasks with joblib (``-1``: all cores). None or 1: serial, unless
        a joblib backend is active (``with joblib.parallel_config(backend="dask")``).
    backend : {None, "loky", "threading", "multiprocessing", "dask"}
        joblib backend. ``"dask"`` runs the tasks on the dask.distributed cluster of the current
        ``Client`` (an optional extra: ``pip install 'infoplane[dask]'``). None: joblib's active backend.
    progress : bool
        Show a tqdm progress bar over the (run, epoch, layer) tasks.
    shuffle : int, default 0
        When > 0, also estimate I(T;Y) with the labels randomly permuted, averaged over ``shuffle``
        permutations (`BaseEstimator.shuffle_baseline`), into a column ``I_TY_shuffled`` (bits). The true
        I(T;Y) under permuted labels is 0, so this column is the estimator's bias at this N and label
        balance; ``I_TY - I_TY_shuffled`` is a bias-corrected reading.
    diagnostics : bool, default True
        Add the boolean columns ``saturated`` (I_XT >= log2 N − 0.1 bits, N distinct probe inputs: every
        input in its own bin or kernel, the number says nothing about the layer) and ``dpi_violation`` (a
        deeper layer's I_XT or I_TY above the minimum of the shallower layers, same run, epoch and
        estimator, by more than the estimator's ``dpi_tolerance`` bits; layers in recording order, assumed to
        form one chain). Cheap: computed on the table (`infoplane.diagnostics.add_flags`).
    ci, n_boot : float, int, optional
        With ``ci`` (e.g. 0.95): a percentile bootstrap interval over probe rows, ``n_boot`` resamples per
        estimate, in columns ``I_XT_low``, ``I_XT_high``, ``I_TY_low``, ``I_TY_high`` (bits). Costs
        ``n_boot`` extra estimates per row (`infoplane.diagnostics.resampled_columns`).
    subsample : sequence of float, optional
        Fractions of N, e.g. ``(0.25, 0.5)``: the estimate on one random subset of that many rows, in columns
        ``I_XT_at_0.25``, ``I_TY_at_0.25``, ...: values still moving with N have not converged.
    geometry : bool, default False
        Also compute the layer's geometric compression tr(Σ_W Σ_B⁺)/C (`infoplane.geometry.
        geometric_compression`: within- over between-class scatter, dimensionless, not bits) into a column
        ``geo_compression``, the same on every estimator's row of an (epoch, layer). It is what a
        deterministic network's "compression" measures (Goldfeld et al. 2019); it never enters I_XT/I_TY.

    Returns
    -------
    pandas.DataFrame
        Columns ``run`` (str), ``epoch`` (int64), ``layer`` (str), ``estimator`` (str label), ``I_XT``,
        ``I_TY`` (float64, bits), ``bound_XT``, ``bound_TY`` ("estimate" | "upper" | "lower"),
        ``n_samples`` (int64). Rows sorted by run (in the order given), epoch, layer (store order) and
        estimator (in the order given). ``df.attrs``: ``conventions`` {label: dict}, ``layers``,
        ``estimators``, ``runs``, ``skipped`` {label: [layers]}, ``units`` ("bits").

    Notes
    -----
    Gaussian layers (recorded as mean ``mu`` and ``log_var``): deterministic estimators see ``mu``;
    estimators with ``input_kind="gaussian"`` get ``estimate(mu, y, x, log_var=log_var)``. A Gaussian
    estimator on a deterministic layer is skipped (listed in ``df.attrs["skipped"]``); if that leaves no
    work at all, ``ValueError`` is raised.

    Parallel work is batched (a few batches per worker) and each task carries only its own (epoch, layer)
    arrays — or, for a `ZarrStore`, the store's path, so workers read zarr themselves — never whole stores;
    memory stays bounded by a few batches. The table is identical whatever ``n_jobs`` and backend.
    Parallelism pays for costly estimators (KDE: O(N²d) per task; ``benchmarks/bench_parallel.py``); SZT
    binning takes about a millisecond per (epoch, layer), less than shipping the arrays to a worker, so
    it is fastest serial.

    References
    ----------
    Shwartz-Ziv & Tishby (2017), Opening the black box of deep neural networks via information,
    arXiv:1703.00810. Saxe et al. (2018), On the information bottleneck theory of deep learning, ICLR.
    """
    est_map = _resolve_estimators(estimators)
    shuffle = check_int_param(shuffle, "shuffle", "information_plane", minimum=0)
    n_jobs = check_n_jobs(n_jobs, "information_plane")
    resampling = _diagnostics.Resampling.checked(ci, n_boot, subsample, "information_plane")
    if isinstance(source, Mapping):
        if not source:
            raise ValueError("source must hold at least one run. Got an empty dict.")
        sources = {str(k): v for k, v in source.items()}
    elif isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("source must hold at least one run. Got an empty list.")
        sources = {str(i): s for i, s in enumerate(source)}
    else:
        sources = {"0": source}

    opened_here = []
    try:
        stores = {}
        for run, src in sources.items():
            store, opened = _as_store(src, "source" if len(sources) == 1 else f"source[{run!r}]")
            stores[run] = store
            if opened:
                opened_here.append(store)
        df = _information_plane(stores, labels, est_map, layers, epochs, x, n_jobs, backend, progress, shuffle,
                                resampling, bool(geometry))
    finally:
        for store in opened_here:
            close = getattr(store, "close", None)
            if callable(close):
                close()
    if diagnostics:
        # N distinct inputs: the rows, or the distinct ids of x (x was checked against the stores above).
        n_inputs = None if x is None else int(np.unique(as_numpy(x), axis=0).shape[0])
        df = _diagnostics.add_flags(
            df, tolerances={label: _diagnostics.dpi_tolerance(est) for label, est in est_map.items()},
            n_inputs=n_inputs)
    return df


def _information_plane(stores, labels, est_map, layers, epochs, x, n_jobs, backend, progress, shuffle=0,  # noqa: C901
                       resampling=None, geometry=False):
    has_gaussian_est = any(e.input_kind == "gaussian" for e in est_map.values())
    has_det_est = any(e.input_kind == "deterministic" for e in est_map.values())

    plan = []  # (run, store, epoch, layer, kind, y)
    layer_order: list[str] = []
    skipped: dict[str, list[str]] = {}
    x_checked = None
    for run, store in stores.items():
        run_layers = _select(layers, list(store.layers), "layers", run, str)
        run_epochs = _select(epochs, [int(e) for e in store.epochs], "epochs", run, int)
        if not run_layers or not run_epochs:
            raise ValueError(f"run {run!r} has nothing recorded (layers {run_layers}, epochs {run_epochs}).")
        y_src = labels if labels is not None else getattr(store, "labels", None)
        if y_src is None:
            raise ValueError(
                f"labels are needed for I(T;Y): pass labels=..., or record them with Recorder(..., labels=y). "
                f"Run {run!r} has no stored labels."
            )
        n_rows = getattr(store, "n_probe", None)
        if not isinstance(n_rows, (int, np.integer)):
            n_rows = int(store.activations(run_epochs[0], run_layers[0]).shape[0])
        y = check_labels(y_src, n_rows, name="labels" if labels is not None else f"stored labels of run {run!r}")
        if x is not None:
            check_input_ids(x, n_rows)  # fail early, in the caller, not inside a worker
            x_checked = x
        for layer in run_layers:
            if layer not in layer_order:
                layer_order.append(layer)
            kind = store.layer_kind(layer)
            if kind != "gaussian":
                for label, est in est_map.items():
                    if est.input_kind == "gaussian" and layer not in skipped.setdefault(label, []):
                        skipped[label].append(layer)
            if kind != "gaussian" and not has_det_est:
                continue
            for epoch in run_epochs:
                plan.append((run, store, epoch, layer, kind, y))
    skipped = {k: v for k, v in skipped.items() if v}
    if not plan:
        raise ValueError(
            "Nothing to compute: every estimator needs Gaussian layers (input_kind='gaussian') and the "
            f"selected layers {layer_order} are all deterministic. Add a deterministic estimator "
            "(e.g. 'binning') or record a Gaussian layer."
        )

    with _parallel.backend_context(backend, n_jobs):
        workers = _parallel.n_workers(n_jobs)
        in_process = workers == 1 and not _parallel.is_dask_backend()
        # Arrays shipped to workers (stores without a path) travel one task per batch, so a worker holds one
        # (epoch, layer) at a time; in this process a task carries its store and reads when it runs.
        ships = not in_process and any(_store_path(s) is None for s in stores.values())
        chunks = _parallel.split_batches(plan, workers, per_worker=len(plan) if ships else 4)

        def batches():
            # Lazily, so a MemoryStore's arrays are copied into only the few batches joblib holds at once.
            for chunk in chunks:
                tasks = []
                for run, store, epoch, layer, kind, y in chunk:
                    path = None if in_process else _store_path(store)
                    if in_process:
                        data: Any = store
                    elif path is not None:
                        data = path
                    else:
                        data = _load(store, epoch, layer, kind, kind == "gaussian" and has_gaussian_est)
                    tasks.append((run, epoch, layer, kind, y, data))
                yield tasks, est_map, x_checked, shuffle, resampling, geometry

        rows = _parallel.run_batches(
            _estimate_batch, batches(), n_tasks=len(plan), n_jobs=n_jobs, workers=workers,
            progress=progress, desc="information plane",
        )

    runs = list(stores)
    extra = (["I_TY_shuffled"] if shuffle else []) + (resampling.columns() if resampling is not None else [])
    extra += ["geo_compression"] if geometry else []
    df = _frame(rows, RESULT_COLUMNS + extra)
    df = _sort(df, {"run": runs, "layer": layer_order, "estimator": list(est_map)})
    df.attrs = json_safe(
        {
            "conventions": {label: est.conventions() for label, est in est_map.items()},
            "layers": layer_order,
            "estimators": list(est_map),
            "runs": runs,
            "skipped": skipped,
            "units": "bits",
        }
    )
    return df


_DTYPES = {"epoch": "int64", "I_XT": "float64", "I_TY": "float64", "n_samples": "int64", "I_TY_shuffled": "float64",
           "geo_compression": "float64"}


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    return df.astype({c: t for c, t in _DTYPES.items() if c in df.columns})


def _sort(df: pd.DataFrame, orders: Mapping[str, list]) -> pd.DataFrame:
    """Sort rows by run, epoch, layer, estimator (whichever exist), categorical keys in the given orders."""
    keys = [c for c in ("run", "layer", "estimator", "epoch") if c in df.columns]
    order = [c for c in ("run", "epoch", "layer", "estimator") if c in keys]

    def key(col: pd.Series) -> pd.Series:
        if col.name in orders:
            known = list(orders[col.name])
            extra = [v for v in pd.unique(col) if v not in known]
            rank = {v: i for i, v in enumerate(known + extra)}
            return col.map(rank)
        return col

    return df.sort_values(order, key=key, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Checks on tables
# --------------------------------------------------------------------------------------------------
def _check_table(df: Any, required: Iterable[str], name: str = "df") -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame (a results table). Got {type(df).__name__}.")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; it has {list(df.columns)}.")
    if len(df) == 0:
        raise ValueError(f"{name} is empty (0 rows): nothing to summarise.")
    return df


def _orders(df: pd.DataFrame) -> dict[str, list]:
    out = {}
    for col, attr in (("layer", "layers"), ("estimator", "estimators"), ("run", "runs")):
        known = df.attrs.get(attr)
        if col in df.columns:
            out[col] = list(known) if isinstance(known, list) else list(pd.unique(df[col]))
    return out


def _group_keys(df: pd.DataFrame) -> list[str]:
    return [c for c in _KEYS if c in df.columns]


def _check_unique_rows(df: pd.DataFrame, name: str) -> None:
    keys = _group_keys(df)
    dup = df.duplicated(keys, keep=False)
    if dup.any():
        first = df.loc[dup, keys].iloc[0].to_dict()
        raise ValueError(
            f"{name} has {int(dup.sum())} rows sharing their {keys} with another row (e.g. {first}); "
            "give each run its own 'run' name."
        )


# --------------------------------------------------------------------------------------------------
# Runs and uncertainty
# --------------------------------------------------------------------------------------------------
def summarize_runs(df: pd.DataFrame, *, ddof: int = 1) -> pd.DataFrame:
    """Mean and spread over runs (seeds) of I(T;X) and I(T;Y), in bits, per (epoch, layer, estimator).

    Parameters
    ----------
    df : DataFrame
        A results table (`information_plane`), normally with several runs in its ``run`` column. Without a
        ``run`` column every row counts as one run.
    ddof : int
        Delta degrees of freedom of the standard deviation: 1 (default) is the sample standard deviation
        over runs, sqrt(Σ (v − mean)² / (n_runs − 1)), NaN for a single run; 0 the population one.

    Returns
    -------
    DataFrame
        One row per (epoch, layer, estimator): ``I_XT``, ``I_TY`` (mean over runs, bits), ``I_XT_std``,
        ``I_TY_std`` (bits), ``I_XT_min``, ``I_XT_max``, ``I_TY_min``, ``I_TY_max`` (the band of the runs,
        bits), ``bound_XT``, ``bound_TY``, ``n_samples`` (the smallest over runs) and ``n_runs`` (how many
        runs recorded that epoch). Sorted by epoch, layer, estimator; attrs kept, plus ``summary``.
    """
    required = ["epoch", "layer", "estimator", "I_XT", "I_TY", "bound_XT", "bound_TY", "n_samples"]
    df = _check_table(df, required)
    ddof = check_int_param(ddof, "ddof", "summarize_runs", minimum=0)
    _check_unique_rows(df, "df")
    keys = ["epoch", "layer", "estimator"]
    bounds = df.groupby(keys, sort=False)[["bound_XT", "bound_TY"]].nunique()
    if (bounds > 1).any(axis=None):
        bad = bounds[(bounds > 1).any(axis=1)].index[0]
        raise ValueError(
            f"df mixes bound kinds across runs for (epoch, layer, estimator) = {bad}: the same estimator label "
            "must mean the same estimator in every run."
        )
    g = df.groupby(keys, sort=False)
    out = g.agg(
        I_XT=("I_XT", "mean"),
        I_TY=("I_TY", "mean"),
        I_XT_std=("I_XT", lambda v: v.std(ddof=ddof)),
        I_TY_std=("I_TY", lambda v: v.std(ddof=ddof)),
        I_XT_min=("I_XT", "min"),
        I_XT_max=("I_XT", "max"),
        I_TY_min=("I_TY", "min"),
        I_TY_max=("I_TY", "max"),
        bound_XT=("bound_XT", "first"),
        bound_TY=("bound_TY", "first"),
        n_samples=("n_samples", "min"),
        n_runs=("I_XT", "size"),
    ).reset_index()
    out = out.astype({"epoch": "int64", "n_samples": "int64", "n_runs": "int64"})
    for col in ("I_XT", "I_TY", "I_XT_std", "I_TY_std", "I_XT_min", "I_XT_max", "I_TY_min", "I_TY_max"):
        out[col] = out[col].astype("float64")
    out = _sort(out, _orders(df))
    runs = list(pd.unique(df["run"])) if "run" in df.columns else None
    out.attrs = json_safe({**df.attrs, "summary": {"over": "run", "runs": runs, "std_ddof": ddof}})
    return out


def compression_scores(
    df: pd.DataFrame, *, final_epochs: int = 1, aggregate: bool = False, ddof: int = 1
) -> pd.DataFrame:
    """How much each layer compresses: the fall of I(T;X) from its maximum to the end of training, in bits.

    For each (run, layer, estimator) trajectory over the recorded epochs e_1 < ... < e_K:

    - ``I_XT_max`` = max_k I_XT(e_k), reached first at ``peak_epoch``;
    - ``I_XT_final`` = mean of I_XT over the last ``final_epochs`` recorded epochs (all K if fewer);
    - ``compression`` = I_XT_max − I_XT_final ≥ 0, in bits;
    - ``compression_fraction`` = compression / I_XT_max (NaN when I_XT_max = 0).

    E.g. I_XT = [1, 3, 2] bits at epochs [0, 10, 100] with ``final_epochs=1``: peak epoch 10, compression
    1 bit, fraction 1/3. A layer that only fits has compression 0 (its maximum is its final value).

    Parameters
    ----------
    df : DataFrame
        A results table (`information_plane`), or a `summarize_runs` table (treated as one run).
    final_epochs : int
        How many of the last recorded epochs average into the final value (default 1: the last epoch).
        Use a few when the trajectory is noisy at the end, but note that averaging also credits a layer
        whose I(T;X) is still *rising* with compression (its average over the last epochs lies below its
        last-epoch maximum): I_XT = [1, 2, 3] with ``final_epochs=2`` gives 0.5 bits.
    aggregate : bool
        False: one row per (run, layer, estimator). True: one row per (layer, estimator) with the mean over
        runs of ``compression``, ``compression_fraction``, ``I_XT_max`` and ``I_XT_final`` and their standard
        deviations (``*_std``, with ``ddof``; NaN for one run), the median, min and max ``peak_epoch``, and
        ``n_runs``.
    ddof : int
        Delta degrees of freedom of the standard deviations over runs (``aggregate=True``).

    Returns
    -------
    DataFrame
        Per run: ``run`` (if the table has runs), ``layer``, ``estimator``, ``bound_XT``, ``n_epochs``,
        ``peak_epoch``, ``I_XT_max``, ``I_XT_final``, ``compression`` (bits), ``compression_fraction``.
        attrs: the table's attrs plus ``compression`` {definition, final_epochs}.
    """
    df = _check_table(df, ["epoch", "layer", "estimator", "I_XT", "bound_XT"])
    final_epochs = check_int_param(final_epochs, "final_epochs", "compression_scores", minimum=1)
    ddof = check_int_param(ddof, "ddof", "compression_scores", minimum=0)
    _check_unique_rows(df, "df")
    keys = [c for c in ("run", "layer", "estimator") if c in df.columns]
    rows = []
    # One Python step per trajectory (runs x layers x estimators), vectorised within it.
    for key, group in df.sort_values("epoch", kind="stable").groupby(keys, sort=False):
        epochs_ = group["epoch"].to_numpy()
        values = group["I_XT"].to_numpy(dtype=np.float64)
        peak = int(np.argmax(values))
        top = float(values[peak])
        final = float(values[-final_epochs:].mean())
        fall = top - final
        rows.append(
            {
                **dict(zip(keys, key)),
                "bound_XT": group["bound_XT"].iloc[0],
                "n_epochs": len(values),
                "peak_epoch": int(epochs_[peak]),
                "I_XT_max": top,
                "I_XT_final": final,
                "compression": fall,
                "compression_fraction": fall / top if top > 0 else math.nan,
            }
        )
    cols = keys + ["bound_XT", "n_epochs", "peak_epoch", "I_XT_max", "I_XT_final", "compression",
                   "compression_fraction"]
    out = pd.DataFrame(rows, columns=cols).astype(
        {"n_epochs": "int64", "peak_epoch": "int64", "I_XT_max": "float64", "I_XT_final": "float64",
         "compression": "float64", "compression_fraction": "float64"}
    )
    orders = _orders(df)
    out = _sort(out, orders)
    info = {
        "definition": "compression = max_e I_XT(e) - mean of I_XT over the last final_epochs recorded epochs "
        "(bits); compression_fraction = compression / max_e I_XT(e); peak_epoch = first epoch of the maximum",
        "final_epochs": final_epochs,
    }
    if aggregate:
        out = _aggregate_scores(out, ddof, orders)
        info["aggregate"] = {"over": "run", "std_ddof": ddof}
    out.attrs = json_safe({**df.attrs, "compression": info})
    return out


def _aggregate_scores(per_run: pd.DataFrame, ddof: int, orders: Mapping[str, list]) -> pd.DataFrame:
    def std(v: pd.Series) -> float:
        return float(v.std(ddof=ddof))

    g = per_run.groupby(["layer", "estimator"], sort=False)
    out = g.agg(
        bound_XT=("bound_XT", "first"),
        compression=("compression", "mean"),
        compression_std=("compression", std),
        compression_fraction=("compression_fraction", "mean"),
        compression_fraction_std=("compression_fraction", std),
        I_XT_max=("I_XT_max", "mean"),
        I_XT_max_std=("I_XT_max", std),
        I_XT_final=("I_XT_final", "mean"),
        I_XT_final_std=("I_XT_final", std),
        peak_epoch=("peak_epoch", "median"),
        peak_epoch_min=("peak_epoch", "min"),
        peak_epoch_max=("peak_epoch", "max"),
        n_runs=("compression", "size"),
    ).reset_index()
    floats = [c for c in out.columns if c.startswith(("compression", "I_XT")) or c == "peak_epoch"]
    out = out.astype({**{c: "float64" for c in floats}, "peak_epoch_min": "int64", "peak_epoch_max": "int64",
                      "n_runs": "int64"})
    return _sort(out, orders)
