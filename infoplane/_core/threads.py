"""The one place infoplane sets torch's intra-op thread count: a context manager that restores it."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (None: leave it as it is), then restore the caller's.

    Small networks and small matrices are faster on one thread than on several, and far faster on a busy
    machine (thread hand-offs dominate tiny products), so training loops here ask for 1.
    """
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
