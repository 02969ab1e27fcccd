"""Optional numba kernels of the k-NN search (private): the max-norm distance block in float32.

torch has no fast kernel for the max norm (``torch.cdist(p=inf)`` runs ~25x slower than the matrix product
of the same size at d = 1,000); this one is a plain triple loop that LLVM vectorises, tiled over columns
so a tile of the transposed right-hand side stays in the L1 cache, parallel over rows. It returns
approximate distances (float32 inputs and arithmetic); the callers (`knn_space`) bound the error and
recompute exactly, in float64, every distance that could decide a neighbour or a count.

numba is optional: `available()` says whether it imports; the callers fall back to torch without it.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["available", "max_block"]

_TILE = 256  # columns per tile
_ROWS = 8  # rows per task: the (8, 256) float32 accumulator (8 KiB) stays in L1 while B^T streams


@functools.lru_cache(maxsize=1)
def _kernel():
    import numba

    @numba.njit(parallel=True, cache=True, boundscheck=False, fastmath=True)
    def max_dist(a, bt, out):  # pragma: no cover - compiled
        c, d = a.shape
        n = bt.shape[1]
        n_tiles = (n + _TILE - 1) // _TILE
        n_groups = (c + _ROWS - 1) // _ROWS
        for task in numba.prange(n_groups * n_tiles):  # (group of rows, tile of columns) in parallel
            i0 = (task // n_tiles) * _ROWS
            i1 = min(i0 + _ROWS, c)
            j0 = (task % n_tiles) * _TILE
            j1 = min(j0 + _TILE, n)
            w = j1 - j0
            acc = np.zeros((_ROWS, w), dtype=np.float32)
            for q in range(d):
                col = bt[q, j0:j1]  # one load of the tile serves every row of the group
                for r in range(i1 - i0):
                    v = a[i0 + r, q]
                    ar = acc[r]
                    for j in range(w):
                        ar[j] = max(ar[j], abs(v - col[j]))
            out[i0:i1, j0:j1] = acc[: i1 - i0]

    return max_dist


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether numba imports (the fast max-norm kernel is used only then)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def max_block(a: np.ndarray, bt: np.ndarray, threads: int) -> np.ndarray:
    """(c, N) float32 max-norm distances between the rows of ``a`` (c, d) and the columns of ``bt`` (d, N),
    both C-contiguous float32; runs on ``threads`` threads."""
    import numba

    out = np.empty((a.shape[0], bt.shape[1]), dtype=np.float32)
    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        _kernel()(a, bt, out)
    finally:
        numba.set_num_threads(old)
    return out
