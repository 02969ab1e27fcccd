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
    """Shannon entropy in bits of the distribution given by non-negative ``counts`` (zeros ignored)."""
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[counts > 0]
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts / total
    return float(-(p * np.log2(p)).sum())
