"""Geometric compression of a layer: within-class over between-class scatter, tr(Σ_W Σ_B⁺) / C.

What the information plane of a deterministic network measures as "compression" is the clustering of its
representation (Goldfeld et al. 2019; Geiger 2021). This module reports that geometry directly, as its own
number (not in bits, never on an information axis): small when the classes form tight, well-separated
clusters, large when they overlap.
"""
from __future__ import annotations

import numpy as np
import torch

from .._core.types import ArrayLike, TensorLike
from .._core.validation import check_activations, check_labels

__all__ = ["geometric_compression"]


def geometric_compression(t: TensorLike, y: ArrayLike, *, layer: str | None = None, epoch: int | None = None) -> float:
    """tr(Σ_W Σ_B⁺) / C for activations ``t`` (N, d) and class labels ``y`` (N,), C the number of classes.

    Σ_W = (1/N) Σ_c Σ_{i∈c} (t_i − μ_c)(t_i − μ_c)ᵀ (within-class scatter),
    Σ_B = Σ_c (N_c/N)(μ_c − μ)(μ_c − μ)ᵀ (between-class scatter, rank <= C − 1), Σ_B⁺ its pseudo-inverse
    (eigenvalues below 1e-12 of the largest count as 0). Dimensionless; invariant to rotations and to a
    common scaling of the activations. All class means equal (Σ_B = 0) gives +inf. Float64, torch on
    ``t``'s device; O(N d² + d³).

    Computed in the (at most C − 1)-dimensional span of the class means: with Σ_B = V Λ Vᵀ (V its
    eigenvectors of non-zero eigenvalue), tr(Σ_W Σ_B⁺) = Σ_k (v_kᵀ Σ_W v_k) / λ_k.
    """
    t = check_activations(t, name="t", layer=layer, epoch=epoch)
    n = int(t.shape[0])
    y_np = check_labels(y, n)
    _, ids, counts = np.unique(y_np, return_inverse=True, return_counts=True)
    tt = t.detach().to(torch.float64) if isinstance(t, torch.Tensor) else torch.as_tensor(np.array(t, dtype=np.float64))
    onehot = torch.nn.functional.one_hot(torch.as_tensor(ids.reshape(-1), device=tt.device)).to(torch.float64)
    n_c = torch.as_tensor(counts, dtype=torch.float64, device=tt.device)
    means = (onehot.T @ tt) / n_c[:, None]  # (C, d)
    mu = tt.mean(dim=0)
    centred_means = (means - mu) * torch.sqrt(n_c / n)[:, None]  # Σ_B = Mᵀ M
    within = tt - onehot @ means  # rows minus their class mean
    # Eigen-decomposition of the small C x C Gram matrix M Mᵀ gives Σ_B's non-zero spectrum.
    lam, u = torch.linalg.eigh(centred_means @ centred_means.T)
    keep = lam > 1e-12 * max(float(lam.max()), 0.0)
    if not bool(keep.any()):
        return float("inf")
    v = centred_means.T @ u[:, keep] / torch.sqrt(lam[keep])  # (d, r) orthonormal eigenvectors of Σ_B
    proj = within @ v  # (N, r)
    num = (proj * proj).sum(dim=0) / n  # v_kᵀ Σ_W v_k
    return float((num / lam[keep]).sum()) / len(counts)
