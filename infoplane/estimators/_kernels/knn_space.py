"""One variable's rows prepared for exact k-NN decisions from fast approximate distances (private).

A `Space` gives, for a block of rows, approximate distances to every row in a working precision (float32
on the CPU, float64 on other devices), a bound on their error, and the exact float64 distance of any list
of pairs. The callers (`knn`) decide every neighbour and every count from the approximation where the
bound makes the decision certain and from exact distances where it does not (the "band" around a radius),
so the results are those of exact float64 distances, identical to a direct computation:

- ``"gram"`` (Euclidean, d >= 2): squared distances ‖a‖² + ‖b‖² − 2 a·b by one matrix product of the
  rows shifted by their rounded column means; error |D̃² − d²| <= E = 2 · (2d + 4) u · 2 max‖z‖²: the
  three dot products (‖a‖², ‖b‖², a·b, each within γ_d = du / (1 − du) of Σ |a_q b_q|, in any order of
  summation, FMA or not) and the two roundings of the sums give (2d + 3) u (‖a‖² + ‖b‖²) to first order,
  here with a margin of 2; plus the rounding of the inputs to the working precision. In
  distance units that is <= E / (D̃ + d), tight for the distances near a radius. Exact: √Σ (a − b)².
- ``"max32"`` (max norm, d >= 2, numba on the CPU): max |a − b| in float32 (`knn_numba`); error
  <= 12 u max|z| per entry. Exact: max |a − b| in float64.
- ``"exact"`` (1-D data, or the max norm without numba or off the CPU): float64 distances by
  ``torch.cdist(p=inf)``, exact; the band is then the entries equal to the radius.

`block` gives a torch block (the own entries +inf) for the torch passes of `knn`; `approx_block` gives the
raw numpy block (the Gram product itself, or the max-norm distances) into a reused buffer for the numba
row scans (`knn_numba`), which add ``sq`` themselves and skip the own entries (`fused`).

The float32 working precision needs float32 matrix products that are float32 throughout: where
``torch.get_float32_matmul_precision()`` is not ``"highest"`` (which may let a product run in bfloat16 or
TF32), the blocks are float64.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import knn_numba

__all__ = ["Space", "exact_pairs_chunk"]

exact_pairs_chunk = 1 << 18  # elements of the (pairs, d) difference tensor per chunk (2 MiB: stays in cache)


class Space:
    """Rows ``z`` (float64 tensor, (N, d)) under ``metric`` ("max" or "euclidean")."""

    def __init__(self, z: torch.Tensor, metric: str, *, allow_numba: bool = True) -> None:
        self.raw = z
        n, d = z.shape
        cpu = z.device.type == "cpu"
        numba_ok = cpu and allow_numba and knn_numba.available()
        # float32 where the CPU's float32 products are float32 throughout (the max norm needs no product)
        single = cpu and (metric == "max" or torch.get_float32_matmul_precision() == "highest")
        self.wd = torch.float32 if single else torch.float64
        u = 2.0**-24 if single else 2.0**-53
        self.metric = metric
        self.fused = False  # numba's row scans over `approx_block` (else torch passes over `block`)
        if d == 1 or (metric == "max" and not numba_ok):
            self.kind, self.squared, self.wd = "exact", False, torch.float64
            return
        zc64 = z - torch.round(z.mean(dim=0, keepdim=True))
        zc = zc64.to(self.wd).contiguous()
        self.z = zc
        self.fused = numba_ok and single
        if metric == "max":
            self.kind, self.squared = "max32", False
            self.sq = torch.zeros(n, dtype=self.wd)  # no Gram correction: the scans add zeros
            self.bt = np.ascontiguousarray(zc.numpy().T) if d < knn_numba.PAIRS_MIN_DIM else None
            self.tau0 = 12.0 * u * float(zc64.abs().max()) if n else 0.0
            return
        self.kind, self.squared = "gram", True
        self.sq = (zc * zc).sum(dim=1)
        s = float((zc64 * zc64).sum(dim=1).max()) if n else 0.0
        self.E = 2.0 * (2 * d + 4) * u * 2.0 * s  # (2d + 3) u (‖a‖² + ‖b‖²) to first order, margin 2
        self.eps_in = 4.0 * u * math.sqrt(s)  # rounding of the shift and of the inputs, in distance units

    @property
    def exact(self) -> bool:
        return self.kind == "exact"

    def block(self, s: int, e: int) -> torch.Tensor:
        """(e − s, N) distances (squared for ``"gram"``) of rows s..e to every row; own entries +inf."""
        if self.kind == "exact":
            out = torch.cdist(self.raw[s:e], self.raw, p=math.inf)
        elif self.kind == "max32":
            out = torch.empty((e - s, self.z.shape[0]), dtype=self.wd)
            with knn_numba.threads(torch.get_num_threads()):
                knn_numba.max_block(self.z[s:e].numpy(), self.z.numpy(), self.bt, out.numpy())
        else:
            out = torch.addmm(self.sq[None, :], self.z[s:e], self.z.T, alpha=-2.0).add_(self.sq[s:e, None])
        idx = torch.arange(e - s, device=out.device)
        out[idx, idx + s] = math.inf
        return out

    def approx_block(self, s: int, e: int, out: torch.Tensor) -> np.ndarray:
        """Raw (e − s, N) float32 block of rows s..e into ``out`` (CPU, ``fused`` only): the Gram product
        z_s · zᵀ (the scans add ``sq``) or the max-norm distances; the own entries are not masked."""
        if self.kind == "max32":
            return knn_numba.max_block(self.z[s:e].numpy(), self.z.numpy(), self.bt, out.numpy())
        torch.mm(self.z[s:e], self.z.T, out=out)
        return out.numpy()

    def bound(self) -> tuple[float, float, float]:
        """(E, eps_in, tau0): the parameters of `tau`, for the numba scans (which compute it per row)."""
        if self.kind == "gram":
            return self.E, self.eps_in, 0.0
        return 0.0, 0.0, self.tau0

    def to_dist(self, v: torch.Tensor) -> torch.Tensor:
        """Approximate values of this space's blocks as float64 distances."""
        v = v.to(torch.float64)
        return v.clamp(min=0.0).sqrt() if self.squared else v

    def from_dist(self, r: torch.Tensor) -> torch.Tensor:
        """Distance thresholds (float64) in the domain of this space's blocks; negative ones become -inf."""
        if not self.squared:
            return r
        return torch.where(r < 0, torch.full_like(r, -math.inf), r * r)

    def tau(self, r: torch.Tensor, tau_joint: torch.Tensor | None = None) -> torch.Tensor:
        """Per-row error bound (distance units) valid for every entry that can decide against radius ``r``.

        Gram: E / h for the entries with D̃ >= h = r / 2, when the entries below r / 2 are certainly inside
        (r / 2 > √E + 3 τ); otherwise the uniform bound √E. Plus the rounding of the inputs.
        """
        if self.kind == "exact":
            return torch.zeros_like(r)
        if self.kind == "max32":
            return torch.full_like(r, self.tau0)
        root = math.sqrt(self.E) + self.eps_in
        local = 2.0 * self.E / r.clamp(min=1e-300) + self.eps_in + 2.0**-23 * r
        worst = local if tau_joint is None else torch.maximum(local, tau_joint)
        ok = r / 2 > root + 3.0 * worst
        return torch.where(ok, local, torch.full_like(r, root))

    def exact_pairs(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Exact float64 distances between rows i and j (index tensors), in cache-sized chunks of pairs.

        Each distance is one row of a (pairs, d) reduction, so its summation order is that of every other
        chunk (a chunk of one pair is computed twice over: a reduction with a single output may be split
        across threads)."""
        out = torch.empty(i.numel(), dtype=torch.float64, device=self.raw.device)
        step = max(2, exact_pairs_chunk // max(1, self.raw.shape[1]))
        for s in range(0, i.numel(), step):  # chunks of pairs, each vectorised (in place: less memory traffic)
            ii, jj = i[s:s + step], j[s:s + step]
            if ii.numel() == 1:
                ii, jj = ii.repeat(2), jj.repeat(2)
            diff = self.raw.index_select(0, ii).sub_(self.raw.index_select(0, jj))
            if self.metric == "max" or self.raw.shape[1] == 1:
                dist = diff.abs_().amax(dim=1)
            else:
                dist = diff.mul_(diff).sum(dim=1).sqrt_()
            out[s:s + step] = dist[: out.numel() - s]
        return out
