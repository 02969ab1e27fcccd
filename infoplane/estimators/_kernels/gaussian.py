"""Pure torch kernels for diagonal-Gaussian encoders p(z|x) = N(μ(x), diag σ²(x)).

No validation beyond what the math needs (callers check inputs); every function is vectorised, and the
N×N mixture work is chunked so its memory is bounded whatever N is. Results are in nats: the public
functions in `infoplane.estimators.variational` convert to bits.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from ..._core.validation import check_choice, check_float_param
from .fast_exp import logsumexp_rows

__all__ = [
    "TASKS",
    "generator",
    "gaussian_kl_nats",
    "gaussian_rate_nats",
    "gaussian_log_q",
    "vib_loss",
    "reparameterize",
    "mixture_chunks",
    "mixture_log_terms",
]

_LOG_2PI = math.log(2.0 * math.pi)
#: What a decoder predicts: class labels or real targets.
TASKS = ("classification", "regression")


def gaussian_kl_nats(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Per-row KL[N(μ, diag σ²) ‖ N(0, I)] in nats, differentiable: Σ_j ½(−ln σ_j² − 1 + μ_j² + σ_j²).

    Returns a tensor of shape (N,) (the analytic integral: no sampling).
    """
    return 0.5 * (log_var.exp() + mu * mu - 1.0 - log_var).sum(dim=-1)


