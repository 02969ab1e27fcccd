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

from .fast_exp import EXP_FLOOR

__all__ = ["grouped_mixture_log_sums"]


def _block_log_density(z, c, w, cw, const):
    """(P, R) ln φ_j(z_p) = const_j − Σ_k w_jk z_k² + 2 Σ_k z_k C_jk w_jk, w = 1/(2 s²), const_j holding
    −Σ_k w_jk C_jk² and the normalisation."""
    if w.ndim == 0:  # one scale for every unit and row
        sq = (z * z).sum(dim=1, keepdim=True) * w
        return torch.addmm(const[None, :] - sq, z, cw.T, alpha=2.0)
    block = torch.addmm(const[None, :], z * z, w.T, alpha=-1.0)
    return block.addmm_(z, cw.T, alpha=2.0)


def _direct_log_density(z, centres, scales, rows):
    """(P, k) ln φ_j(z_p) for the k rows ``rows[p]`` of each point, from the differences themselves."""
    diff = z[:, None, :] - centres[rows]
    sc = scales[rows] if scales.ndim else scales
    norm = torch.log(sc).sum(dim=2) if scales.ndim else centres.shape[1] * torch.log(scales)
    return -0.5 * ((diff / sc) ** 2).sum(dim=2) - norm - 0.5 * centres.shape[1] * math.log(2 * math.pi)


def grouped_mixture_log_sums(
    centres: torch.Tensor,
    scales: torch.Tensor,
    points: torch.Tensor,
    owner: torch.Tensor,
    own_log: torch.Tensor,
    classes: torch.Tensor,
    members: torch.Tensor | None = None,
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
    classes : (R,) int64 class ids 0..C-1: G = the rows of the owner's class (``"class"``)
    members : (P, k) int64, optional: for each point the rows of its owner's input (−1 pads inputs with
        fewer rows): G = those rows (``"input"``, computed directly from the k differences).
    memory_mb : block budget (speed/memory only)

    Returns
    -------
    dict with ``"all"``, ``"class"`` and, with ``members``, ``"input"``.

    The class sums come from one exponential of each block and a (P, R) @ (R, C) product with the
    one-hot classes (sums relative to the block's row maximum; exponents below −`EXP_FLOOR` raised to it, out
    of slow subnormal arithmetic); a class sum that underflows there, or is small enough to be made of raised
    terms, is recomputed by a masked log-sum-exp, so no term is lost or gained.
    """
    r, d = centres.shape
    shift = centres.mean(dim=0, keepdim=True)  # a shift of z and C together leaves every density unchanged
    c = centres - shift
    z_all = points - shift
    w = 0.5 / (scales * scales)
    cw = c * w
    log_norm = (torch.log(scales).sum(dim=1) if scales.ndim else d * torch.log(scales).expand(r))
    sq_w = (c * c * w).sum(dim=1) if w.ndim else (c * c).sum(dim=1) * w
    const = -sq_w - log_norm - 0.5 * d * math.log(2 * math.pi)
    del sq_w, log_norm
    n_classes = int(classes.max()) + 1
    onehot = torch.zeros((r, n_classes), dtype=torch.float64, device=c.device)
    onehot[torch.arange(r, device=c.device), classes] = 1.0
    n_points = points.shape[0]
    out = {k: torch.empty(n_points, dtype=torch.float64, device=c.device) for k in ("all", "class")}
    if members is not None:
        out["input"] = torch.empty(n_points, dtype=torch.float64, device=c.device)
    rows = max(1, min(n_points, int(memory_mb * 2**20 // (8 * 2 * r))))
    # a class sum at most this may hold raised terms above 2^-52 of itself (r of them, e^-EXP_FLOOR each):
    # recomputed, so every sum kept is the unraised one to float64's resolution (above 1e-292: an
    # underflowed sum is among them)
    tiny = r * math.exp(-EXP_FLOOR) * 2.0**52
    for s in range(0, n_points, rows):  # loop over blocks of points; each block is (rows, R)
        e = min(s + rows, n_points)
        own = owner[s:e]
        block = _block_log_density(z_all[s:e], c, w, cw, const)
        block[torch.arange(e - s, device=c.device), own] = own_log[s:e]
        top = block.max(dim=1, keepdim=True).values
        block.sub_(top).clamp_(min=-EXP_FLOOR).exp_()
        per_class = block @ onehot  # (rows, C) sums relative to the row maximum
        out["all"][s:e] = torch.log(per_class.sum(dim=1)) + top[:, 0]
        mine = per_class[torch.arange(e - s, device=c.device), classes[own]]
        out["class"][s:e] = torch.log(mine) + top[:, 0]
        lost = torch.nonzero(mine <= tiny).reshape(-1)
        if lost.numel():  # the owner's class far below another class's nearest row: exactly, by masking
            again = _block_log_density(z_all[s:e][lost], c, w, cw, const)
            again[torch.arange(lost.numel(), device=c.device), own[lost]] = own_log[s:e][lost]
            other = classes[own[lost]][:, None] != classes[None, :]
            out["class"][s:e][lost] = torch.logsumexp(again.masked_fill(other, -math.inf), dim=1)
        del block
        if members is not None:
            mem = members[s:e]
            direct = _direct_log_density(points[s:e], centres, scales, mem.clamp(min=0))
            direct = torch.where(mem == own[:, None], own_log[s:e, None].expand_as(direct), direct)
            out["input"][s:e] = torch.logsumexp(direct.masked_fill(mem < 0, -math.inf), dim=1)
    return out
