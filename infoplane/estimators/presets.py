"""Named estimator configurations (the command line's ``--estimators``) and the labels of a results table.

`resolve_estimators` turns what a user passes as ``estimators=`` (a preset name, an estimator, a list, or a
dict {label: estimator}) into {label: estimator}; labels must be unique.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._core.types import Estimator

__all__ = ["ESTIMATOR_PRESETS", "make_estimator", "resolve_estimators"]


def _binning(**kwargs: Any) -> Callable[[], Any]:
    def make():
        from . import BinningEstimator

        return BinningEstimator(**kwargs)

    return make


def _kde(bound: str) -> Callable[[], Any]:
    def make():
        from . import KDEEstimator

        return KDEEstimator(noise_variance=1e-3, bound=bound)

    return make


#: Named estimator configurations (the command line's ``--estimators``): name -> (description, factory).
ESTIMATOR_PRESETS: dict[str, tuple[str, Callable[[], Any]]] = {
    "binning": (
        "BinningEstimator(edges=np.linspace(-1, 1, 30)): the 30 SZT edges on [-1, 1] (Shwartz-Ziv & Tishby "
        "2017); values outside join the end bins",
        lambda: _binning(edges=np.linspace(-1.0, 1.0, 30))(),
    ),
    "binning-width": (
        "BinningEstimator(bin_width=0.07): fixed-width bins over the whole real line (Saxe et al. 2018, SZT net)",
        _binning(bin_width=0.07),
    ),
    "binning-adaptive": (
        "BinningEstimator(n_bins=30, strategy='adaptive'): 30 bins per layer and epoch, each holding an equal "
        "number of distinct activation values (Chelombiev et al. 2019)",
        _binning(n_bins=30, strategy="adaptive"),
    ),
    "kde-upper": (
        "KDEEstimator(noise_variance=1e-3, bound='upper'): pairwise-KL upper bound (Kolchinsky & Tracey 2017; "
        "Saxe et al. 2018)",
        _kde("upper"),
    ),
    "kde-lower": (
        "KDEEstimator(noise_variance=1e-3, bound='lower'): Bhattacharyya lower bound",
        _kde("lower"),
    ),
    "noisy": (
        "NoisyEstimator(): I(X;T) = h(T) - h(T|X) and I(T;Y) of each noisy layer (Layer(name, noise=...)) by "
        "sample propagation with its recorded noise spec and draws, standard errors in I_XT_se / I_TY_se "
        "(Goldfeld et al. 2019; Adilova et al. 2023); the default for a store with noisy layers",
        lambda: _noisy(),
    ),
    "latent": (
        "LatentMIEstimator(latent_dim=8): k-NN (Ross) on 8-dimensional codes of the layer learned by "
        "cross-predictive autoencoders, held-out rows (Gowri et al. 2024); I(T;Y) only",
        lambda: _latent(),
    ),
}


def _noisy() -> Any:
    from . import NoisyEstimator

    return NoisyEstimator()


def _latent() -> Any:
    from . import LatentMIEstimator

    return LatentMIEstimator()


def make_estimator(name: str) -> Any:
    """A fresh estimator from its preset name (see `ESTIMATOR_PRESETS`).

    Raises
    ------
    KeyError
        For an unknown name, listing the presets.
    """
    try:
        _, factory = ESTIMATOR_PRESETS[name]
    except (KeyError, TypeError):
        raise KeyError(
            f"Unknown estimator preset {name!r}; presets are: {', '.join(ESTIMATOR_PRESETS)}."
        ) from None
    return factory()


def _is_estimator(obj: Any) -> bool:
    return (
        isinstance(obj, Estimator)
        and isinstance(obj.name, str)
        and obj.input_kind in ("deterministic", "gaussian")
    )


def _auto_label(est: Any) -> str:
    """``name``, plus ``-bound`` when the estimator has a bound kind (``kde-upper``)."""
    label = est.name
    bound = est.conventions().get("bound")
    if isinstance(bound, str):
        label += f"-{bound}"
    return label


def _one_estimator(obj: Any, where: str) -> Any:
    if isinstance(obj, str):
        return make_estimator(obj)
    if not _is_estimator(obj):
        raise TypeError(
            f"{where} must be an estimator (with name, input_kind, conventions() and estimate()) or a "
            f"preset name ({', '.join(ESTIMATOR_PRESETS)}). Got {type(obj).__name__}."
        )
    return obj


def resolve_estimators(estimators: Any) -> dict[str, Any]:
    """{label: estimator} from one estimator/preset name, a list of them, or a dict {label: ...}.

    A preset's label is its name, another estimator's `_auto_label`; two equal labels are an error (pass a
    dict to name them).
    """
    if isinstance(estimators, Mapping):
        if not estimators:
            raise ValueError("estimators must hold at least one estimator. Got an empty dict.")
        for label in estimators:
            if not isinstance(label, str) or not label:
                raise TypeError(f"estimators dict keys must be non-empty str labels. Got {label!r}.")
        return {label: _one_estimator(obj, f"estimators[{label!r}]") for label, obj in estimators.items()}
    items = [estimators] if isinstance(estimators, str) or _is_estimator(estimators) else estimators
    try:
        items = list(items)
    except TypeError:
        raise TypeError(
            "estimators must be an estimator, a preset name, a list of them or a dict {label: estimator}. "
            f"Got {type(estimators).__name__}."
        ) from None
    if not items:
        raise ValueError("estimators must hold at least one estimator. Got an empty list.")
    out: dict[str, Any] = {}
    where: dict[str, int] = {}
    for i, obj in enumerate(items):
        est = _one_estimator(obj, f"estimators[{i}]")
        label = obj if isinstance(obj, str) else _auto_label(est)
        if label in out:
            raise ValueError(
                f"estimators must have unique labels: estimators[{where[label]}] and estimators[{i}] are both "
                f"labelled {label!r}. Pass a dict {{label: estimator}} to name them."
            )
        out[label], where[label] = est, i
    return out
