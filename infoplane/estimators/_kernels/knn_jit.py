"""The numba-compiled k-NN kernels (private; imported only through `knn_numba`, which checks that numba is there).

Distances (float32 blocks of the max norm; `knn_numba` documents the two layouts) and the fused row scans
that replace the elementwise torch passes over a (c, N) block of approximate distances:

- `ross_rows`: per row, first the k-th smallest entry (same class only, for Ross; the k smallest kept in
  a tiny sorted buffer, an entry rejected by one comparison with the current k-th), then the error band
  around it (`_tau`, `_threshold`: the bound of `knn_space.Space.tau`), then a second read of the row, still
  in the cache, that counts the entries certainly inside (all, and those of the row's class) and gathers
  the indices of the band (at most ``band.shape[1]``; ``n_band`` says how many there were);
- `ksg_rows`: the same for KSG with a one-dimensional second variable ``b1``, whose exact float64
  distances ``|b_i − b_j|`` are computed on the fly (joint distance max(‖Δa‖, |Δb|)).

One parallel region per block (the threads of a busy machine are scheduled once, not per pass).

Every scan reads ``v = blk[r, j]``, or for a Gram block (``gram``) ``v = sq_i + sq_j − 2 blk[r, j]`` (the
squared Euclidean distance of the shifted rows, in float32; its error is bounded in `knn_space`). Row r of
the block is row ``rows[r]`` of the data; that entry (the row itself) is skipped.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.core.extending import intrinsic

_TILE = 256  # tile kernel: columns per tile
_ROWS = 8  # tile kernel: rows per task
_CHUNK = 64  # pair kernel: columns per parallel task (64 rows of d float32 stay in L2 up to d ~ 2,000)
_TWO = np.float32(2.0)
_SCAN = 64  # row scans: entries per chunk behind one vectorised filter


@intrinsic
def fmax32(typingctx, a, b):  # pragma: no cover - compiled
    """float32 maximum as LLVM's ``maxnum`` (numba's ``max`` becomes a compare and a masked store, which
    LLVM does not vectorise in a reduction)."""
    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fn = builder.module.declare_intrinsic("llvm.maxnum", [f32], ir.FunctionType(f32, [f32, f32]))
        return builder.call(fn, args, fastmath=("fast",))

    return types.float32(types.float32, types.float32), codegen


@numba.njit(parallel=True, cache=True, boundscheck=False, fastmath=True)
def max_dist_tiles(a, bt, out):  # pragma: no cover - compiled
    """out[i, j] = max_q |a[i, q] − bt[q, j]|, vectorised over the columns (for low d)."""
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
                    ar[j] = fmax32(ar[j], abs(v - col[j]))
        out[i0:i1, j0:j1] = acc[: i1 - i0]


@numba.njit(cache=True, boundscheck=False, fastmath=True, inline="always")
def _one_pair(x, y):  # pragma: no cover - compiled
    m = np.float32(0.0)
    for q in range(x.shape[0]):
        m = fmax32(m, abs(x[q] - y[q]))
    return m


@numba.njit(cache=True, boundscheck=False, fastmath=True, inline="always")
def _four_by_four(a, b, out, i, j):  # pragma: no cover - compiled
    """out[i:i+4, j:j+4] for rows i.. of a and j.. of b: 16 maxima over q, vectorised by LLVM over q."""
    a0, a1, a2, a3 = a[i], a[i + 1], a[i + 2], a[i + 3]
    b0, b1, b2, b3 = b[j], b[j + 1], b[j + 2], b[j + 3]
    z = np.float32(0.0)
    m00 = m01 = m02 = m03 = m10 = m11 = m12 = m13 = z
    m20 = m21 = m22 = m23 = m30 = m31 = m32 = m33 = z
    for q in range(a.shape[1]):
        x0, x1, x2, x3 = a0[q], a1[q], a2[q], a3[q]
        y0, y1, y2, y3 = b0[q], b1[q], b2[q], b3[q]
        m00, m01 = fmax32(m00, abs(x0 - y0)), fmax32(m01, abs(x0 - y1))
        m02, m03 = fmax32(m02, abs(x0 - y2)), fmax32(m03, abs(x0 - y3))
        m10, m11 = fmax32(m10, abs(x1 - y0)), fmax32(m11, abs(x1 - y1))
        m12, m13 = fmax32(m12, abs(x1 - y2)), fmax32(m13, abs(x1 - y3))
        m20, m21 = fmax32(m20, abs(x2 - y0)), fmax32(m21, abs(x2 - y1))
        m22, m23 = fmax32(m22, abs(x2 - y2)), fmax32(m23, abs(x2 - y3))
        m30, m31 = fmax32(m30, abs(x3 - y0)), fmax32(m31, abs(x3 - y1))
        m32, m33 = fmax32(m32, abs(x3 - y2)), fmax32(m33, abs(x3 - y3))
    out[i, j], out[i, j + 1], out[i, j + 2], out[i, j + 3] = m00, m01, m02, m03
    out[i + 1, j], out[i + 1, j + 1], out[i + 1, j + 2], out[i + 1, j + 3] = m10, m11, m12, m13
    out[i + 2, j], out[i + 2, j + 1], out[i + 2, j + 2], out[i + 2, j + 3] = m20, m21, m22, m23
    out[i + 3, j], out[i + 3, j + 1], out[i + 3, j + 2], out[i + 3, j + 3] = m30, m31, m32, m33


@numba.njit(parallel=True, cache=True, boundscheck=False, fastmath=True)
def max_dist_pairs(a, b, out):  # pragma: no cover - compiled
    """out[i, j] = max_q |a[i, q] − b[j, q]| by 4 × 4 register tiles, columns in L2-sized parallel chunks."""
    c = a.shape[0]
    n = b.shape[0]
    c4 = c - c % 4
    for chunk in numba.prange((n + _CHUNK - 1) // _CHUNK):
        j0 = chunk * _CHUNK
        j1 = min(j0 + _CHUNK, n)
        j4 = j1 - (j1 - j0) % 4
        for i in range(0, c4, 4):
            for j in range(j0, j4, 4):
                _four_by_four(a, b, out, i, j)
            for j in range(j4, j1):  # the last < 4 columns of the chunk
                for r in range(i, i + 4):
                    out[r, j] = _one_pair(a[r], b[j])
        for r in range(c4, c):  # the last < 4 rows
            for j in range(j0, j1):
                out[r, j] = _one_pair(a[r], b[j])


@numba.njit(cache=True, boundscheck=False)
def _insert(best, v):  # pragma: no cover - compiled
    """Insert v into the ascending buffer ``best`` (its largest entry drops out)."""
    p = best.shape[0] - 1
    while p > 0 and best[p - 1] > v:
        best[p] = best[p - 1]
        p -= 1
    best[p] = v


@numba.njit(cache=True, boundscheck=False)
def _tau(r, gram, big_e, eps_in, tau0):  # pragma: no cover - compiled
    """The error bound of `knn_space.Space.tau` (distance units) for an approximate radius r."""
    if not gram:
        return tau0
    root = np.sqrt(big_e) + eps_in
    local = 2.0 * big_e / max(r, 1e-300) + eps_in + 2.0**-23 * r
    return local if r / 2 > root + 3.0 * local else root


@numba.njit(cache=True, boundscheck=False)
def _threshold(x, gram, up):  # pragma: no cover - compiled
    """A distance threshold in the block's domain (squared for a Gram block; negative: −inf), rounded to
    float32 outward (up for an upper threshold, down for a lower one)."""
    y = (x * x if x >= 0 else -np.inf) if gram else x
    f = np.float32(y)
    if up and np.float64(f) < y:
        f = np.nextafter(f, np.float32(np.inf))
    elif not up and np.float64(f) > y:
        f = np.nextafter(f, np.float32(-np.inf))
    return f


@numba.njit(cache=True, boundscheck=False, inline="always")
def _value(row, j, si, sq, gram):  # pragma: no cover - compiled
    v = row[j]
    if gram:
        v = (si + sq[j]) - _TWO * v
    return v


@numba.njit(cache=True, boundscheck=False, inline="always")
def _n_at_most(row, j0, j1, si, sq, gram, t):  # pragma: no cover - compiled
    """#{j0 <= j < j1 : v(j) <= t}: the vectorised filter in front of every scalar path (on slices: LLVM
    vectorises the loop without per-call alias checks)."""
    x, s = row[j0:j1], sq[j0:j1]
    hits = 0
    if gram:
        for j in range(x.shape[0]):
            hits += ((si + s[j]) - _TWO * x[j]) <= t
    else:
        for j in range(x.shape[0]):
            hits += x[j] <= t
    return hits


@numba.njit(cache=True, boundscheck=False)
def _kth_in_range(row, i, sq, gram, j_lo, j_hi, k):  # pragma: no cover - compiled
    """k-th smallest v(j) of the row over j_lo <= j < j_hi, j ≠ i (float32), chunk by chunk: a chunk with
    no entry at or below the current k-th is passed over by the vectorised filter."""
    si = sq[i]
    best = np.full(k, np.inf, dtype=np.float32)
    worst = best[k - 1]
    for j0 in range(j_lo, j_hi, _SCAN):
        j1 = min(j0 + _SCAN, j_hi)
        if _n_at_most(row, j0, j1, si, sq, gram, worst) == 0:
            continue
        for j in range(j0, j1):
            v = _value(row, j, si, sq, gram)
            if v < worst and j != i:
                _insert(best, v)
                worst = best[k - 1]
    return worst


@numba.njit(cache=True, boundscheck=False)
def _classify_range(row, i, sq, gram, j_lo, j_hi, lo, hi, band, m):  # pragma: no cover - compiled
    """Over j_lo <= j < j_hi, j ≠ i: the number of entries below lo, and the band lo <= v <= hi appended to
    ``band[m:]`` (as far as there is room). Returns (below, m)."""
    si = sq[i]
    below = 0
    for j0 in range(j_lo, j_hi, _SCAN):
        j1 = min(j0 + _SCAN, j_hi)
        if _n_at_most(row, j0, j1, si, sq, gram, hi) == 0:  # the whole chunk certainly outside
            continue
        for j in range(j0, j1):
            v = _value(row, j, si, sq, gram)
            if j == i or v > hi:
                continue
            if v < lo:
                below += 1
                continue
            if m < band.shape[0]:
                band[m] = j
            m += 1
    return below, m


@numba.njit(parallel=True, cache=True, boundscheck=False)
def ross_rows(blk, rows, sq, gram, start, stop, k, big_e, eps_in, tau0, n_lo, n_same, band, n_band):  # pragma: no cover
    """Per row r (data row i = rows[r], whose class holds the columns start[i] <= j < stop[i]): the
    approximate k-th neighbour in the class, the thresholds lo <= hi = r̃ ∓ 3τ around it, then
    n_lo = #{j ≠ i : v < lo}, n_same the same within the class, and the band {j ≠ i : lo <= v <= hi}
    into band[r, :] (n_band[r] = its size, possibly above the capacity)."""
    n = blk.shape[1]
    for r in numba.prange(blk.shape[0]):
        i, row, out = rows[r], blk[r], band[r]
        a, b = start[i], stop[i]
        vk = _kth_in_range(row, i, sq, gram, a, b, k)
        rt = np.sqrt(max(np.float64(vk), 0.0)) if gram else np.float64(vk)
        tau = _tau(rt, gram, big_e, eps_in, tau0)
        lo, hi = _threshold(rt - 3.0 * tau, gram, False), _threshold(rt + 3.0 * tau, gram, True)
        before, m = _classify_range(row, i, sq, gram, 0, a, lo, hi, out, 0)  # the row is still in the cache
        same, m = _classify_range(row, i, sq, gram, a, b, lo, hi, out, m)
        after, m = _classify_range(row, i, sq, gram, b, n, lo, hi, out, m)
        n_lo[r], n_same[r], n_band[r] = before + same + after, same, m


@numba.njit(cache=True, boundscheck=False, inline="always")
def _n_joint_hits(row, j0, j1, si, sq, gram, bi, b1, worst, reject):  # pragma: no cover - compiled
    """#{j0 <= j < j1 : |Δb| < worst and v < reject} (vectorised)."""
    x, s, y = row[j0:j1], sq[j0:j1], b1[j0:j1]
    hits = 0
    for j in range(x.shape[0]):
        v = ((si + s[j]) - _TWO * x[j]) if gram else x[j]
        hits += (abs(bi - y[j]) < worst) & (np.float64(v) < reject)
    return hits


