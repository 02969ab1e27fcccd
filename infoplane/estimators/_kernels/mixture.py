"""Pure torch kernel: log-densities of a diagonal Gaussian mixture at Monte Carlo points, by groups.

The mixture has one component N(C_j, diag(s_j²)) per row j of ``centres`` (s_j a scalar for additive
noise, a per-unit vector σ·|C_j| for Gaussian dropout). For each point z_p (drawn from its own component
o_p) the kernel returns, in nats, ln Σ_{j ∈ G} φ_j(z_p) for G = every row and for G = the rows sharing a
group id with o_p (class, input), with φ_j the full normalised density

    ln φ_j(z) = −Σ_k (z_k − C_jk)² / (2 s_jk²) − Σ_k ln s_jk − (d/2) ln 2π.

The own term j = o_p is passed in exactly (from the point's standard normal draw), so that each sum is at
least that term whatever the rounding. Chunked over points: memory O(block · rows), never points × rows at
once beyond the ``memory_mb`` budget.
"""
from __future__ import annotations

import math

import torch

__all__ = ["grouped_mixture_log_sums"]


def _block_log_density(z, c, w, cw, const):
    """(P, R) ln φ_j(z_p) = const_j − Σ_k w_jk z_k² + 2 Σ_k z_k C_jk w_jk, w = 1/(2 s²), const_j holding
    −Σ_k w_jk C_jk² and the normalisation."""
    if w.ndim == 0:  # one scale for every unit and row
        sq = (z * z).sum(dim=1, keepdim=True) * w
        return torch.addmm(const[None, :] - sq, z, cw.T, alpha=2.0)
    block = torch.addmm(const[None, :], z * z, w.T, alpha=-1.0)
    return block.addmm_(z, cw.T, alpha=2.0)


def grouped_mixture_log_sums(
    centres: torch.Tensor,
    scales: torch.Tensor,
    points: torch.Tensor,
    owner: torch.Tensor,
    own_log: torch.Tensor,
    groups: dict[str, torch.Tensor],
    *,
    memory_mb: float = 64.0,
) -> dict[str, torch.Tensor]:
    """Per-point mixture log-sums ln Σ_{j∈G} φ_j(z_p) in nats (not divided by |G|), shape (P,) each.

    Parameters
    ----------
    centres : (R, d) float64 tensor
    scales : 0-d tensor (one s for all) or (R, d) float64 tensor of per-unit standard deviations > 0
    points : (P, d) float64, the Monte Carlo points
    owner : (P,) int64, the row each point was drawn from
    own_log : (P,) float64, ln φ_owner(z_p) computed exactly
    groups : name -> (R,) int64 ids; ``"all"`` is reserved
    memory_mb : block budget (speed/memory only)

    Returns
    -------
    dict with ``"all"`` and one entry per group name.
    """
    r, d = centres.shape
    shift = centres.mean(dim=0, keepdim=True)  # a shift of z and C together leaves every density unchanged
    c = centres - shift
    z_all = points - shift
    w = 0.5 / (scales * scales)
    cw = c * w
    log_norm = (torch.log(scales).sum(dim=1) if scales.ndim else d * torch.log(scales).expand(r))
    const = -((c * c * w).sum(dim=1) if w.ndim else (c * c).sum(dim=1) * w) - log_norm - 0.5 * d * math.log(2 * math.pi)
    n_points = points.shape[0]
    out = {"all": torch.empty(n_points, dtype=torch.float64, device=c.device)}
    for g in groups:
        out[g] = torch.empty(n_points, dtype=torch.float64, device=c.device)
    rows = max(1, min(n_points, int(memory_mb * 2**20 // (8 * 3 * r))))
    for s in range(0, n_points, rows):  # loop over blocks of points; each block is (rows, R)
        e = min(s + rows, n_points)
        block = _block_log_density(z_all[s:e], c, w, cw, const)
        own = owner[s:e]
        block[torch.arange(e - s, device=c.device), own] = own_log[s:e]
        out["all"][s:e] = torch.logsumexp(block, dim=1)
        for name, ids in groups.items():
            other = ids[own][:, None] != ids[None, :]
            out[name][s:e] = torch.logsumexp(block.masked_fill(other, -math.inf), dim=1)
        del block
    return out
