"""Information-plane tables from recorded runs, summaries over seeds, compression scores, and table files.

`information_plane` turns a recorded run (a `Recorder`, a store, or a store path) — or several runs — into
one tidy pandas DataFrame, one row per (run, epoch, layer, estimator), numbers in bits, with every
estimator's conventions in ``df.attrs``. `summarize_runs` reduces several runs (seeds) to mean and spread;
`compression_scores` makes "does this layer compress?" a number. Tables are written and read by
`infoplane.analysis` (`save_results` / `load_results`, re-exported here).

Results-table contract (shared with `infoplane.plotting`): columns ``run, epoch, layer, estimator, I_XT,
I_TY, bound_XT, bound_TY, n_samples``; ``df.attrs["conventions"] = {estimator label: conventions}``,
``df.attrs["layers"]`` = layer order.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._core.tables import check_finite_columns, check_table, check_unique_rows, mean_sd, orders, sort_rows
from .._core.types import ArrayLike, json_safe
from .._core.validation import check_bool_param, check_int_param, check_n_jobs
from ..estimators.presets import resolve_estimators
from . import _diagnostics, _engine, _noisy, _providers
from ._providers import ColumnProvider

__all__ = ["information_plane", "summarize_runs", "compression_scores"]


def information_plane(
    source: Any,
    labels: ArrayLike | None = None,
    estimators: Any = None,
    *,
    layers: str | Sequence[str] | None = None,
    epochs: int | Sequence[int] | None = None,
    x: ArrayLike | None = None,
    n_jobs: int | None = None,
    backend: str | None = None,
    progress: bool = True,
    providers: Sequence[ColumnProvider] = (),
    **options: Any,
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
        "kde-upper", "kde-lower", "noisy"; a preset's label is its name). None (default): ``"noisy"`` for
        stores with noisy layers (``Layer(name, noise=...)``, which adds ``I_XT_se``, ``I_TY_se``), else
        ``"binning"``. One `SaturationWarning` is emitted when most rows of an estimator are saturated.
        An estimator class's ``name`` ("knn", "probe", "critic", ...) builds it with its defaults
        (`make_estimator`). Other estimators are labelled by their
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
    providers : sequence of column providers, optional
        Extra columns from your own column providers (`infoplane.analysis.Provider` subclasses, or any
        object with the hooks of `infoplane.analysis.ColumnProvider`), after the built-in ones.
    **options
        The keywords of the built-in column providers, below (any other keyword raises `TypeError`).
{provider_options}

    Returns
    -------
    pandas.DataFrame
        Columns ``run`` (str), ``epoch`` (int64), ``layer`` (str), ``estimator`` (str label), ``I_XT``,
        ``I_TY`` (float64, bits), ``bound_XT``, ``bound_TY`` ("estimate" | "upper" | "lower"),
        ``n_samples`` (int64). Rows sorted by run (in the order given), epoch, layer (store order) and
        estimator (in the order given). ``df.attrs``: ``conventions`` {label: dict}, ``layers``,
        ``estimators``, ``runs``, ``skipped`` {label: [layers]}, ``units`` ("bits"). When any store was
        recorded with ``Recorder(..., probe_name=...)``, a ``probe`` column (str) follows ``run``: the
        store's probe name (an unnamed store's probe is its run name), and ``df.attrs["probes"]`` maps
        run to probe; the plots draw each probe apart and `summarize_runs` summarizes each apart.

    Notes
    -----
    Gaussian layers (recorded as mean ``mu`` and ``log_var``): deterministic estimators see ``mu``;
    estimators with ``input_kind="gaussian"`` get ``estimate(mu, y, x, log_var=log_var)``. A Gaussian
    estimator on a deterministic layer is skipped (listed in ``df.attrs["skipped"]``); if that leaves no
    work at all, ``ValueError`` is raised.

    Every column beside the `RESULT_COLUMNS` comes from a column provider (`infoplane.analysis.Provider`):
    per task, per estimator row (in the worker) or on the whole table. A built-in keyword option is a
    provider's ``keywords``; a new column is one `Provider` subclass in ``infoplane/analysis/_providers.py``
    appended to its ``PROVIDERS`` list (which also documents its keyword here).

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
    progress = check_bool_param(progress, "progress", "information_plane")
    est_map = None if estimators is None else resolve_estimators(estimators)
    column_providers = _column_providers(options, providers)
    n_jobs = check_n_jobs(n_jobs, "information_plane")
    stores, opened_here = _engine.open_sources(source)
    try:
        if est_map is None:
            est_map = resolve_estimators(_noisy.default_estimators(stores))
        noisy = any(_noisy.uses_noise(e) for e in est_map.values())
        if noisy:  # I_XT_se, I_TY_se (before the flags, whose DPI test reads them)
            column_providers = _noisy.with_standard_errors(column_providers)
        probes = _probe_names(stores)
        tasks, layer_order, skipped = _engine.plan(stores, labels, est_map, layers, epochs, x)
        rows = _engine.run_tasks(tasks, est_map, x, column_providers, n_jobs=n_jobs, backend=backend,
                                 progress=progress)
    finally:
        _engine.close_all(opened_here)
    df = _engine.assemble(rows, column_providers, est_map, list(stores), layer_order, skipped, x=x)
    if noisy:
        _noisy.warn_few_draws(stores, df)
    _diagnostics.warn_saturated(df)
    return _with_probe_column(df, probes)


information_plane.__doc__ = (information_plane.__doc__ or "").replace(
    "{provider_options}", _providers.options_doc())


def _column_providers(options: Mapping[str, Any], extra: Sequence[Any]) -> tuple[ColumnProvider, ...]:
    """The built-in providers the keyword ``options`` switch on, then the ``providers`` given, checked."""
    if isinstance(extra, (str, bytes)) or not isinstance(extra, Sequence):
        extra = [extra]
    for provider in extra:
        if not isinstance(provider, ColumnProvider):
            raise TypeError(
                "The 'providers' parameter of information_plane must hold column providers (objects with "
                "columns, dtypes, task_columns, row_columns and table; see infoplane.analysis.Provider). "
                f"Got {type(provider).__name__}."
            )
    out = (*_providers.from_options(options, "information_plane"), *extra)
    _engine.provider_columns(out)  # column names checked before any work
    return out


def _probe_names(stores: Mapping[str, Any]) -> dict[str, str | None]:
    """{run: the store's ``probe_name``} (set by ``Recorder(..., probe_name=...)``; None where unset)."""
    names = {}
    for run, store in stores.items():
        name = store.metadata.get("probe_name")
        names[run] = name if isinstance(name, str) and name else None
    return names


def _with_probe_column(df: pd.DataFrame, probes: Mapping[str, str | None]) -> pd.DataFrame:
    """A ``probe`` column after ``run`` when any store names its probe; an unnamed store's probe is its run."""
    if all(name is None for name in probes.values()):
        return df
    named = {run: name if name is not None else run for run, name in probes.items()}
    attrs = dict(df.attrs)
    df.insert(1, "probe", df["run"].map(named).astype(object))
    df.attrs = {**attrs, "probes": named}
    return df


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
        One row per (epoch, layer, estimator), and per ``probe`` when the table has one (a training and a
        held-out probe are never averaged together): ``I_XT``, ``I_TY`` (mean over runs, bits), ``I_XT_std``,
        ``I_TY_std`` (bits), ``I_XT_min``, ``I_XT_max``, ``I_TY_min``, ``I_TY_max`` (the band of the runs,
        bits), ``bound_XT``, ``bound_TY``, ``n_samples`` (the smallest over runs), ``I_TY_shuffled`` and
        ``I_TY_shuffled_std`` (bits; when the table has the shuffle baseline) and ``n_runs`` (how many runs
        recorded that epoch). Sorted by epoch, layer, estimator; attrs kept, plus ``summary``.
    """
    required = ["epoch", "layer", "estimator", "I_XT", "I_TY", "bound_XT", "bound_TY", "n_samples"]
    df = check_table(df, required)
    ddof = check_int_param(ddof, "ddof", "summarize_runs", minimum=0)
    check_unique_rows(df, "df")
    # runs on different probes (train, held-out) are different quantities: summarized apart
    keys = (["probe"] if "probe" in df.columns else []) + ["epoch", "layer", "estimator"]
    bounds = df.groupby(keys, sort=False)[["bound_XT", "bound_TY"]].nunique()
    if (bounds > 1).any(axis=None):
        bad = bounds[(bounds > 1).any(axis=1)].index[0]
        raise ValueError(
            f"df mixes bound kinds across runs for (epoch, layer, estimator) = {bad}: the same estimator label "
            "must mean the same estimator in every run."
        )
    quantities = ["I_XT", "I_TY"] + (["I_TY_shuffled"] if "I_TY_shuffled" in df.columns else [])
    extra = {
        "I_XT_min": ("I_XT", "min"), "I_XT_max": ("I_XT", "max"),
        "I_TY_min": ("I_TY", "min"), "I_TY_max": ("I_TY", "max"),
        "bound_XT": ("bound_XT", "first"), "bound_TY": ("bound_TY", "first"),
        "n_samples": ("n_samples", "min"),
    }
    out = mean_sd(df, keys, quantities, ddof=ddof, extra=extra)
    columns = keys + ["I_XT", "I_TY", "I_XT_std", "I_TY_std", *extra, "n_runs"]
    if "I_TY_shuffled" in quantities:
        columns[-1:-1] = ["I_TY_shuffled", "I_TY_shuffled_std"]
    out = out[columns].astype({"epoch": "int64", "n_samples": "int64", "n_runs": "int64"})
    for col in ("I_XT_min", "I_XT_max", "I_TY_min", "I_TY_max"):
        out[col] = out[col].astype("float64")
    out = sort_rows(out, orders(df))
    runs = list(pd.unique(df["run"])) if "run" in df.columns else None
    out.attrs = json_safe({**df.attrs, "summary": {"over": "run", "runs": runs, "std_ddof": ddof}})
    return out


def _check_scorable(df: pd.DataFrame) -> None:
    """I_XT must be finite, except NaN from an estimator whose conventions say why (``I_XT_note``)."""
    check_finite_columns(df, ["I_XT"], allow_nan=True)
    conventions = df.attrs.get("conventions") or {}
    explained = [e for e, conv in conventions.items() if isinstance(conv, dict) and conv.get("I_XT_note")]
    check_finite_columns(df[~df["estimator"].isin(explained)], ["I_XT"])


def compression_scores(
    df: pd.DataFrame, *, final_epochs: int = 1, aggregate: bool = False, ddof: int = 1
) -> pd.DataFrame:
    """How much each layer compresses: the fall of I(T;X) from its maximum to the end of training, in bits.

    For each (run, layer, estimator) trajectory over the recorded epochs e_1 < ... < e_K:

    - ``I_XT_max`` = max_k I_XT(e_k), reached first at ``peak_epoch``;
    - ``I_XT_final`` = mean of I_XT over the last ``final_epochs`` recorded epochs (all K if fewer);
    - ``compression`` = I_XT_max − I_XT_final ≥ 0, in bits;
    - ``compression_fraction`` = compression / I_XT_max (NaN when I_XT_max = 0);
    - ``reason``: why a score is NaN, "" when scored. No score (NaN, never 0.000) for a trajectory whose
      final rows are ``saturated`` (I_XT within 0.1 bits of log2 N: every input still apart, so the value
      cannot show a fall; a deterministic layer) or that has no I_XT (an I(T;Y)-only estimator).

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
    df = check_table(df, ["epoch", "layer", "estimator", "I_XT", "bound_XT"])
    _check_scorable(df)
    final_epochs = check_int_param(final_epochs, "final_epochs", "compression_scores", minimum=1)
    ddof = check_int_param(ddof, "ddof", "compression_scores", minimum=0)
    check_unique_rows(df, "df")
    keys = [c for c in ("run", "probe", "layer", "estimator") if c in df.columns]
    rows = []
    # One Python step per trajectory (runs x layers x estimators), vectorised within it.
    for key, group in df.sort_values("epoch", kind="stable").groupby(keys, sort=False):
        rows.append({**dict(zip(keys, key)), **_trajectory_score(group, final_epochs)})
    cols = keys + ["bound_XT", "n_epochs", "peak_epoch", "I_XT_max", "I_XT_final", "compression",
                   "compression_fraction", "reason"]
    out = pd.DataFrame(rows, columns=cols).astype(
        {"n_epochs": "int64", "peak_epoch": "int64", "I_XT_max": "float64", "I_XT_final": "float64",
         "compression": "float64", "compression_fraction": "float64"}
    )
    order = orders(df)
    out = sort_rows(out, order)
    info = {
        "definition": "compression = max_e I_XT(e) - mean of I_XT over the last final_epochs recorded epochs "
        "(bits); compression_fraction = compression / max_e I_XT(e); peak_epoch = first epoch of the maximum",
        "final_epochs": final_epochs,
    }
    if aggregate:
        out = _aggregate_scores(out, ddof, order, ["probe"] if "probe" in out.columns else [])
        info["aggregate"] = {"over": "run", "std_ddof": ddof}
    out.attrs = json_safe({**df.attrs, "compression": info})
    return out


def _saturated_rows(group: pd.DataFrame) -> np.ndarray:
    """The table's ``saturated`` flags, else I_XT >= log2(n_samples) − margin."""
    if "saturated" in group.columns:
        return group["saturated"].fillna(False).to_numpy(dtype=bool)
    if "n_samples" not in group.columns:
        return np.zeros(len(group), dtype=bool)
    n = group["n_samples"].to_numpy(dtype=np.float64)
    return group["I_XT"].to_numpy(dtype=np.float64) >= np.log2(n) - _diagnostics.SATURATION_MARGIN_BITS


def _trajectory_score(group: pd.DataFrame, final_epochs: int) -> dict[str, Any]:
    """One trajectory's score; NaN with a ``reason`` when there is no I_XT or its final rows saturate."""
    epochs_ = group["epoch"].to_numpy()
    values = group["I_XT"].to_numpy(dtype=np.float64)
    base = {"bound_XT": group["bound_XT"].iloc[0], "n_epochs": len(values)}
    if np.isnan(values).all():
        return {**base, "peak_epoch": -1, "I_XT_max": math.nan, "I_XT_final": math.nan, "compression": math.nan,
                "compression_fraction": math.nan, "reason": "no I_XT: the estimator reports I(T;Y) only"}
    peak = int(np.nanargmax(values))
    top = float(values[peak])
    final = float(np.nanmean(values[-final_epochs:]))
    fall = top - final
    reason = ""
    saturated = _saturated_rows(group)
    if saturated[-final_epochs:].any():
        fall, reason = math.nan, (
            f"saturated: I_XT within {_diagnostics.SATURATION_MARGIN_BITS} bits of log2 N at "
            f"{int(saturated.sum())} of {len(values)} epochs (a deterministic layer on N distinct inputs); "
            "no compression can be read off. Record noisy layers (Layer(name, noise=...)) and use 'noisy'")
    return {**base, "peak_epoch": int(epochs_[peak]), "I_XT_max": top, "I_XT_final": final, "compression": fall,
            "compression_fraction": fall / top if top > 0 and not math.isnan(fall) else math.nan, "reason": reason}


def _aggregate_scores(per_run: pd.DataFrame, ddof: int, order: Mapping[str, list], probe: list[str]) -> pd.DataFrame:
    quantities = ["compression", "compression_fraction", "I_XT_max", "I_XT_final"]
    extra = {
        "bound_XT": ("bound_XT", "first"),
        "peak_epoch": ("peak_epoch", "median"),
        "peak_epoch_min": ("peak_epoch", "min"),
        "peak_epoch_max": ("peak_epoch", "max"),
        "reason": ("reason", lambda v: "; ".join(sorted({r for r in v if r}))),
    }
    out = mean_sd(per_run, probe + ["layer", "estimator"], quantities, ddof=ddof, extra=extra)
    columns = probe + ["layer", "estimator", "bound_XT", *(c for q in quantities for c in (q, f"{q}_std")),
               "peak_epoch", "peak_epoch_min", "peak_epoch_max", "reason", "n_runs"]
    out = out[columns].astype({"peak_epoch": "float64", "peak_epoch_min": "int64", "peak_epoch_max": "int64"})
    return sort_rows(out, order)
