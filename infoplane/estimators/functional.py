"""The functional API: every estimator as a pure function, and the kernels behind them; bits everywhere.

The torchmetrics pattern: each estimator class has a functional twin taking the same data and the class's
parameters as keywords, returning the same `MIResult` (``binning_information(t, y, edges=e)`` equals
``BinningEstimator(edges=e).estimate(t, y)``). The twins build no state and keep none. Below them are the
building blocks, for your own loops: entropies of counts and symbol ids, discrete information from symbol
ids, the KDE mixture bounds, the Gaussian rate, the aggregate-posterior bounds, Barber–Agakov and the VIB
training loss.

Which calls which: the estimator classes call the pure kernels (``infoplane.estimators._kernels`` and the
bare-number functions `ross_mi`, `ksg_mi`, `critic_mi`, `probe_mi`, `sample_propagation_mi`, ...), never this
module; each `*_information` twin is the class built from ``params`` and run once, so a twin and its class
cannot drift apart (`TWINS` maps one to the other). Every ``estimate`` starts with the same input prologue,
`infoplane._core.validation.check_estimate_inputs`.

Unlike the estimator classes, the kernels (`discrete_information_bits`, `kde_information_bits`, ...) do not
validate their inputs: pass checked arrays (see each docstring).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._core.types import ArrayLike, MIResult, TensorLike
from .._core.units import entropy_bits
from ._kernels.binning import (
    digitize_edges,
    digitize_uniform,
    digitize_width,
    discrete_information_bits,
    entropy_of_ids_bits,
    kde_information_bits,
    row_ids,
)
from .binning import BinningEstimator
from .critics import CriticEstimator, CriticResult, critic_mi
from .kde import KDEEstimator
from .knn import KNNEstimator, kl_entropy, ksg_mi, ross_mi
from .latent import LatentMIEstimator, latent_mi
from .noisy import NoisyEstimator, NoisyInformation, sample_propagation_mi
from .probe import ProbeEstimator, probe_mi
from .sample_size import extrapolate
from .variational import (
    MixtureEstimator,
    RateEstimator,
    barber_agakov,
    gaussian_rate,
    gaussian_rate_nats,
    mixture_mi_bounds,
    vib_loss,
)

__all__ = [
    "binning_information",
    "kde_information",
    "rate_information",
    "mixture_information",
    "knn_information",
    "latent_mi",
    "extrapolate",
    "critic_information",
    "probe_information",
    "noisy_information",
    "TWINS",
    "ksg_mi",
    "ross_mi",
    "kl_entropy",
    "critic_mi",
    "CriticResult",
    "probe_mi",
    "sample_propagation_mi",
    "NoisyInformation",
    "entropy_bits",
    "entropy_of_ids_bits",
    "discrete_information_bits",
    "digitize_edges",
    "digitize_width",
    "digitize_uniform",
    "row_ids",
    "kde_information_bits",
    "gaussian_rate",
    "gaussian_rate_nats",
    "mixture_mi_bounds",
    "barber_agakov",
    "vib_loss",
]


def binning_information(
    t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None, **params: Any
) -> MIResult:
    """Plug-in binning estimate of I(T;X) and I(T;Y) in bits; ``params`` as `BinningEstimator`'s.

    E.g. ``binning_information(t, y, edges=np.linspace(-1, 1, 30))`` (Shwartz-Ziv & Tishby 2017) or
    ``binning_information(t, y, bin_width=0.07)`` (Saxe et al. 2018).
    """
    return BinningEstimator(**params).estimate(t, y, x, layer=layer, epoch=epoch)


def kde_information(
    t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None, **params: Any
) -> MIResult:
    """Kolchinsky–Tracey KDE bounds in bits; ``params`` as `KDEEstimator`'s (``noise_variance``, ``bound``)."""
    return KDEEstimator(**params).estimate(t, y, x, layer=layer, epoch=epoch)


def rate_information(
    t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, log_var: TensorLike, layer: str | None = None, epoch: int | None = None,
    **params: Any,
) -> MIResult:
    """VIB rate (upper bound on I(Z;X)) and Barber–Agakov (lower bound on I(Z;Y)) in bits for mean ``t``.

    ``params`` as `RateEstimator`'s (``decoder``, ``task``, ``n_samples``, ``seed``, ...).
    """
    return RateEstimator(**params).estimate(t, y, x, layer=layer, epoch=epoch, log_var=log_var)


def mixture_information(
    t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, log_var: TensorLike, layer: str | None = None, epoch: int | None = None,
    **params: Any,
) -> MIResult:
    """Aggregate-posterior bound on I(Z;X) and Barber–Agakov on I(Z;Y) in bits for mean ``t``.

    ``params`` as `MixtureEstimator`'s (``bound``, ``decoder``, ``n_samples``, ``seed``, ...).
    """
    return MixtureEstimator(**params).estimate(t, y, x, layer=layer, epoch=epoch, log_var=log_var)


def knn_information(
    t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None, **params: Any
) -> MIResult:
    """k-NN estimate of I(T;Y) in bits (Ross for labels, KSG for continuous y; I_XT NaN); ``params`` as
    `KNNEstimator`'s (``k``, ``metric``, ``target``). The bare numbers: `ross_mi`, `ksg_mi`, `kl_entropy`."""
    return KNNEstimator(**params).estimate(t, y, x, layer=layer, epoch=epoch)


def critic_information(
    t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None, **params: Any
) -> MIResult:
    """Neural critic bound on I(T;Y) in bits (I_XT NaN); ``params`` as `CriticEstimator`'s. For any two
    arrays: `critic_mi`."""
    return CriticEstimator(**params).estimate(t, y, x, layer=layer, epoch=epoch)


def probe_information(
    t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None, **params: Any
) -> MIResult:
    """Barber–Agakov lower bound on I(T;Y) with a cross-fitted probe, in bits (I_XT NaN); ``params`` as
    `ProbeEstimator`'s. The bare number: `probe_mi`."""
    return ProbeEstimator(**params).estimate(t, y, x, layer=layer, epoch=epoch)


def noisy_information(
    t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None, **params: Any
) -> MIResult:
    """I(X;T) and I(T;Y) in bits of a layer with Gaussian noise, from its centres ``t`` (sample propagation);
    ``params`` as `NoisyEstimator`'s (``noise_std``, ``n_draws``, ``seed``). With standard errors:
    `sample_propagation_mi`."""
    return NoisyEstimator(**params).estimate(t, y, x, layer=layer, epoch=epoch)


#: Estimator class -> its functional twin.
TWINS: dict[type, Callable[..., MIResult]] = {
    BinningEstimator: binning_information,
    KDEEstimator: kde_information,
    RateEstimator: rate_information,
    MixtureEstimator: mixture_information,
    KNNEstimator: knn_information,
    LatentMIEstimator: latent_mi,
    CriticEstimator: critic_information,
    ProbeEstimator: probe_information,
    NoisyEstimator: noisy_information,
}
