"""Information of a noisy layer by sample propagation (Goldfeld et al. 2019): additive noise or Gaussian dropout.

The recorded rows are the layer's *centres* C (its output before its own noise). Given a centre, the noisy
output is N(C, diag(s²)): s = std for `GaussianNoise(std)`, s = σ·|C| per unit for `GaussianDropout(rate)`
(σ² = rate / (1 − rate); Adilova, Geiger & Fischer 2023). Given X = x, T is the mixture of those Gaussians
over the rows of input x (one row per input for the first noisy layer, where it is a single Gaussian; m
rows per input for a deeper one, from m noise draws pushed through the earlier noisy layers: the
`Recorder`'s ``draws=`` or `infoplane.noise.sample_propagation` record them). With X uniform over the inputs,

    I(X;T) = h(T) − h(T|X),    I(T;Y) = h(T) − Σ_c p(c) h(T|Y=c),

each a difference of Gaussian-mixture entropies, estimated by Monte Carlo on common points: P points z_p
drawn from the rows' own Gaussians (``n_draws`` per row, at most ``max_points`` in all, a seeded random
subset beyond), I(X;T) ≈ mean_p [ln p(z_p|x_p) − ln p(z_p)] and likewise for Y; the standard error is the
points' standard deviation / √P. It is the Monte Carlo error only: the bias of the finite probe set (I(X;T)
<= log2 N) and of m draws per input is not in it (see `infoplane.analysis` for the draws check).
Cost O(P · R · d) time for R rows, memory O(block · R); torch on the device of the rows.

References
----------
Goldfeld, van den Berg, Greenewald, Melnyk, Nguyen, Kingsbury & Polyanskiy (2019), Estimating information
flow in deep neural networks, ICML. Adilova, Geiger & Fischer (2023), Information plane analysis for
dropout neural networks, ICLR.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .._core.noise_specs import GaussianDropout, GaussianNoise, NoiseSpec, as_noise_spec
from .._core.types import ArrayLike, MIResult, TensorLike, json_safe
from .._core.units import LN2
from .._core.validation import (
    check_activations,
    check_estimate_inputs,
    check_float_param,
    check_input_ids,
    check_int_param,
    check_labels,
    param_error,
)
from ._base import BaseEstimator
from ._kernels.mixture import grouped_mixture_log_sums
from ._kernels.rows import as_tensor64, canonical_order

__all__ = ["NoisyInformation", "sample_propagation_mi", "NoisyEstimator"]

#: Per-unit standard deviations of Gaussian dropout below this are raised to it (a unit exactly at 0 has
#: no noise: T_k = 0 is then a point mass, and its density is taken as a very narrow Gaussian).
MIN_SCALE = 1e-6


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
    n_points: int = 0
    floored_fraction: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean_se(v: torch.Tensor) -> tuple[float, float]:
    v = v.reshape(-1)
    se = float(v.std()) / math.sqrt(v.numel()) if v.numel() > 1 else math.nan
    return float(v.mean()), se


def _log_counts(ids: np.ndarray, at: np.ndarray) -> torch.Tensor:
    """ln |group| of the group of each point (ids per row, at: the row of each point)."""
    return torch.as_tensor(np.log(np.bincount(ids)[ids[at]]), dtype=torch.float64)


def sample_propagation_mi(
    centres: Any,
    y: ArrayLike,
    noise_std: float | None = None,
    x: ArrayLike | None = None,
    *,
    noise: NoiseSpec | None = None,
    n_draws: int = 8,
    max_points: int = 4096,
    seed: int | None = 0,
    memory_mb: float = 64.0,
) -> NoisyInformation:
    """I(X;T) and I(T;Y) in bits of the noisy layer whose centres (outputs before its noise) are the rows given.

    Parameters
    ----------
    centres : array-like or tensor (R, d)
        The layer's output before its noise, one row per (input, propagated noise draw).
    y : array-like (R,)
        Class label of each row's input.
    noise_std : float, optional
        s > 0 of additive noise N(0, s² I) (the same as ``noise=GaussianNoise(s)``).
    x : array-like (R,) or None
        Input id of each row (rows of one input share it); None: every row is its own input.
    noise : GaussianNoise or GaussianDropout, optional
        The layer's noise (give this or ``noise_std``).
    n_draws : int
        Monte Carlo points per row (before the ``max_points`` cap).
    max_points : int
        At most this many points in all (a seeded random subset of the rows' draws beyond it).
    seed : int or None
        Seed of the points (CPU generator: the same numbers on every device). Rows are put in a canonical
        order first, so the result does not depend on the order of the rows.

    Returns
    -------
    NoisyInformation (bits).
    """
    owner = "sample_propagation_mi"
    spec = _spec(noise_std, noise, owner)
    n_draws = check_int_param(n_draws, "n_draws", owner, minimum=1)
    max_points = check_int_param(max_points, "max_points", owner, minimum=2)
    seed = None if seed is None else check_int_param(seed, "seed", owner)
    memory_mb = check_float_param(memory_mb, "memory_mb", owner, positive=True)
    centres = check_activations(centres, name="t")
    r = int(centres.shape[0])
    return _noisy(centres, check_labels(y, r), check_input_ids(x, r), spec, n_draws, max_points, seed, memory_mb)


def _spec(noise_std: Any, noise: Any, owner: str) -> NoiseSpec | None:
    if noise is not None and noise_std is not None:
        raise ValueError(f"{owner}: give noise= or noise_std=, not both. Got {noise!r} and {noise_std!r}.")
    if noise is not None:
        return as_noise_spec(noise, owner, "noise")
    if noise_std is not None:
        return GaussianNoise(check_float_param(noise_std, "noise_std", owner, positive=True))
    return None


def _points(r: int, n_draws: int, max_points: int, gen: torch.Generator) -> torch.Tensor:
    """The row of each Monte Carlo point: every row n_draws times, or a random subset of max_points."""
    total = r * n_draws
    if total <= max_points:
        return torch.arange(r).repeat_interleave(n_draws)
    return torch.sort(torch.randperm(total, generator=gen)[:max_points]).values // n_draws


def _members(x_ids: np.ndarray, owner: np.ndarray, dev: Any) -> torch.Tensor:
    """(P, k): the rows of each point's input, −1 padding inputs with fewer than the most rows k."""
    counts = np.bincount(x_ids)
    order = np.argsort(x_ids, kind="stable")
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    k = int(counts.max())
    slot = np.arange(len(x_ids)) - np.repeat(start, counts)
    table = np.full((len(counts), k), -1, dtype=np.int64)
    table[x_ids[order], slot] = order
    return torch.as_tensor(table[x_ids[owner]], device=dev)


def _noisy(centres, y_np, x_ids, spec, n_draws, max_points, seed, memory_mb) -> NoisyInformation:
    if spec is None:
        raise ValueError(
            "NoisyEstimator: the layer's noise is unknown; give noise=GaussianNoise(std) / GaussianDropout(rate) "
            "(or noise_std=), or record the layer with Layer(name, noise=...) so information_plane passes it."
        )
    r, d = int(centres.shape[0]), int(centres.shape[1])
    order = canonical_order(centres, y_np) if x_ids is None else canonical_order(centres, y_np, x_ids)
    x_ids = np.arange(r) if x_ids is None else x_ids[order]
    c = as_tensor64(centres)
    dev = c.device
    c = c[torch.as_tensor(order, device=dev)]
    y_ids = np.unique(y_np[order], return_inverse=True)[1].reshape(-1)
    x_ids = np.unique(x_ids, return_inverse=True)[1].reshape(-1)
    gen = torch.Generator()
    gen.manual_seed(0 if seed is None else int(seed))
    owner = _points(r, n_draws, max_points, gen)
    eps = torch.randn((owner.numel(), d), generator=gen, dtype=torch.float64).to(dev)
    owner_dev = owner.to(dev)
    floored = 0.0
    if isinstance(spec, GaussianDropout):
        raw = spec.sigma * c.abs()
        floored = float((raw < MIN_SCALE).double().mean())
        scales = raw.clamp(min=MIN_SCALE)
        own_scale = scales[owner_dev]
        points = c[owner_dev] + own_scale * eps
        own_log = -0.5 * (eps * eps).sum(1) - torch.log(own_scale).sum(1)
    else:
        scales = torch.tensor(float(spec.std), dtype=torch.float64, device=dev)
        points = c[owner_dev] + spec.std * eps
        own_log = -0.5 * (eps * eps).sum(1) - d * math.log(spec.std)
    own_log = own_log - 0.5 * d * math.log(2 * math.pi)
    n_inputs = int(x_ids.max()) + 1
    members = _members(x_ids, owner.numpy(), dev) if n_inputs < r else None  # p(t | X=x) a mixture too
    sums = grouped_mixture_log_sums(c, scales, points, owner_dev, own_log, torch.as_tensor(y_ids, device=dev),
                                    members, memory_mb=memory_mb)
    own_np = owner.numpy()
    log_p = sums["all"].cpu() - math.log(r)  # ln p(z), the mixture of all R rows
    log_py = sums["class"].cpu() - _log_counts(y_ids, own_np)
    log_px = (sums["input"].cpu() - _log_counts(x_ids, own_np)) if "input" in sums else own_log.cpu()
    i_xt, se_xt = _mean_se(log_px - log_p)
    i_ty, se_ty = _mean_se(log_py - log_p)
    h_t = -float(log_p.mean())
    return NoisyInformation(
        I_XT=i_xt / LN2, I_TY=i_ty / LN2, h_T=h_t / LN2, h_T_given_X=-float(log_px.mean()) / LN2,
        stderr_XT=se_xt / LN2, stderr_TY=se_ty / LN2, n_rows=r, n_inputs=n_inputs, n_draws=n_draws,
        n_points=int(owner.numel()), floored_fraction=floored,
    )


class NoisyEstimator(BaseEstimator):
    """I(X;T) and I(T;Y) of a layer with Gaussian noise after it, in bits (`sample_propagation_mi`).

    Feed it the layer's output *before* its noise (the centres): for the first noisy layer that is the
    deterministic layer's output; for deeper ones the m propagated draws per input that
    ``Recorder(..., draws=m)`` (with ``Layer(name, noise=spec)``) or `infoplane.noise.sample_propagation`
    record, with their input ids as ``x``. `information_plane` does that itself for a store with noisy
    layers (preset ``"noisy"``) and passes each layer's recorded spec as ``noise=``. Both numbers are Monte
    Carlo estimates (``"estimate"``) of the noisy network's information under the empirical input
    distribution, so I(X;T) <= log2 (number of inputs); their standard errors are in the conventions (and
    the table's ``I_XT_se`` / ``I_TY_se``). Unlike the KDE bounds, the noise here is part of the network
    being measured, so it is a property of the model, not a free resolution.

    Cost O(P · R · d) for R rows and P <= ``max_points`` points, memory O(block · R).

    Parameters
    ----------
    noise_std : float, optional
        s > 0 of additive noise (shorthand for ``noise=GaussianNoise(s)``).
    noise : GaussianNoise or GaussianDropout, optional
        The layer's noise; None (and no ``noise_std``): the spec each layer was recorded with.
    n_draws : int >= 1
        Monte Carlo points per row, before the ``max_points`` cap.
    max_points : int >= 2
        Monte Carlo points in all, at most (the standard error falls as 1/√points).
    seed : int or None
    memory_mb : float
        Block budget (speed/memory only).
    """

    name = "noisy"
    y_kinds = ("labels",)
    input_kind = "deterministic"
    #: `information_plane` passes a noisy layer's draws (N·m rows, input ids) and its recorded ``noise=``.
    uses_noise = True
    #: Beyond 3 standard errors (added per row by `information_plane`), the DPI may be exceeded by this much.
    dpi_tolerance = 0.02

    def __init__(self, noise_std: float | None = None, *, noise: NoiseSpec | None = None, n_draws: int = 8,
                 max_points: int = 4096, seed: int | None = 0, memory_mb: float = 64.0) -> None:
        owner = "NoisyEstimator"
        self.noise = _spec(noise_std, noise, owner)
        self.noise_std = self.noise.std if isinstance(self.noise, GaussianNoise) else None
        self.n_draws = check_int_param(n_draws, "n_draws", owner, minimum=1)
        self.max_points = check_int_param(max_points, "max_points", owner, minimum=2)
        self.seed = None if seed is None else check_int_param(seed, "seed", owner)
        self.memory_mb = check_float_param(memory_mb, "memory_mb", owner, positive=True)

    def get_params(self) -> dict[str, Any]:
        return {"noise": self.noise, "n_draws": self.n_draws, "max_points": self.max_points, "seed": self.seed,
                "memory_mb": self.memory_mb}

    def conventions(self) -> dict[str, Any]:
        return {"estimator": self.name, "noise": None if self.noise is None else self.noise.to_dict(),
                "noise_std": self.noise_std, "n_draws": self.n_draws, "max_points": self.max_points,
                "seed": self.seed,
                "method": "sample propagation, Monte Carlo mixture entropies (Goldfeld et al. 2019)"}

    def estimate(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, noise: NoiseSpec | None = None,
                 layer: str | None = None,
                 epoch: int | None = None) -> MIResult:
        """Bits for centres ``t`` (R, d), labels ``y`` (R,) and optional input ids ``x`` (R,).

        ``noise``: the layer's recorded spec (passed by `information_plane`); it must agree with the
        estimator's own spec when both are set.
        """
        t, y_np, x_ids, r = check_estimate_inputs(t, y, x, layer=layer, epoch=epoch)
        spec = self._layer_spec(noise, layer)
        res = _noisy(t, y_np, x_ids, spec, self.n_draws, self.max_points, self.seed, self.memory_mb)
        conv = self.conventions()
        conv.update(noise=spec.to_dict(), n_samples=r, n_units=int(t.shape[1]), units="bits",
                    n_inputs=res.n_inputs, n_points=res.n_points, h_T_bits=res.h_T,
                    h_T_given_X_bits=res.h_T_given_X, stderr_XT_bits=res.stderr_XT, stderr_TY_bits=res.stderr_TY,
                    I_TY_raw=res.I_TY, I_XT_raw=res.I_XT, floored_fraction=res.floored_fraction)
        return MIResult(I_XT=max(res.I_XT, 0.0), I_TY=max(res.I_TY, 0.0), bound_XT="estimate",
                        bound_TY="estimate", estimator=self.name, n_samples=res.n_inputs,
                        conventions=json_safe(conv))

    def _layer_spec(self, noise: Any, layer: str | None) -> NoiseSpec | None:
        if noise is None:
            return self.noise
        spec = as_noise_spec(noise, "NoisyEstimator.estimate", "noise")
        if self.noise is not None and spec != self.noise:
            raise param_error("NoisyEstimator.estimate", "noise",
                              f"the estimator's own spec {self.noise!r} (layer {layer!r} was recorded with another)",
                              spec)
        return spec
