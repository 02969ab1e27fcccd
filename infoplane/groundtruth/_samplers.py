"""Seeded samplers of the ground-truth tasks: module-level functions so tasks pickle to parallel workers.

Each takes ``(n, rng, **params)`` and returns ``(t, y)``: t of shape (n, d) float64; y of shape (n, k) float64
for continuous tasks, (n,) int64 class labels for label tasks.
"""
from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["TRANSFORMS", "spiral", "spiral_inverse", "gaussian_pair", "student_t_pair", "gaussian_classes",
           "network_codes"]


def spiral(a: np.ndarray, speed: float = 0.5) -> np.ndarray:
    """Rotate the first two coordinates of each row by the angle ``speed * ‖row‖²`` (Czyż et al. 2023).

    A rotation keeps the norm, so the angle can be read back from the output: the map is invertible
    (`spiral_inverse`) and leaves mutual information unchanged.
    """
    angle = speed * np.einsum("nd,nd->n", a, a)
    c, s = np.cos(angle), np.sin(angle)
    out = a.copy()
    out[:, 0] = c * a[:, 0] - s * a[:, 1]
    out[:, 1] = s * a[:, 0] + c * a[:, 1]
    return out


def spiral_inverse(a: np.ndarray, speed: float = 0.5) -> np.ndarray:
    """The inverse of `spiral`: rotate back by the same angle (the norm is unchanged by the rotation)."""
    return spiral(a, -speed)


def _half_cube(a: np.ndarray) -> np.ndarray:
    return a * np.sqrt(np.abs(a))


#: Invertible maps applied to each side (MI-preserving): name -> function of an (n, d) array.
TRANSFORMS = {
    "normal-cdf": special.ndtr,
    "half-cube": _half_cube,
    "asinh": np.arcsinh,
    "spiral": spiral,
}


def _split(z: np.ndarray, dim_a: int, transform: str | None, pad: int, rng: np.random.Generator):
    a, b = z[:, :dim_a], z[:, dim_a:]
    if transform is not None:
        fn = TRANSFORMS[transform]
        a, b = fn(a), (fn(b) if b.shape[1] >= 2 or transform != "spiral" else b)
    if pad:
        a = np.concatenate([a, rng.standard_normal((a.shape[0], pad))], axis=1)
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def gaussian_pair(n: int, rng: np.random.Generator, *, chol: np.ndarray, dim_a: int,
                  transform: str | None = None, pad: int = 0):
    """(A, B) ~ N(0, chol cholᵀ), optionally mapped by a `TRANSFORMS` entry and A padded with ``pad`` N(0, 1) columns."""
    z = rng.standard_normal((n, chol.shape[0])) @ chol.T
    return _split(z, dim_a, transform, pad, rng)


def student_t_pair(n: int, rng: np.random.Generator, *, chol: np.ndarray, dim_a: int, dof: float):
    """(A, B) multivariate Student-t: a Gaussian N(0, chol cholᵀ) divided by √(W/ν), W ~ χ²_ν shared by the row."""
    z = rng.standard_normal((n, chol.shape[0])) @ chol.T
    w = rng.chisquare(dof, size=n)
    return _split(z / np.sqrt(w / dof)[:, None], dim_a, None, 0, rng)


def gaussian_classes(n: int, rng: np.random.Generator, *, means: np.ndarray, dim: int):
    """Y uniform on K classes; T | Y=k ~ N(μ_k, I) in ``dim`` dimensions, μ_k nonzero only in the first columns."""
    k, s = means.shape
    y = rng.integers(0, k, size=n)
    t = rng.standard_normal((n, dim))
    t[:, :s] += means[y]
    return t, y.astype(np.int64)


def network_codes(n: int, rng: np.random.Generator, *, codes: np.ndarray):
    """Rows of a deterministic network's output ``codes`` (one per discrete input), stratified over inputs.

    The inputs are taken in successive seeded permutations, so every input appears ⌊n/M⌋ or ⌈n/M⌉ times
    (exactly n/M when M divides n: the sample's input distribution is then exactly uniform). y = the input's
    index, so I(T;Y) = I(T;X) = H(T).
    """
    m = codes.shape[0]
    ids = np.concatenate([rng.permutation(m) for _ in range(-(-n // m))])[:n]
    return codes[ids].astype(np.float64), ids.astype(np.int64)
