"""Pure, vectorised kernels behind the binning and KDE estimators.

No classes, no validation beyond what the math needs: callers (the estimator classes, tests, notebooks)
pass checked arrays. Every function works without Python loops over samples or bins.

Binning side: turn activations into integer bin codes (`digitize_edges`, `digitize_width`,
`digitize_uniform`, `adaptive_edges`), turn rows of codes into one symbol id per row (`row_ids`,
`row_ids_torch`), and compute discrete information from symbol ids (`discrete_information_bits`).

KDE side (in `_kde_kernels`, re-exported here): chunked per-row Gaussian log-sums and the Kolchinsky &
Tracey (2017) bounds built from them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..._core.units import entropy_bits

__all__ = [
    "edge_table",
    "digitize_table",
    "digitize_edges",
    "digitize_width",
    "digitize_uniform",
    "adaptive_edge_ranks",
    "adaptive_edges",
    "adaptive_low",
    "adaptive_ranks",
    "adaptive_codes",
    "row_ids",
    "factorize_int64",
    "row_keys",
    "row_ids_torch",
    "entropy_of_ids_bits",
    "discrete_information_bits",
    "kde_chunk_rows",
    "kde_log_sums",
    "kde_log_sums_multi",
    "kde_information_bits",
]

_INT64_MAX = np.iinfo(np.int64).max
ROW_KEY_LIMIT = 2**53  # integers up to here are exact in float64


# --------------------------------------------------------------------------------------------------
# Binning: activations -> integer codes
# --------------------------------------------------------------------------------------------------
def _out_of_range_error(t: np.ndarray, lo: float, hi: float, name: str) -> ValueError:
    n_out = int(np.count_nonzero((t < lo) | (t > hi)))
    return ValueError(
        f"{name} has {n_out:,} of {t.size:,} values outside the binning range [{lo:g}, {hi:g}] "
        f"(min {float(t.min()):g}, max {float(t.max()):g}); widen the range or use out_of_range='clip'."
    )


def edge_table(edges: np.ndarray, dtype: Any) -> tuple[np.ndarray, Any] | None:
    """Edges for exact comparisons in ``dtype`` and 1 / step, or None when `digitize_table` does not apply.

    For a value ``t`` of a float dtype and a float64 edge ``e``, ``t >= e`` holds exactly when
    ``t >= ceil(e)``, ``ceil(e)`` being the smallest value of the dtype that is >= e. So comparing float32
    activations with the ceiled float32 edges gives bit for bit the float64 comparisons of np.digitize,
    at half the memory traffic. Applies (returns the table) when ``dtype`` is float32 or float64, the
    ceiled edges are finite and strictly increasing, at most 2**16 + 1 of them, and each lies within a
    quarter step of the uniform grid through its end points (``np.linspace`` edges do); `digitize_table`
    relies on that.
    """
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        return None
    e = np.asarray(edges, dtype=np.float64)
    n = e.size
    with np.errstate(over="ignore"):
        table = e.astype(dt)
    below = table.astype(np.float64) < e
    table[below] = np.nextafter(table[below], dt.type(np.inf))
    if n < 2 or n > 2**16 + 1 or not np.all(np.isfinite(table)) or np.any(np.diff(table) <= 0):
        return None
    lo, hi = float(table[0]), float(table[-1])
    step = (hi - lo) / (n - 1)
    with np.errstate(over="ignore", divide="ignore"):
        inv_step = dt.type(1.0 / step)
        span = table[-1] - table[0]  # t − lo, computed in dtype, must not overflow either
    # Written so that NaN/inf anywhere fails: the error bound of digitize_table needs a normal inv_step.
    ok = np.isfinite(span) and np.finfo(dt).tiny <= inv_step < np.inf
    if not (ok and np.abs(table - (lo + step * np.arange(n))).max() <= 0.25 * step):
        return None
    return table, inv_step


def digitize_table(t: np.ndarray, table: np.ndarray, inv_step: Any) -> np.ndarray:
    """``np.digitize(clip(t, edges[0], edges[-1]), edges)`` as int32, for ``(table, inv_step) = edge_table``.

    ``t`` must have the table's dtype. Exact, not approximate: with ``g = (t − table[0]) · inv_step``
    and ``k = rint(g)``, g is off the exact grid position (t − table[0]) / step by < 0.012 bins (three
    roundings, relative error < 3·2**−24 in float32, on g <= 2**16) and every edge is within a quarter
    step of the grid, so t lies in ``[table[k−1], table[k+1])``; one comparison with ``table[k]`` then
    decides between codes k and k + 1. Clipping to ``[table[0], table[-1]]`` is clipping to the given
    range (no dtype value lies strictly between an edge and its ceiling).
    """
    lo, hi = table[0], table[-1]
    clipped = np.clip(t, lo, hi)
    g = clipped - lo  # >= 0
    g *= inv_step
    k = np.rint(g, out=g).astype(np.int32)
    k += clipped >= table.take(k)
    return k


def digitize_edges(t: np.ndarray, edges: np.ndarray, out_of_range: str = "clip", *, name: str = "t") -> np.ndarray:
    """Bin codes by ``np.digitize(t, edges)``, the Shwartz-Ziv & Tishby (2017) convention.

    With ``n = len(edges)`` the codes are 1…n: code k (1 <= k < n) is ``edges[k-1] <= t < edges[k]`` and
    code n is ``t == edges[-1]`` (np.digitize gives the last edge its own symbol, as the original code does).
    Values outside ``[edges[0], edges[-1]]`` are clipped onto the range first (``out_of_range="clip"``: below
    joins code 1, above joins code n) or raise (``"raise"``). The original code instead maps values below
    ``edges[0]`` to the top symbol (``bins[digitize - 1]`` with index −1): a bug we do not reproduce.

    Comparisons are made in float64 against the edges as given; pass float32 edges to reproduce float32
    comparisons bit for bit. Near-uniform edges (linspace) take the arithmetic `digitize_table` path,
    about 20x faster than np.digitize's binary search per value and exactly equal to it.
    """
    edges = np.asarray(edges, dtype=np.float64)
    lo, hi = float(edges[0]), float(edges[-1])
    t = np.asarray(t)
    if t.dtype not in (np.float32, np.float64):
        t = t.astype(np.float64)  # exact for every float and int that check_activations lets through
    if out_of_range == "raise" and t.size and (float(t.min()) < lo or float(t.max()) > hi):
        raise _out_of_range_error(t.astype(np.float64), lo, hi, name)  # float64: exact counts
    plan = edge_table(edges, t.dtype)
    if plan is None and t.dtype == np.float32:
        t, plan = t.astype(np.float64), edge_table(edges, np.float64)
    if plan is not None:
        return digitize_table(t, *plan).astype(np.int64)
    return np.digitize(np.clip(t.astype(np.float64), lo, hi), edges).astype(np.int64, copy=False)


def digitize_width(t: np.ndarray, width: float) -> np.ndarray:
    """Bin codes ``floor(t / width)`` (Saxe et al. 2018): unbounded, no range, bins anchored at 0.

    Raises ValueError when a code does not fit in int64 (distinct values would silently share a bin).
    """
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is checked (and named) just below
        codes = np.floor(np.asarray(t, dtype=np.float64) / width)
    if codes.size:
        check_width_codes(float(codes.min()), float(codes.max()), width)
    return codes.astype(np.int64)


def check_width_codes(lo: float, hi: float, width: float) -> None:
    """Raise unless the codes ``floor(t / width)`` in [lo, hi] are integers int64 can hold."""
    if not (-(2.0**63) <= lo and hi < 2.0**63):
        raise ValueError(
            f"The 'bin_width' parameter of BinningEstimator is too small for these activations: the bin codes "
            f"floor(t / bin_width) reach {max(abs(lo), abs(hi)):.3g}, beyond int64 (|code| < 2^63 = 9.2e18), "
            f"so distinct values would share one bin. Use a bin_width larger than {width!r}."
        )


def digitize_uniform(
    t: np.ndarray, n_bins: int, lo: float, hi: float, out_of_range: str = "clip", *, name: str = "t"
) -> np.ndarray:
    """Codes 0…n_bins−1 of ``n_bins`` equal-width bins on ``[lo, hi]`` (last bin closed, as np.histogram).

    ``lo == hi`` (a constant layer under a data range) puts everything in bin 0.
    """
    t64 = np.asarray(t, dtype=np.float64)
    if out_of_range == "raise" and t64.size and (t64.min() < lo or t64.max() > hi):
        raise _out_of_range_error(t64, lo, hi, name)
    if hi <= lo:
        return np.zeros(t64.shape, dtype=np.int64)
    codes = np.floor((t64 - lo) * (n_bins / (hi - lo)))
    return np.clip(codes, 0, n_bins - 1).astype(np.int64)


def adaptive_edge_ranks(m: int, n_bins: int) -> np.ndarray:
    """Ranks (0-based, in the sorted values) of the ``n_bins − 1`` interior equal-mass edges among ``m`` values.

    ``floor(k m / n_bins)`` for k = 1…n_bins − 1. With bins ``[edge_k, edge_{k+1})`` each holds exactly
    m / n_bins values when that divides and there are no ties. Integer arithmetic, so every backend (numpy,
    torch on any device) picks the same order statistics.
    """
    return (np.arange(1, n_bins, dtype=np.int64) * m) // n_bins


def adaptive_low(lowest: float) -> float:
    """The bottom edge of Chelombiev et al.'s (2019) adaptive bins, from the layer's lowest value.

    Their code takes it from the activation: 0 for ReLU and softplus, −1.000001 for tanh. From the data:
    0 when every value is >= 0 (the zeros of a ReLU layer then fill the bin [0, smallest positive value) alone),
    −1.000001 when every value is > −1.000001 (tanh: that bin is empty), else the lowest value itself (a layer
    unbounded below: its minimum gets the bin of its own, as ReLU's zeros do).
    """
    if lowest >= 0.0:
        return 0.0
    return -1.000001 if lowest > -1.000001 else float(lowest)


def adaptive_ranks(m: int, n_bins: int) -> np.ndarray:
    """Chelombiev et al.'s ranks among ``m`` sorted distinct values: ``int(k * (m / n_bins))``, k = 0…n_bins − 1.

    The same float arithmetic as their ``int(k*(unique.size/num_of_bins))``, so the same order statistics.
    """
    return (np.arange(n_bins, dtype=np.float64) * (m / n_bins)).astype(np.int64)


def adaptive_edges(t: np.ndarray, n_bins: int, *, distinct: bool = True) -> np.ndarray:
    """Interior edges over all of a layer's activation values pooled over units, as data values.

    ``distinct=True`` (``strategy="adaptive"``): Chelombiev et al.'s (2019) rule exactly (their
    ``set_up_bins(..., per_layer_bins=True, maxentropy=True)``): with ``low = adaptive_low(min)`` and u the sorted
    distinct values other than ``low``, the edges are ``[low, u[r_0], …, u[r_{n_bins−1}], u[−1]]`` at the ranks
    r_k of `adaptive_ranks` (r_0 = 0), and a value's symbol is the last edge <= it (``np.digitize``). So the
    lowest value (ReLU's zeros) has a bin of its own below u[0], n_bins bins hold about m / n_bins distinct
    values each, and the maximum u[−1] is a symbol of its own: up to n_bins + 2 occupied bins per unit (ReLU),
    n_bins + 1 (tanh, whose bottom bin is empty). Ties cost no bins. Returned: the edges after ``low`` (every
    value is >= low), deduplicated.

    ``distinct=False`` (``strategy="quantile"``): equal-mass edges, order statistics of all values at the ranks
    `adaptive_edge_ranks`; repeated edges collapse, so a layer with many tied values gets fewer bins. No
    interpolation either way: reproducible bit for bit. Codes come from `adaptive_codes`.
    """
    flat = np.asarray(t, dtype=np.float64).ravel()
    if distinct:
        values = np.unique(flat)
        values = values[values != adaptive_low(float(values[0]))]
        if values.size == 0:
            return values
        return np.unique(np.append(values[adaptive_ranks(values.size, n_bins)], values[-1]))
    ranks = adaptive_edge_ranks(flat.size, n_bins)
    return np.unique(np.partition(flat, ranks)[ranks])


def adaptive_codes(t: np.ndarray, interior_edges: np.ndarray) -> np.ndarray:
    """Codes of ``t`` against interior edges: bin k is ``[edge_{k-1}, edge_k)``, the end bins open."""
    return np.searchsorted(interior_edges, np.asarray(t, dtype=np.float64), side="right").astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Binning: rows of codes -> one symbol id per row
# --------------------------------------------------------------------------------------------------
def row_ids(codes: np.ndarray, lo: int | None = None, hi: int | None = None) -> tuple[np.ndarray, int]:
    """One symbol id per row of an integer code matrix: equal rows share an id.

    Returns ``(ids, n_distinct)`` with ids in 0…n_distinct−1 (numbered in order of first appearance).
    Codes lie in [lo, hi] (computed if not given, e.g. known from the binning scheme). As many columns as
    fit are packed into one int64 key (mixed radix hi − lo + 1) and factorised by hashing; wider rows are
    handled block by block, each block's key prefixed by the previous ids (< n rows), so any width works
    in O(n·d) without sorting rows or viewing them as bytes.
    """
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[:, None]
    n, d = codes.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    if lo is None or hi is None:
        lo, hi = int(codes.min()), int(codes.max())
    radix = hi - lo + 1
    ids, n_ids, col = np.zeros(n, dtype=np.int64), 1, 0
    while col < d:  # loop over blocks of columns (units), never over samples
        k, size = 0, n_ids
        while col + k < d and size * radix <= 2**62:
            size *= radix
            k += 1
        k = max(k, 1)  # radix alone always fits: codes are int64
        block = codes[:, col : col + k].astype(np.int64) - lo
        key = ids * (radix**k) if n_ids > 1 else np.zeros(n, dtype=np.int64)
        if k > 1:
            key += block @ (radix ** np.arange(k - 1, -1, -1, dtype=np.int64))
        else:
            key += block[:, 0]
        ids, n_ids = factorize_int64(key)
        col += k
    return ids, n_ids


def factorize_int64(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ids 0…k−1 (in order of first appearance) of an int64 key vector, and k.

    A small key range is relabelled by a bincount table, anything else by pandas' hash table: both O(N),
    where np.unique would sort (3x slower at N = 4,096).
    """
    keys = np.asarray(keys, dtype=np.int64)
    if keys.size == 0:
        return keys.copy(), 0
    lo, hi = int(keys.min()), int(keys.max())
    if hi - lo <= 4 * keys.size + 1024:
        present = np.zeros(hi - lo + 1, dtype=np.int64)
        present[keys - lo] = 1
        table = np.cumsum(present) - 1
        return table[keys - lo], int(table[-1]) + 1
    import pandas as pd

    ids, uniques = pd.factorize(keys, sort=False)
    return np.asarray(ids, dtype=np.int64), int(len(uniques))


def row_keys(codes: np.ndarray, radix: int) -> np.ndarray:
    """One int64 key per row of codes in 0…radix−1: ``Σ_j codes[:, j] · radix**(d−1−j)``.

    Equal rows get equal keys (and keys sort rows lexicographically). One float64 matrix-vector product,
    exact because every partial sum is an integer below ``radix**d``, which must be <= ROW_KEY_LIMIT
    (2**53); wider rows need `row_ids`.
    """
    d = codes.shape[1]
    if radix**d > ROW_KEY_LIMIT:
        raise ValueError(f"row_keys needs radix**d <= 2**53; got radix {radix}, d {d}. Use row_ids.")
    powers = float(radix) ** np.arange(d - 1, -1, -1)
    return (codes @ powers).astype(np.int64)


def row_ids_torch(codes: Any) -> tuple[Any, int]:
    """`row_ids` for a torch integer tensor, computed on the tensor's device (GPU stays GPU)."""
    import torch

    codes = codes.to(torch.int64)
    if codes.ndim == 1:
        codes = codes[:, None]
    lo, hi = int(codes.min()), int(codes.max())
    radix, d = hi - lo + 1, codes.shape[1]
    if radix ** d <= 2**62:
        strides = torch.as_tensor(radix ** np.arange(d - 1, -1, -1, dtype=np.int64), device=codes.device)
        uniq, ids = torch.unique(((codes - lo) * strides).sum(dim=1), return_inverse=True)
    else:
        uniq, ids = torch.unique(codes, dim=0, return_inverse=True)
    return ids.reshape(-1), int(uniq.shape[0])


def entropy_of_ids_bits(*ids: np.ndarray) -> float:
    """Plug-in joint entropy in bits of one or more aligned symbol-id vectors (each in 0…max)."""
    n = ids[0].shape[0]
    key = np.zeros(n, dtype=np.int64)
    size = 1
    for a in ids:  # loop over the few variables, not samples
        m = int(a.max()) + 1 if n else 1
        if size * m > 2**62:  # re-index to keep the combined key small
            _, key = np.unique(key, return_inverse=True)
            key = key.reshape(-1).astype(np.int64)
            size = int(key.max()) + 1
        key = key * m + a
        size *= m
    if size <= 4 * n + 1024:
        counts = np.bincount(key, minlength=0)
    else:
        _, counts = np.unique(key, return_counts=True)
    return entropy_bits(counts)


def discrete_information_bits(
    t_ids: np.ndarray, y_ids: np.ndarray, x_ids: np.ndarray | None = None
) -> tuple[float, float, float]:
    """I(T;X), I(T;Y) and H(T) in bits from symbol ids, under the empirical distribution over rows.

    Formulas (plug-in): I(T;Y) = H(T) + H(Y) − H(T,Y) = H(T) − Σ_y p(y) H(T|Y=y).
    With ``x_ids=None`` every row is its own input, so H(T|X) = 0 and I(T;X) = H(T); otherwise
    I(T;X) = H(T) + H(X) − H(T,X) = H(T) − H(T|X).
    """
    n = t_ids.shape[0]
    n_t, n_y = int(t_ids.max()) + 1, int(y_ids.max()) + 1
    h_t = entropy_bits(np.bincount(t_ids))
    h_y = entropy_bits(np.bincount(y_ids))
    if n_t * n_y <= 8 * n + 1024:
        h_ty = entropy_bits(np.bincount(t_ids * n_y + y_ids))
    else:
        h_ty = entropy_of_ids_bits(t_ids, y_ids)
    i_ty = h_t + h_y - h_ty
    if x_ids is None:
        i_xt = h_t
    else:
        i_xt = h_t + entropy_of_ids_bits(x_ids) - entropy_of_ids_bits(t_ids, x_ids)
    # Round-off of a few ulps must not produce -1e-16 bits.
    return max(i_xt, 0.0), max(i_ty, 0.0), max(h_t, 0.0)


# KDE kernels live in their own module; re-exported here for callers of the combined kernel namespace.
from .kde import kde_chunk_rows, kde_information_bits, kde_log_sums, kde_log_sums_multi  # noqa: E402
