"""The one place infoplane sets torch's intra-op thread count and seeds torch's global generator.

Both are process-wide state. `information_plane` may run estimators in several Python threads at once
(joblib's threading backend), so both context managers here are safe across threads: the thread count is
restored when the last thread that asked for it leaves, and a seeded draw from the global generator holds a
lock, so that another thread cannot reseed it halfway (the same seed then gives the same weights whatever
runs beside it: serial and parallel runs give the same table).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

__all__ = ["torch_threads", "outer_threads", "seeded_global_rng"]

_THREADS_LOCK = threading.Lock()
_THREADS_USERS = 0
_THREADS_SAVED = 0
_THREADS_STACK = threading.local()  # each thread's requested counts, innermost last
_RNG_LOCK = threading.RLock()


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (None: leave it as it is), then restore the caller's.

    Small networks and small matrices are faster on one thread than on several, and far faster on a busy
    machine (thread hand-offs dominate tiny products), so training loops here ask for 1. Nested blocks
    restore the enclosing block's count; across Python threads the count from before the first block is
    restored when the last of them leaves (not when the first does, which would change the count under the
    others' feet).
    """
    global _THREADS_USERS, _THREADS_SAVED
    if n is None:
        yield
        return
    stack = _THREADS_STACK.__dict__.setdefault("counts", [])
    with _THREADS_LOCK:
        if _THREADS_USERS == 0:
            _THREADS_SAVED = torch.get_num_threads()
        _THREADS_USERS += 1
        stack.append(int(n))
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_USERS -= 1
            stack.pop()
            if _THREADS_USERS == 0:
                torch.set_num_threads(_THREADS_SAVED)
            elif stack:
                torch.set_num_threads(stack[-1])


def outer_threads() -> int:
    """torch's intra-op thread count as the caller set it, outside every `torch_threads` block (inside one,
    the count saved when the first block began): what an estimator that uses all of the user's threads asks
    for, whatever other Python threads have set meanwhile."""
    with _THREADS_LOCK:
        return _THREADS_SAVED if _THREADS_USERS else torch.get_num_threads()


@contextlib.contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Draw from torch's global CPU generator seeded with ``seed`` (e.g. a module's initial weights), then put
    the caller's generator state back; one thread at a time."""
    with _RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
