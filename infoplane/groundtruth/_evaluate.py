"""Run estimators on the ground-truth tasks: one tidy table of estimate vs truth, in bits."""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from .._core import parallel as _parallel
from .._core.types import json_safe
from .._core.validation import check_bool_param, check_int_param, check_n_jobs
from ._tasks import Task, get_task
from ._tasks import tasks as all_tasks

__all__ = ["evaluate", "default_estimators", "COLUMNS", "flag_reason"]

#: The columns of `evaluate`'s table, in this order.
COLUMNS = ["task", "kind", "dims", "n_samples", "seed", "estimator", "true_bits", "estimate_bits",
           "error_bits", "seconds", "bound", "flagged", "flag_reason"]


def flag_reason(res: Any, caught: Sequence[warnings.WarningMessage] = (), y_dims: int = 1) -> str:
    """Why an estimate should not be trusted as it stands ("" when nothing says so).

    Flagged: ``conventions["reliable"] is False`` (with its ``reliability_note``), a value clipped
    (``conventions["clipped"]``) or capped at H(Y) (``conventions["I_TY_capped"]``), saturated (``conventions["saturated"]``, or I_XT >= log2 N − 0.1 bits: every
    row in its own bin or kernel, as `infoplane.analysis.add_flags` marks it), rows with k identical neighbours
    (``conventions["zero_radius_rows"]`` > 0), a k-NN estimate in too many dimensions for its rows
    (`infoplane.estimators.knn_dimension_rule`; ``y_dims`` columns of y count for KSG), any true
    ``conventions`` key ending in ``_flag``, or a warning the estimator raised while estimating.
    """
    from ..estimators import knn_dimension_rule

    conv = dict(getattr(res, "conventions", {}) or {})
    reasons = []
    n = int(getattr(res, "n_samples", 0) or 0)
    i_xt = float(getattr(res, "I_XT", math.nan))
    if n > 1 and math.isfinite(i_xt) and i_xt >= math.log2(n) - 0.1:
        reasons.append(f"saturated: I_XT = {i_xt:.2f} >= log2 N - 0.1")
    if conv.get("estimator") == "knn" and "n_units" in conv:
        dims = int(conv["n_units"]) + (y_dims if str(conv.get("form", "")).startswith("KSG") else 0)
        rule = knn_dimension_rule(n, dims, int(conv.get("k", 3)))
        reasons += [rule] if rule and rule not in str(conv.get("reliability_note")) else []
    if conv.get("reliable") is False:
        reasons.append(f"unreliable: {conv.get('reliability_note') or 'no reason given'}")
    if conv.get("clipped"):
        reasons.append(f"clipped {conv['clipped']}")
    if conv.get("I_TY_capped"):
        reasons.append("capped at H(Y)")
    if conv.get("saturated"):
        reasons.append("saturated")
    if conv.get("zero_radius_rows"):
        reasons.append(f"{conv['zero_radius_rows']} zero-radius rows")
    reasons += [key for key, value in conv.items() if key.endswith("_flag") and value]
    reasons += [f"warning: {w.message}" for w in caught]
    return "; ".join(reasons)


def _label(est: Any) -> str:
    name = getattr(est, "name", None)
    label = name if isinstance(name, str) and name else type(est).__name__
    bound = _conventions(est).get("bound")
    return f"{label}-{bound}" if isinstance(bound, str) else label


def _conventions(est: Any) -> dict:
    conv = getattr(est, "conventions", None)
    return dict(conv()) if callable(conv) else {}


def _one_estimator(obj: Any, where: str) -> Any:
    if isinstance(obj, str):
        from ..estimators.presets import make_estimator

        return make_estimator(obj)
    if not callable(getattr(obj, "estimate", None)):
        raise TypeError(
            f"{where} must be an estimator with an estimate(t, y) method returning an MIResult, or a preset "
            f"name. Got {type(obj).__name__} {_short_repr(obj)}, which has no callable 'estimate'."
        )
    return obj


