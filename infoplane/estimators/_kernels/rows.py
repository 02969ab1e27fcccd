"""Small helpers shared by the estimators of wide layers (k-NN, critics, probe, noisy): tensors, row order.

Internal: no validation (callers pass checked arrays).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..._core.validation import as_numpy, as_tensor64  # noqa: F401  (re-exported for the estimators)

__all__ = ["as_tensor64", "canonical_order", "NO_I_XT"]

#: The reason recorded (``conventions["I_XT_note"]``) by estimators that report I(T;Y) only.
NO_I_XT = (
    "not estimated: for a deterministic layer on N distinct inputs I(T;X) = log2 N whenever the rows differ, "
    "which says nothing about the layer; use a noisy-network estimator (NoisyEstimator) or KDE for I(T;X)"
)


def canonical_order(*arrays: Any) -> np.ndarray:
    """A permutation that sorts rows by their values (all columns of all arrays, lexicographically).

    Estimators that split rows at random (critics, cross-fitted probes) apply it first, so that the
    same rows in another order give the same number: the split depends on the seed and the data only.
    """
    cols = []
    for a in arrays:
        arr = as_numpy(a)
        arr = arr.reshape(arr.shape[0], -1)
        cols.extend(arr[:, j] for j in range(arr.shape[1]))
    return np.lexsort(cols[::-1])
