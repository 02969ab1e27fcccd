"""The linear steps of latent MI: a lossless reduction of each continuous side to its numerical rank, and a
regularised linear code for class labels (shrinkage linear discriminant analysis).

Internal: no validation (`infoplane.estimators.latent` checks its inputs first).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Reduced", "reduce_columns", "lda_code", "SKETCH"]

#: Columns of the random sketch that looks for a low numerical rank when both N and the width exceed it.
SKETCH = 512


@dataclass(frozen=True)
class Reduced:
    """One continuous side after `reduce_columns`.

    ``x``: (N, width) float32, the columns the model sees (or the code itself when ``kept``); ``rank``: the
    numerical rank found (None when it is at least `SKETCH` and was not resolved); ``rotated``: x holds the
    coordinates on the data's span (principal axes) instead of the standardised columns; ``kept``: x is at
    most ``latent_dim`` wide and is its own code.
    """

    x: np.ndarray
    rank: int | None
    rotated: bool
    kept: bool



# ---------------------------------------------------------------------------------------------------
# Columns: standardise, rotate onto the data's span when its numerical rank is below the width
# ---------------------------------------------------------------------------------------------------
def _spectrum_exact(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(singular values descending, (N, m) coordinates on the principal axes), from the smaller Gram matrix."""
    n, d = x.shape
    if d <= n:
        lam, v = np.linalg.eigh(x.T @ x)
        lam, v = lam[::-1], v[:, ::-1]
        return np.sqrt(np.clip(lam, 0, None)), x @ v
    lam, u = np.linalg.eigh(x @ x.T)
    lam, u = lam[::-1], u[:, ::-1]
    s = np.sqrt(np.clip(lam, 0, None))
    return s, u * s


