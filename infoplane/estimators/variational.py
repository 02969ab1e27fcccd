"""Variational bounds for Gaussian (VIB) layers, in bits: the rate, the aggregate p(z), Barber–Agakov.

A stochastic layer p(z|x) = N(μ(x), diag σ²(x)) is recorded as (μ, log σ²) on N probe inputs. From it:

- `gaussian_rate`: R = E_x KL[p(z|x) ‖ N(0, I)] ≥ I(Z;X), analytic (no sampling);
- `mixture_mi_bounds`: I(Z;X) through the aggregate posterior p(z) ≈ (1/N) Σ_j p(z|x_j), by Monte Carlo,
  with its lower (all-j mixture, ≤ log N) and leave-one-out upper bounds, and the gap R − I = KL[p(z) ‖ N(0,I)];
- `barber_agakov`: I(Z;Y) ≥ H(Y) + E log q(y|z) for a decoder q (the model's own, or a cross-fitted probe);
- `vib_loss` (the training objective, nats, differentiable) and `VariationalBounds` (an epoch accumulator);
- `RateEstimator` and `MixtureEstimator`, which give `information_plane` an `MIResult` for a Gaussian layer.

The math sits in the pure torch kernels of ``_gaussian`` (with `vib_loss`), the probe decoder in ``_probe``,
the result types in ``infoplane._core.types`` and the checks in ``infoplane._core.validation``; this module
validates, converts units and wraps.

References
----------
Alemi, Fischer, Dillon & Murphy (2017), Deep variational information bottleneck, ICLR.
Barber & Agakov (2003), The IM algorithm: a variational approach to information maximization, NIPS.
Poole, Ozair, van den Oord, Alemi & Tucker (2019), On variational bounds of mutual information, ICML.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._core.types import ArrayLike, BABound, MIResult, MixtureBounds, TensorLike, json_safe
from .._core.units import LN2, entropy_bits
from .._core.validation import (
    as_tensor64,
    check_choice,
    check_float_param,
    check_gaussian,
    check_input_ids,
    check_int_param,
    check_labels,
    check_regression_target,
)
from ._base import BaseEstimator
from ._kernels.decoder import PROBES, barber_agakov, describe_decoder
from ._kernels.gaussian import (
    TASKS,
    gaussian_kl_nats,
    gaussian_rate_nats,
    generator,
    mixture_log_terms,
    vib_loss,
)
from ._kernels.rows import canonical_order

__all__ = [
    "MixtureBounds",
    "BABound",
    "gaussian_kl_nats",
    "gaussian_rate_nats",
    "gaussian_rate",
    "mixture_mi_bounds",
    "barber_agakov",
    "vib_loss",
    "VariationalBounds",
    "RateEstimator",
    "MixtureEstimator",
]



# --------------------------------------------------------------------------------------------------
# The rate
# --------------------------------------------------------------------------------------------------
def _finite_or_raise(value: float, what: str, owner: str, mu_t: torch.Tensor, lv_t: torch.Tensor) -> float:
    """``value`` if finite; else a ValueError naming the argument whose extreme values overflowed float64."""
    if math.isfinite(value):
        return value
    lo, hi, top = float(lv_t.min()), float(lv_t.max()), float(mu_t.abs().max())
    culprit = "log_var" if max(abs(lo), abs(hi)) > 300 or top <= 1e150 else "mu"
    raise ValueError(
        f"{owner}: the {what} is not finite in float64 for these inputs ({culprit} is too extreme: log_var "
        f"spans [{lo:.4g}, {hi:.4g}], |mu| reaches {top:.4g}). Variances e^log_var (or means) this far from 1 "
        "leave no representable result; check the encoder's log_var and mu."
    )


def gaussian_rate(mu: TensorLike, log_var: TensorLike) -> float:
    """The VIB rate R = (1/N) Σ_i KL[N(μ_i, diag σ_i²) ‖ N(0, I)], in bits: an upper bound on I(Z;X).

    R = (1/N) Σ_i Σ_j ½(−ln σ_ij² − 1 + μ_ij² + σ_ij²) / ln 2, the analytic KL (no sampling). Since
    I(Z;X) = R − KL[p(z) ‖ N(0, I)], R ≥ I(Z;X) (Alemi et al. 2017). μ = 0, σ = 1 gives exactly 0.

    Parameters
    ----------
    mu, log_var : array-like or tensor, shape (N, d)
        Mean and log-variance of the encoder on N inputs.

    Returns
    -------
    float, bits. For a differentiable version in nats see `gaussian_rate_nats`.
    """
    mu_t, lv_t = check_gaussian(mu, log_var)
    return _finite_or_raise(float(gaussian_kl_nats(mu_t, lv_t).mean()) / LN2, "rate", "gaussian_rate", mu_t, lv_t)


# --------------------------------------------------------------------------------------------------
# The aggregate posterior
# --------------------------------------------------------------------------------------------------
def mixture_mi_bounds(
    mu: TensorLike,
    log_var: TensorLike,
    n_samples: int = 8,
    seed: int | None = 0,
    *,
    memory_mb: float = 16.0,
) -> MixtureBounds:
    """I(Z;X) through the aggregate posterior p(z) = (1/N) Σ_j p(z|x_j), by Monte Carlo; bits.

    For each probe input i draw z_im ~ N(μ_i, diag σ_i²), m = 1..M, and average
    ln p(z_im|x_i) − ln (1/N) Σ_j p(z_im|x_j)        (``lower``: the mixture over all j, ≤ ln N) and
    ln p(z_im|x_i) − ln (1/(N−1)) Σ_{j≠i} p(z_im|x_j) (``upper``: leave-one-out).
    With the N rows drawn from p(x), E[lower] ≤ I(Z;X) ≤ E[upper] (Poole et al. 2019); under the empirical
    distribution of the probe set itself (X uniform over the rows) ``lower`` is the exact I(Z;X) up to Monte
    Carlo error, so it is also returned as ``estimate``. The rate R (analytic) and the gap
    R − estimate = KL[p(z) ‖ N(0, I)] come with it.

    Cost O(N² M d) time; memory O(N M d) for the samples plus ``memory_mb`` for the (rows, columns) blocks —
    never an N×N×M×d tensor. float64 log-sum-exp accumulation; torch on mu's device.

    Parameters
    ----------
    mu, log_var : array-like or tensor, shape (N, d), N >= 2
        Encoder mean and log-variance on the probe set.
    n_samples : int >= 1
        M, samples of z per input.
    seed : int or None
        Seed of the samples (CPU generator: the same z on every device).
    memory_mb : float
        Budget of the blocks; changes speed and memory, never the answer.

    Returns
    -------
    MixtureBounds (bits).
    """
    n_samples = check_int_param(n_samples, "n_samples", "mixture_mi_bounds", minimum=1)
    memory_mb = check_float_param(memory_mb, "memory_mb", "mixture_mi_bounds", positive=True)
    mu_t, lv_t = check_gaussian(mu, log_var)
    n = mu_t.shape[0]
    if n < 2:
        raise ValueError(f"mu must have at least 2 rows for the leave-one-out bound. Got {n}.")
    # Rows in a canonical order before drawing: the bounds are means over rows, and the same rows in another
    # order then give the same numbers (each row's draws depend on the seed and the data only).
    order = torch.as_tensor(canonical_order(mu_t.cpu().numpy(), lv_t.cpu().numpy()), device=mu_t.device)
    mu_t, lv_t = mu_t[order], lv_t[order]
    eps = torch.randn((n, n_samples, mu_t.shape[1]), generator=generator(seed), dtype=torch.float64)
    own, lse_all, lse_loo = mixture_log_terms(mu_t, lv_t, eps, memory_mb=memory_mb)
    terms = own - (lse_all - math.log(n))
    lower = float(terms.mean()) / LN2
    upper = float((own - (lse_loo - math.log(n - 1))).mean()) / LN2
    stderr = float(terms.std()) / math.sqrt(terms.numel()) / LN2 if terms.numel() > 1 else float("nan")
    rate = float(gaussian_kl_nats(mu_t, lv_t).mean()) / LN2
    for what, value in (("lower bound", lower), ("upper bound", upper), ("rate", rate)):
        _finite_or_raise(value, what, "mixture_mi_bounds", mu_t, lv_t)
    return MixtureBounds(
        lower=lower, upper=upper, tight_upper=min(rate, upper), estimate=lower, rate=rate, gap=rate - lower,
        stderr=stderr,
        n=int(n), M=n_samples, seed=seed,
    )


# --------------------------------------------------------------------------------------------------
# An epoch accumulator
# --------------------------------------------------------------------------------------------------
class VariationalBounds:
    """Accumulate the variational bounds over an epoch's batches (torchmetrics style); bits.

    ``update(mu, log_var, y=None, logits=None)`` per batch (tensors are detached); ``compute()`` returns a
    dict without side effects; ``reset()`` clears. From the batches seen:

    - ``rate_bits``: mean over rows of KL[p(z|x) ‖ N(0,I)] (exact per row);
    - ``ba_bits``: H(Y) of the accumulated label frequencies + mean log2 q(y|z) of the logits given
      (the model's decoder on its training samples), when labels and logits were given;
    - with ``mixture=True``, ``mixture_lower_bits``/``mixture_upper_bits``: the `mixture_mi_bounds` of each
      batch, weighted by batch size. Each batch is its own mixture, so the lower bound is capped at
      log2(batch size) — a valid but looser bound than one over the whole probe set.

    Parameters
    ----------
    mixture : bool
        Also compute the per-batch mixture bounds (cost O(B² M d) per batch).
    n_samples, seed : int
        M and seed of the mixture samples (the seed advances by one per batch, so batches differ).
    """

    def __init__(self, *, mixture: bool = False, n_samples: int = 1, seed: int | None = 0) -> None:
        self.mixture = bool(mixture)
        self.n_samples = check_int_param(n_samples, "n_samples", "VariationalBounds", minimum=1)
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget every batch."""
        self._n = 0
        self._rate_sum = 0.0
        self._log_q_sum = 0.0
        self._n_labelled = 0
        self._counts = np.zeros(0, dtype=np.int64)
        self._mix = [0.0, 0.0]
        self._n_mix = 0
        self._batches = 0

    def update(self, mu: TensorLike, log_var: TensorLike, y: ArrayLike | None = None, logits: Any = None) -> None:
        """Add one batch: encoder (mu, log_var) of shape (B, d); labels (B,); logits (B, K) or (S, B, K)."""
        mu_t, lv_t = check_gaussian(mu, log_var)
        b = mu_t.shape[0]
        self._rate_sum += float(gaussian_kl_nats(mu_t, lv_t).sum())
        self._n += b
        if y is not None and logits is not None:
            y_np = check_labels(y, b, name="y", min_classes=1)
            lg = as_tensor64(logits)
            if lg.ndim == 2:
                lg = lg[None]
            if lg.ndim != 3 or lg.shape[1] != b:
                raise ValueError(f"logits must have shape ({b}, K) or (S, {b}, K). Got {tuple(lg.shape)}.")
            if y_np.min() < 0 or y_np.max() >= lg.shape[2]:
                raise ValueError(f"y holds labels outside the decoder's classes 0..{lg.shape[2] - 1}.")
            log_p = torch.log_softmax(lg, dim=2)
            idx = torch.as_tensor(y_np, device=lg.device)[None, :, None].expand(lg.shape[0], b, 1)
            self._log_q_sum += float(log_p.gather(2, idx).mean(dim=0).sum())
            self._n_labelled += b
            counts = np.bincount(y_np)
            if counts.size > self._counts.size:
                self._counts = np.pad(self._counts, (0, counts.size - self._counts.size))
            self._counts[: counts.size] += counts
        if self.mixture and b >= 2:
            seed = None if self.seed is None else int(self.seed) + self._batches
            res = mixture_mi_bounds(mu_t, lv_t, n_samples=self.n_samples, seed=seed)
            self._mix[0] += res.lower * b
            self._mix[1] += res.upper * b
            self._n_mix += b
        self._batches += 1

    def compute(self) -> dict[str, float]:
        """The bounds so far, in bits (NaN for what was never given)."""
        nan = float("nan")
        out = {"n": self._n, "rate_bits": self._rate_sum / self._n / LN2 if self._n else nan}
        if self._n_labelled:
            h_y = entropy_bits(self._counts)
            out["h_y_bits"] = h_y
            out["ba_bits"] = h_y + self._log_q_sum / self._n_labelled / LN2
        else:
            out["h_y_bits"] = out["ba_bits"] = nan
        out["mixture_lower_bits"] = self._mix[0] / self._n_mix if self._n_mix else nan
        out["mixture_upper_bits"] = self._mix[1] / self._n_mix if self._n_mix else nan
        out["mixture_tight_upper_bits"] = min(out["rate_bits"], out["mixture_upper_bits"]) if self._n_mix else nan
        return out


# --------------------------------------------------------------------------------------------------
# Estimators for information_plane
# --------------------------------------------------------------------------------------------------
class _VariationalEstimator(BaseEstimator):
    input_kind = "gaussian"
    _owner = "VariationalEstimator"

    def _init_common(self, decoder, task, n_samples, seed, n_folds, beta, noise_variance) -> None:
        owner = self._owner
        self.task = check_choice(task, "task", owner, TASKS)
        if isinstance(decoder, str):
            check_choice(decoder, "decoder", owner, ("probe", "logistic", "linear"))
        elif not callable(decoder):
            raise param_error_decoder(owner, decoder)
        self.decoder = decoder
        self.n_samples = check_int_param(n_samples, "n_samples", owner, minimum=1)
        self.seed = None if seed is None else check_int_param(seed, "seed", owner)
        self.n_folds = check_int_param(n_folds, "n_folds", owner, minimum=2)
        self.beta = None if beta is None else check_float_param(beta, "beta", owner, minimum=0.0)
        self.noise_variance = (
            None if noise_variance is None
            else check_float_param(noise_variance, "noise_variance", owner, positive=True)
        )

    def conventions(self) -> dict[str, Any]:
        """Decoder kind, M, seed, folds, task, β (if known), noise variance: JSON-able."""
        out = {
            "estimator": self.name,
            "decoder": (
                f"{PROBES[self.task]} probe, {self.n_folds}-fold cross-fitted"
                if isinstance(self.decoder, str) else describe_decoder(self.decoder)
            ),
            "task": self.task,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "beta": self.beta,
            "I_TY_method": "Barber-Agakov",
        }
        if self.task == "regression":
            out["noise_variance"] = self.noise_variance if self.noise_variance is not None else "fitted"
        return json_safe(out)

    def _ba(self, mu_t, lv_t, y) -> BABound:
        return barber_agakov(
            mu_t, lv_t, y, self.decoder, task=self.task, n_samples=self.n_samples, seed=self.seed,
            noise_variance=self.noise_variance, n_folds=self.n_folds,
        )

    def _check(self, t, y, x, log_var, layer, epoch):
        """(mean, log-variance) as float64 tensors, after the checks every estimator makes (names in messages)."""
        if log_var is None:
            raise TypeError(f"{type(self).__name__}.estimate needs log_var (keyword) for a Gaussian layer.")
        mu_t, lv_t = check_gaussian(t, log_var, name="t", layer=layer, epoch=epoch)
        n = int(mu_t.shape[0])
        if self.task == "classification":
            check_labels(y, n)
        else:
            check_regression_target(y, n)
        check_input_ids(x, n)
        return mu_t, lv_t


def param_error_decoder(owner: str, decoder: Any) -> TypeError:
    return TypeError(
        f"The 'decoder' parameter of {owner} must be 'probe', 'logistic', 'linear' or a callable mapping "
        f"z to logits/predictions. Got {decoder!r} instead."
    )


class RateEstimator(_VariationalEstimator):
    """A Gaussian layer's point from the VIB rate and Barber–Agakov, in bits.

    ``I_XT`` = R = mean_i KL[N(μ_i, diag σ_i²) ‖ N(0, I)] (`gaussian_rate`, bound ``"upper"``);
    ``I_TY`` = `barber_agakov` with ``decoder`` (bound ``"lower"``): the model's own decoder (a module or
    callable mapping z to logits, e.g. ``model.decoder``) or a cross-fitted probe (``"probe"``).

    Parameters
    ----------
    decoder : callable or {"probe", "logistic", "linear"}
        q(y|z) for the Barber–Agakov bound.
    task : {"classification", "regression"}
    n_samples : int
        M, samples of z per probe input for the bound.
    seed : int or None
    n_folds : int
        Folds of the probe decoder's cross-fitting.
    beta : float, optional
        The β the model was trained with, if known: recorded in the conventions only.
    noise_variance : float, optional
        Regression decoder variance s² (default: fitted).
    """

    name = "rate"
    _owner = "RateEstimator"

    def __init__(
        self,
        decoder: Callable | str = "probe",
        *,
        task: str = "classification",
        n_samples: int = 8,
        seed: int | None = 0,
        n_folds: int = 5,
        beta: float | None = None,
        noise_variance: float | None = None,
    ) -> None:
        self._init_common(decoder, task, n_samples, seed, n_folds, beta, noise_variance)

    def estimate(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None,
                 log_var: TensorLike | None = None) -> MIResult:
        """I(Z;X) ≤ rate and I(Z;Y) ≥ I_BA, bits, for the layer's mean ``t`` (N, d) and ``log_var`` (N, d).

        ``x`` is checked but unused (each row is one input draw); ``layer``/``epoch`` only name the data in
        error messages.
        """
        mu_t, lv_t = self._check(t, y, x, log_var, layer, epoch)
        ba = self._ba(mu_t, lv_t, y)
        conventions = {**self.conventions(), "H_Y_bits": ba.h_y, "H_Y_kind": ba.h_y_kind, "units": "bits"}
        return MIResult(
            I_XT=gaussian_rate(mu_t, lv_t), I_TY=ba.value, bound_XT="upper", bound_TY="lower",
            estimator=self.name, n_samples=int(mu_t.shape[0]), conventions=conventions,
        )


class MixtureEstimator(_VariationalEstimator):
    """A Gaussian layer's point from the Monte Carlo aggregate posterior and Barber–Agakov, in bits.

    ``I_XT`` = `mixture_mi_bounds` with ``bound="lower"`` (mixture over all j, ≤ log2 N; the exact probe-set
    value up to Monte Carlo error) or ``"upper"``: the tight upper bound min(R, leave-one-out), the rate and
    the leave-one-out mixture both being upper bounds on I(Z;X) (the leave-one-out one can exceed the rate);
    ``I_TY`` = `barber_agakov` (``"lower"``).
    The result's conventions also carry the rate and the implied gap KL[p(z) ‖ N(0, I)] in bits.

    Parameters
    ----------
    bound : {"lower", "upper"}
        Which bound is ``I_XT``: the all-j mixture, or min(rate, leave-one-out mixture).
    decoder, task, n_samples, seed, n_folds, beta, noise_variance
        As in `RateEstimator`; ``n_samples`` and ``seed`` serve both the mixture and the decoder.
    memory_mb : float
        Block budget of the mixture (speed/memory only; not a convention).
    """

    name = "mixture"
    _owner = "MixtureEstimator"

    def __init__(
        self,
        bound: str = "lower",
        decoder: Callable | str = "probe",
        *,
        task: str = "classification",
        n_samples: int = 8,
        seed: int | None = 0,
        n_folds: int = 5,
        beta: float | None = None,
        noise_variance: float | None = None,
        memory_mb: float = 16.0,
    ) -> None:
        self.bound = check_choice(bound, "bound", self._owner, ("lower", "upper"))
        self._init_common(decoder, task, n_samples, seed, n_folds, beta, noise_variance)
        self.memory_mb = check_float_param(memory_mb, "memory_mb", self._owner, positive=True)

    def conventions(self) -> dict[str, Any]:
        return {**super().conventions(), "bound": self.bound, "mixture": "aggregate posterior, Poole et al. 2019"}

    def estimate(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None,
                 log_var: TensorLike | None = None) -> MIResult:
        """I(Z;X) from the mixture (``bound``) and I(Z;Y) ≥ I_BA, bits, for mean ``t`` and ``log_var`` (N, d).

        ``x`` is checked but unused; ``layer``/``epoch`` only name the data in error messages.
        """
        mu_t, lv_t = self._check(t, y, x, log_var, layer, epoch)
        mix = mixture_mi_bounds(mu_t, lv_t, n_samples=self.n_samples, seed=self.seed, memory_mb=self.memory_mb)
        ba = self._ba(mu_t, lv_t, y)
        conventions = {
            **self.conventions(),
            "H_Y_bits": ba.h_y,
            "H_Y_kind": ba.h_y_kind,
            "rate_bits": mix.rate,
            "gap_bits": mix.gap,
            "mixture_lower_bits": mix.lower,
            "mixture_upper_bits": mix.upper,
            "mixture_tight_upper_bits": mix.tight_upper,
            "units": "bits",
        }
        return MIResult(
            I_XT=mix.lower if self.bound == "lower" else mix.tight_upper, I_TY=ba.value, bound_XT=self.bound,
            bound_TY="lower", estimator=self.name, n_samples=int(mu_t.shape[0]), conventions=conventions,
        )
