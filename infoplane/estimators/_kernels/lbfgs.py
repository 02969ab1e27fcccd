"""L-BFGS on a batch of independent smooth convex problems at once, in torch (private).

The cross-fitted probe fits one logistic regression per fold (and per fold of the inner validation); the
folds share the data matrix, so one matrix product evaluates every fold's objective and gradient at once,
2–3× faster than a product per fold on the CPU (the data matrix is read once for all folds). Each block
(a fold's problem) keeps its own L-BFGS history, step length and stopping test, so the blocks do not
influence one another: block b's iterates are those of L-BFGS run on block b alone, whatever the other
blocks hold. A block that has stopped leaves the batch (its rows of the product are no longer computed).

Direction: the two-loop recursion (Nocedal & Wright 2006, algorithm 7.4) over the last ``history`` pairs
with the initial scaling sᵀy / yᵀy; the first step of a block is −g scaled to unit ℓ1 length when larger
(as ``torch.optim.LBFGS``). Step: backtracking from 1 with the Armijo condition (c₁ = 1e-4), the next trial
the minimiser of the quadratic through f(0), f'(0) and f(t), kept within [0.1 t, 0.5 t]. For a convex
objective sᵀy >= 0, so the curvature pairs stay valid without a Wolfe search (pairs with sᵀy <= 1e-10 sᵀs
are skipped all the same).

Stopping, per block, whichever comes first:

- ``change(aux_old, aux_new) <= ptol`` on ``calm`` successive accepted steps, where ``aux`` is what ``fun``
  returns beside the value and gradient (the probe: the held-out rows' log-probabilities, so the test is on
  the quantity reported, in its units);
- the largest gradient entry at most ``tol``;
- ``max_iter`` iterations;
- no step that satisfies the Armijo condition in ``max_backtracks`` trials (the float32 floor).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["BlockLBFGS", "minimise_blocks"]

#: fun(x (b, p), idx (b,)) -> (values (b,), gradients (b, p), aux (b, ...)) of the blocks ``idx``.
Fun = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
#: change(aux_old (b, ...), aux_new (b, ...)) -> (b,): how far one step moved what the caller cares about.
Change = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class BlockLBFGS:
    """The outcome: ``x`` (blocks, p), ``f`` (blocks,), ``evaluations`` (calls of ``fun``, all blocks
    together), ``block_evaluations`` (sum over calls of the blocks evaluated), ``iterations`` (blocks,)."""

    x: torch.Tensor
    f: torch.Tensor
    evaluations: int
    block_evaluations: int
    iterations: torch.Tensor


def _direction(g: torch.Tensor, s: torch.Tensor, y: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """−H g by the two-loop recursion, batched: g (b, p), s and y (b, m, p) oldest first, rho (b, m) (0: empty)."""
    q = g.clone()
    m = s.shape[1]
    alpha = torch.zeros_like(rho)
    for i in range(m - 1, -1, -1):  # newest to oldest; m is a small fixed history
        alpha[:, i] = rho[:, i] * (s[:, i] * q).sum(1)
        q -= alpha[:, i, None] * y[:, i]
    sy, yy = (s[:, -1] * y[:, -1]).sum(1), (y[:, -1] * y[:, -1]).sum(1)
    first = torch.clamp(1.0 / g.abs().sum(1).clamp_min(1e-30), max=1.0)  # no pair yet: −g, unit ℓ1 at most
    gamma = torch.where(rho[:, -1] > 0, sy / yy.clamp_min(1e-30), first)
    r = gamma[:, None] * q
    for i in range(m):  # oldest to newest
        beta = rho[:, i] * (y[:, i] * r).sum(1)
        r += (alpha[:, i] - beta)[:, None] * s[:, i]
    return -r


def _line_search(fun: Fun, x: torch.Tensor, f: torch.Tensor, d: torch.Tensor, gd: torch.Tensor,
                 idx: torch.Tensor, max_backtracks: int) -> tuple:
    """Armijo backtracking for each block of ``idx``: (step, f, g, aux, accepted, evaluations, block evals)."""
    t = torch.ones_like(f)
    f_new, g_new, aux = fun(x + d, idx)
    evals, block_evals = 1, int(idx.numel())
    ok = f_new <= f + 1e-4 * t * gd
    for _ in range(max_backtracks):
        bad = (~ok).nonzero().flatten()
        if bad.numel() == 0:
            break
        tb, fb = t[bad], f_new[bad]
        # minimiser of the quadratic through f(0), f'(0) and f(t), within [0.1 t, 0.5 t]
        denom = 2.0 * (fb - f[bad] - gd[bad] * tb)
        t_q = torch.where(denom > 0, -gd[bad] * tb * tb / denom.clamp_min(1e-30), 0.5 * tb)
        t[bad] = torch.minimum(torch.maximum(t_q, 0.1 * tb), 0.5 * tb)
        fb, gb, ab = fun(x[bad] + t[bad, None] * d[bad], idx[bad])
        evals, block_evals = evals + 1, block_evals + int(bad.numel())
        f_new[bad], g_new[bad], aux[bad] = fb, gb, ab
        ok[bad] = fb <= f[bad] + 1e-4 * t[bad] * gd[bad]
    return t, f_new, g_new, aux, ok, evals, block_evals


@dataclass
class _History:
    """Each block's last ``m`` curvature pairs, oldest first (rho = 0 marks an empty slot)."""

    s: torch.Tensor
    y: torch.Tensor
    rho: torch.Tensor

    def push(self, k: torch.Tensor, step: torch.Tensor, dy: torch.Tensor, sy: torch.Tensor) -> None:
        self.s[k] = torch.roll(self.s[k], -1, dims=1)
        self.y[k] = torch.roll(self.y[k], -1, dims=1)
        self.rho[k] = torch.roll(self.rho[k], -1, dims=1)
        self.s[k, -1], self.y[k, -1], self.rho[k, -1] = step, dy, 1.0 / sy


