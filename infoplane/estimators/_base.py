"""The shared base of every estimator: parameters, repr, and the shuffle baseline (the value under independence)."""
from __future__ import annotations

import inspect
from dataclasses import replace
from typing import Any

import numpy as np

from .._core.types import ArrayLike, InputKind, MIResult, TensorLike, json_safe
from .._core.validation import as_numpy, check_int_param
from ._kernels.reliability import TOL_BITS

__all__ = ["BaseEstimator"]


class BaseEstimator:
    """Parameters live in ``__init__`` (validated there); the work happens in ``estimate``.

    Subclasses set ``name`` and ``input_kind`` and implement ``estimate`` returning an `MIResult`.
    ``dpi_tolerance`` (bits) is how far a deeper layer's estimate may exceed a shallower one's before
    `information_plane` flags a data-processing-inequality violation: binned or kernel estimates of two
    layers are not themselves a Markov chain, so small excesses are resolution effects, not information.
    ``reliability_tol`` (bits, default 0.25) is how far an estimate may be off before the estimators that check
    themselves (binning, KDE, k-NN, critics, probe) report ``conventions["reliable"] = False`` with the
    reason in ``conventions["reliability_note"]`` (`infoplane.estimators._kernels.reliability`).
    """

    name: str = "base"
    input_kind: InputKind = "deterministic"
    dpi_tolerance: float = 0.1
    reliability_tol: float = TOL_BITS

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters, by name, as stored on the instance."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self" and hasattr(self, p)}

    def conventions(self) -> dict[str, Any]:
        """Everything that changes the answer, JSON-serialisable; stored with every result."""
        return {"estimator": self.name, **json_safe(self.get_params())}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def estimate(
        self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None
    ) -> MIResult:  # pragma: no cover
        """I(T;X) and I(T;Y) in bits; ``layer``/``epoch`` only name the data in error messages.

        Gaussian estimators (``input_kind="gaussian"``) also take ``log_var=`` (keyword), ``t`` being the mean.
        """
        raise NotImplementedError

    #: Whether the estimator learns parameters that a warm start from the previous recorded epoch can reuse
    #: (`estimate_with_state`); `information_plane` chains such estimators per (run, layer) in epoch order
    #: when their ``warm_start`` attribute is true.
    supports_warm_start: bool = False

    def estimate_with_state(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, state: Any = None,
                            **kwargs: Any) -> tuple[MIResult, Any]:
        """``(estimate, state)``: the estimate of `estimate`, warm-started from ``state`` (what this method
        returned for the previous recorded epoch of the same run and layer; None: a cold start), and the
        state to hand to the next epoch. The default ignores ``state`` and returns None: a cold estimate.

        An estimator that overrides it sets ``supports_warm_start = True``, exposes ``warm_start`` (default
        True) and records ``conventions["warm_start"]`` (whether this estimate was warm-started). What a warm
        start may change is bounded: for a convex objective (the probe) only the solver's tolerance; for a
        trained network (critics, latent MI) the held-out check of `infoplane.estimators._kernels.warm` keeps
        a warm start only if a cold start given as many epochs does not beat it by more than its standard
        error (it does not bound the distance to a cold start run to its own end: see
        docs/notes/performance.md), and the chain's held-out rows stay held out.
        """
        return self.estimate(t, y, x, **kwargs), None

    def shuffle_baseline(
        self,
        t: TensorLike,
        y: ArrayLike,
        x: ArrayLike | None = None,
        *,
        n_permutations: int = 5,
        seed: int | None = 0,
        **kwargs: Any,
    ) -> MIResult:
        """The same estimate with the labels permuted: the estimator's I(T;Y) under independence, in bits.

        With labels independent of T the true I(T;Y) is 0, so the returned ``I_TY`` (mean over
        ``n_permutations`` random permutations) is the estimator's bias *at independence*, at this N and
        label balance: what it reports when there is nothing to find. It is not the bias at the dependence
        actually present, so subtracting it is not a bias correction (with T = X on the SZT task the plug-in
        I(T;Y) is exact, yet I(T;Y) minus the baseline is about 0).
        ``conventions`` gain ``shuffled`` (the number of permutations) and ``I_TY_std``.
        """
        n_permutations = check_int_param(n_permutations, "n_permutations", "shuffle_baseline", minimum=1)
        rng = np.random.default_rng(seed)
        y_np = as_numpy(y)
        results = [self.estimate(t, rng.permutation(y_np), x, **kwargs) for _ in range(n_permutations)]
        values = np.array([r.I_TY for r in results])
        conventions = {
            **results[0].conventions,
            "shuffled": n_permutations,
            "I_TY_std": float(values.std(ddof=1)) if n_permutations > 1 else 0.0,
        }
        return replace(results[0], I_TY=float(values.mean()), conventions=conventions)
