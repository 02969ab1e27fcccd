"""Pure torch kernels of the k-nearest-neighbour estimators (KSG, Ross, Kozachenko–Leonenko), in nats.

No validation beyond what the math needs: callers (`infoplane.estimators.knn`) pass checked float64 tensors
on one device. Results are those of exact float64 distances (identical, bit for bit, to a direct search):

- ``backend="blocked"``: ONE pass over blocks of rows. For a block of ``c`` rows a `knn_space.Space`
  computes the (c, N) approximate distances to all rows at the pace of the hardware (Euclidean: one float32
  matrix product; max norm: numba's float32 kernel; 1-D or without numba: exact float64), ``topk`` gives
  an approximate k-th neighbour radius, and the error bound of the approximation sorts every entry into
  certainly inside, certainly outside, or the narrow band around the radius, whose distances alone are
  recomputed exactly in float64 and decide the radius and the counts. Memory O(N · c); time O(N² d).
- ``backend="kd-tree"`` (max norm on the CPU at low dimension): scipy's cKDTree (`knn_tree`), exact.

`choose_backend` picks one automatically (recorded in the estimators' conventions).

Counting conventions (those of Kraskov et al. 2004 and of scikit-learn): a row is never its own neighbour;
"within radius" is strict, ``dist < eps`` (at ``eps = 0``, repeated rows: ``dist <= 0``, as scikit-learn).
"""
from __future__ import annotations

import math

import torch

from . import knn_tree
from .knn_space import Space

__all__ = ["block_rows", "choose_backend", "kth_radius", "ross_counts", "ksg_counts", "log_unit_ball",
           "digamma_mean", "TREE_MAX_DIM"]

# Max-norm KD-trees beat the blocked kernel up to about this many dimensions (benchmarks/bench_knn.py).
TREE_MAX_DIM = 6


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


def _count_within(block: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """#{j : dist < radius} per row; where the radius is 0 (k or more duplicates) #{j : dist <= 0}, the
    duplicates themselves (scikit-learn's ``query_radius(nextafter(r, 0))`` convention)."""
    counts = (block < radius).sum(dim=1)
    zero = radius.reshape(-1) == 0
    if bool(zero.any()):
        counts[zero] = (block[zero] <= 0).sum(dim=1)
    return counts


def _as_block_dtype(v: torch.Tensor, dtype: torch.dtype, up: bool) -> torch.Tensor:
    """Thresholds rounded to the block's dtype outward (down for a lower, up for an upper one)."""
    w = v.to(dtype)
    if w.dtype == v.dtype:
        return w
    direction = torch.full_like(w, math.inf if up else -math.inf)
    wrong = (w.to(v.dtype) < v) if up else (w.to(v.dtype) > v)
    return torch.where(wrong, torch.nextafter(w, direction), w)


def _bounds(sp: Space, r_apx: torch.Tensor, tau: torch.Tensor, dtype: torch.dtype):
    lo = _as_block_dtype(sp.from_dist(r_apx - 3.0 * tau), dtype, up=False)[:, None]
    hi = _as_block_dtype(sp.from_dist(r_apx + 3.0 * tau), dtype, up=True)[:, None]
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


def kth_radius(z: torch.Tensor, k: int, metric: str, *, memory_mb: float = 128.0,
               backend: str | None = None) -> torch.Tensor:
    """Distance of each row to its k-th nearest other row, shape (N,), float64."""
    if (backend or choose_backend(metric, z.shape[1], z.device)) == "kd-tree":
        return knn_tree.tree_kth(z, k)
    sp = Space(z, metric)
    n = z.shape[0]
    out = torch.empty(n, dtype=torch.float64, device=z.device)
    step = block_rows(n, memory_mb, 2)
    for s in range(0, n, step):  # loop over blocks of rows, each a vectorised (c, N) computation
        e = min(s + step, n)
        d = sp.block(s, e)
        r_apx = sp.to_dist(_kth(d, k))
        if sp.exact:
            out[s:e] = r_apx
            continue
        lo, hi = _bounds(sp, r_apx, sp.tau(r_apx), d.dtype)
        i, j = torch.nonzero((d >= lo) & (d <= hi), as_tuple=True)
        out[s:e] = _select(i, sp.exact_pairs(i + s, j), k - (d < lo).sum(dim=1))
    return out


def ross_counts(
    t: torch.Tensor, labels: torch.Tensor, k: int, metric: str, *, memory_mb: float = 128.0,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ross (2014): per row the k-th neighbour distance d_i within its class and m_i = #{j : dist < d_i}.

    m_i counts the row itself (scikit-learn's convention, so m_i = k when no other class is nearer).
    Returns ``(radius, m)``, float64 and int64 tensors of shape (N,).
    """
    if (backend or choose_backend(metric, t.shape[1], t.device)) == "kd-tree":
        return knn_tree.tree_ross(t, labels, k)
    sp = Space(t, metric)
    n = t.shape[0]
    radius = torch.empty(n, dtype=torch.float64, device=t.device)
    m = torch.empty(n, dtype=torch.int64, device=t.device)
    step = block_rows(n, memory_mb, 3)
    for s in range(0, n, step):
        e = min(s + step, n)
        d = sp.block(s, e)
        other = labels[s:e, None] != labels[None, :]
        dm = d.masked_fill(other, math.inf)
        r_apx = sp.to_dist(_kth(dm, k))
        if sp.exact:
            radius[s:e] = r_apx
            m[s:e] = _count_within(d, r_apx[:, None]) + 1
            continue
        lo, hi = _bounds(sp, r_apx, sp.tau(r_apx), d.dtype)
        i, j = torch.nonzero((d >= lo) & (d <= hi), as_tuple=True)
        ex = sp.exact_pairs(i + s, j)
        same = labels[i + s] == labels[j]
        r = _select(i[same], ex[same], k - (dm < lo).sum(dim=1))
        radius[s:e] = r
        m[s:e] = (d < lo).sum(dim=1) + _count_band(i, ex, r, e - s) + 1
    return radius, m


def ksg_counts(
    a: torch.Tensor, b: torch.Tensor, k: int, metric: str, *, memory_mb: float = 128.0,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KSG algorithm 1: joint radius eps_i = k-th smallest max(‖a_i − a_j‖, ‖b_i − b_j‖) over j ≠ i, and the
    marginal counts n_a(i) = #{j ≠ i : ‖a_i − a_j‖ < eps_i}, n_b(i) likewise. Returns (eps, n_a, n_b)."""
    if (backend or choose_backend(metric, a.shape[1] + b.shape[1], a.device)) == "kd-tree":
        return knn_tree.tree_ksg(a, b, k)
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


def log_unit_ball(d: int, metric: str) -> float:
    """ln of the volume of the unit ball in d dimensions: d ln 2 (max norm), (d/2) ln π − ln Γ(d/2 + 1)."""
    if metric == "max":
        return d * math.log(2.0)
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def digamma_mean(values: torch.Tensor) -> float:
    """Mean of ψ over a tensor of positive numbers, in float64."""
    return float(torch.special.digamma(values.to(torch.float64)).mean())
