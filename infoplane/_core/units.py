"""Units: every public number in infoplane is in bits."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["LN2", "nats_to_bits", "entropy_bits"]

LN2 = math.log(2.0)


def nats_to_bits(value):
    """Convert nats to bits (divide by ln 2). Works on floats, numpy arrays and torch tensors."""
    return value / LN2


def entropy_bits(counts) -> float:
    """Shannon entropy in bits of the distribution given by non-negative ``counts`` (zeros ignored).

    H = log2 n − Σ c log2 c / n with n = Σ c. For integer counts the sum runs over the distinct count values
    v with their multiplicities m_v (Σ_v m_v · v log2 v): a function of the multiset of counts, so the float64
    result does not depend on how the symbols were numbered (hash order, sorted order, torch or numpy all
    give the same bits), and few distinct values need few logs. The one entropy-from-counts of infoplane.
    """
    c = np.asarray(counts).ravel()
    if c.dtype.kind in "biu":
        mult = np.bincount(c.astype(np.int64, copy=False))
        v = np.flatnonzero(mult[1:]) + 1
        weights, values = mult[v].astype(np.float64), v.astype(np.float64)
    else:
        values = c[c > 0].astype(np.float64)
        weights = np.ones_like(values)
    total = float((weights * values).sum())
    if total <= 0:
        return 0.0
    return float(math.log2(total) - (weights * (values * np.log2(values))).sum() / total)
