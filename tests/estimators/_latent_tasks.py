"""Ground truth shared by the latent-MI tests: Gaussian pairs of known MI, isometric embeddings, two classes."""
from __future__ import annotations

import math

import numpy as np


def _pairs(n, k, rho, seed):
    """k independent pairs of correlation rho: (z, w, I(Z;W) in bits, the generator)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k))
    w = rho * z + math.sqrt(1 - rho**2) * rng.standard_normal((n, k))
    return z, w, -0.5 * k * math.log2(1 - rho**2), rng


def _isometry(z, width, rng):
    """z embedded in ``width`` columns by a random linear isometry (injective: MI unchanged)."""
    q, _ = np.linalg.qr(rng.standard_normal((width, z.shape[1])))
    return z @ q.T


def _two_class_bits(sep):
    """I(T;Y) for y in {0, 1} equiprobable, T | y ~ N(+-sep/2 along one axis, I): H(Y) - E H(Y|T), by quadrature."""
    u = np.linspace(-12, 12, 20001)
    mu = sep / 2
    p0, p1 = np.exp(-0.5 * (u - mu) ** 2), np.exp(-0.5 * (u + mu) ** 2)
    post = p0 / (p0 + p1)
    h = -(post * np.log2(np.clip(post, 1e-300, 1)) + (1 - post) * np.log2(np.clip(1 - post, 1e-300, 1)))
    dens = 0.5 * (p0 + p1) / math.sqrt(2 * math.pi)
    return 1.0 - float(np.sum(h * dens) * (u[1] - u[0]))
