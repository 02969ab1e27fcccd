"""The probe solver before issue 22 (item 2), kept for benchmarks/bench_probe.py's side-by-side timing.

One fold at a time: standardise the training fold in float64, then per fold the inner C path over
(0.01, 0.1, 1, 10, 100) (each a torch L-BFGS fit, strong-Wolfe line search, stopped when the inner held-out
cross-entropy has risen twice) and the refit at the chosen C, each fold warm-started from the previous;
rows put in order by ``np.lexsort`` over every column. Copied from infoplane/estimators/_kernels/logreg.py
and probe.py at commit 80eb123 (only the imports, the small helpers above them, which redo the package's
private fold assignment and row order with public libraries, and the wrapper are new). Not part of the package.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

LN2 = math.log(2.0)
PROBE_SMOOTHING = 1e-6  # the package's (infoplane.estimators._kernels.probe): q mixed with the uniform


def entropy_bits(counts: np.ndarray) -> float:
    """Entropy of the label frequencies, bits."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def probe_folds(n: int, n_folds: int, seed: int, y: np.ndarray) -> np.ndarray:
    """The probe's fold of each row: scikit-learn's StratifiedKFold, shuffled with ``seed`` (as the package's,
    whose every class here has at least ``n_folds`` rows)."""
    from sklearn.model_selection import StratifiedKFold

    folds = np.empty(n, dtype=np.int64)
    split = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(n), y)
    for k, (_, test) in enumerate(split):
        folds[test] = k
    return folds


