"""Pure torch kernel: log-densities of an equal-variance Gaussian mixture at Monte Carlo points, by groups.

The mixture has one component N(S_j, s² I) per row j of ``centres``. Points are drawn from each component,
z_im = S_i + s ε_im (m = 1..M), and for each point the kernel returns, in nats and without the Gaussian's
normalising constant, ln Σ_{j ∈ G} exp(−‖z_im − S_j‖² / (2 s²)) for G = every row and for G = the rows
sharing a group id with row i (class, input). The own term j = i is set exactly (−‖ε_im‖²/2) so that each
sum is at least that term whatever the rounding. Chunked over points: memory O(rows · M · N), never N×N×M.
"""
from __future__ import annotations

import math

import torch

__all__ = ["grouped_mixture_log_sums"]


def grouped_mixture_log_sums(
    centres: torch.Tensor,
    noise_std: float,
    eps: torch.Tensor,
    groups: dict[str, torch.Tensor],
    *,
    memory_mb: float = 64.0,
) -> dict[str, torch.Tensor]:
    """Per-point mixture log-sums (nats, no normalising constant), shape (N, M) each.

    Parameters
    ----------
    centres : (N, d) float64 tensor
    noise_std : float, s > 0
    eps : (N, M, d) standard normal draws (the points are ``centres[:, None] + s * eps``)
    groups : name -> (N,) int64 ids on the centres' device; ``"own"`` and ``"all"`` are reserved names
    memory_mb : block budget (speed/memory only)

    Returns
    -------
    dict with ``"own"`` (−‖ε‖²/2), ``"all"`` and one entry per group name.
    """
    n, d = centres.shape
    m = eps.shape[1]
    c = centres - centres.mean(dim=0, keepdim=True)  # a shift leaves every distance unchanged
    sq = (c * c).sum(dim=1)
    inv = 1.0 / (2.0 * noise_std**2)
    own = -0.5 * (eps * eps).sum(dim=2)
    out = {"own": own, "all": torch.empty((n, m), dtype=torch.float64, device=c.device)}
    for g in groups:
        out[g] = torch.empty((n, m), dtype=torch.float64, device=c.device)
    rows = max(1, min(n, int(memory_mb * 2**20 // (8 * 3 * m * n))))
    for s in range(0, n, rows):  # loop over blocks of centres i; each block is (rows·M, N)
        e = min(s + rows, n)
        z = (c[s:e, None, :] + noise_std * eps[s:e]).reshape(-1, d)
        block = torch.addmm(sq[None, :] + (z * z).sum(dim=1, keepdim=True), z, c.T, alpha=-2.0)
        block.clamp_(min=0.0).mul_(-inv)
        point_row = torch.arange(s, e, device=c.device).repeat_interleave(m)
        block[torch.arange(block.shape[0], device=c.device), point_row] = own[s:e].reshape(-1)
        out["all"][s:e] = torch.logsumexp(block, dim=1).reshape(e - s, m)
        for name, ids in groups.items():
            other = ids[point_row][:, None] != ids[None, :]
            out[name][s:e] = torch.logsumexp(block.masked_fill(other, -math.inf), dim=1).reshape(e - s, m)
        del block
    return out
