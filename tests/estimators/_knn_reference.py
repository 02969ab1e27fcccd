"""Pure torch kernels of the k-nearest-neighbour estimators (KSG, Ross, Kozachenko–Leonenko), in nats.

No validation beyond what the math needs: callers (`infoplane.estimators.knn`) pass checked float64 tensors
on one device. Every kernel makes ONE pass over blocks of rows: for a block of ``c`` rows it computes the
(c, N) distances to all rows once, takes the k-th neighbour distance from them (``torch.topk``) and counts the
rows within that radius from the same block. Memory is O(N · c), never N × N; time O(N² d).

Counting conventions (those of Kraskov et al. 2004 and of scikit-learn): a row is never its own neighbour;
"within radius" is strict, ``dist < eps`` (at ``eps = 0``, repeated rows: ``dist <= 0``, as scikit-learn); with distances taken from the same block for the k-th neighbour and
for the counts, the k-th neighbour itself (at exactly ``eps``) is never counted, whatever the rounding.

Norms: ``"max"`` is the maximum norm, computed exactly (subtraction, absolute value, maximum);
``"euclidean"`` uses the matrix-product expansion of ``torch.cdist`` in float64 (fast, BLAS) and then
recomputes directly, √Σ (a − b)², the few distances that lie within the expansion's error bound of a
radius, so every comparison that decides a neighbour or a count is made on directly computed distances.
"""
from __future__ import annotations

import math

import torch

__all__ = ["block_rows", "Space", "kth_radius", "ross_counts", "ksg_counts", "log_unit_ball", "digamma_mean"]


