"""Estimators of I(T;X) and I(T;Y), in bits: binning (plug-in) and KDE (Gaussian-mixture) bounds.

Each is a small class whose ``__init__`` stores validated parameters and whose ``estimate(t, y, x=None)``
returns an `infoplane._types.MIResult`; the math lives in the pure functions of ``_kernels``.
"""
from __future__ import annotations

from ._base import BaseEstimator
from .binning import BinningEstimator
from .kde import KDEEstimator

__all__ = ["BaseEstimator", "BinningEstimator", "KDEEstimator"]
