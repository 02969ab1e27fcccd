"""One variable's rows prepared for exact k-NN decisions from fast approximate distances (private).

A `Space` gives, for a block of rows, approximate distances to every row in a working precision (float32
on the CPU, float64 on other devices), a bound on their error, and the exact float64 distance of any list
of pairs. The callers (`knn`) decide every neighbour and every count from the approximation where the
bound makes the decision certain and from exact distances where it does not (the "band" around a radius),
so the results are those of exact float64 distances, identical to a direct computation:

- ``"gram"`` (Euclidean, d >= 2): squared distances ‖a‖² + ‖b‖² − 2 a·b by one matrix product of the
  rows shifted by their rounded column means; error |D̃² − d²| <= E = 8 (d + 4) · 2u · 2 max‖z‖² (the
  classical dot-product bound, margin 8), plus the rounding of the inputs to the working precision. In
  distance units that is <= E / (D̃ + d), tight for the distances near a radius. Exact: √Σ (a − b)².
- ``"max32"`` (max norm, d >= 2, numba on the CPU): max |a − b| in float32 (`knn_numba`); error
  <= 12 u max|z| per entry. Exact: max |a − b| in float64.
- ``"exact"`` (1-D data, or the max norm without numba or off the CPU): float64 distances by
  ``torch.cdist(p=inf)``, exact; no band needed.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import knn_numba

__all__ = ["Space", "exact_pairs_chunk"]

exact_pairs_chunk = 1 << 21  # elements of the (pairs, d) difference tensor per exact recomputation


class Space:
    """Rows ``z`` (float64 tensor, (N, d)) under ``metric`` ("max" or "euclidean")."""

    def __init__(self, z: torch.Tensor, metric: str, *, allow_numba: bool = True) -> None:
        self.raw = z
        n, d = z.shape
        cpu = z.device.type == "cpu"
        self.wd = torch.float32 if cpu else torch.float64
        u = 2.0**-24 if cpu else 2.0**-53
        self.metric = metric
        if d == 1 or (metric == "max" and not (cpu and allow_numba and knn_numba.available())):
            self.kind, self.squared = "exact", False
            return
        zc64 = z - torch.round(z.mean(dim=0, keepdim=True))
        zc = zc64.to(self.wd)
        self.z = zc
        if metric == "max":
            self.kind, self.squared = "max32", False
            self.bt = np.ascontiguousarray(zc.numpy().T)
            self.tau0 = 12.0 * u * float(zc64.abs().max()) if n else 0.0
            return
        self.kind, self.squared = "gram", True
        self.sq = (zc * zc).sum(dim=1)
        s = float((zc64 * zc64).sum(dim=1).max()) if n else 0.0
        self.E = 8.0 * (d + 4) * 2.0 * u * 2.0 * s
        self.eps_in = 4.0 * u * math.sqrt(s)  # rounding of the shift and of the inputs, in distance units

    @property
    def exact(self) -> bool:
        return self.kind == "exact"

    def block(self, s: int, e: int) -> torch.Tensor:
        """(e − s, N) distances (squared for ``"gram"``) of rows s..e to every row; own entries +inf."""
        if self.kind == "exact":
            out = torch.cdist(self.raw[s:e], self.raw, p=math.inf)
        elif self.kind == "max32":
            out = torch.from_numpy(knn_numba.max_block(self.z[s:e].numpy(), self.bt, torch.get_num_threads()))
        else:
            out = torch.addmm(self.sq[None, :], self.z[s:e], self.z.T, alpha=-2.0).add_(self.sq[s:e, None])
        idx = torch.arange(e - s, device=out.device)
        out[idx, idx + s] = math.inf
        return out

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
        """Exact float64 distances between rows i and j (index tensors), in chunks of bounded memory."""
        out = torch.empty(i.numel(), dtype=torch.float64, device=self.raw.device)
        step = max(1, exact_pairs_chunk // max(1, self.raw.shape[1]))
        for s in range(0, i.numel(), step):  # chunks of pairs, each vectorised
            diff = self.raw[i[s:s + step]] - self.raw[j[s:s + step]]
            if self.metric == "max" or self.raw.shape[1] == 1:
                out[s:s + step] = diff.abs().amax(dim=1)
            else:
                out[s:s + step] = (diff * diff).sum(dim=1).sqrt()
        return out
