"""A probe for I(T;Y) of any recorded layer: the Barber–Agakov bound with a cross-fitted classifier, in bits.

I(T;Y) = H(Y) + E log p(y|t) >= H(Y) + E log q(y|t) for any decoder q (Barber & Agakov 2003). Here q is a
standardised multinomial logistic regression scored only on rows it was not fitted on (k-fold
cross-fitting; the probe already used for Gaussian layers in `infoplane.estimators.variational`), so the
bound holds in expectation for the population too, not only for the probe set.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._core.types import ArrayLike, MIResult, TensorLike, json_safe
from .._core.units import LN2, entropy_bits
from .._core.validation import (
    check_activations,
    check_class_sizes,
    check_device,
    check_estimate_inputs,
    check_float_param,
    check_int_param,
    check_labels,
    param_error,
)
from ._base import BaseEstimator
from ._kernels import reliability as R
from ._kernels.logreg import C_GRID
from ._kernels.probe import classification_log_q
from ._kernels.rows import NO_I_XT, canonical_order

__all__ = ["ProbeEstimator", "probe_mi"]


def _check_C(C: Any, owner: str) -> Any:
    if isinstance(C, str) and C == "auto":
        return C
    return check_float_param(C, "C", owner, positive=True)


def probe_mi(t: TensorLike, y: ArrayLike, *, n_folds: int = 5, seed: int | None = 0, C: Any = "auto") -> float:
    """Barber–Agakov lower bound on I(T;Y) in bits, H(Y) − CE, with a ``n_folds``-fold cross-fitted
    logistic-regression probe (stratified folds, seeded).

    H(Y) is the entropy of the label frequencies and CE the mean held-out cross-entropy in bits. Rows are
    put in a canonical order (sorted by value) before the folds are drawn, so a permutation of the rows
    gives the same number. ``C``: the inverse L2 penalty, ``"auto"`` (default) chosen per training fold by
    inner validation over the decades 0.001 … 100 and one half-decade step. Cost: every fold's full-batch
    L-BFGS fit at once in torch (plus the inner C path), each evaluation two products of the (N, d) rows with
    a (n_folds · classes, d) weight matrix (`ProbeEstimator`).
    """
    owner = "probe_mi"
    n_folds = check_int_param(n_folds, "n_folds", owner, minimum=2)
    seed = None if seed is None else check_int_param(seed, "seed", owner, minimum=0)
    C = _check_C(C, owner)
    t = check_activations(t, name="t", allow_torch=False)
    return _probe_bits(t, check_labels(y, int(t.shape[0])), n_folds, seed, owner, C)[0]


def _probe_bits(t: np.ndarray, y: np.ndarray, n_folds: int, seed: int | None, owner: str, C: Any = "auto",
                device: Any = None, state: dict | None = None, threads: int | None = None) -> tuple[float, dict]:
    check_class_sizes(y, 2, owner, "a class with one row cannot be both fitted and scored")
    if n_folds > len(y):
        raise param_error(owner, "n_folds", f"an int in 2..{len(y):,} (no more folds than the {len(y):,} rows)", n_folds)
    order = canonical_order(t, y)
    t, y = np.asarray(t)[order], y[order]
    _, y_ids = np.unique(y, return_inverse=True)
    y_ids = y_ids.reshape(-1)
    k = int(y_ids.max()) + 1
    log_q, info = classification_log_q(t[:, None, :], y_ids, n_folds, seed, k, C=C, device=device, state=state,
                                     threads=threads)
    log2_q = log_q[:, 0] / LN2
    info["se_bits"] = float(log2_q.std(ddof=1) / np.sqrt(len(log2_q))) if len(log2_q) > 1 else 0.0
    h_y = entropy_bits(np.bincount(y_ids))
    info["train_bits"] = h_y + info["train_log_q"] / LN2
    return h_y + float(log2_q.mean()), info


class ProbeEstimator(BaseEstimator):
    """I(T;Y) >= H(Y) − CE of a cross-fitted logistic-regression probe, for any (deterministic) layer, in bits.

    ``I_TY`` is `probe_mi` (``bound_TY="lower"``; it can be negative when the probe is worse than the label
    frequencies, and is then reported as 0 with the raw value in ``conventions["I_TY_raw"]``). ``I_XT`` is
    NaN with the reason in ``conventions["I_XT_note"]``: the probe says nothing about I(T;X); take it from
    another estimator (a noisy-network estimator, KDE).

    The probe is a standardised multinomial logistic regression (scikit-learn's objective per fold) fitted
    by full-batch L-BFGS in torch (float32, on ``device``), every fold at once (`_kernels.logreg`), its C
    chosen per training fold by inner validation (``C="auto"``: the decade path 0.001 … 100 walked up, each
    inner fit run to convergence, until the inner held-out cross-entropy stops improving by more than 1e-3
    nats, then a half-decade step towards the better neighbour; the chosen values in
    ``conventions["C_chosen"]``). Each fit stops when its held-out mean log-likelihood has
    settled (two successive steps within 1e-4 nats): within 0.0002 bits of a float64 solve to
    max abs(gradient) <= 1e-9 (benchmarks/bench_probe.py). Warm starts (``warm_start=True``): in
    `information_plane` each fold's final fit starts from the weights reached at the previous recorded epoch
    of the same run and layer when the same C is chosen again (the C path itself starts afresh, so warm and
    cold choose the same Cs); the objective is convex, so a warm start reaches the same optimum to the
    solver's tolerance (measured within 0.001 bits of the cold bound along a recorded run, tested within
    0.002 bits even for a state fitted on every row). ``conventions["I_TY_se"]``: the standard error of the
    held-out mean log-likelihood, bits.

    Self-check (`infoplane.estimators._kernels.reliability`): each fold's probe is also scored on its own
    training rows (read from the batched fit's last product, which scores every fold's probe on every row:
    no extra cost); ``conventions["train_value_bits"]`` is that in-sample bound and ``overfit_gap_bits`` its
    excess over the held-out one. ``conventions["reliable"]`` is False, with the reasons in
    ``reliability_note``, when the gap exceeds ``reliability_tol`` (0.25 bits: the probe over-fits, the
    held-out bound may be that far below what it could reach), when the held-out value is within 2 standard
    errors of 0 (the probe found no dependence it can represent: a lower bound near 0 cannot tell
    independence from, e.g., classes that differ only in their spread), or when 2 SE exceed the tolerance.
    ``conventions["clipped"]`` is "at 0" when the raw value was negative.

    Cost: each batched evaluation is two products of the N × d rows with the (n_folds · classes) × d
    weights (the solver works along the layer's principal axes, `_kernels.logreg.Scaled`, one d × d
    eigendecomposition per estimate, or the leading 256 axes above 1,024 units); about 50 evaluations on
    nearly separable classes and 110 on an ill-conditioned ReLU layer (N = 10,000, d = 1,024, 10 classes,
    2 cores: 1.6 and 3.1 s on two threads, 2.6 and 4.8 s on one; docs/notes/performance.md). On a busy machine one thread is faster (``threads=1``:
    thread hand-offs slow the elementwise passes 5–10× there).

    Parameters
    ----------
    n_folds : int >= 2
        Folds of the cross-fitting (stratified by class).
    seed : int or None
        Seed of the fold assignment (and of the inner split).
    C : "auto" or float > 0
        Inverse L2 penalty of the probe (scikit-learn's C); ``"auto"``: inner validation per fold.
    device : str or torch.device or None
        Where the probe is fitted (None: the CPU).
    warm_start : bool
        Accept a warm start from the previous epoch in `information_plane` (default True).
    threads : int >= 1 or None
        torch threads of the fit on the CPU (None: torch's count as the caller set it, e.g. one per core).
        The float32 reductions' order depends on it: the bits change in the sixth decimal with the count,
        so compare runs at the same count (``threads=1`` gives the same table in every joblib backend).
    """

    name = "probe"
    y_kinds = ("labels",)
    supports_warm_start = True

    def __init__(self, *, n_folds: int = 5, seed: int | None = 0, C: Any = "auto", device: Any = None,
                 warm_start: bool = True, threads: int | None = None) -> None:
        self.n_folds = check_int_param(n_folds, "n_folds", "ProbeEstimator", minimum=2)
        self.threads = None if threads is None else check_int_param(threads, "threads", "ProbeEstimator", minimum=1)
        self.seed = None if seed is None else check_int_param(seed, "seed", "ProbeEstimator", minimum=0)
        if self.seed is not None and self.seed >= 2**32:
            raise param_error("ProbeEstimator", "seed", "an int in 0..2**32 - 1 (a NumPy seed) or None", seed)
        self.C = _check_C(C, "ProbeEstimator")
        if device is not None:
            check_device(device, "device", "ProbeEstimator")  # a device this torch cannot use fails here
        self.device = device
        self.warm_start = bool(warm_start)

    def conventions(self) -> dict[str, Any]:
        return {
            "estimator": self.name,
            "n_folds": self.n_folds,
            "seed": self.seed,
            "C": self.C,
            "C_grid": list(C_GRID) if self.C == "auto" else [self.C],
            "C_refine": "one half-decade step towards the better neighbour" if self.C == "auto" else None,
            "decoder": f"logistic probe (torch L-BFGS, folds batched), {self.n_folds}-fold cross-fitted",
            "I_TY_method": "Barber-Agakov",
            "I_XT_note": NO_I_XT,
            "threads": self.threads,
        }

    def estimate(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None,
                 epoch: int | None = None) -> MIResult:
        """I(T;Y) >= H(Y) − CE in bits for activations ``t`` (N, d) and labels ``y``; ``x`` unused."""
        return self.estimate_with_state(t, y, x, layer=layer, epoch=epoch)[0]

    def estimate_with_state(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, state: Any = None,
                            **kwargs: Any) -> tuple[MIResult, Any]:
        """`estimate`, the fits warm-started from ``state`` (the weights of the previous epoch), and the
        state to pass on (see `BaseEstimator.estimate_with_state`); keywords ``layer`` and ``epoch``."""
        layer, epoch = kwargs.pop("layer", None), kwargs.pop("epoch", None)
        if kwargs:
            raise TypeError(f"ProbeEstimator.estimate_with_state got unexpected keywords {sorted(kwargs)}.")
        # x is unused, but a malformed x is still an error
        t, y_np, _, n = check_estimate_inputs(t, y, x, layer=layer, epoch=epoch, allow_torch=False)
        warm = state if self.warm_start else None
        raw, info = _probe_bits(t, y_np, self.n_folds, self.seed, "ProbeEstimator", self.C, self.device, warm,
                                self.threads)
        conv = self.conventions()
        conv.update(n_samples=n, n_units=int(t.shape[1]), units="bits", I_TY_raw=raw, I_TY_se=info["se_bits"],
                    C_chosen=info["C"], lbfgs_evaluations=info["evaluations"], warm_start=info["warm_start"],
                    H_Y_bits=entropy_bits(np.bincount(np.unique(y_np, return_inverse=True)[1].reshape(-1))),
                    clipped="at 0" if raw < 0 else None, train_value_bits=info["train_bits"],
                    overfit_gap_bits=info["train_bits"] - raw)
        conv.update(R.verdict(R.learned_bound_notes(raw, info["train_bits"], info["se_bits"], self.reliability_tol)))
        res = MIResult(I_XT=math.nan, I_TY=max(raw, 0.0), bound_XT="estimate", bound_TY="lower",
                       estimator=self.name, n_samples=n, conventions=json_safe(conv))
        return res, info["state"]