def canonical_order(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The package's canonical row order: np.lexsort over every column, the labels last."""
    return np.lexsort([y, *[t[:, j] for j in range(t.shape[1])][::-1]])


def ordered_problem(t: np.ndarray, y: np.ndarray, n_folds: int, seed: int):
    """(rows in canonical order as float64, class ids 0..k−1, k, fold of each row): the probe's set-up, shared
    by the previous solver and bench_probe's float64 reference."""
    order = canonical_order(t, y)
    t, y = np.asarray(t, dtype=np.float64)[order], y[order]
    _, y = np.unique(y, return_inverse=True)
    return t, y, int(y.max()) + 1, probe_folds(len(y), n_folds, seed, y)


C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
INNER_MAX_ITER = 60  # the inner path only ranks the Cs: short fits; the chosen C is refitted to convergence


def fit(x: torch.Tensor, y: torch.Tensor, n_classes: int, C: float, init: tuple | None = None,
        *, max_iter: int = 300, tol: float | None = None,
        xt: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(W, b, function evaluations) minimising mean CE + ‖W‖²/(2 C n) on standardised ``x`` (n, d).

    W is (classes, d), as scikit-learn's ``coef_``. The gradient is written out, and both products are
    taken with the small matrix on the left (``W xᵀ`` and ``G x``, with ``xt`` = xᵀ contiguous), several
    times faster on the CPU than ``x Wᵀ`` / ``xᵀ G``; L-BFGS stops when the largest gradient entry is below
    ``tol`` (default min(1e-6, 0.01 / (C n)): scikit-learn's lbfgs stops at 1e-4 on C n times this
    objective, and a looser stop acts as early stopping, which moved the bound by 0.03 bits at C = 1,
    N = 10,000, d = 1,024) or after ``max_iter`` iterations.
    """
    n, d = x.shape
    tol = min(1e-6, 0.01 / (C * n)) if tol is None else tol
    xt = x.T.contiguous() if xt is None else xt
    if init is None:
        w = torch.zeros(n_classes, d, dtype=x.dtype, device=x.device)
        counts = torch.bincount(y, minlength=n_classes).to(x.dtype) + 1e-3
        b = torch.log(counts / counts.sum())
    else:
        w, b = init[0].to(x.dtype).clone(), init[1].to(x.dtype).clone()
    onehot = torch.nn.functional.one_hot(y, n_classes).to(x.dtype).T.contiguous()  # (classes, n)
    lam = 1.0 / (C * n)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, max_eval=2 * max_iter, tolerance_grad=tol,
                            tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")
    evals = [0]

    @torch.no_grad()
    def closure() -> torch.Tensor:
        evals[0] += 1
        logits = torch.addmm(b[:, None], w, xt)  # (classes, n)
        lse = torch.logsumexp(logits, dim=0)
        loss = (lse - (logits * onehot).sum(dim=0)).mean() + 0.5 * lam * (w * w).sum()
        g = (torch.softmax(logits, dim=0) - onehot) / n
        w.grad = g @ x + lam * w
        b.grad = g.sum(dim=1)
        return loss

    opt.step(closure)
    return w.detach(), b.detach(), evals[0]


def log_proba(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, classes) log-probabilities of the fitted probe, float64."""
    return torch.log_softmax(torch.addmm(b, x, w.T).double(), dim=1)


def _held_out_ce(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cross_entropy(torch.addmm(b, x, w.T), y))


def _inner_split(y: np.ndarray, seed: int) -> np.ndarray:
    """Boolean mask of an inner validation part (1/4 of every class, at least one row), seeded."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) >= 2:
            val[rng.choice(idx, max(1, len(idx) // 4), replace=False)] = True
    return val


def select_and_fit(x: torch.Tensor, y: torch.Tensor, n_classes: int, C: Any, seed: int,
                   init: tuple | None = None) -> tuple[torch.Tensor, torch.Tensor, float, int]:
    """(W, b, chosen C, total function evaluations) on the training rows ``x``, ``y``.

    ``C="auto"``: inner validation over `C_GRID` (module docstring); a number: that C. ``init``: a warm
    start (W, b) from an earlier fit (a previous fold or epoch).
    """
    if C != "auto":
        w, b, it = fit(x, y, n_classes, float(C), init)
        return w, b, float(C), it
    val = torch.as_tensor(_inner_split(y.cpu().numpy(), seed), device=x.device)
    x_in, y_in, x_va, y_va = x[~val], y[~val], x[val], y[val]
    best: tuple | None = None
    best_ce, rises, total, last = math.inf, 0, 0, init
    prev_ce = math.inf
    for c in C_GRID:  # the path from the strongest penalty, each fit warm-started from the previous one
        w, b, it = fit(x_in, y_in, n_classes, c, last, max_iter=INNER_MAX_ITER)
        total += it
        last = (w, b)
        ce = _held_out_ce(x_va, y_va, w, b)
        if best is None or ce < best_ce:
            best, best_ce = (c, w, b), ce
        rises = rises + 1 if ce > prev_ce else 0
        prev_ce = ce
        if rises >= 2:
            break
    assert best is not None  # C_GRID is not empty
    c, w0, b0 = best
    w, b, it = fit(x, y, n_classes, c, (w0, b0))
    return w, b, c, total + it


def previous_probe_bits(t: np.ndarray, y: np.ndarray, n_folds: int = 5, seed: int = 0) -> tuple[float, list, int]:
    """(bits, C per fold, L-BFGS evaluations) of the previous ProbeEstimator (C="auto"), one thread."""
    t, y, k, folds = ordered_problem(t, y, n_folds, seed)
    log_q = np.empty(len(y))
    init, chosen, evals = None, [], 0
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for f in range(n_folds):
            tr, te = folds != f, folds == f
            mu, sd = t[tr].mean(axis=0), t[tr].std(axis=0)
            sd[sd == 0] = 1.0
            x_tr = torch.as_tensor((t[tr] - mu) / sd, dtype=torch.float32)
            x_te = torch.as_tensor((t[te] - mu) / sd, dtype=torch.float32)
            w, b, c, ev = select_and_fit(x_tr, torch.as_tensor(y[tr]), k, "auto", seed + f, init)
            init, evals = (w, b), evals + ev
            chosen.append(c)
            p = log_proba(x_te, w, b).exp().numpy()
            p = (1.0 - PROBE_SMOOTHING) * p + PROBE_SMOOTHING / k
            log_q[te] = np.log(p[np.arange(te.sum()), y[te]])
    finally:
        torch.set_num_threads(previous)
    return entropy_bits(np.bincount(y)) + float(log_q.mean()) / LN2, chosen, evals