@numba.njit(cache=True, boundscheck=False)
def _kth_joint(row, i, sq, gram, b1, k):  # pragma: no cover - compiled
    """k-th smallest max(‖a_i − a_j‖~, |b1_i − b1_j|) over j ≠ i (float64; ‖·‖~ = √max(v, 0) for a Gram
    block), chunk by chunk behind a vectorised filter (|Δb| below the current k-th, and v below a bound
    never below its square)."""
    si, bi = sq[i], b1[i]
    best = np.full(k, np.inf)
    worst = best[k - 1]
    reject = np.inf  # block values >= reject cannot enter
    n = row.shape[0]
    for j0 in range(0, n, _SCAN):
        j1 = min(j0 + _SCAN, n)
        if _n_joint_hits(row, j0, j1, si, sq, gram, bi, b1, worst, reject) == 0:
            continue
        for j in range(j0, j1):
            db = abs(bi - b1[j])
            v = np.float64(_value(row, j, si, sq, gram))
            if db >= worst or v >= reject or j == i:
                continue
            x = max(np.sqrt(max(v, 0.0)) if gram else v, db)
            if x < worst:
                _insert(best, x)
                worst = best[k - 1]
                reject = worst * worst * (1.0 + 2.0**-20) if gram else worst
    return worst


@numba.njit(cache=True, boundscheck=False)
def _classify_joint(row, i, sq, gram, b1, la, ha, lj, hj, band):  # pragma: no cover - compiled
    """KSG's second read of a row (see `ksg_rows`). Returns (joint, inside, m)."""
    si, bi = sq[i], b1[i]
    joint = inside = m = 0
    n = row.shape[0]
    for j0 in range(0, n, _SCAN):
        j1 = min(j0 + _SCAN, n)
        if _n_at_most(row, j0, j1, si, sq, gram, ha) == 0:  # a certainly outside: so is the joint
            continue
        for j in range(j0, j1):
            v = _value(row, j, si, sq, gram)
            if v > ha or j == i:
                continue
            code = j
            if v < la:
                inside += 1
                db = abs(bi - b1[j])
                if db < lj:
                    joint += 1
                    continue
                if db > hj:
                    continue
                code = -j - 1
            if m < band.shape[0]:
                band[m] = code
            m += 1
    return joint, inside, m


