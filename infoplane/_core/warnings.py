"""infoplane's warning categories (filter them with the standard `warnings` machinery)."""
from __future__ import annotations

__all__ = ["SaturationWarning"]


class SaturationWarning(UserWarning):
    """Most rows of an estimator sit at I(T;X) = log2 N: a deterministic layer on N distinct inputs.

    For a deterministic network I(X;T) of a continuous input is infinite, log2 N on a finite probe set, so
    those numbers say nothing about the layer (Goldfeld et al. 2019; Adilova, Geiger & Fischer 2023). Make
    the layers stochastic (``Layer(name, noise=GaussianDropout(rate))``, the ``"noisy"`` estimator) or use an
    estimator of I(T;Y) alone.
    """