def _short_repr(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."


def _resolve(estimators: Any) -> dict[str, Any]:
    """{label: estimator} from one estimator or preset name, a list of them, or a dict {label: estimator}."""
    if isinstance(estimators, Mapping):
        pairs = [(str(label), _one_estimator(obj, f"estimators[{label!r}]")) for label, obj in estimators.items()]
    else:
        single = isinstance(estimators, str) or callable(getattr(estimators, "estimate", None))
        items = [estimators] if single else estimators
        try:
            items = list(items)
        except TypeError:
            raise TypeError(
                "estimators must be an estimator, a preset name, a list of them or a dict {label: estimator}. "
                f"Got {type(estimators).__name__} {_short_repr(estimators)}, which has no callable 'estimate'."
            ) from None
        pairs = []
        for i, obj in enumerate(items):
            est = _one_estimator(obj, f"estimators[{i}]")
            pairs.append((obj if isinstance(obj, str) else _label(est), est))
    if not pairs:
        raise ValueError("estimators must hold at least one estimator. Got none.")
    labels = [label for label, _ in pairs]
    dup = sorted({label for label in labels if labels.count(label) > 1})
    if dup:
        raise ValueError(
            f"estimators must have unique labels; {dup} appear more than once. Pass a dict {{label: estimator}}."
        )
    return dict(pairs)


def _resolve_tasks(tasks: Any) -> list[Task]:
    if tasks is None:
        return all_tasks()
    items = [tasks] if isinstance(tasks, (str, Task)) else list(tasks)
    out = [get_task(t) if isinstance(t, str) else t for t in items]
    for i, t in enumerate(out):
        if not isinstance(t, Task):
            raise TypeError(f"tasks[{i}] must be a task name or a Task. Got {type(t).__name__}.")
    if not out:
        raise ValueError("tasks must select at least one task. Got an empty selection.")
    return out


def _int_list(values: Any, name: str, minimum: int) -> list[int]:
    items = [values] if isinstance(values, int) else list(values)
    if not items:
        raise ValueError(f"The {name!r} parameter of evaluate must hold at least one value. Got {values!r}.")
    return [check_int_param(v, name, "evaluate", minimum=minimum) for v in items]


def _static_skip(est: Any, task: Task) -> str | None:
    """Why ``est`` cannot take ``task`` without trying, or None."""
    if getattr(est, "input_kind", "deterministic") == "gaussian":
        return "input_kind='gaussian': needs a Gaussian layer (mean and log-variance), which no task provides"
    kinds = getattr(est, "y_kinds", None)
    if kinds is not None and task.kind not in kinds:
        return f"declares y_kinds={tuple(kinds)!r}; this task's y is {task.kind!r}"
    return None


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _is_input_check(exc: BaseException) -> bool:
    """A ValueError, or a TypeError raised by infoplane's own code (its input checks): the pair is skipped.

    A TypeError raised anywhere else (a bug in the estimator, or a library it calls) propagates.
    """
    if isinstance(exc, ValueError):
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE + os.sep)


def _estimate_bits(res: Any, label: str) -> float:
    value = getattr(res, "I_TY", None)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or res is None:
        raise TypeError(
            f"estimators[{label!r}].estimate(t, y) returned {type(res).__name__} {_short_repr(res)}; expected an "
            "MIResult with a float I_TY (bits)."
        )
    return float(value)


def _run_batch(batch: list[tuple[Task, int, int]], estimators: dict[str, Any]) -> tuple[int, list[tuple]]:
    """Sample each (task, n, seed) once and run every estimator on it; rows and skips as tagged tuples."""
    out: list[tuple] = []
    for task, n, seed in batch:
        t, y = task.sample(n, seed)
        for label, est in estimators.items():
            reason = _static_skip(est, task)
            if reason is not None:
                out.append(("skip", label, task.name, reason))
                continue
            start = time.perf_counter()
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    res = est.estimate(t, y)
            except (ValueError, TypeError) as exc:
                if not _is_input_check(exc):
                    raise
                out.append(("skip", label, task.name, f"n={n}: estimate() raised {type(exc).__name__}: {exc}"))
                continue
            seconds = time.perf_counter() - start
            value = _estimate_bits(res, label)
            if not math.isfinite(value):
                out.append(("fail", label, task.name, f"n={n}, seed={seed}: estimate() returned I_TY={value} (not finite)"))
                continue
            reason = flag_reason(res, caught, int(y.shape[1]) if y.ndim > 1 else 1)
            out.append(("row", {
                "task": task.name, "kind": task.kind, "dims": task.dims, "n_samples": n, "seed": seed,
                "estimator": label, "true_bits": task.true_bits, "estimate_bits": value,
                "error_bits": value - task.true_bits, "seconds": seconds, "bound": str(res.bound_TY),
                "flagged": bool(reason), "flag_reason": reason,
            }))
    return len(batch), out