def minimise_blocks(fun: Fun, x0: torch.Tensor, *, change: Change, ptol: float, tol: float, max_iter: int,
                    calm: int = 2, history: int = 10, max_backtracks: int = 10) -> BlockLBFGS:
    """Minimise ``blocks`` independent convex functions by L-BFGS (module docstring), from ``x0`` (blocks, p).

    ``fun(x, idx)``: values (b,), gradients (b, p) and an auxiliary tensor (b, ...) of the blocks ``idx``
    (a long tensor of b block indices) at ``x`` (b, p); ``change``: how far a step moved the auxiliary
    tensor, per block; a block stops after ``calm`` successive accepted steps that each moved it by at
    most ``ptol``, at ``max|g| <= tol``, after ``max_iter`` iterations, or when no step decreases it.
    """
    n_blocks, p = x0.shape
    x = x0.clone()
    f, g, aux = fun(x, torch.arange(n_blocks, device=x.device))
    evals, block_evals = 1, n_blocks
    hist = _History(x.new_zeros(n_blocks, history, p), x.new_zeros(n_blocks, history, p),
                    x.new_zeros(n_blocks, history))
    iters = torch.zeros(n_blocks, dtype=torch.long, device=x.device)
    quiet = torch.zeros(n_blocks, dtype=torch.long, device=x.device)
    active = g.abs().amax(1) > tol
    while bool(active.any()):  # one L-BFGS iteration of every active block per pass
        a = active.nonzero().flatten()
        d = _direction(g[a], hist.s[a], hist.y[a], hist.rho[a])
        gd = (g[a] * d).sum(1)
        uphill = gd >= 0  # rounding spoilt the history: restart those blocks from steepest descent
        if bool(uphill.any()):
            hist.rho[a[uphill]] = 0.0
            d[uphill] = -g[a[uphill]] * torch.clamp(1.0 / g[a[uphill]].abs().sum(1, keepdim=True), max=1.0)
            gd = (g[a] * d).sum(1)
        t, f_new, g_new, aux_new, ok, ev, bev = _line_search(fun, x[a], f[a], d, gd, a, max_backtracks)
        evals, block_evals = evals + ev, block_evals + bev
        step = t[:, None] * d
        dy = g_new - g[a]
        sy = (step * dy).sum(1)
        keep = ok & (sy > 1e-10 * (step * step).sum(1))
        hist.push(a[keep], step[keep], dy[keep], sy[keep])
        moved = change(aux[a], aux_new)
        acc = a[ok]
        x[acc] += step[ok]
        f[acc], g[acc], aux[acc] = f_new[ok], g_new[ok], aux_new[ok]
        iters[a] += 1
        quiet[a] = torch.where(ok & (moved <= ptol), quiet[a] + 1, 0)
        done = (~ok) | (iters[a] >= max_iter) | (g[a].abs().amax(1) <= tol) | (quiet[a] >= calm)
        active[a[done]] = False
    return BlockLBFGS(x=x, f=f, evaluations=evals, block_evaluations=block_evals, iterations=iters)
