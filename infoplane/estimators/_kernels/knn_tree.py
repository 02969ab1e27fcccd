"""The k-NN counts of the max norm by scipy's KD-tree (private), for low dimensions on the CPU.

The same quantities as the blocked kernels of `knn`, from ``scipy.spatial.cKDTree`` (what scikit-learn's
``mutual_info_classif`` uses): the k-th neighbour by ``query(k + 1)`` (the row itself comes back at distance
0; with repeated rows the (k+1)-th smallest distance including the row is the k-th excluding it), counts
``#{dist < r}`` by ``query_ball_point(nextafter(r, 0), return_length=True)`` (``<=`` just below r). Max-norm
distances are exact in float64 on both sides (subtraction, absolute value, maximum), so the counts and the
bits are identical to the blocked kernels'. Cost O(N log N) per query at low d; it degrades with d (the
choice is made in `knn.choose_backend`).
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["tree_kth", "tree_ross", "tree_ksg"]


def _tree(z: np.ndarray):
    from scipy.spatial import cKDTree

    return cKDTree(z, leafsize=16, balanced_tree=False, compact_nodes=False)


def _workers() -> int:
    return max(1, torch.get_num_threads())


def _kth(z: np.ndarray, k: int) -> np.ndarray:
    return _tree(z).query(z, k=k + 1, p=np.inf, workers=_workers())[0][:, -1]


def _count_below(z: np.ndarray, r: np.ndarray) -> np.ndarray:
    """#{j : dist(z_i, z_j) < r_i}, the row itself included; at r_i = 0, #{j : dist <= 0}."""
    below = np.nextafter(r, 0.0)
    return _tree(z).query_ball_point(z, below, p=np.inf, return_length=True, workers=_workers()).astype(np.int64)


def tree_kth(z: torch.Tensor, k: int) -> torch.Tensor:
    """k-th neighbour distance of each row (max norm), float64 (N,)."""
    return torch.from_numpy(_kth(z.numpy(), k))


def tree_ross(t: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ross's (radius within the class, m = #{dist < radius} including the row) by KD-trees."""
    z, lab = t.numpy(), labels.numpy()
    radius = np.empty(len(z))
    for c in np.unique(lab):  # one tree per class (a handful of classes)
        idx = np.flatnonzero(lab == c)
        radius[idx] = _kth(z[idx], k)
    return torch.from_numpy(radius), torch.from_numpy(_count_below(z, radius))


def tree_ksg(a: torch.Tensor, b: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KSG algorithm 1's (eps, n_a, n_b) by KD-trees: the joint max norm is the max norm of (a, b)."""
    an, bn = a.numpy(), b.numpy()
    eps = _kth(np.hstack([an, bn]), k)
    n_a = _count_below(an, eps) - 1
    n_b = _count_below(bn, eps) - 1
    return torch.from_numpy(eps), torch.from_numpy(n_a), torch.from_numpy(n_b)
