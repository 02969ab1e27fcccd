"""Result types and the estimator protocol.

A leaf module: it imports nothing else of infoplane, so every other module may import it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

__all__ = ["Bound", "InputKind", "MIResult", "Estimator"]

#: What kind of number an estimate is relative to the true mutual information.
Bound = Literal["estimate", "upper", "lower"]

#: What an estimator consumes: plain activations, or the (mean, log-variance) of a Gaussian layer.
InputKind = Literal["deterministic", "gaussian"]


@dataclass(frozen=True)
class MIResult:
    """One layer's information-plane point, in bits, with the conventions that produced it.

    Attributes
    ----------
    I_XT, I_TY : float
        I(T;X) and I(T;Y) in bits.
    bound_XT, bound_TY : {"estimate", "upper", "lower"}
        How each number relates to the true mutual information.
    estimator : str
        Short name of the estimator ("binning", "kde", "rate", ...).
    n_samples : int
        Number of rows (probe inputs) the estimate used.
    conventions : mapping
        Every parameter that changes the answer (edges, bin width, noise variance, bound kind, ...),
        JSON-serialisable so tables can store it beside the numbers.
    """

    I_XT: float
    I_TY: float
    bound_XT: Bound
    bound_TY: Bound
    estimator: str
    n_samples: int
    conventions: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A flat dict: the numbers and bounds, with conventions kept as a nested dict."""
        out = asdict(self)
        out["conventions"] = dict(self.conventions)
        return out


@runtime_checkable
class Estimator(Protocol):
    """What `information_plane` needs of an estimator.

    Every estimator has ``estimate(t, y, x=None, *, layer=None, epoch=None)`` with activations ``t`` of shape
    (N, d); ``layer`` and ``epoch`` only name the data in error messages. ``input_kind == "gaussian"``: also
    ``log_var=`` (keyword), ``t`` being the mean of a Gaussian layer p(z|x) = N(t, diag exp(log_var)).
    """

    name: str
    input_kind: InputKind

    def conventions(self) -> dict[str, Any]: ...

    def estimate(
        self, t: Any, y: Any, x: Any = None, *, layer: str | None = None, epoch: int | None = None
    ) -> MIResult: ...


def json_safe(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples into plain JSON-serialisable Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