@numba.njit(parallel=True, cache=True, boundscheck=False)
def ksg_rows(blk, rows, sq, gram, b1, k, big_e, eps_in, tau0, r_apx, n_joint, n_a, band, n_band):  # pragma: no cover
    """KSG with a one-dimensional b1 (exact float64 |Δb| on the fly), per row r (data row i = rows[r]): the
    approximate joint radius r_apx[r], the joint thresholds lo <= hi = r̃ ∓ 3τ (τ: a's bound, b's distances
    being exact) and a's in the block's domain; n_a = #{j ≠ i : a certainly inside}, n_joint = those of them
    with |Δb| < lo; the band holds j where a is undecided and ~j (= −j − 1) where a is certainly inside but
    |Δb| lies in [lo, hi]."""
    for r in numba.prange(blk.shape[0]):
        i, row = rows[r], blk[r]
        rt = _kth_joint(row, i, sq, gram, b1, k)
        tau = _tau(rt, gram, big_e, eps_in, tau0)
        lj, hj = rt - 3.0 * tau, rt + 3.0 * tau
        la, ha = _threshold(lj, gram, False), _threshold(hj, gram, True)
        joint, inside, m = _classify_joint(row, i, sq, gram, b1, la, ha, lj, hj, band[r])
        r_apx[r], n_joint[r], n_a[r], n_band[r] = rt, joint, inside, m
