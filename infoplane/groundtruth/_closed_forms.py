"""Closed forms and exact computations of mutual information, in bits, for the ground-truth tasks.

Pure functions of the task parameters (no sampling except `class_mi_monte_carlo`, which is seeded).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import special

from .._core.units import LN2 as _LN2
from .._core.units import entropy_bits

__all__ = [
    "gaussian_mi_bits",
    "student_t_mi_bits",
    "student_t_correction_bits",
    "class_posterior_log",
    "class_mi_monte_carlo",
    "code_entropy_bits",
]

def gaussian_mi_bits(cov: np.ndarray, dim_a: int) -> float:
    """I(A;B) in bits of a jointly Gaussian (A, B) with joint covariance ``cov`` (A = the first ``dim_a`` axes).

    I = ½ [ln det Σ_A + ln det Σ_B − ln det Σ] (nats), divided by ln 2.
    """
    cov = np.asarray(cov, dtype=np.float64)
    logdets = []
    for block in (cov[:dim_a, :dim_a], cov[dim_a:, dim_a:], cov):
        sign, logdet = np.linalg.slogdet(block)
        if sign <= 0:
            raise ValueError("cov must be symmetric positive definite (a block has a non-positive determinant).")
        logdets.append(logdet)
    return float(0.5 * (logdets[0] + logdets[1] - logdets[2]) / _LN2)


def student_t_correction_bits(dof: float, dim_a: int, dim_b: int) -> float:
    """The Student-t term of `student_t_mi_bits`: f(ν) + f(ν+m+n) − f(ν+m) − f(ν+n), in bits.

    f(x) = ln Γ(x/2) − (x/2) ψ(x/2), ψ the digamma function. It is > 0 (dependence through the shared
    scale, even for uncorrelated components) and falls to 0 as ν → ∞ (the Gaussian limit).
    """

    def f(x: float) -> float:
        return float(special.gammaln(x / 2.0) - (x / 2.0) * special.digamma(x / 2.0))

    nats = f(dof) + f(dof + dim_a + dim_b) - f(dof + dim_a) - f(dof + dim_b)
    return nats / _LN2


def student_t_mi_bits(scale: np.ndarray, dim_a: int, dof: float) -> float:
    """I(A;B) in bits of a multivariate Student-t (A, B) with ``dof`` degrees of freedom and scale ``scale``.

    Derivation: a d-dimensional t with dof ν and scale Σ has differential entropy
    h = ½ ln det Σ + ln[(νπ)^{d/2} Γ(ν/2) / Γ((ν+d)/2)] + (ν+d)/2 [ψ((ν+d)/2) − ψ(ν/2)], and its marginals
    are t with the same ν and the sub-blocks of Σ. In I = h(A) + h(B) − h(A,B) the log-determinants give the
    Gaussian MI of Σ, the (νπ)^{d/2} terms cancel, and the rest is `student_t_correction_bits`:

    I = I_Gauss(Σ) + f(ν) + f(ν+m+n) − f(ν+m) − f(ν+n),  f(x) = ln Γ(x/2) − (x/2) ψ(x/2)

    (Arellano-Valle, Contreras-Reyes & Genton 2013, Scand. J. Stat. 40:42; Czyż et al. 2023, "Beyond Normal").
    """
    scale = np.asarray(scale, dtype=np.float64)
    dim_b = scale.shape[0] - dim_a
    return gaussian_mi_bits(scale, dim_a) + student_t_correction_bits(dof, dim_a, dim_b)


def class_posterior_log(t: np.ndarray, means: np.ndarray) -> np.ndarray:
    """ln p(y = k | t) for equiprobable classes N(means[k], I): a softmax of −‖t − μ_k‖²/2. Shape (n, K)."""
    # -|t - mu|^2 / 2 = t.mu - |mu|^2 / 2 - |t|^2 / 2; the last term cancels in the softmax.
    logits = t @ means.T - 0.5 * np.einsum("kd,kd->k", means, means)
    return logits - special.logsumexp(logits, axis=1, keepdims=True)


def class_mi_monte_carlo(
    means: np.ndarray, n: int, seed: int, *, rao_blackwell: bool = True, chunk: int = 200_000
) -> tuple[float, float]:
    """I(T;Y) in bits for Y uniform on K classes and T | Y=k ~ N(means[k], I), by Monte Carlo: (value, stderr).

    With the exact posterior p(y|t), I = H(Y) − E_t H(Y|T=t) = log2 K − E_t[−Σ_k p(k|t) log2 p(k|t)]
    (``rao_blackwell=True``, the lower-variance form: the label is integrated out), or
    I = log2 K + E_{(t,y)} log2 p(y|t) (``False``, an independent second form). ``n`` draws of (y, t) from
    ``numpy.random.default_rng(seed)``; the standard error is the sample standard deviation / √n.
    Only the dimensions where the means differ matter: pass those.
    """
    means = np.asarray(means, dtype=np.float64)
    k, d = means.shape
    rng = np.random.default_rng(seed)
    total = 0.0
    total_sq = 0.0
    done = 0
    while done < n:
        m = min(chunk, n - done)
        y = rng.integers(0, k, size=m)
        t = means[y] + rng.standard_normal((m, d))
        logp = class_posterior_log(t, means)
        if rao_blackwell:
            values = (np.exp(logp) * logp).sum(axis=1)  # −H(Y|T=t), nats
        else:
            values = logp[np.arange(m), y]
        total += float(values.sum())
        total_sq += float(np.square(values).sum())
        done += m
    mean = total / n
    var = max(total_sq / n - mean * mean, 0.0) * n / (n - 1)
    return math.log2(k) + mean / _LN2, math.sqrt(var / n) / _LN2


def code_entropy_bits(codes: np.ndarray) -> float:
    """H of the rows of ``codes`` taken as symbols, each row equally likely, in bits (the plug-in entropy)."""
    _, counts = np.unique(np.asarray(codes), axis=0, return_counts=True)
    return entropy_bits(counts)
