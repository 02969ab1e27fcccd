"""Kernels of the k-nearest-neighbour estimators (KSG, Ross, Kozachenko–Leonenko), in nats.

No validation beyond what the math needs: callers (`infoplane.estimators.knn`) pass checked float64 tensors
on one device. Results are those of exact float64 distances (identical, bit for bit, to a direct search):

- ``backend="blocked"``: ONE pass over blocks of rows. For a block of ``c`` rows a `knn_space.Space`
  computes the (c, N) approximate distances to all rows at the pace of the hardware (Euclidean: one float32
  matrix product; max norm: numba's float32 kernel; 1-D or without numba: exact float64), a scan gives an
  approximate k-th neighbour radius, and the error bound of the approximation sorts every entry into
  certainly inside, certainly outside, or the narrow band around the radius, whose distances alone are
  recomputed exactly in float64 and decide the radius and the counts. Memory O(N · c); time O(N² d).
  The scans are numba's fused row scans (`knn_numba`: each row read once for the radius and once for the
  classification) on the CPU with numba, torch passes (``topk``, masks, ``nonzero``) elsewhere
  (`_torch_ross_scan`); both decide the same. The bands of consecutive blocks are resolved together.
- KSG with one one-dimensional variable (CPU, numba): the joint radius and the other variable's counts by
  the blocked scans (the 1-D distances |b_i − b_j| computed on the fly), the 1-D variable's counts by two
  sorted searches per row (`count_1d`), O(N log N).
- ``backend="kd-tree"`` (max norm on the CPU at low dimension): scipy's cKDTree (`knn_tree`), exact.

`choose_backend` picks one automatically (recorded in the estimators' conventions).

Counting conventions (those of Kraskov et al. 2004 and of scikit-learn): a row is never its own neighbour;
"within radius" is strict, ``dist < eps`` (at ``eps = 0``, repeated rows: ``dist <= 0``, as scikit-learn).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import knn_numba, knn_tree
from .knn_space import Space

__all__ = ["block_rows", "choose_backend", "kth_radius", "ross_counts", "ross_counts_multi", "ksg_counts", "count_1d",
           "log_unit_ball", "kl_entropy_nats", "digamma_mean", "TREE_MAX_DIM"]

# Max-norm KD-trees beat the blocked kernel up to this many dimensions (N = 20,000: at d = 5 the tree took
# 0.6-0.8x the blocked time, at d = 6 about 1.1x; the tree gains with N, the blocked kernel with d).
TREE_MAX_DIM = 5


def block_rows(n: int, memory_mb: float, n_blocks: int) -> int:
    """Rows per block so that ``n_blocks`` float64 (rows, n) matrices fit in ``memory_mb``."""
    rows = int(memory_mb * 2**20 // (8 * max(n, 1) * n_blocks))
    return max(1, min(n, rows))


def choose_backend(metric: str, dim: int, device: torch.device) -> str:
    """``"kd-tree"`` for the max norm on the CPU in at most `TREE_MAX_DIM` (joint) dimensions, else
    ``"blocked"``."""
    if metric == "max" and device.type == "cpu" and dim <= TREE_MAX_DIM:
        return "kd-tree"
    return "blocked"


def _kth(block: torch.Tensor, k: int) -> torch.Tensor:
    return torch.topk(block, k, dim=1, largest=False).values[:, -1]


def _as_block_dtype(v: torch.Tensor, dtype: torch.dtype, up: bool) -> torch.Tensor:
    """Thresholds rounded to the block's dtype outward (down for a lower, up for an upper one)."""
    w = v.to(dtype)
    if w.dtype == v.dtype:
        return w
    direction = torch.full_like(w, math.inf if up else -math.inf)
    wrong = (w.to(v.dtype) < v) if up else (w.to(v.dtype) > v)
    return torch.where(wrong, torch.nextafter(w, direction), w)


