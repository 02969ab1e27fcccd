"""A lower bound on I(A;B) from a predictor of B: the Gaussian-residual bound of latent MI's codes.

For any function f fixed without looking at the rows it is scored on,

    I(A;B) = h(B) - h(B | A) >= h(B) - h(B - f(A)) >= h(B) - h_G(Cov(B - f(A)))

(conditioning cannot raise an entropy, h(B - f(A) | A) = h(B | A); a Gaussian has the largest entropy for its
covariance). Writing h(B) = h_G(Cov B) - D(B), with D >= 0 the negentropy (0 for a Gaussian),

    I(A;B) >= 1/2 log2 det Cov(B) / det Cov(E) - D(B),    E = B - f(A).

It is exact when B = f(A) + Gaussian noise independent of A, and needs no neighbour counts in the joint space:
k-NN (KSG) undershoots strong dependence in several dimensions (5 + 5 Gaussian pairs at 3.68 bits read 2.69
by KSG on 2,000 rows; this bound with a linear f reads 3.63). Where the residual is far from Gaussian or
depends on A (heavy tails, a ring) it is loose, and k-NN is the better estimate; `residual_gap` says by how
much. Both sides are first `gaussianized` (rank → normal scores per coordinate: invertible, so no information
changes, and the marginals' negentropy is gone: the k-NN entropy estimator misreads a bounded side near its
edges, 0.60 of 0.76 bits for 3 uniform coordinates). D(B) is then estimated as the Kozachenko-Leonenko entropy
of `SURROGATES` standard-normal samples of B's shape minus that of B, each whitened by its own sample
covariance: the surrogates carry the k-NN entropy estimator's own bias at this size and dimension, and that of
whitening by a sample covariance, which would otherwise read as negentropy (0.03 to 0.17 bits for 5 Gaussian
dimensions on 1,000 to 2,000 rows); clipped at 0. Bits throughout.

Internal: arrays are checked by the caller (finite float64, same rows).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ..._core.threads import seeded_global_rng
from . import knn as K

__all__ = ["negentropy_bits", "gaussianized", "residual_bound", "residual_gap", "cross_fitted_predictions",
           "ridge_predictions"]

#: Standard-normal surrogates averaged for the k-NN entropy estimator's bias.
SURROGATES = 4
#: Smallest eigenvalue of a covariance, relative to its largest, for its log-determinant to be used.
_RCOND = 1e-10


def _kl_entropy_nats(z: np.ndarray, k: int) -> float | None:
    """Kozachenko-Leonenko entropy in nats, with the max norm (a KD-tree in up to 5 dimensions: 10x faster than
    the Euclidean search at 10,000 rows; the surrogates carry the same estimator's bias); None when a row has k
    identical neighbours."""
    r = K.kth_radius(torch.as_tensor(np.ascontiguousarray(z)), k, "max")
    return None if bool((r <= 0).any()) else K.kl_entropy_nats(r, z.shape[1], k, "max")


def _whiten(z: np.ndarray) -> np.ndarray | None:
    """Rows centred and whitened by the inverse Cholesky factor of their covariance; None if it is singular."""
    cov = np.atleast_2d(np.cov(z, rowvar=False))
    if _log2_det(cov) is None:
        return None
    chol = np.linalg.cholesky(cov)
    return np.linalg.solve(chol, (z - z.mean(axis=0)).T).T


def negentropy_bits(b: np.ndarray, k: int, seed: int) -> float | None:
    """D(B) = h_G(Cov B) - h(B) >= 0 in bits, estimated against standard-normal surrogates; None where the
    k-NN entropy is undefined (repeated rows) or the covariance singular."""
    white = _whiten(b)
    if white is None:
        return None
    h_data = _kl_entropy_nats(white, k)
    if h_data is None:
        return None
    rng = np.random.default_rng([seed, 23])
    h_normal = [_kl_entropy_nats(_whiten(rng.standard_normal(white.shape)), k) for _ in range(SURROGATES)]
    return max(0.0, float(np.mean(h_normal)) - h_data) / math.log(2.0)


def _log2_det(cov: np.ndarray) -> float | None:
    eig = np.linalg.eigvalsh(np.atleast_2d(cov))
    if not eig[0] > _RCOND * max(eig[-1], 1e-300):
        return None
    return float(np.log2(eig).sum())


def gaussianized(z: np.ndarray) -> np.ndarray:
    """Each column through its empirical distribution function and the standard normal quantile,
    Φ⁻¹((rank − ½) / n) (ties share their mean rank): an invertible map of each coordinate on the rows, so it
    changes no mutual information, and the marginals become Gaussian (skewed or bounded sides, e.g. uniform
    ones, have a large negentropy that the k-NN entropy estimator reads poorly near their edges)."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    z = z.reshape(len(z), -1)
    return ndtri((rankdata(z, axis=0) - 0.5) / len(z))


def _residual(b: np.ndarray, features: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(B', its cross-fitted least-squares prediction from the `gaussianized` features)."""
    target = gaussianized(b)
    return target, cross_fitted_predictions(gaussianized(features), target, seed)


def residual_bound(b: np.ndarray, features: np.ndarray, k: int, seed: int) -> dict | None:
    """The bound h(B') − h_G(Cov(B' − f(F))) on I(F;B) <= I(A;B) in bits, for rows of B (n, d) and of a function
    F of A (n, p): B' and F are `gaussianized`, f is least squares, cross-fitted (`cross_fitted_predictions`).
    Returns ``{"bits", "linear_bits", "negentropy_bits"}``, or None where undefined (a singular covariance: B
    constant or predicted exactly; repeated rows)."""
    target, pred = _residual(b, features, seed)
    det_b = _log2_det(np.cov(target, rowvar=False))
    det_e = _log2_det(np.cov(target - pred, rowvar=False))
    if det_b is None or det_e is None:
        return None
    neg = negentropy_bits(target, k, seed)
    if neg is None:
        return None
    linear = 0.5 * (det_b - det_e)
    return {"bits": linear - neg, "linear_bits": linear, "negentropy_bits": neg}


def residual_gap(b: np.ndarray, features: np.ndarray, k: int, seed: int, mi: Callable) -> float:
    """By how much `residual_bound` falls short of I(f(F); B'), in bits: exactly D(E) + I(E; f(F)) for the
    residual E = B' − f(F) (its negentropy, and what it still shares with the prediction; both 0 for a Gaussian
    residual independent of A), estimated by `negentropy_bits` and ``mi(E, f(F))`` (k-NN, in bits: weak
    dependence, where it is accurate). NaN where the negentropy is undefined. A large gap says the bound is
    loose: the dependence is not additive Gaussian noise on a regression (heteroscedastic, bounded, ...)."""
    target, pred = _residual(b, features, seed)
    neg = negentropy_bits(target - pred, k, seed)
    return math.nan if neg is None else neg + max(0.0, float(mi(target - pred, pred)))


def cross_fitted_predictions(a: np.ndarray, b: np.ndarray, seed: int, folds: int = 2) -> np.ndarray:
    """Least-squares predictions of ``b`` from ``a`` (with an intercept), each row's from a fit on the other
    folds (seeded), so that every prediction is a function fixed without its own row."""
    n = len(a)
    design = np.hstack([a.reshape(n, -1), np.ones((n, 1))])
    target = b.reshape(n, -1)
    out = np.empty_like(target)
    parts = np.array_split(np.random.default_rng([seed, 29]).permutation(n), folds)
    for i, rows in enumerate(parts):
        train = np.concatenate([p for j, p in enumerate(parts) if j != i])
        coef = np.linalg.lstsq(design[train], target[train], rcond=None)[0]
        out[rows] = design[rows] @ coef
    return out


#: Ridge penalties (relative to the mean squared singular value of the training rows) searched by `ridge_predictions`.
RIDGE_GRID = np.logspace(-4, 2, 13)
#: Up to this min(rows, columns) the ridge uses every singular direction (an exact SVD); above, the leading
#: `RIDGE_AXES` (a seeded randomised SVD): at 5,000 x 4,096 the exact one took 15 s and 1.5 GB more.
FULL_SVD = 1024
RIDGE_AXES = 512


def _svd(xc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if min(xc.shape) <= FULL_SVD:
        return np.linalg.svd(xc, full_matrices=False)
    with seeded_global_rng(0):  # the caller's global generator is left as it was
        u, sv, v = torch.svd_lowrank(torch.as_tensor(xc), q=RIDGE_AXES, niter=2)
    return u.numpy(), sv.numpy(), v.numpy().T


def ridge_predictions(x_train: np.ndarray, z_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Ridge regression of ``z_train`` (n, k) on the columns of ``x_train`` (n, d), its penalty chosen by
    generalised cross-validation over `RIDGE_GRID` (one SVD of the centred training rows; above `FULL_SVD`
    the ridge lives in the leading `RIDGE_AXES` singular directions), applied to ``x_test``: a linear function
    of A fitted on the training rows only, so on held-out rows it is a fixed function of A. Cost
    O(n d min(n, d, 1,024)); float32 rows stay float32. A learned code that lost part of what A shares with B
    is caught by it when the loss is linear (a few signal directions among many noise columns)."""
    mu_x, mu_z = x_train.mean(axis=0), z_train.mean(axis=0)
    u, sv, vt = _svd(x_train - mu_x)
    u, sv, vt = u.astype(np.float64), sv.astype(np.float64), vt.astype(np.float64)
    uz = u.T @ (z_train - mu_z)  # (r, k)
    n = x_train.shape[0]
    lams = RIDGE_GRID * float(np.sum(sv**2)) / max(len(sv), 1)
    shrink = sv[None, :] ** 2 / (sv[None, :] ** 2 + lams[:, None])  # (grid, r)
    resid = float(np.sum((z_train - mu_z) ** 2)) - np.einsum("gr,rk->g", shrink * (2 - shrink), uz**2)
    gcv = n * resid / np.maximum(n - shrink.sum(axis=1), 1.0) ** 2
    lam = lams[int(np.argmin(gcv))]
    coef = vt.T @ ((sv / (sv**2 + lam))[:, None] * uz)  # (d, k)
    return (x_test - mu_x) @ coef + mu_z
