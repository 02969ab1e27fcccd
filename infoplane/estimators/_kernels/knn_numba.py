"""Optional numba kernels of the k-NN search (private): float32 max-norm blocks and fused row scans.

The compiled code is in `knn_jit` (imported here lazily, so that ``import infoplane`` does not load numba);
these wrappers size the outputs, run the kernels on torch's number of threads and gather the bands.

Max-norm distances (torch has no fast kernel: ``torch.cdist(p=inf)`` runs ~25x slower than the matrix
product of the same size at d = 1,000) come from one of two kernels with identical float32 values (|a − b|
is rounded once and a maximum is exact, so the loop order changes nothing):

- from `PAIRS_MIN_DIM` dimensions on, 4 × 4 register tiles of (row, column) pairs, each a maximum over the
  coordinates that LLVM vectorises, the columns taken in chunks that stay in the L2 cache: about 1.5–2x the
  float32 matrix product of the same shape (one core, d = 100–1,000);
- below, a kernel vectorised over the columns, an (8, 256) accumulator tile kept in L1.

The row scans (`ross_scan`, `ksg_scan`) read each row of a block twice while it is in the cache (its k-th
neighbour, then the entries inside, outside or in the error band around it) in one parallel region, and
replace torch's ``topk``, masks, comparisons and ``nonzero`` over the whole block (each a pass through
memory and a parallel region). The callers (`knn`) recompute exactly, in float64, every distance of the
bands, which alone can decide a neighbour or a count.

numba is optional: `available()` says whether it imports; the callers fall back to torch without it.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["available", "threads", "max_block", "ross_scan", "ksg_scan", "PAIRS_MIN_DIM", "BAND_CAPACITY"]

PAIRS_MIN_DIM = 16  # from here on the pair kernel beats the column-vectorised one (one core, this CPU)
BAND_CAPACITY = 32  # band entries per row gathered in the first pass; wider rows are scanned again


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether numba imports (the fast kernels are used only then)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _jit():
    from . import knn_jit

    return knn_jit


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """numba's kernels on ``n`` threads (at most numba's pool) inside the block, restored afterwards."""
    import numba

    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(old)


def max_block(a: np.ndarray, b: np.ndarray, bt: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    """(c, N) float32 max-norm distances between the rows of ``a`` (c, d) and of ``b`` (N, d), into ``out``.

    All C-contiguous float32; ``bt`` (``b.T`` made contiguous) is used below `PAIRS_MIN_DIM` dimensions.
    """
    if a.shape[1] >= PAIRS_MIN_DIM or bt is None:
        _jit().max_dist_pairs(a, b, out)
    else:
        _jit().max_dist_tiles(a, bt, out)
    return out


def _banded(run: Callable[..., None], c: int, counts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Run a scanning kernel ``run(sel, *counts, band, n_band)`` on all c rows with `BAND_CAPACITY` band
    slots per row, then again on the rows whose band overflowed (ties at the radius) with room for all of
    it. Returns the band as (block row, code), row by row in ascending order."""
    n_band = np.empty(c, dtype=np.int64)
    band = np.empty((c, BAND_CAPACITY), dtype=np.int64)
    run(slice(None), *counts, band, n_band)
    width = np.minimum(n_band, BAND_CAPACITY)
    over = np.flatnonzero(n_band > BAND_CAPACITY)
    if over.size:
        wide = np.empty((over.size, int(n_band[over].max())), dtype=np.int64)
        run(over, *(np.empty(over.size, dtype=x.dtype) for x in counts), wide, np.empty(over.size, np.int64))
        band = np.concatenate([band, np.empty((c, wide.shape[1] - BAND_CAPACITY), dtype=np.int64)], axis=1)
        band[over] = wide
        width = n_band
    row, col = np.nonzero(np.arange(band.shape[1])[None, :] < width[:, None])
    return row, band[row, col]


def ross_scan(blk: np.ndarray, rows: np.ndarray, sq: np.ndarray, gram: bool, start: np.ndarray,
              stop: np.ndarray, k: int, bound: tuple[float, float, float]):
    """Per row of the block: the approximate k-th neighbour within the class (data rows sorted by class:
    row i's class is the columns ``start[i] <= j < stop[i]``), its error band, the entries certainly inside
    it (all: ``n_lo``, of the class: ``n_same``) and the band as (block row, column) pairs.

    ``bound`` = (E, eps_in, tau0) of the space (`knn_space.Space.bound`). Returns (n_lo, n_same, i, j).
    """
    jit = _jit()
    c = blk.shape[0]
    counts = [np.empty(c, dtype=np.int64), np.empty(c, dtype=np.int64)]

    def run(sel, n_lo, n_same, band, n_band):
        jit.ross_rows(blk[sel], rows[sel], sq, gram, start, stop, k, *bound, n_lo, n_same, band, n_band)

    i, j = _banded(run, c, counts)
    return counts[0], counts[1], i, j


def ksg_scan(blk: np.ndarray, rows: np.ndarray, sq: np.ndarray, gram: bool, b1: np.ndarray, k: int,
             bound: tuple[float, float, float]):
    """KSG with a one-dimensional b1 (see `knn_jit.ksg_rows`). Returns (r_apx, n_joint, n_a, i, j,
    a_undecided): the approximate joint radii, the counts certainly inside, and the band."""
    jit = _jit()
    c = blk.shape[0]
    counts = [np.empty(c), np.empty(c, dtype=np.int64), np.empty(c, dtype=np.int64)]

    def run(sel, r_apx, n_joint, n_a, band, n_band):
        jit.ksg_rows(blk[sel], rows[sel], sq, gram, b1, k, *bound, r_apx, n_joint, n_a, band, n_band)

    i, code = _banded(run, c, counts)
    undecided = code >= 0
    return (*counts, i, np.where(undecided, code, -code - 1), undecided)
