"""KDE (Gaussian-mixture) bounds on I(T;X) and I(T;Y), in bits (Kolchinsky & Tracey 2017; Saxe et al. 2018)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._core.types import ArrayLike, MIResult, TensorLike, json_safe
from .._core.validation import (
    as_numpy,
    check_choice,
    check_estimate_inputs,
    check_float_param,
)
from ._base import BaseEstimator
from ._kernels import binning as K
from ._kernels import reliability as R

__all__ = ["KDEEstimator", "shared_kde_results"]

_OWNER = "KDEEstimator"


class KDEEstimator(BaseEstimator):
    """Pairwise-distance bounds on the information of a noisy layer T = h(X) + ε, ε ~ N(0, σ² I), in bits.

    The activations h_i of the N probe rows define a mixture of N Gaussians (one per input, X uniform over
    the rows). With D_ij = ‖h_i − h_j‖² and L_i = ln Σ_j exp(−D_ij / s):

    - ``bound="upper"`` (pairwise KL, s = 2σ²):
      H(T) ≤ d/2 + d/2·ln(2πσ²) + ln N − (1/N) Σ_i L_i;
    - ``bound="lower"`` (Bhattacharyya, s = 8σ²): the same with σ² → 4σ² plus d/2·ln(1/4), i.e.
      H(T) ≥ d/2 + d/2·ln(2πσ²) + ln N − (1/N) Σ_i L_i with s = 8σ²;
    - H(T|X) = d/2·ln(2πeσ²) exactly, so ``I_XT`` = ln N − mean_i L_i (converted to bits) is a rigorous
      upper (resp. lower) bound on I(T;X) of the noisy layer under the empirical input distribution;
    - H(T|Y=c) is the same mixture formula over class c's rows and I(T;Y) = H(T) − Σ_c p(c) H(T|Y=c).
      That is a difference of two bounds of the same kind, so it is **not** a rigorous bound on I(T;Y); we
      follow the literature (Saxe et al. 2018) in computing it this way but label it ``bound_TY="estimate"``
      and say so in ``conventions["I_TY_note"]``. It always satisfies I_TY <= I_XT and I_TY <= H(Y).

    Self-check of I(T;Y) (`infoplane.estimators._kernels.reliability`, from the same pass): I(T;Y) above is
    H(Y) + mean_i ln p̂(y_i | t_i) for the Parzen classifier p̂(c | t) ∝ Σ_{j in c} K(t, t_j) whose sums hold
    row i's own kernel, a resubstitution value; ``conventions["I_TY_loo"]`` is the same classifier with row i
    left out (class densities renormalised, one kernel's weight spread by the class priors), a held-out
    value. When the estimate exceeds it by more than ``reliability_tol`` (0.25 bits:
    ``conventions["resubstitution_gap_bits"]``) ``conventions["reliable"]`` is False, with the reason in
    ``reliability_note``: the kernels are too narrow for the N rows to say what p(y|t) is.

    Repeated inputs: with ``x`` given, H(T|X) = Σ_x p(x) H(T|X=x), each term the same mixture formula over
    the rows of input x. When the rows of each input are equal (a deterministic network) the mixture is a
    single Gaussian and the formula is exact, so ``I_XT`` keeps its bound kind; when they differ (e.g.
    dropout on) it is a difference of bounds and is labelled ``"estimate"``.

    Computation: torch, on the device of ``t`` (CPU for numpy input, CUDA when the tensor lives there), in
    row chunks sized to ``memory_mb`` so memory is O(N·chunk) — no N×N matrix — with float64 distances on
    centred, scaled rows, float32 exponentials and float64 sums (within 1e-6 nats of a float64 dense
    reference; see `infoplane.estimators._kernels.kde_log_sums_multi`). Cost O(N² d); both bounds together
    cost about one (one exponential, the other its fourth power).

    Parameters
    ----------
    noise_variance : float
        σ² > 0 of the added Gaussian noise, in squared activation units (Saxe et al.: 1e-3 for the SZT net,
        1e-1 for MNIST).
    bound : {"upper", "lower", "both"}
        Pairwise-KL upper or Bhattacharyya lower bound on H(T) and I(T;X); ``"both"`` computes the two in one
        pass (the result holds the upper bound, ``conventions["lower"]`` the lower; see `estimate_bounds`).
    memory_mb : float
        Budget for the (chunk, N) float64 temporaries; changes speed and memory, never the answer.

    References
    ----------
    Kolchinsky & Tracey (2017), Estimating mixture entropy with pairwise distances, Entropy 19(7):361.
    Saxe et al. (2018), On the information bottleneck theory of deep learning, ICLR.
    """

    name = "kde"
    input_kind = "deterministic"

    def __init__(self, noise_variance: float = 1e-3, bound: str = "upper", *, memory_mb: float = 256.0) -> None:
        self.noise_variance = check_float_param(noise_variance, "noise_variance", _OWNER, positive=True)
        self.bound = check_choice(bound, "bound", _OWNER, ("upper", "lower", "both"))
        self.memory_mb = check_float_param(memory_mb, "memory_mb", _OWNER, positive=True)

    def conventions(self) -> dict[str, Any]:
        """Noise variance, bound kind and the formulas' names; ``memory_mb`` is left out (no effect on values)."""
        return {
            "estimator": self.name,
            "noise_variance": self.noise_variance,
            "bound": self.bound,
            "divergence": {"upper": "pairwise KL", "lower": "Bhattacharyya",
                           "both": "pairwise KL and Bhattacharyya"}[self.bound],
            "I_TY_note": "H(T) - sum_c p(c) H(T|Y=c), a difference of two bounds of the same kind: "
            "not a rigorous bound on I(T;Y)",
        }

    def estimate(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None,
                 epoch: int | None = None) -> MIResult:
        """Bounds in bits for activations ``t`` (N, d), labels ``y`` (N,) and optional input ids ``x``.

        ``x``: (N,) ids or (N, k) input rows (equal meaning a repeated input); None means every row is a
        distinct input. ``layer``/``epoch`` only name the data in error messages. With ``bound="both"`` the
        result holds the upper bound and ``conventions["lower"]`` the lower one (``I_XT``, ``I_TY``, bits),
        from one pass over the pairs; `estimate_bounds` returns both as results.
        """
        results = self._estimate(t, y, x, layer, epoch)
        if self.bound != "both":
            return results[self.bound]
        up, lo = results["upper"], results["lower"]
        conv = dict(up.conventions, bound="both", lower={"I_XT": lo.I_XT, "I_TY": lo.I_TY, "bound_XT": lo.bound_XT})
        return MIResult(I_XT=up.I_XT, I_TY=up.I_TY, bound_XT=up.bound_XT, bound_TY="estimate",
                        estimator=self.name, n_samples=up.n_samples, conventions=json_safe(conv))

    def estimate_bounds(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None,
                        epoch: int | None = None) -> dict[str, MIResult]:
        """Both bounds, ``{"upper": MIResult, "lower": MIResult}``, sharing one pass over the N² pairs.

        Each result is what ``KDEEstimator(noise_variance, bound)`` would return for that bound (same numbers,
        same conventions), at about the cost of one of them.
        """
        return self._estimate(t, y, x, layer, epoch, kinds=("upper", "lower"))

    def _estimate(self, t: Any, y: Any, x: Any, layer: str | None, epoch: int | None,
                  kinds: tuple[str, ...] | None = None) -> dict[str, MIResult]:
        t, y_np, x_ids, n = check_estimate_inputs(t, y, x, layer=layer, epoch=epoch)
        d = int(t.shape[1])
        _, y_ids = np.unique(y_np, return_inverse=True)
        if kinds is None:
            kinds = ("upper", "lower") if self.bound == "both" else (self.bound,)
        out = K.kde_information_bits(t, y_ids.reshape(-1), self.noise_variance, "both", x_ids,
                                     memory_mb=self.memory_mb) if len(kinds) == 2 else {
            kinds[0]: K.kde_information_bits(t, y_ids.reshape(-1), self.noise_variance, kinds[0], x_ids,
                                             memory_mb=self.memory_mb)}
        exact_xt = x_ids is None or _rows_equal_within_groups(t, x_ids)
        results = {}
        for kind in kinds:
            conv = KDEEstimator(self.noise_variance, kind).conventions()
            conv.update(n_samples=n, n_units=d, inputs="distinct" if x_ids is None else "given",
                        H_T=out[kind]["H_T"], H_T_given_Y=out[kind]["H_T_given_Y"], units="bits",
                        device=str(getattr(t, "device", "cpu")))
            conv.update(self._check(out[kind]["I_TY"], out[kind]["I_TY_loo"]))
            results[kind] = MIResult(
                I_XT=max(out[kind]["I_XT"], 0.0), I_TY=max(out[kind]["I_TY"], 0.0),
                bound_XT=kind if exact_xt else "estimate", bound_TY="estimate", estimator=self.name,
                n_samples=n, conventions=json_safe(conv))
        return results


    def _check(self, i_ty: float, i_ty_loo: float) -> dict[str, Any]:
        """The self-check of I(T;Y): the leave-one-out value, the gap and the verdict (class docstring)."""
        gap = i_ty - i_ty_loo
        notes = [] if not gap > self.reliability_tol else [
            f"resubstitution optimism: with each row's own kernel left out, I(T;Y) is {i_ty_loo:.3f} bits, "
            f"{gap:.3f} below the estimate (> {self.reliability_tol:g}); the kernels (sigma^2 = "
            f"{self.noise_variance:g}) are too narrow for the rows to estimate p(y|t)"]
        return {"I_TY_loo": i_ty_loo, "resubstitution_gap_bits": gap, **R.verdict(notes)}


def shared_kde_results(estimators: Mapping[str, Any], t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *,
                       layer: str | None = None, epoch: int | None = None) -> dict[str, MIResult]:
    """Results, by label, of the `KDEEstimator` s in ``estimators`` whose two bounds can share one pass.

    Estimators asking ``"upper"`` and ``"lower"`` with the same noise variance (and memory budget) are
    computed together by `KDEEstimator.estimate_bounds`, at the cost of one; the results are the same as
    each estimator's own `~KDEEstimator.estimate`. Labels not in the returned dict are left to the caller.
    """
    groups: dict[tuple[float, float], dict[str, str]] = {}
    for label, est in estimators.items():
        if type(est) is KDEEstimator and est.bound in ("upper", "lower"):
            groups.setdefault((est.noise_variance, est.memory_mb), {})[est.bound] = label
    out: dict[str, MIResult] = {}
    for (var, memory_mb), labels in groups.items():
        if len(labels) == 2:
            both = KDEEstimator(var, "both", memory_mb=memory_mb).estimate_bounds(t, y, x, layer=layer, epoch=epoch)
            out.update({label: both[kind] for kind, label in labels.items()})
    return out


def _rows_equal_within_groups(t: Any, ids: np.ndarray) -> bool:
    """Whether all rows sharing an input id are identical (then each H(T|X=x) is exact)."""
    t_np = as_numpy(t)
    order = np.argsort(ids, kind="stable")
    ts, gs = t_np[order], ids[order]
    same_group = gs[1:] == gs[:-1]
    return bool(np.all(ts[1:][same_group] == ts[:-1][same_group]))
