"""Noise specs: what noise a layer of a network carries, as small frozen, JSON-able objects.

`GaussianNoise(std)`: additive, T = f(x) + Z with Z ~ N(0, std² I). `GaussianDropout(rate)`: multiplicative,
T = f(x) ⊙ (1 + σ ε) with ε ~ N(0, I) and σ² = rate / (1 − rate) (the Gaussian approximation of dropout at
that rate; Srivastava et al. 2014, Adilova, Geiger & Fischer 2023), so given f(x) each unit k is
N(f_k(x), (σ f_k(x))²). Both are pure data used by the recorder, the estimators and the networks; the
arithmetic (`sample`, `scale`) works on numpy arrays and torch tensors alike.

JSON convention: ``{"kind": "gaussian_noise", "std": s}`` and ``{"kind": "gaussian_dropout", "rate": p}``
(`to_dict` / `noise_from_dict`); stored in a store's metadata under ``"noise"``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from .validation import check_float_param, param_error

__all__ = ["GaussianNoise", "GaussianDropout", "NoiseSpec", "noise_from_dict", "as_noise_spec"]


@dataclass(frozen=True)
class GaussianNoise:
    """Additive Gaussian noise N(0, std² I) on a layer's output (std in the layer's activation units).

    Given the layer's output before its noise, f(x), the noisy output is N(f(x), std² I).

    Examples
    --------
    >>> GaussianNoise(0.1).to_dict()
    {'kind': 'gaussian_noise', 'std': 0.1}
    """

    std: float
    kind: ClassVar[str] = "gaussian_noise"

    def __post_init__(self) -> None:
        object.__setattr__(self, "std", check_float_param(self.std, "std", "GaussianNoise", positive=True))

    def sample(self, centres: Any, eps: Any) -> Any:
        """The noisy output f + std·ε for standard normal ``eps`` of the same shape."""
        return centres + self.std * eps

    def scale(self, centres: Any) -> Any:
        """Per-unit standard deviation of the noisy output given ``centres`` (a scalar: std)."""
        return self.std

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "std": self.std}


@dataclass(frozen=True)
class GaussianDropout:
    """Multiplicative Gaussian noise: T = f(x) ⊙ (1 + σ ε), ε ~ N(0, I), σ² = rate / (1 − rate).

    Given f(x) each unit is N(f_k(x), (σ f_k(x))²): a unit at exactly 0 stays 0 (no noise), so put it on a
    layer whose outputs are not exactly zero (a linear layer's pre-activations, not a ReLU's outputs) when
    I(X;T) is to be finite. Adilova, Geiger & Fischer (2023), Thm 3.1: Bernoulli dropout leaves I(X;T)
    infinite for continuous inputs; Gaussian dropout makes it finite.

    Examples
    --------
    >>> round(GaussianDropout(0.2).sigma, 4)
    0.5
    """

    rate: float
    kind: ClassVar[str] = "gaussian_dropout"

    def __post_init__(self) -> None:
        rate = check_float_param(self.rate, "rate", "GaussianDropout")
        if not 0.0 < rate < 1.0:
            raise param_error("GaussianDropout", "rate", "a float in the open interval (0, 1)", self.rate)
        object.__setattr__(self, "rate", rate)

    @property
    def sigma(self) -> float:
        """σ = sqrt(rate / (1 − rate)), the standard deviation of the multiplicative factor."""
        return math.sqrt(self.rate / (1.0 - self.rate))

    def sample(self, centres: Any, eps: Any) -> Any:
        """The noisy output f ⊙ (1 + σ ε) for standard normal ``eps`` of the same shape."""
        return centres * (1.0 + self.sigma * eps)

    def scale(self, centres: Any) -> Any:
        """Per-unit standard deviation σ·abs(f) of the noisy output given ``centres`` (same shape)."""
        return self.sigma * abs(centres)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rate": self.rate}


NoiseSpec = GaussianNoise | GaussianDropout
_KINDS = {"gaussian_noise": (GaussianNoise, "std"), "gaussian_dropout": (GaussianDropout, "rate")}


def noise_from_dict(d: Any) -> NoiseSpec:
    """The spec of a `to_dict` dictionary (as stored in a store's metadata)."""
    if not isinstance(d, dict) or d.get("kind") not in _KINDS:
        raise param_error("noise_from_dict", "d", f"a dict with 'kind' one of {sorted(_KINDS)}", d)
    cls, field = _KINDS[d["kind"]]
    return cls(d[field])


def as_noise_spec(value: Any, owner: str, name: str = "noise") -> NoiseSpec:
    """A spec as given, a positive float as ``GaussianNoise(value)``, a dict through `noise_from_dict`."""
    if isinstance(value, (GaussianNoise, GaussianDropout)):
        return value
    if isinstance(value, dict):
        return noise_from_dict(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return GaussianNoise(check_float_param(value, name, owner, positive=True))
    raise param_error(owner, name, "a GaussianNoise(std) or GaussianDropout(rate) spec (or a float std > 0)", value)