def block_rows(n: int, memory_mb: float, n_blocks: int) -> int:
    """Rows per block so that ``n_blocks`` float64 (rows, n) matrices fit in ``memory_mb``."""
    rows = int(memory_mb * 2**20 // (8 * max(n, 1) * n_blocks))
    return max(1, min(n, rows))


class Space:
    """One variable's rows prepared for distances under ``metric``: the raw rows for exact recomputation,
    and for the Euclidean norm the rows shifted by their rounded column means (fewer cancellations in the
    matrix-product expansion) with a bound ``tol`` on that expansion's error in distance units."""

    def __init__(self, z: torch.Tensor, metric: str) -> None:
        self.raw = z
        self.exact = metric == "max" or z.shape[1] == 1  # in 1-D both norms are |a - b|: the exact path
        self.tol = 0.0
        self.z = z
        if not self.exact:
            self.z = z - torch.round(z.mean(dim=0, keepdim=True))
            s = float((self.z * self.z).sum(dim=1).max())
            # |d²_mm − d²| <= (d + 4)·2u·(‖x‖² + ‖y‖²) with a margin of 8; |√a − √b| <= √|a − b|.
            self.tol = math.sqrt(8.0 * (z.shape[1] + 4) * 2.0**-52 * 2.0 * s)

    def block(self, s: int, e: int) -> torch.Tensor:
        """(e − s, N) distances of rows s..e to every row; the own entries set to +inf."""
        if self.exact:
            out = torch.cdist(self.z[s:e], self.z, p=math.inf)
        else:
            out = torch.cdist(self.z[s:e], self.z, p=2.0, compute_mode="use_mm_for_euclid_dist")
        idx = torch.arange(e - s, device=out.device)
        out[idx, idx + s] = math.inf
        return out

    def refine(self, block: torch.Tensor, s: int, radius: torch.Tensor) -> None:
        """Replace, in place, the expanded distances within 3 tol of ``radius`` by direct ones (√Σ (a − b)²
        on the raw rows), so that every comparison with a radius of that band is exact."""
        if self.exact:
            return
        near = ((block - radius[:, None]).abs() <= 3.0 * self.tol) & torch.isfinite(block)
        i, j = torch.nonzero(near, as_tuple=True)
        if i.numel():
            diff = self.raw[i + s] - self.raw[j]
            block[i, j] = (diff * diff).sum(dim=1).sqrt()


def _count_within(block: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """#{j : dist < radius} per row; where the radius is 0 (k or more duplicates) #{j : dist <= 0}, the
    duplicates themselves (scikit-learn's ``query_radius(nextafter(r, 0))`` convention): then k-NN estimates
    of discrete data stay finite and bounded (and are still warned about by the callers)."""
    counts = (block < radius).sum(dim=1)
    zero = radius.reshape(-1) == 0
    if bool(zero.any()):
        counts[zero] = (block[zero] <= 0).sum(dim=1)
    return counts


def _kth(block: torch.Tensor, k: int) -> torch.Tensor:
    return torch.topk(block, k, dim=1, largest=False).values[:, -1]


def kth_radius(z: torch.Tensor, k: int, metric: str, *, memory_mb: float = 128.0) -> torch.Tensor:
    """Distance of each row to its k-th nearest other row, shape (N,), float64."""
    sp = Space(z, metric)
    n = z.shape[0]
    out = torch.empty(n, dtype=torch.float64, device=z.device)
    step = block_rows(n, memory_mb, 2)
    for s in range(0, n, step):  # loop over blocks of rows, each a vectorised (c, N) computation
        e = min(s + step, n)
        d = sp.block(s, e)
        r = _kth(d, k)
        if not sp.exact:
            sp.refine(d, s, r)
            r = _kth(d, k)
        out[s:e] = r
    return out


def ross_counts(
    t: torch.Tensor, labels: torch.Tensor, k: int, metric: str, *, memory_mb: float = 128.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ross (2014): per row the k-th neighbour distance d_i within its class and m_i = #{j : dist < d_i}.

    m_i counts the row itself (scikit-learn's convention, so m_i = k when no other class is nearer).
    Returns ``(radius, m)``, float64 and int64 tensors of shape (N,).
    """
    sp = Space(t, metric)
    n = t.shape[0]
    radius = torch.empty(n, dtype=torch.float64, device=t.device)
    m = torch.empty(n, dtype=torch.int64, device=t.device)
    step = block_rows(n, memory_mb, 3)
    for s in range(0, n, step):
        e = min(s + step, n)
        d = sp.block(s, e)
        other = labels[s:e, None] != labels[None, :]
        eps = _kth(d.masked_fill(other, math.inf), k)
        if not sp.exact:
            sp.refine(d, s, eps)
            eps = _kth(d.masked_fill(other, math.inf), k)
        radius[s:e] = eps
        m[s:e] = _count_within(d, eps[:, None]) + 1
    return radius, m


def ksg_counts(
    a: torch.Tensor, b: torch.Tensor, k: int, metric: str, *, memory_mb: float = 128.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KSG algorithm 1: joint radius eps_i = k-th smallest max(‖a_i − a_j‖, ‖b_i − b_j‖) over j ≠ i, and the
    marginal counts n_a(i) = #{j ≠ i : ‖a_i − a_j‖ < eps_i}, n_b(i) likewise. Returns (eps, n_a, n_b)."""
    sa, sb = Space(a, metric), Space(b, metric)
    n = a.shape[0]
    eps = torch.empty(n, dtype=torch.float64, device=a.device)
    n_a = torch.empty(n, dtype=torch.int64, device=a.device)
    n_b = torch.empty(n, dtype=torch.int64, device=a.device)
    step = block_rows(n, memory_mb, 4)
    for s in range(0, n, step):
        e = min(s + step, n)
        da, db = sa.block(s, e), sb.block(s, e)
        if not (sa.exact and sb.exact):
            approx = _kth(torch.maximum(da, db), k)
            sa.refine(da, s, approx)
            sb.refine(db, s, approx)
        r = _kth(torch.maximum(da, db), k)[:, None]
        eps[s:e] = r[:, 0]
        n_a[s:e] = _count_within(da, r)
        n_b[s:e] = _count_within(db, r)
    return eps, n_a, n_b


def log_unit_ball(d: int, metric: str) -> float:
    """ln of the volume of the unit ball in d dimensions: d ln 2 (max norm), (d/2) ln π − ln Γ(d/2 + 1)."""
    if metric == "max":
        return d * math.log(2.0)
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def digamma_mean(values: torch.Tensor) -> float:
    """Mean of ψ over a tensor of positive numbers, in float64."""
    return float(torch.special.digamma(values.to(torch.float64)).mean())