def evaluate(
    estimators: Any,
    tasks: Any = None,
    n_samples: int | Sequence[int] = (1000, 4000),
    seeds: Iterable[int] = range(3),
    n_jobs: int | None = None,
    *,
    backend: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Judge estimators on tasks of known mutual information: estimate vs truth of I(T;Y), in bits.

    For every task, sample size and seed, ``task.sample(n, seed)`` draws ``(t, y)`` once and every estimator
    computes ``estimate(t, y)``; its ``I_TY`` is compared with the task's ``true_bits``.

    Parameters
    ----------
    estimators : estimator, preset name, list of those, or dict {label: estimator}
        Any object with ``estimate(t, y)`` returning an `MIResult` (``conventions()`` optional); preset
        names are those of `infoplane.estimators.presets.ESTIMATOR_PRESETS`. Labels: dict keys, preset names, or
        the estimator's ``name`` (plus ``-bound`` for bounded ones), which must be unique.
    tasks : task name, `Task`, or a list of them, optional
        Default: the tasks of `tasks()` (group "default"; pass ``tasks("all")`` for the wide ones too). An unknown name raises `KeyError` listing the available ones.
    n_samples : int or sequence of int
        Sample sizes (rows) to draw, each >= 2.
    seeds : iterable of int
        Seeds of the samples (>= 0); each (task, n, seed) is one sample shared by all estimators.
    n_jobs : int, optional
        Parallel workers over (task, n, seed) samples, as in `information_plane` (joblib; ``-1``: all cores;
        None or 1: serial unless a joblib backend is active).
    backend : {None, "loky", "threading", "multiprocessing", "dask"}
        joblib backend, as in `information_plane`.
    progress : bool
        A tqdm progress bar over the samples.

    Returns
    -------
    pandas.DataFrame
        One row per (task, n_samples, seed, estimator): ``task``, ``kind`` ("continuous" | "labels"),
        ``dims`` (columns of t), ``n_samples``, ``seed``, ``estimator`` (label), ``true_bits``,
        ``estimate_bits`` (the estimator's I_TY), ``error_bits`` (estimate − truth, signed), ``seconds``
        (wall time of that one ``estimate`` call), ``bound`` (the estimator's ``bound_TY``), ``flagged`` (the
        result says not to trust it, see `flag_reason`) and ``flag_reason``. Sorted by task,
        n_samples, seed, estimator (in the orders given). ``attrs``: ``conventions`` {label: dict},
        ``skipped`` {label: {task: reason}} (the first reason met; a reason raised by ``estimate`` names the n, as
        a task may be refused at one n and estimated at another), ``tasks`` {name: kind, true_bits, stderr_bits, dims, family,
        description}, ``estimators``, ``n_samples``, ``seeds``, ``units`` ("bits").

    Notes
    -----
    An estimator cannot take a task when it has ``input_kind="gaussian"`` (it needs a mean and a
    log-variance), when it declares ``y_kinds`` (e.g. ``("labels",)``) without the task's kind, or when its
    ``estimate`` raises `ValueError` or `TypeError` on the task's data (its own input checks: binning and KDE
    reject continuous y; a k-NN estimator needs more than k rows per class). Those pairs are skipped, with
    the reason in ``attrs["skipped"]``, not raised; a `TypeError` raised outside infoplane's own checks (a
    bug in the estimator) and any other exception propagate. An estimate that is NaN or infinite is not put in
    the table: it is listed in ``attrs["failed"]`` {label: {task: reason}} with a RuntimeWarning. An
    ``estimate`` that returns something other than a result with a float ``I_TY`` raises TypeError naming it.
    """
    progress = check_bool_param(progress, "progress", "evaluate")
    est_map = _resolve(estimators)
    task_list = _resolve_tasks(tasks)
    sizes = _int_list(n_samples, "n_samples", 2)
    seed_list = _int_list(seeds, "seeds", 0)
    n_jobs = check_n_jobs(n_jobs, "evaluate")
    plan = [(task, n, seed) for task in task_list for n in sizes for seed in seed_list]
    with _parallel.backend_context(backend, n_jobs):
        workers = _parallel.n_workers(n_jobs)
        batches = ((chunk, est_map) for chunk in _parallel.split_batches(plan, workers))
        results = _parallel.run_batches(_run_batch, batches, n_tasks=len(plan), n_jobs=n_jobs, workers=workers,
                                        progress=progress, desc="ground truth")
    rows = [r[1] for r in results if r[0] == "row"]
    skipped: dict[str, dict[str, str]] = {}
    failed: dict[str, dict[str, str]] = {}
    for kind, label, task, reason in (r for r in results if r[0] in ("skip", "fail")):
        (skipped if kind == "skip" else failed).setdefault(label, {}).setdefault(task, reason)
    for label, by_task in failed.items():
        warnings.warn(
            f"evaluate: estimator {label!r} returned a non-finite estimate on {len(by_task)} task(s) (not finite, "
            f"e.g. {next(iter(by_task))!r}: {next(iter(by_task.values()))}); those estimates are not in the table, "
            "see attrs['failed'].", RuntimeWarning, stacklevel=2,
        )
    df = pd.DataFrame(rows, columns=COLUMNS).astype(
        {"dims": "int64", "n_samples": "int64", "seed": "int64", "true_bits": "float64",
         "estimate_bits": "float64", "error_bits": "float64", "seconds": "float64", "flagged": "bool"})
    rank = {"task": {t.name: i for i, t in enumerate(task_list)}, "estimator": {e: i for i, e in enumerate(est_map)}}
    df = df.sort_values(["task", "n_samples", "seed", "estimator"], kind="stable",
                        key=lambda c: c.map(rank[c.name]) if c.name in rank else c).reset_index(drop=True)
    df.attrs = json_safe({
        "conventions": {label: _conventions(est) for label, est in est_map.items()},
        "skipped": skipped,
        "failed": failed,
        "tasks": {t.name: {"kind": t.kind, "true_bits": t.true_bits, "stderr_bits": t.stderr_bits, "dims": t.dims,
                           "family": t.family, "description": t.description} for t in task_list},
        "estimators": list(est_map),
        "n_samples": sizes,
        "seeds": seed_list,
        "units": "bits",
    })
    return df


def default_estimators() -> dict[str, Any]:
    """Every estimator the suite judges by default, {label: estimator}, each at its default settings.

    The `ESTIMATOR_PRESETS` of `information_plane` by name (binning; KDE with σ² = 1e-3, the SZT net's), and
    ``knn-ross`` (`KNNEstimator()`, k = 3, class labels), ``knn-ksg`` (`KNNEstimator(target="continuous")`,
    KSG with the max-norm), ``critic-infonce`` and ``critic-smile`` (`CriticEstimator`), ``probe``
    (`ProbeEstimator()`). Gaussian-layer estimators (rate, mixture) and `NoisyEstimator` (which needs the
    network itself) take no task.
    """
    from ..estimators import CriticEstimator, KNNEstimator, ProbeEstimator
    from ..estimators.presets import ESTIMATOR_PRESETS, make_estimator

    return {
        **{name: make_estimator(name) for name in ESTIMATOR_PRESETS},
        "knn-ross": KNNEstimator(),
        "knn-ksg": KNNEstimator(target="continuous"),
        "critic-infonce": CriticEstimator("infonce"),
        "critic-smile": CriticEstimator("smile"),
        "probe": ProbeEstimator(),
    }
