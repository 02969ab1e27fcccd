"""Named estimator configurations (the command line's ``--estimators``) and the labels of a results table.

`resolve_estimators` turns what a user passes as ``estimators=`` (a preset name, an estimator, a list, or a
dict {label: estimator}) into {label: estimator}; labels must be unique.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._core.types import Estimator

__all__ = ["ESTIMATOR_PRESETS", "estimator_classes", "make_estimator", "resolve_estimators"]


class _Preset:
    """A named configuration of an estimator class: ``preset(**overrides)`` builds a fresh estimator.

    ``exclusive`` lists parameters of which the class takes only one (a binning scheme: edges, bin_width or
    n_bins); overriding one of them drops the preset's own.
    """

    def __init__(self, class_name: str, exclusive: tuple[str, ...] = (), **kwargs: Any) -> None:
        self.class_name = class_name
        self.exclusive = exclusive
        self.kwargs = kwargs

    def __call__(self, **overrides: Any) -> Any:
        from .. import estimators

        kwargs = dict(self.kwargs)
        if any(k in overrides for k in self.exclusive):
            kwargs = {k: v for k, v in kwargs.items() if k not in self.exclusive}
        return getattr(estimators, self.class_name)(**(kwargs | overrides))


_SCHEME = ("edges", "bin_width", "n_bins")

#: Named estimator configurations (the command line's ``--estimators``): name -> (description, factory).
#: ``factory(**overrides)`` builds a fresh estimator, the overrides replacing the preset's parameters.
ESTIMATOR_PRESETS: dict[str, tuple[str, Callable[..., Any]]] = {
    "binning": (
        "BinningEstimator(edges=np.linspace(-1, 1, 30)): the 30 SZT edges on [-1, 1] (Shwartz-Ziv & Tishby "
        "2017); values outside join the end bins",
        _Preset("BinningEstimator", _SCHEME, edges=np.linspace(-1.0, 1.0, 30)),
    ),
    "binning-width": (
        "BinningEstimator(bin_width=0.07): fixed-width bins over the whole real line (Saxe et al. 2018, SZT net)",
        _Preset("BinningEstimator", _SCHEME, bin_width=0.07),
    ),
    "binning-adaptive": (
        "BinningEstimator(n_bins=30, strategy='adaptive'): 30 bins per layer and epoch, each holding an equal "
        "number of distinct activation values (Chelombiev et al. 2019)",
        _Preset("BinningEstimator", _SCHEME, n_bins=30, strategy="adaptive"),
    ),
    "kde-upper": (
        "KDEEstimator(noise_variance=1e-3, bound='upper'): pairwise-KL upper bound (Kolchinsky & Tracey 2017; "
        "Saxe et al. 2018)",
        _Preset("KDEEstimator", noise_variance=1e-3, bound="upper"),
    ),
    "kde-lower": (
        "KDEEstimator(noise_variance=1e-3, bound='lower'): Bhattacharyya lower bound",
        _Preset("KDEEstimator", noise_variance=1e-3, bound="lower"),
    ),
    "noisy": (
        "NoisyEstimator(): I(X;T) = h(T) - h(T|X) and I(T;Y) of each noisy layer (Layer(name, noise=...)) by "
        "sample propagation with its recorded noise spec and draws, standard errors in I_XT_se / I_TY_se "
        "(Goldfeld et al. 2019; Adilova et al. 2023); the default for a store with noisy layers",
        _Preset("NoisyEstimator"),
    ),
    "latent": (
        "LatentMIEstimator(): k-NN (Ross) on a code of the layer: the layer itself when its numerical rank is at "
        "most 8, else 8-dimensional codes learned by cross-predictive autoencoders (or shrinkage LDA) on "
        "held-out rows (Gowri et al. 2024); I(T;Y) only, reliable=False when not converged",
        _Preset("LatentMIEstimator"),
    ),
}


def estimator_classes() -> dict[str, type]:
    """{name: class} of every public estimator class of `infoplane.estimators` (``BinningEstimator.name``
    is ``"binning"``, ``KNNEstimator.name`` ``"knn"``, ...): what `make_estimator` builds besides presets."""
    from .. import estimators

    out: dict[str, type] = {}
    for attr in estimators.__all__:
        obj = getattr(estimators, attr, None)
        if isinstance(obj, type) and issubclass(obj, estimators.BaseEstimator) and obj is not estimators.BaseEstimator:
            name = getattr(obj, "name", None)
            if isinstance(name, str) and name and name != "base" and name not in out:
                out[name] = obj
    return out


def make_estimator(name: str, **params: Any) -> Any:
    """A fresh estimator from a preset name (`ESTIMATOR_PRESETS`) or an estimator class's ``name``.

    ``params`` are passed to the class, replacing a preset's own: ``make_estimator("kde-upper",
    noise_variance=0.1)``, ``make_estimator("binning", n_bins=50)`` (a binning scheme replaces the preset's
    scheme), ``make_estimator("knn", k=5)``. A preset name wins over a class name (``"binning"`` is the SZT
    preset; ``BinningEstimator`` without a scheme has no default).

    Raises
    ------
    KeyError
        For an unknown name, listing the presets and the estimator names.
    TypeError, ValueError
        From the class, for a parameter it does not take or a bad value (the class names the parameter).
    """
    if isinstance(name, str) and name in ESTIMATOR_PRESETS:
        return ESTIMATOR_PRESETS[name][1](**params)
    classes = estimator_classes()
    if isinstance(name, str) and name in classes:
        return classes[name](**params)
    raise KeyError(
        f"Unknown estimator preset {name!r}; presets are: {', '.join(ESTIMATOR_PRESETS)}; estimators are: "
        f"{', '.join(classes)}."
    )


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
