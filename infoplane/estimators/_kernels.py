"""Pure, vectorised kernels behind the binning and KDE estimators.

No classes, no validation beyond what the math needs: callers (the estimator classes, tests, notebooks)
pass checked arrays. Every function works without Python loops over samples or bins.

Binning side: turn activations into integer bin codes (`digitize_edges`, `digitize_width`,
`digitize_uniform`, `adaptive_edges`), turn rows of codes into one symbol id per row (`row_ids`,
`row_ids_torch`), and compute discrete information from symbol ids (`discrete_information_bits`).

KDE side: `kde_log_sums` computes, in bounded-memory chunks and with float64 accumulation, the per-row
log-sums ``ln Σ_j exp(-D_ij / (2 s²))`` over all rows, over rows of the same class and over rows of the same
input, from which `kde_information_bits` forms the Kolchinsky & Tracey (2017) bounds.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._units import LN2, entropy_bits

__all__ = [
    "edge_table",
    "digitize_table",
    "digitize_edges",
    "digitize_width",
    "digitize_uniform",
    "adaptive_edge_ranks",
    "adaptive_edges",
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


def adaptive_edges(t: np.ndarray, n_bins: int, *, distinct: bool = True) -> np.ndarray:
    """Interior edges over all of a layer's activation values pooled over units, as data values.

    ``distinct=True`` (``strategy="adaptive"``, Chelombiev et al. 2019): an equal number of *distinct* values
    in each bin, the edges being the sorted distinct values at ranks `adaptive_edge_ranks` (m distinct values:
    about m / n_bins each), so ties (e.g. the zeros of a sparse ReLU layer, saturated tanh units) are one
    value and cost no bins: n_bins bins whenever m >= n_bins. ``distinct=False`` (``strategy="quantile"``):
    equal-mass edges, order statistics of all values at those ranks; repeated edges collapse, so a layer with
    many tied values gets fewer bins. No interpolation either way: reproducible bit for bit. Codes come from
    `adaptive_codes`.
    """
    flat = np.asarray(t, dtype=np.float64).ravel()
    if distinct:
        values = np.unique(flat)
        return np.unique(values[adaptive_edge_ranks(values.size, n_bins)])
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


# --------------------------------------------------------------------------------------------------
# KDE: chunked Gaussian-mixture log-sums
# --------------------------------------------------------------------------------------------------
def kde_chunk_rows(n: int, memory_mb: float, n_temporaries: int = 4) -> int:
    """Rows per chunk so that ``n_temporaries`` float64 (chunk, n) matrices fit in ``memory_mb``."""
    rows = int(memory_mb * 2**20 // (8 * max(n, 1) * n_temporaries))
    return max(1, min(n, rows))


#: exp(-x) for x > this is below float32's smallest normal number: such terms are dropped (< 1e-38 each,
#: relative to a sum >= 1), which keeps the kernel out of slow subnormal arithmetic.
_EXP_CUTOFF = 87.0
#: Columns per float32 partial sum (a matrix product with the one-hot labels); partial sums add in float64.
_SUM_BLOCK = 64


def _kde_prepare(h: Any, s_min: float) -> tuple[Any, float]:
    """Centred rows scaled to a largest norm of 1 (float64, torch), and the factor turning their squared
    distances into exponents ``D_ij / s_min`` (capped at 1e300: rows that far apart contribute exp(-inf) = 0).

    Centring and scaling change no distance ratio, only the conditioning: values of 1e6 or 1e300 give the
    same exponents as values of 1, and the squares cannot overflow.
    """
    import torch

    if isinstance(h, np.ndarray) and not h.flags.writeable:
        h = np.array(h)  # store arrays are read-only; torch warns on those (the float64 copy follows anyway)
    h = torch.as_tensor(h).to(torch.float64)
    h = h - h.mean(dim=0, keepdim=True)
    big = float(h.abs().max()) if h.numel() else 0.0
    if big == 0.0:
        return h, 0.0
    h = h / big
    norm = float(torch.linalg.vector_norm(h, dim=1).max())
    h = h / norm
    with np.errstate(over="ignore"):
        factor = float(np.minimum((np.float64(big) * np.float64(norm)) ** 2 / s_min, 1e300))
    return h, factor


def _powers(scales: Sequence[float]) -> tuple[float, list[int | None]]:
    """The largest scale, and per scale the integer power m (<= 8) with exp(-D/s) = exp(-D/s_max)**m, or None."""
    s_max = max(scales)
    out: list[int | None] = []
    for s in scales:
        m = s_max / s
        out.append(int(round(m)) if abs(m - round(m)) < 1e-12 and 1 <= round(m) <= 8 else None)
    return s_max, out


def kde_log_sums_multi(
    h: Any,
    scales: Sequence[float],
    y_ids: Any = None,
    x_ids: Any = None,
    *,
    memory_mb: float = 256.0,
) -> list[dict[str, Any]]:
    """`kde_log_sums` for several scales in one pass over the pairs: one distance matrix, shared.

    For each scale s in ``scales`` a dict with ``"all"`` (and ``"class"``, ``"input"`` when ``y_ids``/``x_ids``
    are given) of per-row ``L_i = ln Σ_j exp(−D_ij / s)``, float64 tensors on h's device. Scales that are
    the largest one divided by an integer m <= 8 (the pairwise-KL scale 2σ² is the Bhattacharyya 8σ² over 4)
    cost no exponential: exp(−D/s) = exp(−D/s_max)^m by repeated multiplication.

    Precision, chosen so that every value stays within 1e-6 nats (observed ~1e-7) of a float64 evaluation:

    - distances ``‖a‖² + ‖b‖² − 2ab`` in float64 on centred rows scaled to unit largest norm (float32 Gram
      products are not accurate enough: on clustered rows away from the centre they were off by 1e-4 bits
      at d = 1,000), the diagonal forced to exactly 0; when the rows span so many noise widths that float64
      rounding matters, the close pairs are recomputed by exact differences (`_refine_close_pairs`);
    - exponents rounded to float32 and exponentiated in float32 (relative error of each term a few ulps times
      its exponent: < 1e-6 for the terms that matter), exponents capped at 87
      (terms below e^-87 ≈ 1.6e-38 count as 1.6e-38: against a sum >= 1 that is nothing, and it keeps the
      arithmetic out of slow subnormal numbers);
    - sums as float32 matrix products with the one-hot labels over blocks of at most 64 columns,
      accumulated in float64; ``"all"`` is the float64 sum of the per-class sums.

    Memory is O(n · chunk): one float64 and two float32 (chunk, n) buffers, reused, within ``memory_mb``.
    """
    import torch

    scales = [float(s) for s in scales]
    s_max, powers = _powers(scales)
    s_min = min(scales)
    h, factor = _kde_prepare(h, s_min)
    n, dev = h.shape[0], h.device
    to_base = factor * s_min / s_max  # D' -> exponent at the largest scale
    y_t = torch.zeros(n, dtype=torch.int64, device=dev) if y_ids is None else (
        torch.as_tensor(np.asarray(y_ids), device=dev).to(torch.int64))
    x_t = None if x_ids is None else torch.as_tensor(np.asarray(x_ids), device=dev).to(torch.int64)
    # A canonical row order (a seeded random projection, ties by label and input): float32 partial sums
    # depend on the order of terms, so this makes the results bitwise invariant to permuting the rows.
    key = h @ torch.as_tensor(np.random.default_rng(0).normal(size=h.shape[1]), dtype=h.dtype, device=dev)
    lex = [key.cpu().numpy(), y_t.cpu().numpy()] + ([] if x_t is None else [x_t.cpu().numpy()])
    order = torch.as_tensor(np.lexsort(lex[::-1]), device=dev)
    h, y_t, sq_order = h[order], y_t[order], order
    x_t = None if x_t is None else x_t[order]
    onehot = torch.nn.functional.one_hot(y_t).to(torch.float32)
    full = n - n % _SUM_BLOCK
    blocked = (onehot[:full].reshape(full // _SUM_BLOCK, _SUM_BLOCK, onehot.shape[1]), onehot[full:])
    sq = (h * h).sum(dim=1)
    outs = [{k: torch.empty(n, dtype=torch.float64, device=dev) for k in ("all", "class", "input")}
            for _ in scales]
    chunk = kde_chunk_rows(n, memory_mb, n_temporaries=3 if x_ids is None else 4)
    # One product gives minus the exponents: [h_i, ‖h_i‖², 1] · to_base [2 h_j, −1, −‖h_j‖²] = −D'_ij to_base.
    # Its float64 error on unit-norm rows is at most (d + 2) u64 times the sum of the terms' sizes (<= 4):
    # (For wide rows, d > 256, the two augmented copies would cost 2 N d floats: there the norms are added
    # to the product instead, one more pass over the (chunk, n) block.)
    narrow = h.shape[1] <= 256
    if narrow:
        rows_a = torch.cat([h, sq[:, None], torch.ones_like(sq)[:, None]], dim=1)
        rows_b = torch.cat([2.0 * h, -torch.ones_like(sq)[:, None], -sq[:, None]], dim=1).mul_(to_base).T
    slack = to_base * 4 * (h.shape[1] + 2) * 2.0**-53
    buf64 = torch.empty((chunk, n), dtype=torch.float64, device=dev)
    bufs32 = [torch.empty((chunk, n), dtype=torch.float32, device=dev) for _ in range(2)]
    for start in range(0, n, chunk):  # loop over chunks of rows, each a vectorised (chunk, n) block
        stop = min(start + chunk, n)
        e = buf64[: stop - start]
        if narrow:
            torch.mm(rows_a[start:stop], rows_b, out=e)  # minus the exponent at the largest scale
        else:
            torch.add(sq[start:stop, None], sq[None, :], alpha=1.0, out=e)
            e.addmm_(h[start:stop], h.T, beta=-to_base, alpha=2.0 * to_base)
        idx = torch.arange(start, stop, device=dev)
        e[idx - start, idx] = 0.0  # exactly 0 in exact arithmetic; every row's sum holds exp(0) = 1
        if slack > 1e-9:
            _refine_close_pairs(e, h, start, to_base, slack)
        e.clamp_(min=-_EXP_CUTOFF, max=0.0)
        base = bufs32[0][: stop - start]
        base.copy_(e).exp_()
        for out, k in zip(outs, _kde_kernels(base, e, powers, s_max, scales, bufs32[1][: stop - start])):
            per_class = _block_class_sums(k, onehot, blocked)
            out["all"][start:stop] = torch.log(per_class.sum(dim=1))
            out["class"][start:stop] = torch.log(per_class.gather(1, y_t[start:stop, None]).squeeze(1))
            if x_t is not None:
                same = x_t[start:stop, None] == x_t[None, :]
                out["input"][start:stop] = torch.log((k * same).sum(dim=1, dtype=torch.float64))
    keep = {"all"} | ({"class"} if y_ids is not None else set()) | ({"input"} if x_ids is not None else set())
    inverse = torch.empty_like(sq_order)
    inverse[sq_order] = torch.arange(n, device=dev)
    return [{k: v[inverse] for k, v in out.items() if k in keep} for out in outs]


#: At most this many close pairs per row (on average over a chunk) are recomputed by exact differences.
_MAX_REFINED_PER_ROW = 64


def _block_class_sums(k: Any, onehot: Any, blocked: tuple[Any, Any]) -> Any:
    """(rows, classes) float64 sums of ``k`` over each class's columns: float32 partial sums of 64 columns
    (one batched matrix product with the one-hot labels), added up in float64."""
    import torch

    blocks, rest = blocked
    full = blocks.shape[0] * blocks.shape[1]
    out = torch.einsum("inb,nbk->ink", k[:, :full].reshape(k.shape[0], blocks.shape[0], blocks.shape[1]), blocks)
    out = out.sum(dim=1, dtype=torch.float64)
    if rest.shape[0]:
        out += k[:, full:] @ rest
    return out


def _refine_close_pairs(neg_exp: Any, h: Any, start: int, to_exponent: float, slack: float) -> None:
    """Recompute, by exact differences, the exponents of the pairs the Gram formula cannot resolve.

    When the rows span many noise widths (activations of 1e6 against σ² = 1e-3, or 1e300-scale values)
    the float64 rounding of ‖a‖² + ‖b‖² − 2ab, times the huge exponent factor, exceeds 1e-9: then every
    off-diagonal pair whose exponent might be below the cut-off gets ``Σ_k (a_k − b_k)²``, accurate to
    relative 1e-16 of the (small) distance itself. Far pairs keep their (harmlessly inexact) capped exponents.
    Raises ValueError when there are too many such pairs to recompute (more than 64 per row).
    """
    import torch

    rows, cols = torch.nonzero(neg_exp >= -(_EXP_CUTOFF + slack), as_tuple=True)
    keep = rows + start != cols
    rows, cols = rows[keep], cols[keep]
    if rows.numel() == 0:
        return
    if rows.numel() > _MAX_REFINED_PER_ROW * neg_exp.shape[0]:
        raise ValueError(
            f"activations span about {math.sqrt(slack / (4 * (h.shape[1] + 2) * 2.0**-53)):.3g} noise "
            f"widths, too many for float64 distances ({rows.numel():,} close pairs in {neg_exp.shape[0]:,} "
            "rows would need exact recomputation); rescale the activations or raise noise_variance."
        )
    diff = h[rows + start] - h[cols]
    neg_exp[rows, cols] = (diff * diff).sum(dim=1) * -to_exponent


def _kde_kernels(base: Any, neg_exp: Any, powers: list[int | None], s_max: float, scales: list[float],
                 spare: Any) -> list[Any]:
    """exp(−D/s) per scale, float32, from ``base`` = exp(−D/s_max): integer powers of it (in ``spare``),
    or, for another ratio, its own exponential. At most one power per call reuses ``spare``."""
    import torch

    out = []
    spare_used = False
    for m, s in zip(powers, scales):
        if m == 1:
            out.append(base)
            continue
        k = spare if not spare_used else torch.empty_like(spare)
        spare_used = True
        if m is None:
            k.copy_(neg_exp.mul(s_max / s).clamp_(min=-_EXP_CUTOFF)).exp_()
        else:
            # Clamped so that k**m stays a normal float32 (>= e^-87): the tiny terms are < 1.6e-38 each.
            torch.clamp(base, min=math.exp(-_EXP_CUTOFF / m), out=k)
            _int_power_(k, m)
        out.append(k)
    return out


def _int_power_(k: Any, m: int) -> None:
    """k ← k**m in place by repeated squaring and multiplication (m >= 2)."""
    if m & (m - 1) == 0:  # a power of two: square log2(m) times
        while m > 1:
            k.square_()
            m //= 2
        return
    k.pow_(m)


def kde_log_sums(
    h: Any,
    scale: float,
    y_ids: Any = None,
    x_ids: Any = None,
    *,
    memory_mb: float = 256.0,
) -> dict[str, Any]:
    """Per-row Gaussian log-sums, chunked: ``L_i = ln Σ_j exp(−‖h_i − h_j‖² / scale)``.

    ``scale`` is 2σ² for the pairwise-KL bound and 8σ² for the Bhattacharyya bound. Returned (float64,
    on h's device): ``"all"`` sums over every j; ``"class"`` over j with ``y_j == y_i``; ``"input"``
    over j with ``x_j == x_i`` (only when given). Each sum contains its own j = i term exp(0) = 1, so the
    log-sums are >= 0 and need no max-shift: the terms are in (0, 1], the sum in [1, n]. Precision and
    memory as in `kde_log_sums_multi` (this is its one-scale case): within 1e-6 nats of float64.
    """
    return kde_log_sums_multi(h, [scale], y_ids, x_ids, memory_mb=memory_mb)[0]


def kde_information_bits(
    h: Any,
    y_ids: Any,
    noise_variance: float,
    bound: str = "upper",
    x_ids: Any = None,
    *,
    memory_mb: float = 256.0,
) -> dict[str, Any]:
    """Kolchinsky & Tracey (2017) mixture bounds for T = h(X) + ε, ε ~ N(0, σ² I); results in bits.

    With n points, D_ij = ‖h_i − h_j‖², s = 2σ² (``bound="upper"``, pairwise KL) or s = 8σ²
    (``bound="lower"``, Bhattacharyya) and L_i = ln Σ_j exp(−D_ij / s):

    - H(T) = d/2·ln(2πeσ²) + ln n − mean_i L_i  (nats; the bound of the requested kind),
    - H(T|X) = d/2·ln(2πeσ²) exactly for distinct inputs, so I(T;X) = ln n − mean_i L_i,
    - H(T|Y=c) is the same formula over class c's rows, so
      I(T;Y) = H(Y) − mean_i (L_i − L_i^{class}),
    - with input ids x, H(T|X=x) is the same formula over the rows of input x (exact when those rows are
      equal), so I(T;X) = H(X) − mean_i (L_i − L_i^{input}).

    Returns ``{"I_XT", "I_TY", "H_T", "H_T_given_Y"}`` in bits (entropies are differential); with
    ``bound="both"``, ``{"upper": {...}, "lower": {...}}`` from one shared pass over the pairs.
    """
    kinds = ["upper", "lower"] if bound == "both" else [bound]
    scales = [(2.0 if kind == "upper" else 8.0) * noise_variance for kind in kinds]
    all_sums = kde_log_sums_multi(h, scales, y_ids, x_ids, memory_mb=memory_mb)
    n, d = int(all_sums[0]["all"].shape[0]), int(h.shape[1])
    y_np = np.asarray(y_ids.cpu() if hasattr(y_ids, "cpu") else y_ids)
    counts_y = np.bincount(y_np)
    h_y = entropy_bits(counts_y) * LN2  # nats
    # Mean over classes of ln n_c, weighted by p(c): the ln n_c of each class's own mixture.
    mean_log_nc = float((counts_y[counts_y > 0] * np.log(counts_y[counts_y > 0])).sum() / n)
    const = 0.5 * d * math.log(2 * math.pi * math.e * noise_variance)
    h_x = None
    if x_ids is not None:
        x_np = np.asarray(x_ids.cpu() if hasattr(x_ids, "cpu") else x_ids)
        h_x = entropy_bits(np.bincount(x_np)) * LN2
    results = {}
    for kind, sums in zip(kinds, all_sums):
        mean_all = float(sums["all"].mean())
        mean_class = float(sums["class"].mean())
        i_xt = math.log(n) - mean_all if h_x is None else h_x - (mean_all - float(sums["input"].mean()))
        results[kind] = {
            "I_XT": i_xt / LN2,
            "I_TY": (h_y - (mean_all - mean_class)) / LN2,
            "H_T": (const + math.log(n) - mean_all) / LN2,
            "H_T_given_Y": (const + mean_log_nc - mean_class) / LN2,
        }
    return results if bound == "both" else results[bound]
