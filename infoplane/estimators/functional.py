"""The functional API: the pure functions behind the estimator classes (the torchmetrics pattern), in bits.

Each estimator class has a functional twin here that takes arrays and returns numbers (or a small frozen
result), with the same validation and units.
"""
from __future__ import annotations

from .critics import critic_mi
from .knn import kl_entropy, ksg_mi, ross_mi
from .noisy import noisy_information
from .probe import probe_mi

__all__ = ["ksg_mi", "ross_mi", "kl_entropy", "critic_mi", "probe_mi", "noisy_information"]
