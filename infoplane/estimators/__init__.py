"""Estimators of I(T;X) and I(T;Y), in bits.

* `BinningEstimator` — plug-in entropies of discretised activations (Shwartz-Ziv & Tishby 2017; Saxe et al.
  2018; Chelombiev et al. 2019);
* `KDEEstimator` — Kolchinsky–Tracey pairwise-distance bounds on a layer with added Gaussian noise;
* `RateEstimator`, `MixtureEstimator` — variational bounds of a Gaussian layer p(z|x) = N(mu, diag sigma^2):
  the VIB rate (upper bound on I(Z;X)), the Monte Carlo aggregate-posterior bounds, and Barber–Agakov for
  I(Z;Y);
* `KNNEstimator` (Ross / KSG), `CriticEstimator` (InfoNCE, NWJ, SMILE), `ProbeEstimator` (Barber–Agakov with
  a cross-fitted probe): I(T;Y) of wide deterministic layers (I(T;X) NaN, with the reason);
* `LatentMIEstimator` — latent MI (Gowri et al. 2024): k-NN on codes learned by cross-predictive autoencoders,
  for I(T;Y) of wide layers (I(T;X) NaN); `SampleSizeCheck` wraps any I(T;Y) estimator with the
  sample-size extrapolation and reliability test of Abdelaleem, Martini & Nemenman (2025);
* `NoisyEstimator` — I(X;T) and I(T;Y) of a layer with Gaussian noise, by sample propagation.

Each is a small class whose ``__init__`` stores validated parameters and whose ``estimate(...)`` returns an
`infoplane.MIResult`; every class has a pure functional twin in `infoplane.estimators.functional`
(``binning_information``, ``kde_information``, ...), which also publishes the kernels behind them.
"""
from __future__ import annotations

from .._core.types import MIResult
from . import functional
from ._base import BaseEstimator
from .binning import BinningEstimator
from .critics import CriticEstimator
from .kde import KDEEstimator
from .knn import KNNEstimator
from .latent import LatentMIEstimator, latent_mi
from .noisy import NoisyEstimator
from .probe import ProbeEstimator
from .sample_size import ReliabilityResult, SampleSizeCheck, knn_dimension_rule
from .variational import (
    BABound,
    MixtureBounds,
    MixtureEstimator,
    RateEstimator,
    VariationalBounds,
    barber_agakov,
    gaussian_rate,
    mixture_mi_bounds,
    vib_loss,
)

__all__ = [
    "MIResult",
    "BaseEstimator",
    "BinningEstimator",
    "KDEEstimator",
    "KNNEstimator",
    "LatentMIEstimator",
    "latent_mi",
    "CriticEstimator",
    "ProbeEstimator",
    "SampleSizeCheck",
    "ReliabilityResult",
    "knn_dimension_rule",
    "NoisyEstimator",
    "RateEstimator",
    "MixtureEstimator",
    "gaussian_rate",
    "barber_agakov",
    "mixture_mi_bounds",
    "vib_loss",
    "VariationalBounds",
    "MixtureBounds",
    "BABound",
    "functional",
]
