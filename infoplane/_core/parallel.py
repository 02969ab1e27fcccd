"""Private helpers to run batches of work with joblib on one machine or a dask.distributed cluster.

`run_batches` hides three things the analysis module should not care about: which joblib backend is active
(the one passed as ``backend=``, the user's ``with joblib.parallel_config(...)``, or serial), how many
workers it has (to choose a batch size), and a progress bar that advances as batches finish.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import joblib
from tqdm.auto import tqdm

__all__ = ["backend_context", "is_dask_backend", "n_workers", "split_batches", "run_batches"]

_BACKENDS = ("loky", "threading", "multiprocessing", "dask")


def backend_context(backend: str | None, n_jobs: int | None) -> contextlib.AbstractContextManager:
    """A context in which joblib uses ``backend`` (None: whatever is active, e.g. the user's own config).

    ``backend="dask"`` imports dask.distributed lazily and needs a running ``distributed.Client``.
    """
    if backend is None:
        return contextlib.nullcontext()
    if backend not in _BACKENDS:
        listed = ", ".join(repr(b) for b in (None, *_BACKENDS))
        raise ValueError(f"The 'backend' parameter must be one of {listed}. Got {backend!r} instead.")
    if backend == "dask":
        try:
            import distributed
        except ImportError as exc:
            raise ImportError(
                "backend='dask' needs dask.distributed, an optional extra of infoplane: "
                "pip install 'infoplane[dask]' (or pip install 'dask[distributed]')."
            ) from exc
        try:
            distributed.get_client()
        except ValueError as exc:
            raise ValueError(
                "backend='dask' needs a running dask.distributed Client: create one first, e.g. "
                "client = distributed.Client(distributed.LocalCluster(n_workers=2)) or "
                "distributed.Client('scheduler-address:8786')."
            ) from exc
    kwargs: dict[str, Any] = {"backend": backend}
    if n_jobs is not None:
        kwargs["n_jobs"] = n_jobs
    return joblib.parallel_config(**kwargs)


def is_dask_backend() -> bool:
    """Whether the active joblib backend is dask.distributed's."""
    backend, _ = joblib.parallel.get_active_backend()
    return type(backend).__name__ == "DaskDistributedBackend"


def n_workers(n_jobs: int | None) -> int:
    """How many workers the active backend gives ``n_jobs`` (1 means: run in this process, no joblib)."""
    if is_dask_backend():
        return max(1, joblib.effective_n_jobs(-1 if n_jobs is None else n_jobs))
    if n_jobs is None:
        _, config_n_jobs = joblib.parallel.get_active_backend()
        if config_n_jobs is None:
            return 1
    return max(1, joblib.effective_n_jobs(n_jobs))


def split_batches(items: Sequence[Any], workers: int, *, per_worker: int = 4) -> list[list[Any]]:
    """Cut ``items`` into about ``per_worker`` contiguous batches per worker (fewer when items are few).

    A few batches per worker balance the load while keeping joblib's per-task overhead negligible.
    """
    if not items:
        return []
    n_batches = min(len(items), max(1, workers * per_worker))
    size = math.ceil(len(items) / n_batches)
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def run_batches(
    func: Callable[..., tuple[int, list[Any]]],
    batches: Iterable[tuple[Any, ...]],
    *,
    n_tasks: int,
    n_jobs: int | None,
    workers: int,
    progress: bool,
    desc: str,
) -> list[Any]:
    """Run ``func(*args)`` for each ``args`` of ``batches``; return the concatenated results.

    ``func`` returns ``(n_done, results)``; the progress bar (tqdm, ``n_tasks`` in total) advances by
    ``n_done`` as each batch finishes. ``batches`` may be a generator: joblib consumes it lazily
    (``pre_dispatch``), so only a few batches' arrays exist at once. With ``workers == 1`` the batches run
    in this process, in order, without joblib.
    """
    out: list[Any] = []
    with tqdm(total=n_tasks, desc=desc, unit="task", disable=not progress, leave=False) as bar:
        if workers == 1 and not is_dask_backend():
            results: Iterator[tuple[int, list[Any]]] = (func(*args) for args in batches)
        else:
            parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
            results = parallel(joblib.delayed(func)(*args) for args in batches)
        for n_done, rows in results:
            out.extend(rows)
            bar.update(n_done)
    return out