def _bounds(sp: Space, r_apx: torch.Tensor, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(lo, hi), shape (c,): r_apx ∓ 3 tau in the domain and dtype of the space's blocks, rounded outward."""
    lo = _as_block_dtype(sp.from_dist(r_apx - 3.0 * tau), sp.wd, up=False)
    hi = _as_block_dtype(sp.from_dist(r_apx + 3.0 * tau), sp.wd, up=True)
    return lo, hi


def _select(rows: torch.Tensor, vals: torch.Tensor, need: torch.Tensor) -> torch.Tensor:
    """Per row r, the need[r]-th smallest (1-based) of the values of that row (rows, vals: the band)."""
    c = need.numel()
    counts = torch.bincount(rows, minlength=c)
    if bool((counts < need).any()) or bool((need < 1).any()):
        raise RuntimeError("k-NN band selection: the error bound left a radius undecided (internal error)")
    order = torch.argsort(vals, stable=True)
    order = order[torch.argsort(rows[order], stable=True)]
    start = torch.cumsum(counts, 0) - counts
    return vals[order][start + need - 1]


def _count_band(rows: torch.Tensor, vals: torch.Tensor, radius: torch.Tensor, c: int) -> torch.Tensor:
    r = radius[rows]
    inside = (vals < r) | ((r == 0) & (vals <= 0))
    return torch.bincount(rows[inside], minlength=c)


_GROUP_PAIRS = 1 << 20  # band pairs of consecutive blocks resolved together (numba path)


def _resolve_ross(sp: Space, labels: torch.Tensor, k: int, s: int, e: int, n_lo: torch.Tensor,
                  n_same: torch.Tensor, i: torch.Tensor, j: torch.Tensor, radius: torch.Tensor,
                  m: torch.Tensor) -> None:
    """Rows s..e from their scans: the radius is the (k − n_same)-th smallest exact distance of the band
    within the class, m the entries certainly inside plus the band's exact distances below the radius."""
    ex = sp.exact_pairs(i + s, j)
    same = labels[i + s] == labels[j]
    r = _select(i[same], ex[same], k - n_same)
    radius[s:e] = r
    m[s:e] = n_lo + _count_band(i, ex, r, e - s) + 1


def _torch_ross_scan(sp: Space, labels: torch.Tensor, k: int, s: int, e: int, d: torch.Tensor):
    """Torch passes over the block ``d`` of rows s..e: (n_lo, n_same, i, j) as `knn_numba.ross_scan` gives them."""
    same_class = d.masked_fill(labels[s:e, None] != labels[None, :], math.inf)
    r_apx = sp.to_dist(_kth(same_class, k))
    lo, hi = (x[:, None] for x in _bounds(sp, r_apx, sp.tau(r_apx)))
    i, j = torch.nonzero((d >= lo) & (d <= hi), as_tuple=True)
    return (d < lo).sum(dim=1), (same_class < lo).sum(dim=1), i, j


def _grouped(n: int, step: int, scan, resolve) -> None:
    """Blocks of ``step`` rows: ``scan(s, e)`` gives (row arrays, i, pair arrays) as numpy; consecutive
    blocks are resolved together, ``resolve(s0, e, *row arrays, i, *pair arrays)`` as torch tensors with i
    counted from s0, once their bands hold `_GROUP_PAIRS` pairs (few exact recomputations, bounded memory)."""
    _grouped_shared(n, step, lambda s, e: None, [lambda _, s, e: scan(s, e)], [resolve])


def _grouped_shared(n: int, step: int, block, scans: list, resolves: list) -> None:
    """`_grouped` for several scans of the same blocks: ``block(s, e)`` is computed once per block of rows
    and handed to every ``scans[q](blk, s, e)``; each scan's bands are grouped and resolved on their own."""
    parts: list[list] = [[] for _ in scans]
    s0 = [0] * len(scans)
    for s in range(0, n, step):  # loop over blocks of rows, each scanned row by row by numba
        e = min(s + step, n)
        blk = block(s, e)
        for q, (scan, resolve) in enumerate(zip(scans, resolves)):
            per_row, i, per_pair = scan(blk, s, e)
            parts[q].append((per_row, i + (s - s0[q]), per_pair))
            if e == n or sum(len(p[1]) for p in parts[q]) >= _GROUP_PAIRS:
                cat = [torch.from_numpy(np.concatenate(x)) for x in zip(*(p[0] + (p[1],) + p[2] for p in parts[q]))]
                resolve(s0[q], e, *cat)
                parts[q], s0[q] = [], e


def ross_counts(
    t: torch.Tensor, labels: torch.Tensor, k: int, metric: str, *, memory_mb: float = 128.0,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ross (2014): per row the k-th neighbour distance d_i within its class and m_i = #{j : dist < d_i}.

    m_i counts the row itself (scikit-learn's convention, so m_i = k when no other class is nearer).
    Returns ``(radius, m)``, float64 and int64 tensors of shape (N,).
    """
    return ross_counts_multi(t, labels, [k], metric, memory_mb=memory_mb, backend=backend)[0]


def ross_counts_multi(
    t: torch.Tensor, labels: torch.Tensor, ks: list[int], metric: str, *, memory_mb: float = 128.0,
    backend: str | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`ross_counts` for each k of ``ks`` from one pass over the distance blocks (each block computed once,
    then scanned per k): the resolution check's k and 2k for the price of one distance computation. The
    same values as separate calls (the same blocks, scans and exact recomputations)."""
    if (backend or choose_backend(metric, t.shape[1], t.device)) == "kd-tree":
        return [knn_tree.tree_ross(t, labels, k) for k in ks]
    n = t.shape[0]
    perm = None if bool((labels[1:] >= labels[:-1]).all()) else torch.argsort(labels, stable=True)
    if perm is not None:  # rows sorted by class: each class's columns of a block are one contiguous range
        t, labels = t[perm], labels[perm]
    sp = Space(t, metric)
    out = [(torch.empty(n, dtype=torch.float64, device=t.device), torch.empty(n, dtype=torch.int64, device=t.device))
           for _ in ks]
    step = block_rows(n, memory_mb, 3)

    def resolver(q: int):
        def resolve(s: int, e: int, n_lo: torch.Tensor, n_same: torch.Tensor, i: torch.Tensor, j: torch.Tensor):
            _resolve_ross(sp, labels, ks[q], s, e, n_lo, n_same, i, j, *out[q])
        return resolve

    if sp.fused:
        _, size = torch.unique_consecutive(labels, return_counts=True)
        stop = torch.repeat_interleave(torch.cumsum(size, 0), size)
        start, stop = (stop - torch.repeat_interleave(size, size)).numpy(), stop.numpy()
        sq, buf = sp.sq.numpy(), torch.empty((step, n), dtype=torch.float32)

        def scanner(k: int):
            def scan(d: np.ndarray, s: int, e: int):
                n_lo, n_same, i, j = knn_numba.ross_scan(d, np.arange(s, e), sq, sp.squared, start, stop, k,
                                                         sp.bound())
                return (n_lo, n_same), i, (j,)
            return scan

        with knn_numba.threads(torch.get_num_threads()):
            _grouped_shared(n, step, lambda s, e: sp.approx_block(s, e, buf[: e - s]), [scanner(k) for k in ks],
                            [resolver(q) for q in range(len(ks))])
    else:
        for s in range(0, n, step):  # loop over blocks of rows, each a vectorised (c, N) computation
            e = min(s + step, n)
            d = sp.block(s, e)
            for q, k in enumerate(ks):
                resolver(q)(s, e, *_torch_ross_scan(sp, labels, k, s, e, d))
    if perm is None:
        return out
    return [(radius.scatter(0, perm, radius), m.scatter(0, perm, m)) for radius, m in out]


def kth_radius(z: torch.Tensor, k: int, metric: str, *, memory_mb: float = 128.0,
               backend: str | None = None) -> torch.Tensor:
    """Distance of each row to its k-th nearest other row, shape (N,), float64 (Ross's radius, one class)."""
    if (backend or choose_backend(metric, z.shape[1], z.device)) == "kd-tree":
        return knn_tree.tree_kth(z, k)
    one_class = torch.zeros(z.shape[0], dtype=torch.int64, device=z.device)
    return ross_counts(z, one_class, k, metric, memory_mb=memory_mb, backend="blocked")[0]


def ksg_counts(
    a: torch.Tensor, b: torch.Tensor, k: int, metric: str, *, memory_mb: float = 128.0,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KSG algorithm 1: joint radius eps_i = k-th smallest max(‖a_i − a_j‖, ‖b_i − b_j‖) over j ≠ i, and the
    marginal counts n_a(i) = #{j ≠ i : ‖a_i − a_j‖ < eps_i}, n_b(i) likewise. Returns (eps, n_a, n_b)."""
    if (backend or choose_backend(metric, a.shape[1] + b.shape[1], a.device)) == "kd-tree":
        return knn_tree.tree_ksg(a, b, k)
    if a.shape[1] == 1 and b.shape[1] > 1:  # the one-dimensional variable second
        eps, n_b, n_a = ksg_counts(b, a, k, metric, memory_mb=memory_mb, backend="blocked")
        return eps, n_a, n_b
    if b.shape[1] == 1:
        sa = Space(a, metric)
        if sa.fused:
            return _ksg_1d(sa, b[:, 0], k, memory_mb)
    return _ksg_general(a, b, k, metric, memory_mb)


def _ksg_general(a: torch.Tensor, b: torch.Tensor, k: int, metric: str, memory_mb: float):
    """`ksg_counts` by torch passes over both variables' blocks (any dimensions, any device)."""
    sa, sb = Space(a, metric), Space(b, metric)
    n = a.shape[0]
    eps = torch.empty(n, dtype=torch.float64, device=a.device)
    n_a = torch.empty(n, dtype=torch.int64, device=a.device)
    n_b = torch.empty(n, dtype=torch.int64, device=a.device)
    step = block_rows(n, memory_mb, 6)
    for s in range(0, n, step):
        e = min(s + step, n)
        da, db = sa.to_dist(sa.block(s, e)), sb.to_dist(sb.block(s, e))
        r_apx = _kth(torch.maximum(da, db), k)
        if sa.exact and sb.exact:
            eps[s:e] = r_apx
            n_a[s:e] = _count_within(da, r_apx[:, None])
            n_b[s:e] = _count_within(db, r_apx[:, None])
            continue
        tau = torch.maximum(sa.tau(r_apx), sb.tau(r_apx))
        tau = torch.maximum(sa.tau(r_apx, tau), sb.tau(r_apx, tau))
        lo, hi = (r_apx - 3.0 * tau)[:, None], (r_apx + 3.0 * tau)[:, None]
        band = ((da >= lo) & (da <= hi)) | ((db >= lo) & (db <= hi))
        i, j = torch.nonzero(band, as_tuple=True)
        ea, eb = sa.exact_pairs(i + s, j), sb.exact_pairs(i + s, j)
        r = _select(i, torch.maximum(ea, eb), k - ((da < lo) & (db < lo)).sum(dim=1))
        eps[s:e] = r
        for out, dd, ex in ((n_a, da, ea), (n_b, db, eb)):
            undecided = dd[i, j] >= lo[i, 0]
            out[s:e] = (dd < lo).sum(dim=1) + _count_band(i[undecided], ex[undecided], r, e - s)
    return eps, n_a, n_b


def _count_within(block: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """#{j : dist < radius} per row; where the radius is 0 (k or more duplicates) #{j : dist <= 0}, the
    duplicates themselves (scikit-learn's ``query_radius(nextafter(r, 0))`` convention)."""
    counts = (block < radius).sum(dim=1)
    zero = radius.reshape(-1) == 0
    if bool(zero.any()):
        counts[zero] = (block[zero] <= 0).sum(dim=1)
    return counts


def _ksg_1d(sa: Space, b1: torch.Tensor, k: int, memory_mb: float):
    """`ksg_counts` for a one-dimensional b (CPU, numba): the joint radius and n_a by the fused scans of a's
    blocks with |b_i − b_j| on the fly (exact in float64), n_b by `count_1d`. The same bits as
    `_ksg_general`: the same exact distances decide the same comparisons."""
    n = b1.shape[0]
    eps = torch.empty(n, dtype=torch.float64)
    n_a = torch.empty(n, dtype=torch.int64)
    bn, sq = np.ascontiguousarray(b1.numpy()), sa.sq.numpy()
    step = block_rows(n, memory_mb, 3)
    buf = torch.empty((step, n), dtype=torch.float32)

    def scan(s: int, e: int):
        d = sa.approx_block(s, e, buf[: e - s])
        _, n_joint, n_lo_a, i, j, undecided = knn_numba.ksg_scan(d, np.arange(s, e), sq, sa.squared, bn, k,
                                                                 sa.bound())
        return (n_joint, n_lo_a), i, (j, undecided)

    def resolve(s: int, e: int, n_joint, n_lo_a, i, j, undecided) -> None:
        ea = sa.exact_pairs(i + s, j)
        r = _select(i, torch.maximum(ea, (b1[i + s] - b1[j]).abs()), k - n_joint)
        eps[s:e] = r
        n_a[s:e] = n_lo_a + _count_band(i[undecided], ea[undecided], r, e - s)

    with knn_numba.threads(torch.get_num_threads()):
        _grouped(n, step, scan, resolve)
    return eps, n_a, count_1d(b1, eps)


def count_1d(b: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """#{j ≠ i : |b_i − b_j| < eps_i} (where eps_i = 0: #{j ≠ i : b_j = b_i}) for a 1-D b, by sorted searches.

    The float64 difference b_j − b_i is monotone in b_j (rounding is), so on sorted b the rows with
    fl(b_j − b_i) < eps_i form a prefix and those with fl(b_j − b_i) <= −eps_i a shorter one; the count is
    the difference of their lengths less the row itself. Both lengths come from a bisection that evaluates
    exactly these predicates (not b_i ± eps_i, which would round differently), so the counts are those of
    the comparisons ``|b_i − b_j| < eps_i`` themselves. O(N log N).
    """
    bs = torch.sort(b).values
    n = bs.numel()
    below = _prefix_length(bs, lambda x: x - b < eps, n)
    far = _prefix_length(bs, lambda x: x - b <= -eps, n)
    return torch.where(eps > 0, below - far - 1, far - below - 1)


def _prefix_length(bs: torch.Tensor, pred, n: int) -> torch.Tensor:
    """Per row, the number of leading entries of the sorted ``bs`` where ``pred`` (monotone: true, then
    false) holds; vectorised bisection over the rows, ⌈log2(N + 1)⌉ steps."""
    lo = torch.zeros(n, dtype=torch.int64, device=bs.device)
    hi = torch.full_like(lo, n)
    for _ in range(max(1, n.bit_length())):
        mid = (lo + hi) // 2
        ok = pred(bs[mid.clamp(max=n - 1)]) & (mid < hi)
        lo = torch.where(ok, mid + 1, lo)
        hi = torch.where(ok | (mid >= hi), hi, mid)
    return lo


def log_unit_ball(d: int, metric: str) -> float:
    """ln of the volume of the unit ball in d dimensions: d ln 2 (max norm), (d/2) ln π − ln Γ(d/2 + 1)."""
    if metric == "max":
        return d * math.log(2.0)
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def kl_entropy_nats(r: torch.Tensor, d: int, k: int, metric: str) -> float:
    """Kozachenko–Leonenko entropy in nats from each row's distance ``r`` (N,) to its k-th neighbour (all > 0)
    in d dimensions: ψ(N) − ψ(k) + ln V_d + (d/N) Σ_i ln r_i."""
    psi = torch.special.digamma(torch.tensor([float(r.shape[0]), float(k)], dtype=torch.float64))
    return float(psi[0]) - float(psi[1]) + log_unit_ball(d, metric) + d * float(torch.log(r).mean())


def digamma_mean(values: torch.Tensor) -> float:
    """Mean of ψ over a tensor of positive numbers, in float64."""
    return float(torch.special.digamma(values.to(torch.float64)).mean())
