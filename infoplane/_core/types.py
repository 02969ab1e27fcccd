"""Result types and the estimator protocol.

A leaf module: it imports nothing else of infoplane, so every other module may import it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, Union, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # torch is never imported for the aliases' sake
    import torch

__all__ = [
    "ArrayLike", "TensorLike", "Bound", "InputKind", "MIResult", "MixtureBounds", "BABound", "Estimator", "Store",
]

#: Anything `numpy.asarray` turns into an array: an ndarray, a (nested) list or tuple, a scalar, a pandas
#: Series, a CPU torch tensor. What the checks of `infoplane._core.validation` accept for labels and ids.
ArrayLike: TypeAlias = npt.ArrayLike

#: Activations: a numpy array or a torch tensor (estimators with a torch path keep a tensor on its device).
TensorLike: TypeAlias = Union[np.ndarray, "torch.Tensor"]

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


@dataclass(frozen=True)
class MixtureBounds:
    """Monte Carlo aggregate-posterior bounds on I(Z;X) for a probe set, in bits.

    Attributes
    ----------
    lower : float
        E[ln p(z|x_i) − ln (1/N) Σ_j p(z|x_j)] (all j): a lower bound on the population I(Z;X) in expectation,
        never above log2 N; it *is* I(Z;X) under the empirical input distribution of the probe set (X uniform
        over its N rows), up to Monte Carlo error in z.
    upper : float
        The leave-one-out version, ln (1/(N−1)) Σ_{j≠i} p(z|x_j): an upper bound on the population I(Z;X) in
        expectation (Poole et al. 2019). It can exceed the rate (a far-off code has a tiny leave-one-out
        density), so see ``tight_upper``.
    tight_upper : float
        min(rate, upper): both are upper bounds on I(Z;X), so the smaller is the tightest known here.
    estimate : float
        The probe-set I(Z;X): equal to ``lower`` (see above).
    rate : float
        R = mean_i KL[p(z|x_i) ‖ N(0, I)], exact.
    gap : float
        R − estimate, the implied KL[p(z) ‖ N(0, I)] (how far the aggregate code is from the prior).
    stderr : float
        Approximate Monte Carlo standard error of ``estimate`` (std of the N·M terms / sqrt(N·M)).
    n, M, seed : int
        Probe rows, z samples per row, and the seed of the samples.
    """

    lower: float
    upper: float
    tight_upper: float
    estimate: float
    rate: float
    gap: float
    stderr: float
    n: int
    M: int
    seed: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BABound:
    """A Barber–Agakov lower bound on I(Z;Y), in bits: ``value = h_y + mean_log_q``.

    Attributes
    ----------
    value : float
        H(Y) + (1/NM) Σ_i Σ_m log2 q(y_i | z_im). For a regression task H(Y) is a differential entropy (see
        ``h_y_kind``), so the value is a bound only insofar as that H(Y) is right.
    h_y : float
        H(Y) in bits: plug-in entropy of the label frequencies (classes) or differential entropy (regression).
    h_y_kind : str
        ``"label frequencies"``, ``"differential, fitted Gaussian"`` (½ log2 det(2πe Σ_y), an upper bound on
        the true differential entropy, exact when Y is Gaussian) or ``"given"``.
    mean_log_q : float
        (1/NM) Σ log2 q(y_i | z_im) (≤ 0 for classes).
    n, M, seed : int
        Data points, z samples per point, seed.
    task, decoder : str
        ``"classification"``/``"regression"``, and a description of the decoder.
    noise_variance : list of float or None
        Regression only: the decoder variance s² per output (fitted or given).
    """

    value: float
    h_y: float
    h_y_kind: str
    mean_log_q: float
    n: int
    M: int
    seed: int | None
    task: str
    decoder: str
    noise_variance: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None,
        epoch: int | None = None
    ) -> MIResult: ...


@runtime_checkable
class Store(Protocol):
    """What `information_plane` reads from a recorded run (`MemoryStore`, `ZarrStore`, or your own).

    ``epochs`` (ints, ascending) and ``layers`` (recording order) list what was recorded;
    ``activations(epoch, layer, part=None)`` returns one (N, d) array (``part="log_var"``: the log-variance of
    a Gaussian layer); ``layer_kind(layer)`` is ``"deterministic"`` or ``"gaussian"``. Optional, read when
    present: ``labels`` (N,), ``n_probe``, ``path`` (a zarr store workers may open themselves), ``close()``.
    ``isinstance(obj, Store)`` checks the four required members (a `Recorder` is not a store: it has one).
    """

    @property
    def epochs(self) -> list[int]: ...

    @property
    def layers(self) -> list[str]: ...

    def activations(self, epoch: int, layer: str, part: str | None = None) -> Any: ...

    def layer_kind(self, layer: str) -> str: ...


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