def reparameterize(
    mu: torch.Tensor, log_var: torch.Tensor, n_samples: int = 1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z = μ + σ ⊙ ε with ε ~ N(0, I): shape (N, n_samples, d), differentiable in μ and log σ².

    ε is drawn on the CPU from ``generator`` (so a seed gives the same z on every device) and moved to μ's
    device.
    """
    eps = torch.randn(
        (mu.shape[0], n_samples, mu.shape[1]), generator=generator, dtype=mu.dtype, device="cpu"
    ).to(mu.device)
    return mu[:, None, :] + torch.exp(0.5 * log_var)[:, None, :] * eps


def mixture_chunks(n: int, n_samples: int, memory_mb: float) -> tuple[int, int]:
    """(inputs per row chunk, columns per chunk) so ~4 float64 (rows·M, cols) blocks fit in ``memory_mb``.

    Small blocks (a few MB, cache-sized, reused by the allocator) are several times faster than large ones
    on a CPU; hence 1,024 columns and a small default budget.
    """
    cols = min(n, 1024)
    budget = int(memory_mb * 2**20 // (8 * 4))
    rows_inputs = max(1, budget // max(cols * n_samples, 1))
    return min(n, rows_inputs), cols


def mixture_log_terms(
    mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor, *, memory_mb: float = 16.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-densities behind the aggregate-posterior bounds, chunked over inputs i and mixture components j.

    With z_im = μ_i + σ_i ⊙ ε_im (``eps`` of shape (N, M, d)) returns three (N, M) float64 tensors:

    - ``own``  = ln p(z_im | x_i)                       (exact: −½ Σ_k (ln 2π + ln σ_ik² + ε_imk²)),
    - ``all``  = ln Σ_j p(z_im | x_j)                   (over every j, including i),
    - ``loo``  = ln Σ_{j ≠ i} p(z_im | x_j)             (leave-one-out; −inf when N = 1).

    Each block of log-densities is one matmul pair, using
    (z − μ_j)²/σ_j² = z²/σ_j² − 2 z μ_j/σ_j² + μ_j²/σ_j² on mean-centred μ (a shift of z and μ leaves every
    density unchanged and shrinks the cancellation), and is reduced by a log-sum-exp (`fast_exp`) and combined
    across column blocks with ``torch.logaddexp``, all in float64. Memory is O(rows · cols) per block, never
    N×N×M×d. The leave-one-out sum removes the own term by subtraction where that term is at most half
    the sum, and re-reduces (masked) only the rows it dominates.
    """
    mu = mu.to(torch.float64)
    log_var = log_var.to(torch.float64)
    eps = eps.to(device=mu.device, dtype=torch.float64)
    n, d = mu.shape
    m = eps.shape[1]
    mu = mu - mu.mean(dim=0, keepdim=True)
    prec = torch.exp(-log_var)
    mp = mu * prec
    const = -0.5 * (d * _LOG_2PI + log_var.sum(dim=1) + (mu * mp).sum(dim=1))  # (N,)
    own = -0.5 * (d * _LOG_2PI + log_var.sum(dim=1)[:, None] + (eps * eps).sum(dim=2))
    lse_all = torch.empty((n, m), dtype=torch.float64, device=mu.device)
    lse_loo = torch.empty((n, m), dtype=torch.float64, device=mu.device)
    ci, cj = mixture_chunks(n, m, memory_mb)
    sigma = torch.exp(0.5 * log_var)
    for i0 in range(0, n, ci):  # loop over blocks of inputs, each a vectorised (ci·M, cj) computation
        i1 = min(i0 + ci, n)
        z = (mu[i0:i1, None, :] + sigma[i0:i1, None, :] * eps[i0:i1]).reshape(-1, d)
        z2 = z * z
        row_input = torch.arange(i0, i1, device=mu.device).repeat_interleave(m)
        own_i = own[i0:i1].reshape(-1)
        acc_all = torch.full((z.shape[0],), -math.inf, dtype=torch.float64, device=mu.device)
        acc_loo = acc_all.clone()
        for j0 in range(0, n, cj):
            j1 = min(j0 + cj, n)
            block = torch.addmm(const[j0:j1][None, :], z, mp[j0:j1].T)
            block.addmm_(z2, prec[j0:j1].T, alpha=-0.5)
            inside = (row_input >= j0) & (row_input < j1)
            if bool(inside.any()):
                rows = torch.nonzero(inside).squeeze(1)
                cols = row_input[rows] - j0
                # The own term exactly, not through the expanded square (whose round-off grows with |z|):
                # then ln Σ_j >= own holds in floating point too, so the all-j bound never exceeds ln N.
                block[rows, cols] = own_i[rows]
            b_all = logsumexp_rows(block)  # no -inf entries: the fast exact form
            acc_all = torch.logaddexp(acc_all, b_all)
            if bool(inside.any()):
                # Remove the own term from the log-sum: exact subtraction where it is at most half the sum
                # (log1p(-r), r <= 1/2, loses nothing); rows it dominates are re-reduced with it masked.
                r = torch.exp(block[rows, cols] - b_all[rows])
                b_loo = b_all.clone()
                b_loo[rows] = b_all[rows] + torch.log1p(-r.clamp(max=0.5))
                heavy = r > 0.5
                if bool(heavy.any()):
                    hr, hc = rows[heavy], cols[heavy]
                    sub = block[hr]
                    sub[torch.arange(hr.shape[0], device=mu.device), hc] = -math.inf
                    b_loo[hr] = torch.logsumexp(sub, dim=1)
            else:
                b_loo = b_all
            acc_loo = torch.logaddexp(acc_loo, b_loo)
            del block
        lse_all[i0:i1] = acc_all.reshape(i1 - i0, m)
        lse_loo[i0:i1] = acc_loo.reshape(i1 - i0, m)
    return own, lse_all, lse_loo


def gaussian_rate_nats(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """The rate in nats as a differentiable scalar tensor (for losses): mean over rows of `gaussian_kl_nats`."""
    return gaussian_kl_nats(mu, log_var).mean()


def gaussian_log_q(resid: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """ln N(resid; 0, diag s2) per row, nats (numpy; the regression decoder's log-likelihood)."""
    return -0.5 * ((resid * resid) / s2 + np.log(2 * math.pi * s2)).sum(axis=-1)


def vib_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mu: torch.Tensor,
    log_var: torch.Tensor,
    *,
    beta: float,
    task: str = "classification",
) -> torch.Tensor:
    """The VIB objective in nats, differentiable: distortion + β · rate (Alemi et al. 2017).

    ``classification``: mean cross-entropy of ``pred`` logits against integer ``target``; ``regression``:
    mean squared error summed over outputs (``pred`` (B,) or (B, k), ``target`` the same size). A 3-D
    ``pred`` (S, B, K) carries S reparameterised samples per input, averaged over. rate = mean_i KL[N(μ_i, σ_i²) ‖ N(0, I)] (`gaussian_rate_nats`).
    Minimising it maximises a lower bound on I(Z;Y) − β I(Z;X) (up to the constant H(Y)).
    """
    beta = check_float_param(beta, "beta", "vib_loss", minimum=0.0)
    task = check_choice(task, "task", "vib_loss", TASKS)
    if task == "classification":
        logits = pred if pred.ndim == 3 else pred[None]
        s = logits.shape[0]
        distortion = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.repeat(s))
    else:
        t = target.to(pred.dtype).reshape(target.shape[0], -1)
        p = pred if pred.ndim == 3 else pred.reshape(1, t.shape[0], -1)
        if p.shape[1:] != t.shape:
            raise ValueError(
                f"pred must have shape {tuple(t.shape)} (or (S, *{tuple(t.shape)}) with a sample axis) to "
                f"match target. Got shape {tuple(pred.shape)}."
            )
        distortion = ((p - t) ** 2).sum(dim=-1).mean()
    return distortion + beta * gaussian_rate_nats(mu, log_var)


def generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (None: fresh entropy): the same samples on every device."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"The 'seed' parameter must be an int or None. Got {seed!r} instead.")
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g