def _spectrum_sketch(x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Singular values of a random sketch Y = X Ω (`SKETCH` columns) and, when its rank r is below `SKETCH`,
    the coordinates of the rows on X's r principal axes (else the first r columns of Y: not used).

    Y spans X's column space when rank(X) < `SKETCH`, so Q = Y's orthonormal basis gives X = Q Qᵀ X and the
    principal coordinates follow from the small r × d matrix Qᵀ X. Cost O(N d `SKETCH`).
    """
    rng = np.random.default_rng([seed, 7])
    y = x.astype(np.float32) @ rng.standard_normal((x.shape[1], SKETCH)).astype(np.float32)
    lam, v = np.linalg.eigh(y.T.astype(np.float64) @ y)
    lam, v = lam[::-1], v[:, ::-1]
    s = np.sqrt(np.clip(lam, 0, None))
    tol = max(x.shape) * float(np.finfo(np.float32).eps) * float(s[0])
    r = int(np.sum(s > tol))
    if r >= SKETCH or r == 0:
        return s, y
    q = (y @ v[:, :r]) / s[:r]  # (N, r), orthonormal columns spanning X's columns
    b = q.T @ x  # (r, d)
    lam_b, w = np.linalg.eigh(b @ b.T)
    return s, q @ (w[:, ::-1] * np.sqrt(np.clip(lam_b[::-1], 0, None)))


def reduce_columns(a: np.ndarray, latent_dim: int, seed: int) -> Reduced:
    """Standardise the columns of ``a`` (constant ones to 0) and, where the numerical rank r is below the
    width, rotate onto the r principal axes (an isometry of the rows: lossless); r <= ``latent_dim`` gives a
    kept code, each axis scaled to unit variance (also injective).

    The numerical rank counts singular values above max(N, d) · eps(float32) · σ_max (directions below it are
    at the rounding level of float32 activations). Exact (Gram matrix) when min(N, d) <= `SKETCH`, else a
    randomised sketch of `SKETCH` columns that resolves ranks below `SKETCH` (above, nothing is rotated).
    Cost O(N d min(N, d, SKETCH)).
    """
    x = np.array(a, dtype=np.float64)  # a copy, standardised in place (one N x d float64 array at a time)
    x -= x.mean(axis=0)
    sd = np.sqrt(np.einsum("ij,ij->j", x, x) / x.shape[0])
    x /= np.where(sd > 0, sd, 1.0)
    n, d = x.shape
    s, coords = (_spectrum_exact(x) if min(n, d) <= SKETCH else _spectrum_sketch(x, seed))
    tol = max(n, d) * float(np.finfo(np.float32).eps) * (float(s[0]) if s.size else 0.0)
    rank = int(np.sum(s > tol)) if s.size and s[0] > 0 else 0
    resolved = rank < s.size or min(n, d) <= SKETCH
    if not resolved or rank >= d or rank == 0:
        return Reduced(x.astype(np.float32), rank if resolved else None, False, d <= latent_dim)
    z = coords[:, :rank]
    if rank <= latent_dim:  # a kept code: every axis to unit variance
        z = z / z.std(axis=0)
    else:  # one common factor (an isometry up to scale): mean variance 1, the axes' proportions kept
        z = z / math.sqrt(float(np.mean(z.var(axis=0))))
    return Reduced(np.ascontiguousarray(z, dtype=np.float32), rank, True, rank <= latent_dim)


# ---------------------------------------------------------------------------------------------------
# A regularised linear code for class labels
# ---------------------------------------------------------------------------------------------------
def _ledoit_wolf(w: np.ndarray) -> float:
    """Ledoit–Wolf shrinkage weight of the covariance of centred rows ``w`` (n, d) toward a multiple of the
    identity (scikit-learn's ``ledoit_wolf_shrinkage``, assume_centered), from the smaller Gram matrix:
    ‖WᵀW‖_F = ‖WWᵀ‖_F. Cost O(n d min(n, d))."""
    n, d = w.shape
    sq = np.sum(w**2, axis=1)
    gram = w @ w.T if n <= d else w.T @ w
    delta_ = float(np.sum(gram**2)) / n**2
    mu = float(sq.sum()) / (n * d)
    beta = (float(np.sum(sq**2)) / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * float(sq.sum()) / n + d * mu**2) / d
    beta = min(beta, delta)
    return 0.0 if beta == 0 else beta / delta


def lda_code(x: np.ndarray, ids: np.ndarray, train: np.ndarray, test: np.ndarray, dim: int,
             h_y: float) -> tuple[np.ndarray, float]:
    """Shrinkage linear discriminant analysis fitted on rows ``train``: (codes of rows ``test``, held-out skill).

    The pooled within-class covariance is shrunk toward its own diagonal by the Ledoit–Wolf weight of the
    within-class correlations (as scikit-learn's ``shrinkage="auto"``: invertible however few rows there are
    against the width, and unchanged by a rescaling of the columns); the code is the top
    c = min(K − 1, ``dim``) canonical discriminant coordinates (whitened by that covariance). Every quantity
    lives in the span of the training rows (the class means and the within-class scatter do, and the shrinkage
    target is the identity there after scaling), so when the width exceeds the training rows the work is done
    in that span, exactly. The skill is the held-out Barber–Agakov bound H(Y) − CE, as a fraction of ``h_y``
    (bits), of the Gaussian posterior in all min(K − 1, rank) discriminant coordinates (the code may keep fewer:
    9 for 10 classes against the default 8). Cost O(n d min(n, d) + min(n, d)³), memory
    O(min(n, d)² + n d) for n training rows.
    """
    from scipy.linalg import cho_factor, solve_triangular

    xt, yt = np.asarray(x[train], dtype=np.float64), ids[train]
    k, (n, d) = int(ids.max()) + 1, xt.shape
    counts = np.bincount(yt, minlength=k).astype(np.float64)
    means = np.zeros((k, d))
    np.add.at(means, yt, xt)
    means /= np.maximum(counts, 1.0)[:, None]
    scale = (xt - means[yt]).std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    priors = counts / counts.sum()
    grand = (priors @ means) / scale
    rows = xt / scale - grand  # the training rows, scaled and centred
    centred = means / scale - grand
    alpha = _ledoit_wolf(rows - centred[yt])  # within-class residuals, each column of unit variance
    basis = None
    if d > n:  # an orthonormal basis of the rows' span, from the n x n Gram matrix
        lam, u = np.linalg.eigh(rows @ rows.T)
        keep = lam > lam.max() * n * np.finfo(np.float64).eps
        basis = (rows.T @ u[:, keep]) / np.sqrt(lam[keep])  # (d, m)
        rows = rows @ basis
        centred = centred @ basis
    within = rows - centred[yt]
    m = within.shape[1]
    cov = (1.0 - alpha) * (within.T @ within) / n
    cov[np.diag_indices(m)] += alpha
    chol = np.tril(cho_factor(cov, lower=True)[0])
    white = solve_triangular(chol, centred.T, lower=True).T  # class means in the whitened space, (K, m)
    _, sv, vt = np.linalg.svd(np.sqrt(priors)[:, None] * white, full_matrices=False)
    full = max(1, min(k - 1, int(np.sum(sv > 1e-12 * max(float(sv[0]), 1e-300)))))
    w = solve_triangular(chol.T, vt[:full].T, lower=False)  # (m, full): canonical discriminant directions
    xs = np.asarray(x[test], dtype=np.float64) / scale - grand
    z, zm = (xs if basis is None else xs @ basis) @ w, centred @ w
    # the posterior of all the discriminant directions (the code keeps the leading min(full, dim))
    logits = -0.5 * ((z[:, None, :] - zm[None, :, :]) ** 2).sum(axis=2) + np.log(np.maximum(priors, 1e-300))
    logits -= logits.max(axis=1, keepdims=True)
    log_post = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    ce_bits = -float(np.mean(log_post[np.arange(z.shape[0]), ids[test]])) / math.log(2.0)
    return z[:, :min(full, dim)], ((h_y - ce_bits) / h_y if h_y > 0 else 0.0)
