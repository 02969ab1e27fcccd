"""Cross-fitted multinomial logistic regression, every fold fitted at once by batched L-BFGS in torch (private).

The probe decoder of `probe` (and of the Gaussian-layer probes). Each fold's probe is scikit-learn's
``make_pipeline(StandardScaler(), LogisticRegression(C=C))`` fitted on the other folds: features
standardised with the training fold's mean and standard deviation, weights W (classes, d) and biases b
minimising the mean cross-entropy + ‖W‖² / (2 C n) (scikit-learn's objective divided by C n; the biases
are not penalised). The folds share one data matrix: its columns are standardised once over all rows (a
fixed affine map: nothing changes), each fold's own standardisation is folded into its weights
(W/σ_f and b − (W/σ_f)·μ_f), and one product of the stacked weights (folds × classes, d) with the matrix
evaluates every fold, reading the matrix once (`Blocks`): 2–3× faster on the CPU than a product per fold.
The folds stay independent problems (`minimise_blocks`: each its own L-BFGS history, steps and stopping),
in float32 on the caller's thread count (`probe.classification_log_q`);
the reported log-probabilities are taken in float64 from the float32 logits. L-BFGS works on the weights
written along the layer's principal axes and scaled by the penalty and the variance on each (`Scaled`): the
same minimiser, but a real layer's correlated units no longer leave it creeping at weak penalties (1.75x
faster on bench_plane's ConvNet layers, and 0.03–0.11 bits higher there: the unscaled solver's stopping
test had fired short of the optimum).

C is chosen per outer training fold by inner validation on a stratified quarter of it (no fold's C or
weights depend on its held-out labels): the decade path `C_GRID` is walked from the strongest penalty up,
each fit warm-started from the previous C's and run to the same convergence as the refit, and a fold's path
ends at the first C whose inner held-out cross-entropy is not lower than the best so far by more than
`PATH_TOL` nats; then one half-decade step from the best C towards its better neighbour (×√10 or ÷√10) is
tried (on a sparse ReLU layer at N = 10,000, d = 1,024 the decade grid alone lost 0.03 bits), and the best is
refitted on the whole training fold from its inner solution. The inner fits must be converged: a fit cut
short is regularised by early stopping, so weak penalties look better on the validation rows than they are
once refitted to convergence (on a ConvNet layer of 256 units, 10,000 images, inner fits capped at 60
iterations chose C = 31.6 where 0.316 was best: 2.61 bits instead of 2.98).

Stopping: a fit stops when two successive L-BFGS steps have each moved the mean log-likelihood of its
watched rows by at most ``ptol`` nats (`PTOL` = 1e-4 for the refit, watching the fold's held-out rows;
`INNER_PTOL`, the same, for the inner path, watching the inner validation rows), or after ``max_iter`` iterations, or when no step decreases the objective (the float32 floor).
The test is on the quantity reported, in its units: the training objective is flat in directions that still
move held-out predictions, so a gradient tolerance either stops too early there or spends most iterations
below float32's resolution. Watching the held-out labels decides only *when* to stop, not what is fitted:
the value reported is that of the converged fit to about ``ptol`` (measured: within 0.0002 bits of a float64
solve to max |gradient| <= 1e-9 at the same folds and Cs, benchmarks/bench_probe.py;
tests/estimators/test_probe_solver.py against scikit-learn at tol 1e-10).

Warm starts across epochs (``state``): the refit of each fold starts from the previous epoch's refit where
the same C is chosen again. The objective is convex, so a warm start changes the number of iterations, and
the result only within the stopping tolerance, even though the rows' canonical order, hence the folds,
differs between epochs (a state fitted on every row moved the bound by 0.0003 bits). The inner path is not
warm-started from the previous epoch: the path's own warm start from the previous C is already close (with
the looser tolerance the inner fits once had, a start from the previous epoch saved no time and could flip
the choice between two nearly tied Cs: up to 0.05 bits on 2,000 rows).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..._core.threads import seeded_global_rng
from .lbfgs import BlockLBFGS, minimise_blocks

__all__ = ["C_GRID", "PTOL", "GTOL", "Design", "Blocks", "Scaled", "fit_blocks", "cross_fit"]

#: The decade path of inverse penalties walked by the inner validation (a half-decade step refines it).
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
MAX_ITER = 500
PTOL = 1e-4
# The inner fits rank the Cs as the refit will be: run to the same convergence (module docstring).
INNER_MAX_ITER, INNER_PTOL = MAX_ITER, PTOL
#: A path ends where the inner cross-entropy improves on the best so far by at most this (nats, ~0.0014 bits).
PATH_TOL = 1e-3
GTOL = 0.0
#: The curvature of the mean cross-entropy per unit variance along a feature direction that the solver's
#: scaling assumes (`Scaled`): p(1 − p) for a class probability near 1/10. Only the speed depends on it
#: (0.02–0.1 alike on bench_plane's layers; 1 took 1.5x the evaluations).
CURVATURE = 0.1
#: Layers up to this width get every principal axis (a d × d eigendecomposition: 0.1 s at 1,024, 4.4 s at
#: 4,096); wider ones the leading `AXES_RANK` axes (a randomised SVD, about 1 s at N = 10,000, d = 4,096)
#: and one scale for the rest (`Scaled`).
FULL_AXES = 1024
AXES_RANK = 256


@dataclass
class Design:
    """The data every fold shares: ``x`` (n, d) standardised over all rows, float32, its transpose ``xt``
    (contiguous: the product with the stacked weights is faster with the small matrix on the left), the
    one-hot labels ``onehot`` (classes, n), ``n_classes``, and the principal axes of ``x`` (``q``, (d, r)
    orthonormal columns: all d axes, or the leading `AXES_RANK` of a layer wider than `FULL_AXES`) with the
    variances along them (``eig``, (r,), float64) and the mean variance along the other d − r (``rest``,
    0 when r = d): the solver's scaling (`Scaled`)."""

    x: torch.Tensor
    xt: torch.Tensor
    onehot: torch.Tensor
    n_classes: int
    q: torch.Tensor
    eig: torch.Tensor
    rest: float

    @classmethod
    def build(cls, z: np.ndarray, y: np.ndarray, n_classes: int, device: Any) -> Design:
        """From activations ``z`` (n, d) and class ids ``y`` (n,): data float32, standardised over all rows,
        and its principal axes (one d × d eigendecomposition; float32 will do: they only scale the solver)."""
        x = torch.as_tensor(np.asarray(z), device=device)
        x = x if x.dtype == torch.float64 else x.float()  # the statistics in the input's precision: any affine
        mean, sd = x.mean(dim=0), x.std(dim=0, unbiased=False)  # map will do, each fold's is exact (fold_stats)
        live = int((sd > 0).sum())  # non-constant columns: each has variance 1 once standardised
        sd[sd == 0] = 1.0
        x = ((x - mean) / sd).float()
        onehot = torch.nn.functional.one_hot(torch.as_tensor(y, device=device), n_classes).float().T.contiguous()
        n, d = x.shape
        if d <= FULL_AXES:
            eig, q, rest = *torch.linalg.eigh(x.T @ x / n), 0.0
        else:  # the leading axes; seeded, and the caller's global generator left as it was
            with seeded_global_rng(0):
                _, sv, q = torch.svd_lowrank(x, q=AXES_RANK, niter=2)
            eig = sv.double() ** 2 / n
            rest = max((live - float(eig.sum())) / (d - AXES_RANK), 0.0)  # the trace is `live`
        return cls(x=x, xt=x.T.contiguous(), onehot=onehot, n_classes=n_classes, q=q,
                   eig=eig.double().clamp_min(0.0), rest=rest)

    def fold_stats(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation (ddof 0; 1 for a column constant on these rows, as StandardScaler)
        of each mask's rows, (blocks, d): two masked products in float64 (the design is standardised, so
        E[x²] − E[x]² loses nothing that matters)."""
        x64 = self.x.double()
        m = masks.double()
        m = m / m.sum(dim=1, keepdim=True)
        mu = m @ x64
        var = (m @ (x64 * x64) - mu * mu).clamp_min(0.0)
        sd = var.sqrt()
        sd[var <= 1e-12] = 1.0  # constant on these rows (the design's columns have variance 1 over all rows)
        return mu.to(self.x.dtype), sd.to(self.x.dtype)


class Blocks:
    """A batch of probes: block j minimises the mean cross-entropy over the rows of ``masks[j]`` plus
    ``‖W‖² / (2 C_j n_j)``, features standardised by (``mu[j]``, ``sd[j]``). Parameters per block:
    W (classes × d) then b (classes), flattened."""

    def __init__(self, design: Design, masks: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor,
                 C: torch.Tensor, watch: torch.Tensor) -> None:
        self.design, self.mu, self.sd = design, mu, sd
        counts = masks.sum(dim=1).to(design.x.dtype)
        self.weight = masks.to(design.x.dtype) / counts[:, None]  # (blocks, n): 1/n_j on the block's rows
        self.watch = watch.to(design.x.dtype) / watch.sum(dim=1, keepdim=True).clamp_min(1)
        self.lam = 1.0 / (C.to(design.x.dtype) * counts)

    def _split(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, d = self.design.n_classes, self.design.x.shape[1]
        return theta[:, : k * d].reshape(-1, k, d), theta[:, k * d:]

    def logits(self, theta: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(b, classes, n) logits of the blocks ``idx`` on every row."""
        w, b = self._split(theta)
        a = w / self.sd[idx, None, :]
        c = b - (a * self.mu[idx, None, :]).sum(dim=-1)
        k, (d, n) = self.design.n_classes, self.design.xt.shape
        return (a.reshape(-1, d) @ self.design.xt).reshape(-1, k, n) + c[..., None]

    def __call__(self, theta: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Objective (b,), gradient (b, p) of the blocks ``idx`` at ``theta`` (b, p), and the log-probability
        of the true class on their watched rows (b, n), weighted by 1 / (watched rows) (0 elsewhere)."""
        w, _ = self._split(theta)
        logits = self.logits(theta, idx)
        lse = torch.logsumexp(logits, dim=1, keepdim=True)
        onehot, wt = self.design.onehot, self.weight[idx]
        ce = lse[:, 0] - (logits * onehot).sum(dim=1)
        lam = self.lam[idx]
        f = (ce * wt).sum(dim=1) + 0.5 * lam * (w * w).sum(dim=(1, 2))
        g = (torch.exp(logits - lse) - onehot) * wt[:, None, :]  # d(mean CE)/d logits
        k, d = self.design.n_classes, self.design.x.shape[1]
        g_c = g.sum(dim=-1)
        g_a = (g.reshape(-1, g.shape[-1]) @ self.design.x).reshape(-1, k, d) - g_c[..., None] * self.mu[idx, None, :]
        g_w = g_a / self.sd[idx, None, :] + lam[:, None, None] * w
        return f, torch.cat([g_w.reshape(len(idx), -1), g_c], dim=1), -ce * self.watch[idx]

    def held_out_ce(self, theta: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats, float64) of every block on its watched rows."""
        idx = torch.arange(theta.shape[0], device=theta.device)
        logp = torch.log_softmax(self.logits(theta, idx).double(), dim=1)
        return -((logp * self.design.onehot.double()).sum(dim=1) * self.watch.double()).sum(dim=1)


class Scaled:
    """What L-BFGS minimises for `Blocks`: the same objectives in scaled principal-axes variables.

    Block j's weights W (classes × d, on its fold's standardised features) are written W = ((V ⊙ s_j) qᵀ) ⊙
    sd_j, with ``q`` the design's principal axes and s_j,i = 1 / sqrt(eig_i + λ_j / `CURVATURE`): in V the
    objective's Hessian is about `CURVATURE` × I, where in W it follows the layer's covariance, whose
    eigenvalues span many decades on a real layer (correlated units, dead ReLUs) and leave L-BFGS creeping
    at weak penalties while its held-out stopping test already reads "settled" (on bench_plane's ConvNet
    layers at C = 10 … 100: 0.03–0.07 bits short of the optimum). A linear change of variables: the same
    minimiser, in fewer iterations, for two (blocks × classes, d) × (d, d) products per evaluation.
    Biases are not rescaled.

    A layer wider than `FULL_AXES` has only its leading r = `AXES_RANK` axes (q is d × r): there V stays on
    the features and W = P_j(V) ⊙ sd_j with P_j(V) = o_j V + ((V q) ⊙ (s_j − o_j)) qᵀ, o_j = 1 / sqrt(rest +
    λ_j / `CURVATURE`) the scale of the d − r other directions (P_j symmetric positive definite: again a linear
    change of variables, same minimiser), for two (blocks × classes, d) × (d, r) products per evaluation.
    """

    def __init__(self, blocks: Blocks) -> None:
        design = blocks.design
        self.blocks, self.q, self.sd = blocks, design.q, blocks.sd
        self.full = design.q.shape[1] == design.q.shape[0]
        lam = blocks.lam.double()[:, None] / CURVATURE
        self.scale = (1.0 / (design.eig[None, :] + lam).sqrt()).to(design.x.dtype)  # (blocks, r)
        self.other = (1.0 / (design.rest + lam).sqrt()).to(design.x.dtype)  # (blocks, 1): the d − r others

    def _parts(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, d = self.blocks.design.n_classes, self.q.shape[0]
        return theta[:, : k * d].reshape(-1, k, d), theta[:, k * d:]

    def _low_rank(self, v: torch.Tensor, idx: torch.Tensor, power: int) -> torch.Tensor:
        """P(v) (power 1) or P⁻¹(v) (power −1) of the low-rank form (class docstring), v (b, classes, d)."""
        o, s = self.other[idx, None, :] ** power, self.scale[idx, None, :] ** power
        return o * v + ((v @ self.q) * (s - o)) @ self.q.T

    def to_solver(self, theta: torch.Tensor) -> torch.Tensor:
        """(W, b) of every block -> (V, b)."""
        w, b = self._parts(theta)
        a = w / self.sd[:, None, :]
        if self.full:
            v = (a @ self.q) / self.scale[:, None, :]
        else:
            v = self._low_rank(a, torch.arange(len(theta), device=theta.device), -1)
        return torch.cat([v.reshape(len(theta), -1), b], dim=1)

    def from_solver(self, theta: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """(V, b) of the blocks ``idx`` (default all) -> (W, b)."""
        idx = torch.arange(len(theta), device=theta.device) if idx is None else idx
        v, b = self._parts(theta)
        a = (v * self.scale[idx, None, :]) @ self.q.T if self.full else self._low_rank(v, idx, 1)
        return torch.cat([(a * self.sd[idx, None, :]).reshape(len(theta), -1), b], dim=1)

    def __call__(self, theta: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`Blocks.__call__` at (V, b): the objective, its gradient in (V, b), the watched log-probabilities."""
        f, g, aux = self.blocks(self.from_solver(theta, idx), idx)
        g_w, g_b = self._parts(g)
        g_a = g_w * self.sd[idx, None, :]
        g_v = (g_a @ self.q) * self.scale[idx, None, :] if self.full else self._low_rank(g_a, idx, 1)
        return f, torch.cat([g_v.reshape(len(idx), -1), g_b], dim=1), aux


def _held_out_change(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """How far a step moved each block's mean log-likelihood on its watched rows (nats)."""
    return (new - old).sum(dim=1).abs()


def fit_blocks(blocks: Blocks, theta0: torch.Tensor, max_iter: int, ptol: float = 0.0) -> BlockLBFGS:
    """Every block of ``blocks`` minimised from ``theta0`` (module docstring: ``ptol``, default `PTOL`), in the
    variables of `Scaled`; the result's ``x`` as (W, b) again."""
    scaled = Scaled(blocks)
    res = minimise_blocks(scaled, scaled.to_solver(theta0), change=_held_out_change, ptol=ptol or PTOL, tol=GTOL,
                          max_iter=max_iter)
    return replace(res, x=scaled.from_solver(res.x))


def _inner_split(y: np.ndarray, seed: int, draws: int = 1) -> np.ndarray:
    """Boolean mask of an inner validation part (1/4 of every class, at least one input), seeded. The rows
    come in runs of ``draws`` consecutive rows per input (noise draws of one input): a run is kept whole,
    so no input is on both sides (a draw of a training input would make weak penalties look good)."""
    rng = np.random.default_rng(seed)
    y_in = y[::draws]
    val = np.zeros(len(y_in), dtype=bool)
    for c in np.unique(y_in):
        idx = np.flatnonzero(y_in == c)
        if len(idx) >= 2:
            val[rng.choice(idx, max(1, len(idx) // 4), replace=False)] = True
    return np.repeat(val, draws)


def _cold_start(design: Design, n_blocks: int) -> torch.Tensor:
    """W = 0 and b = log class frequencies, for ``n_blocks`` blocks."""
    k, d = design.n_classes, design.x.shape[1]
    counts = design.onehot.sum(dim=1).double() + 1e-3
    theta = torch.zeros(n_blocks, k * d + k, dtype=design.x.dtype, device=design.x.device)
    theta[:, k * d:] = torch.log(counts / counts.sum()).to(theta.dtype)
    return theta


@dataclass
class _Path:
    """The inner validation of every fold: the best C and its inner weights, and what was evaluated."""

    best_c: torch.Tensor
    best_theta: torch.Tensor
    best_ce: torch.Tensor
    evaluations: int


def _inner_path(design: Design, masks: torch.Tensor, val: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor,
                start: torch.Tensor) -> _Path:
    """Walk `C_GRID` up (each fold until its inner held-out cross-entropy stops improving by more than
    `PATH_TOL`), then one half-decade step."""
    n_folds, dev = masks.shape[0], masks.device
    inner = masks & ~val
    best_ce = torch.full((n_folds,), math.inf, dtype=torch.float64, device=dev)
    best_c = torch.full((n_folds,), C_GRID[0], dtype=torch.float64, device=dev)
    best_theta, theta = start.clone(), start.clone()
    ce_at = torch.full((n_folds, len(C_GRID)), math.inf, dtype=torch.float64, device=dev)
    active = torch.ones(n_folds, dtype=torch.bool, device=dev)
    evals = 0
    for j, c in enumerate(C_GRID):  # the path from the strongest penalty, warm-started along it
        a = active.nonzero().flatten()
        blocks = Blocks(design, inner[a], mu[a], sd[a], torch.full((len(a),), c, device=dev), val[a])
        res = fit_blocks(blocks, theta[a], INNER_MAX_ITER, INNER_PTOL)
        evals += res.evaluations
        theta[a] = res.x
        ce = blocks.held_out_ce(res.x)
        ce_at[a, j] = ce
        gained = ce < best_ce[a] - PATH_TOL
        better = ce < best_ce[a]
        best_ce[a[better]], best_c[a[better]], best_theta[a[better]] = ce[better], c, res.x[better]
        active[a[~gained]] = False  # rose, or improved by at most PATH_TOL: this fold's path ends here
        if not bool(active.any()):
            break
    # one half-decade step from each fold's best C towards its better neighbour
    pos = torch.as_tensor([C_GRID.index(float(c)) for c in best_c], device=dev)
    lo = torch.where(pos > 0, ce_at.gather(1, (pos - 1).clamp_min(0)[:, None])[:, 0], math.inf)
    hi = torch.where(pos < len(C_GRID) - 1, ce_at.gather(1, (pos + 1).clamp_max(len(C_GRID) - 1)[:, None])[:, 0],
                     math.inf)
    up = torch.full_like(best_c, math.sqrt(10.0))
    c_ref = torch.where(hi < lo, best_c * up, best_c / up)
    blocks = Blocks(design, inner, mu, sd, c_ref, val)
    res = fit_blocks(blocks, best_theta, INNER_MAX_ITER, INNER_PTOL)
    evals += res.evaluations
    ce = blocks.held_out_ce(res.x)
    better = ce < best_ce
    best_ce[better], best_c[better], best_theta[better] = ce[better], c_ref[better], res.x[better]
    return _Path(best_c=best_c, best_theta=best_theta, best_ce=best_ce, evaluations=evals)


def cross_fit(design: Design, folds: np.ndarray, C: Any, seed: int, state: dict | None = None,
              draws: int = 1) -> tuple[torch.Tensor, dict]:
    """(log-probabilities (folds, classes, n) float64 of each fold's probe on every row, info).

    ``folds``: the fold of each row (0..F − 1); fold f's probe is fitted on the rows of the other folds.
    ``C``: ``"auto"`` (inner validation per fold, module docstring) or a number. ``seed``: seeds the inner
    splits (fold f uses ``seed + f``). ``state``: a previous call's ``info["state"]`` (a warm start).
    ``draws``: the rows come in runs of this many consecutive rows per input (noise draws), each run in one
    fold; the inner splits keep runs whole too.
    info: ``C`` (per fold), ``evaluations`` (batched objective evaluations), ``state``, ``warm_start``
    (whether ``state`` fitted these data and was used).
    """
    dev = design.x.device
    n_folds = int(folds.max()) + 1
    fold_t = torch.as_tensor(folds, device=dev)
    masks = fold_t[None, :] != torch.arange(n_folds, device=dev)[:, None]
    mu, sd = design.fold_stats(masks)
    p = design.n_classes * (design.x.shape[1] + 1)
    state = state if state and state.get("refit") is not None and tuple(state["refit"].shape) == (n_folds, p) else None
    start = _cold_start(design, n_folds)
    evals = 0
    if C == "auto":
        y_np = design.onehot.argmax(dim=0).cpu().numpy()
        val_np = np.zeros((n_folds, len(folds)), dtype=bool)
        for f in range(n_folds):
            rows = np.flatnonzero(folds != f)
            val_np[f, rows[_inner_split(y_np[rows], seed + f, draws)]] = True
        path = _inner_path(design, masks, torch.as_tensor(val_np, device=dev), mu, sd, start)
        c_fold, init, evals = path.best_c, path.best_theta, path.evaluations
    else:
        c_fold = torch.full((n_folds,), float(C), dtype=torch.float64, device=dev)
        init = start
    if state is not None:  # the previous epoch's refit where the same C was chosen again
        same = torch.as_tensor(state["C"], dtype=torch.float64, device=dev) == c_fold
        init = torch.where(same[:, None], state["refit"].to(dev), init)
    blocks = Blocks(design, masks, mu, sd, c_fold, ~masks)
    res = fit_blocks(blocks, init, MAX_ITER)
    evals += res.evaluations
    idx = torch.arange(n_folds, device=dev)
    log_p = torch.log_softmax(blocks.logits(res.x, idx).double(), dim=1)
    new_state = {"refit": res.x.cpu(), "C": c_fold.cpu().tolist()}
    return log_p, {"C": c_fold.cpu().tolist(), "evaluations": evals, "state": new_state,
                   "warm_start": state is not None}
