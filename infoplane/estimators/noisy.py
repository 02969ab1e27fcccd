"""Information of a noisy layer, T = S + Z with Z ~ N(0, s² I), by sample propagation (Goldfeld et al. 2019).

The recorded rows are the layer's *centres* S (its output before the noise). Given X = x, T is the mixture
of N(S_j, s² I) over the rows j of input x (one row per input for the first noisy layer, where it is a
single Gaussian; m rows per input for a deeper one, from m noise draws pushed through the earlier noisy
layers: `infoplane.noise.sample_propagation` records them). Then, with X uniform over the inputs,

    I(X;T) = h(T) − h(T|X),    I(T;Y) = h(T) − Σ_c p(c) h(T|Y=c),

each differential entropy that of a Gaussian mixture, estimated by Monte Carlo with ``n_draws`` points per
row: h ≈ −mean ln[(1/|G|) Σ_{j∈G} φ_s(z − S_j)]. Cost O(R² · n_draws · d) time for R recorded rows
(R = N · m), memory O(block · n_draws · R); torch on the device of the rows.

References
----------
Goldfeld, van den Berg, Greenewald, Melnyk, Nguyen, Kingsbury & Polyanskiy (2019), Estimating information
flow in deep neural networks, ICML.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .._core.types import ArrayLike, MIResult, TensorLike, json_safe
from .._core.units import LN2
from .._core.validation import (
    check_activations,
    check_estimate_inputs,
    check_float_param,
    check_input_ids,
    check_int_param,
    check_labels,
)
from ._base import BaseEstimator
from ._kernels.mixture import grouped_mixture_log_sums
from ._kernels.rows import as_tensor64, canonical_order

__all__ = ["NoisyInformation", "sample_propagation_mi", "NoisyEstimator"]


@dataclass(frozen=True)
class NoisyInformation:
    """I(X;T), I(T;Y) and the entropies behind them, in bits, with the Monte Carlo standard errors."""

    I_XT: float
    I_TY: float
    h_T: float
    h_T_given_X: float
    stderr_XT: float
    stderr_TY: float
    n_rows: int
    n_inputs: int
    n_draws: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean_se(v: torch.Tensor) -> tuple[float, float]:
    v = v.reshape(-1)
    se = float(v.std()) / math.sqrt(v.numel()) if v.numel() > 1 else math.nan
    return float(v.mean()), se


def _group_log_counts(ids: np.ndarray) -> float:
    counts = np.bincount(ids)
    return float(np.log(counts[ids]).mean())


def sample_propagation_mi(
    centres: Any,
    y: ArrayLike,
    noise_std: float,
    x: ArrayLike | None = None,
    *,
    n_draws: int = 8,
    seed: int | None = 0,
    memory_mb: float = 64.0,
) -> NoisyInformation:
    """I(X;T) and I(T;Y) in bits of the noisy layer T = S + N(0, s² I) whose centres S are the rows given.

    Parameters
    ----------
    centres : array-like or tensor (R, d)
        The layer's output before its noise, one row per (input, propagated noise draw).
    y : array-like (R,)
        Class label of each row's input.
    noise_std : float
        s > 0, the standard deviation of the layer's Gaussian noise (activation units).
    x : array-like (R,) or None
        Input id of each row (rows of one input share it); None: every row is its own input.
    n_draws : int
        Monte Carlo points per row.
    seed : int or None
        Seed of the draws (CPU generator: the same numbers on every device). Rows are put in a canonical
        order first, so the result does not depend on the order of the rows.

    Returns
    -------
    NoisyInformation (bits).
    """
    owner = "sample_propagation_mi"
    noise_std = check_float_param(noise_std, "noise_std", owner, positive=True)
    n_draws = check_int_param(n_draws, "n_draws", owner, minimum=1)
    seed = None if seed is None else check_int_param(seed, "seed", owner)
    memory_mb = check_float_param(memory_mb, "memory_mb", owner, positive=True)
    centres = check_activations(centres, name="t")
    r = int(centres.shape[0])
    y_np = check_labels(y, r)
    x_ids = check_input_ids(x, r)
    return _noisy(centres, y_np, x_ids, noise_std, n_draws, seed, memory_mb)


def _noisy(centres, y_np, x_ids, noise_std, n_draws, seed, memory_mb) -> NoisyInformation:
    r, d = int(centres.shape[0]), int(centres.shape[1])
    x_ids = np.arange(r) if x_ids is None else x_ids
    order = canonical_order(centres, y_np, x_ids)
    s = as_tensor64(centres)
    dev = s.device
    s = s[torch.as_tensor(order, device=dev)]
    _, y_ids = np.unique(y_np[order], return_inverse=True)
    x_ids = np.unique(x_ids[order], return_inverse=True)[1].reshape(-1)
    y_ids = y_ids.reshape(-1)
    gen = torch.Generator()
    gen.manual_seed(0 if seed is None else int(seed))
    eps = torch.randn((r, n_draws, d), generator=gen, dtype=torch.float64).to(dev)
    groups = {"class": torch.as_tensor(y_ids, device=dev)}
    n_inputs = int(x_ids.max()) + 1
    if n_inputs < r:  # repeated inputs: h(T|X=x) is a mixture too
        groups["input"] = torch.as_tensor(x_ids, device=dev)
    sums = grouped_mixture_log_sums(s, noise_std, eps, groups, memory_mb=memory_mb)
    ln_r = math.log(r)
    given_x = sums["input"] if "input" in sums else sums["own"]
    i_xt, se_xt = _mean_se(given_x - sums["all"])
    i_ty, se_ty = _mean_se(sums["class"] - sums["all"])
    i_xt += ln_r - _group_log_counts(x_ids)
    i_ty += ln_r - _group_log_counts(y_ids)
    const = 0.5 * d * math.log(2 * math.pi * noise_std**2)
    h_t = ln_r - float(sums["all"].mean()) + const
    return NoisyInformation(
        I_XT=i_xt / LN2, I_TY=i_ty / LN2, h_T=h_t / LN2, h_T_given_X=(h_t - i_xt) / LN2,
        stderr_XT=se_xt / LN2, stderr_TY=se_ty / LN2, n_rows=r, n_inputs=n_inputs, n_draws=n_draws,
    )


class NoisyEstimator(BaseEstimator):
    """I(X;T) and I(T;Y) of a layer with Gaussian noise N(0, s² I) added after it, in bits (`sample_propagation_mi`).

    Feed it the layer's output *before* the noise (the centres): for the first noisy layer that is what a
    plain recording of the deterministic layer gives; for deeper layers use
    `infoplane.noise.sample_propagation`, which records m propagated draws per input and their input ids
    (pass them as ``x``). Both numbers are Monte Carlo estimates (``"estimate"``) of the noisy network's
    information under the empirical input distribution, so I(X;T) <= log2 (number of inputs); their
    standard errors are in the conventions. Unlike the KDE bounds, the noise here is part of the network
    being measured, so s is a property of the model, not a free resolution.

    Cost O(R² · n_draws · d) for R rows, memory O(block); torch on the device of the rows.

    Parameters
    ----------
    noise_std : float
        s > 0, the noise's standard deviation.
    n_draws : int >= 1
        Monte Carlo points per row.
    seed : int or None
    memory_mb : float
        Block budget (speed/memory only).
    """

    name = "noisy"
    y_kinds = ("labels",)

    def __init__(self, noise_std: float = 0.1, *, n_draws: int = 8, seed: int | None = 0,
                 memory_mb: float = 64.0) -> None:
        owner = "NoisyEstimator"
        self.noise_std = check_float_param(noise_std, "noise_std", owner, positive=True)
        self.n_draws = check_int_param(n_draws, "n_draws", owner, minimum=1)
        self.seed = None if seed is None else check_int_param(seed, "seed", owner)
        self.memory_mb = check_float_param(memory_mb, "memory_mb", owner, positive=True)

    def conventions(self) -> dict[str, Any]:
        return {"estimator": self.name, "noise_std": self.noise_std, "n_draws": self.n_draws, "seed": self.seed,
                "method": "sample propagation, Monte Carlo mixture entropies (Goldfeld et al. 2019)"}

    def estimate(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None,
                 epoch: int | None = None) -> MIResult:
        """Bits for centres ``t`` (R, d), labels ``y`` (R,) and optional input ids ``x`` (R,)."""
        t, y_np, x_ids, r = check_estimate_inputs(t, y, x, layer=layer, epoch=epoch)
        res = _noisy(t, y_np, x_ids, self.noise_std, self.n_draws, self.seed, self.memory_mb)
        conv = self.conventions()
        conv.update(n_samples=r, n_units=int(t.shape[1]), units="bits", n_inputs=res.n_inputs, h_T_bits=res.h_T,
                    h_T_given_X_bits=res.h_T_given_X, stderr_XT_bits=res.stderr_XT, stderr_TY_bits=res.stderr_TY,
                    I_TY_raw=res.I_TY)
        return MIResult(I_XT=max(res.I_XT, 0.0), I_TY=max(res.I_TY, 0.0), bound_XT="estimate",
                        bound_TY="estimate", estimator=self.name, n_samples=r, conventions=json_safe(conv))

