"""Variational bounds for Gaussian (VIB) layers, in bits: the rate, the aggregate p(z), Barber–Agakov.

A stochastic layer p(z|x) = N(μ(x), diag σ²(x)) is recorded as (μ, log σ²) on N probe inputs. From it:

- `gaussian_rate`: R = E_x KL[p(z|x) ‖ N(0, I)] ≥ I(Z;X), analytic (no sampling);
- `mixture_mi_bounds`: I(Z;X) through the aggregate posterior p(z) ≈ (1/N) Σ_j p(z|x_j), by Monte Carlo,
  with its lower (all-j mixture, ≤ log N) and leave-one-out upper bounds, and the gap R − I = KL[p(z) ‖ N(0,I)];
- `barber_agakov`: I(Z;Y) ≥ H(Y) + E log q(y|z) for a decoder q (the model's own, or a cross-fitted probe);
- `vib_loss` (the training objective, nats, differentiable) and `VariationalBounds` (an epoch accumulator);
- `RateEstimator` and `MixtureEstimator`, which give `information_plane` an `MIResult` for a Gaussian layer.

The math sits in the pure torch kernels of ``_gaussian``; this module validates, converts units and wraps.

References
----------
Alemi, Fischer, Dillon & Murphy (2017), Deep variational information bottleneck, ICLR.
Barber & Agakov (2003), The IM algorithm: a variational approach to information maximization, NIPS.
Poole, Ozair, van den Oord, Alemi & Tucker (2019), On variational bounds of mutual information, ICML.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .._types import MIResult, json_safe
from .._units import LN2, entropy_bits
from .._validation import (
    check_activations,
    check_choice,
    check_float_param,
    check_input_ids,
    check_int_param,
    check_labels,
)
from ._base import BaseEstimator
from ._gaussian import gaussian_kl_nats, mixture_log_terms, reparameterize

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

_TASKS = ("classification", "regression")
_PROBES = {"classification": "logistic", "regression": "linear"}
# Mixing weight of the uniform distribution in the probe decoder: keeps log q finite for a class a training
# fold never saw; costs at most -ln(1 - 1e-6) ≈ 1.4e-6 bits of the bound.
_PROBE_SMOOTHING = 1e-6


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
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
        expectation (Poole et al. 2019).
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


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------
def _as_tensor64(a: Any) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach().to(torch.float64)
    a = np.asarray(a, dtype=np.float64)
    # Store arrays are read-only, which torch warns about: copy those (reading is all we do).
    return torch.as_tensor(a if a.flags.writeable else a.copy())


def _check_gaussian(
    mu: Any, log_var: Any, *, name: str = "mu", layer: str | None = None, epoch: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both finite, 2-D, the same shape; returned as float64 tensors on mu's device.

    ``name`` is what the mean is called in messages (``"t"`` for an estimator's first argument).
    """
    mu = check_activations(mu, name=name, layer=layer, epoch=epoch)
    log_var = check_activations(log_var, name="log_var", layer=layer, epoch=epoch)
    if tuple(mu.shape) != tuple(log_var.shape):
        raise ValueError(
            f"log_var must have the same shape as {name} {tuple(mu.shape)}. Got shape {tuple(log_var.shape)}."
        )
    mu_t = _as_tensor64(mu)
    return mu_t, _as_tensor64(log_var).to(mu_t.device)


def _check_regression_target(y: Any, n: int) -> np.ndarray:
    y_np = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if y_np.ndim not in (1, 2) or y_np.shape[0] != n:
        raise ValueError(f"y must have shape ({n:,},) or ({n:,}, k) for regression. Got shape {y_np.shape}.")
    if not np.issubdtype(y_np.dtype, np.number):
        raise TypeError(f"y must hold real numbers for regression. Got dtype {y_np.dtype}.")
    y_np = y_np.astype(np.float64).reshape(n, -1)
    if not np.isfinite(y_np).all():
        raise ValueError(f"y contain NaN or Inf ({int((~np.isfinite(y_np)).sum()):,} of {y_np.size:,} values)")
    return y_np


def _check_seed(seed: Any) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"The 'seed' parameter must be an int or None. Got {seed!r} instead.")
    return None if seed is None else int(seed)


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


def _generator(seed: int | None) -> torch.Generator:
    seed = _check_seed(seed)
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


# --------------------------------------------------------------------------------------------------
# The rate
# --------------------------------------------------------------------------------------------------
def gaussian_rate_nats(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """The rate in nats as a differentiable scalar tensor (for losses): mean over rows of `gaussian_kl_nats`."""
    return gaussian_kl_nats(mu, log_var).mean()


def gaussian_rate(mu: Any, log_var: Any) -> float:
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
    mu_t, lv_t = _check_gaussian(mu, log_var)
    return _finite_or_raise(float(gaussian_kl_nats(mu_t, lv_t).mean()) / LN2, "rate", "gaussian_rate", mu_t, lv_t)


# --------------------------------------------------------------------------------------------------
# The aggregate posterior
# --------------------------------------------------------------------------------------------------
def mixture_mi_bounds(
    mu: Any,
    log_var: Any,
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
    mu_t, lv_t = _check_gaussian(mu, log_var)
    n = mu_t.shape[0]
    if n < 2:
        raise ValueError(f"mu must have at least 2 rows for the leave-one-out bound. Got {n}.")
    eps = torch.randn((n, n_samples, mu_t.shape[1]), generator=_generator(seed), dtype=torch.float64)
    own, lse_all, lse_loo = mixture_log_terms(mu_t, lv_t, eps, memory_mb=memory_mb)
    terms = own - (lse_all - math.log(n))
    lower = float(terms.mean()) / LN2
    upper = float((own - (lse_loo - math.log(n - 1))).mean()) / LN2
    stderr = float(terms.std()) / math.sqrt(terms.numel()) / LN2 if terms.numel() > 1 else float("nan")
    rate = float(gaussian_kl_nats(mu_t, lv_t).mean()) / LN2
    for what, value in (("lower bound", lower), ("upper bound", upper), ("rate", rate)):
        _finite_or_raise(value, what, "mixture_mi_bounds", mu_t, lv_t)
    return MixtureBounds(
        lower=lower, upper=upper, estimate=lower, rate=rate, gap=rate - lower, stderr=stderr,
        n=int(n), M=n_samples, seed=seed,
    )


# --------------------------------------------------------------------------------------------------
# Barber–Agakov
# --------------------------------------------------------------------------------------------------
def _describe_decoder(decoder: Any) -> str:
    if isinstance(decoder, str):
        return decoder
    if isinstance(decoder, torch.nn.Module):
        return f"module:{type(decoder).__name__}"
    return f"callable:{getattr(decoder, '__qualname__', type(decoder).__name__)}"


def _apply_decoder(decoder: Callable, z: torch.Tensor) -> torch.Tensor:
    """Run a decoder on z (float64 in, float64 out), in its dtype/device, eval mode restored, no gradient."""
    if isinstance(decoder, torch.nn.Module):
        param = next(iter(decoder.parameters()), None)
        was_training = decoder.training
        decoder.eval()
        try:
            with torch.no_grad():
                zin = z if param is None else z.to(device=param.device, dtype=param.dtype)
                out = decoder(zin)
        finally:
            decoder.train(was_training)
    else:
        with torch.no_grad():
            out = decoder(z)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return torch.as_tensor(out).to(device=z.device, dtype=torch.float64)


def _gaussian_h_y_nats(y: np.ndarray) -> float:
    """Differential entropy ½ ln det(2πe Σ_y) of a Gaussian fitted (MLE covariance) to y of shape (N, k)."""
    k = y.shape[1]
    cov = np.atleast_2d(np.cov(y, rowvar=False, bias=True))
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        raise ValueError("y has a singular covariance: its differential entropy is -inf; pass h_y instead.")
    return 0.5 * (k * math.log(2 * math.pi * math.e) + logdet)


def _gaussian_log_q(resid: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """ln N(resid; 0, diag s2) per row."""
    return -0.5 * ((resid * resid) / s2 + np.log(2 * math.pi * s2)).sum(axis=-1)


def _probe_folds(n: int, n_folds: int, seed: int | None, y_cls: np.ndarray | None) -> np.ndarray:
    """Fold index per input: stratified by class when there are classes; samples of one input share a fold."""
    from sklearn.model_selection import KFold, StratifiedKFold

    folds = np.empty(n, dtype=np.int64)
    rs = None if seed is None else int(seed)
    if y_cls is not None and np.bincount(y_cls).min(initial=n) >= n_folds:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=rs).split(np.zeros(n), y_cls)
    else:
        splitter = KFold(n_splits=n_folds, shuffle=True, random_state=rs).split(np.zeros(n))
    for k, (_, test) in enumerate(splitter):
        folds[test] = k
    return folds


def _probe_log_q(
    z: np.ndarray, y: np.ndarray, task: str, n_folds: int, seed: int | None, n_classes: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cross-fitted log q(y_i | z_im) (nats, shape (N, M)): each fold is scored by a probe fitted on the others.

    Classification: standardise + multinomial LogisticRegression (C=1). Regression: least squares, with
    the decoder variance s² fitted on the training folds' residuals. Returns (log q, mean s² or None).
    """
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n, m, d = z.shape
    folds = _probe_folds(n, n_folds, seed, y.ravel().astype(np.int64) if task == "classification" else None)
    log_q = np.empty((n, m))
    s2_all = []
    for k in range(n_folds):  # loop over folds, each a vectorised fit
        tr, te = folds != k, folds == k
        z_tr, z_te = z[tr].reshape(-1, d), z[te].reshape(-1, d)
        if task == "classification":
            y_tr = np.repeat(y[tr], m)
            y_te = np.repeat(y[te], m)
            probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
            probe.fit(z_tr, y_tr)
            p = np.zeros((z_te.shape[0], n_classes))
            p[:, probe.classes_] = probe.predict_proba(z_te)
            p = (1.0 - _PROBE_SMOOTHING) * p + _PROBE_SMOOTHING / n_classes
            log_q[te] = np.log(p[np.arange(len(y_te)), y_te]).reshape(-1, m)
        else:
            y_tr = np.repeat(y[tr], m, axis=0)
            y_te = np.repeat(y[te], m, axis=0)
            probe = LinearRegression().fit(z_tr, y_tr)
            s2 = np.maximum(((y_tr - probe.predict(z_tr).reshape(y_tr.shape)) ** 2).mean(axis=0), 1e-300)
            s2_all.append(s2)
            log_q[te] = _gaussian_log_q(y_te - probe.predict(z_te).reshape(y_te.shape), s2).reshape(-1, m)
    return log_q, (np.mean(s2_all, axis=0) if s2_all else None)


def _ba_targets(y: Any, n: int, task: str, h_y: Any, owner: str):
    """Checked targets and H(Y) for `barber_agakov`: (y, label ids 0..K-1, label counts, H(Y) bits, kind)."""
    if h_y is not None:
        h_y = check_float_param(h_y, "h_y", owner)
        if task == "classification":
            raise ValueError(
                f"The 'h_y' parameter of {owner} applies to task='regression' only (for classification H(Y) "
                f"is the entropy of the label frequencies). Got h_y={h_y!r} with task='classification'."
            )
    if task != "classification":
        y_np = _check_regression_target(y, n)
        if h_y is None:
            return y_np, None, None, _gaussian_h_y_nats(y_np) / LN2, "differential, fitted Gaussian"
        return y_np, None, None, h_y, "given"
    y_np = check_labels(y, n, name="y", min_classes=1)
    if y_np.min() < 0:
        raise ValueError(f"y must hold class labels >= 0. Got {int(y_np.min())}.")
    # Counts and the probe's classes over the distinct labels 0..K-1, never a bincount up to max(y).
    _, y_ids, label_counts = np.unique(y_np, return_inverse=True, return_counts=True)
    return y_np, y_ids.reshape(-1).astype(np.int64), label_counts, entropy_bits(label_counts), "label frequencies"


def barber_agakov(
    mu: Any,
    log_var: Any,
    y: Any,
    decoder: Callable | str = "probe",
    *,
    task: str = "classification",
    n_samples: int = 8,
    seed: int | None = 0,
    noise_variance: float | None = None,
    h_y: float | None = None,
    n_classes: int | None = None,
    n_folds: int = 5,
    batch_size: int = 8192,
) -> BABound:
    """The Barber–Agakov lower bound I(Z;Y) ≥ H(Y) + E log q(y|z), in bits, from N points × M samples of z.

    I_BA = H(Y) + (1/NM) Σ_i Σ_m log2 q(y_i | z_im), z_im ~ N(μ_i, diag σ_i²). The gap to I(Z;Y) is
    E_z KL[p(y|z) ‖ q(y|z)] ≥ 0 for *any* decoder q, so any decoder gives a valid bound under the distribution
    the (z, y) pairs come from (here: the N given points); a better decoder gives a tighter one.

    - ``task="classification"``: q is categorical, log q = −cross-entropy of the decoder's logits; H(Y) is
      the entropy of the label frequencies, so I_BA ≤ H(Y), with equality for a perfect decoder of a
      deterministic label.
    - ``task="regression"``: q(y|z) = N(f(z), diag s²), log q = −(y − f)²/(2s²) − ½ ln(2πs²), with s² given
      (``noise_variance``) or fitted (the mean squared residual, its maximum-likelihood value). H(Y) must then
      be a differential entropy: by default that of a Gaussian fitted to y (½ log2 det(2πe Σ_y); exact for
      Gaussian Y, otherwise an upper bound, so the result is then an estimate rather than a strict bound —
      ``h_y_kind`` says which), or pass ``h_y`` in bits.

    Decoders:

    - a callable / ``torch.nn.Module`` mapping z (B, d) to logits (B, K) or predictions (B,) / (B, k): e.g. the
      VIB model's own ``model.decoder``. It runs without gradient, in eval mode (restored), in its dtype.
    - ``"probe"`` (or ``"logistic"`` / ``"linear"``): a probe fitted on the sampled z and *cross-fitted*
      over ``n_folds`` folds of inputs (all M samples of an input in one fold): each fold is scored by a
      probe trained on the others, so the probe is never scored on data it saw and the bound also holds for
      the population in expectation, not only for the probe set. Classification: standardised multinomial
      logistic regression (C = 1), mixed with 1e-6 of the uniform distribution so an unseen class costs a
      finite amount; regression: least squares with s² fitted on the training folds.

    Parameters
    ----------
    mu, log_var : array-like or tensor (N, d)
        The encoder's mean and log-variance. A deterministic layer can pass log_var = a very negative
        constant.
    y : array-like (N,)
        Integer class labels (classification) or real targets (N,) / (N, k) (regression).
    n_samples : int >= 1
        M, z samples per point.
    n_classes : int, optional
        Number of classes for the probe decoder (labels must then lie in 0..n_classes-1). Default: the
        distinct labels, mapped to 0..K-1 first (so a label of 1e7 costs nothing).
    batch_size : int
        Rows of z decoded at once (memory only).

    Returns
    -------
    BABound (bits).
    """
    owner = "barber_agakov"
    task = check_choice(task, "task", owner, _TASKS)
    n_samples = check_int_param(n_samples, "n_samples", owner, minimum=1)
    n_folds = check_int_param(n_folds, "n_folds", owner, minimum=2)
    batch_size = check_int_param(batch_size, "batch_size", owner, minimum=1)
    mu_t, lv_t = _check_gaussian(mu, log_var)
    n, d = mu_t.shape
    y_np, y_ids, label_counts, h_y_bits, h_y_kind = _ba_targets(y, n, task, h_y, owner)
    if noise_variance is not None:
        noise_variance = check_float_param(noise_variance, "noise_variance", owner, positive=True)

    z = reparameterize(mu_t, lv_t, n_samples, _generator(seed))  # (N, M, d) float64
    s2_out: np.ndarray | None = None
    if isinstance(decoder, str):
        check_choice(decoder, "decoder", owner, ("probe", "logistic", "linear"))
        y_probe, k = (y_ids, int(label_counts.size)) if task == "classification" else (y_np, 0)
        if n_classes is not None:
            k_given = check_int_param(n_classes, "n_classes", owner, minimum=1)
            if task == "classification" and k_given <= int(y_np.max()):
                raise ValueError(
                    f"y holds labels outside the decoder's classes 0..{k_given - 1} (n_classes={k_given}): found "
                    f"label {int(y_np.max())}."
                )
            y_probe, k = y_np, k_given
        log_q, s2_out = _probe_log_q(z.cpu().numpy(), y_probe, task, n_folds, seed, k)
        desc = f"{_PROBES[task]} probe, {n_folds}-fold cross-fitted"
        mean_log_q = float(log_q.mean())
    elif not callable(decoder):
        raise TypeError(f"decoder must be a callable (z -> logits/predictions) or 'probe'. Got {decoder!r}.")
    else:
        desc = _describe_decoder(decoder)
        flat = z.reshape(-1, d)
        outs = [_apply_decoder(decoder, flat[s : s + batch_size]) for s in range(0, flat.shape[0], batch_size)]
        out = torch.cat(outs, dim=0).cpu()
        if not bool(torch.isfinite(out).all()):
            bad = int((~torch.isfinite(out)).sum())
            raise ValueError(
                f"decoder {desc!r} returned NaN or Inf ({bad:,} of {out.numel():,} values); the bound needs "
                "finite logits or predictions."
            )
        if task == "classification":
            if out.ndim != 2:
                raise ValueError(f"decoder must return logits of shape (B, n_classes). Got shape {tuple(out.shape)}.")
            k = out.shape[1]
            if y_np.max() >= k:
                bad = np.unique(y_np[y_np >= k]).tolist()
                raise ValueError(f"y holds labels outside the decoder's classes 0..{k - 1}: found {bad}.")
            log_p = torch.log_softmax(out, dim=1)
            y_rep = torch.as_tensor(np.repeat(y_np, n_samples))
            mean_log_q = float(log_p.gather(1, y_rep[:, None]).mean())
        else:
            y_rep = np.repeat(y_np, n_samples, axis=0)
            pred = out.numpy().reshape(y_rep.shape[0], -1)
            if pred.shape != y_rep.shape:
                raise ValueError(
                    f"decoder must return predictions with {y_rep.shape[1]} output(s) per row. "
                    f"Got shape {tuple(out.shape)}."
                )
            resid = y_rep - pred
            if noise_variance is None:
                s2_out = np.maximum((resid * resid).mean(axis=0), 1e-300)
            else:
                s2_out = np.full(y_rep.shape[1], noise_variance)
            mean_log_q = float(_gaussian_log_q(resid, s2_out).mean())
    mean_log_q_bits = mean_log_q / LN2
    return BABound(
        value=h_y_bits + mean_log_q_bits,
        h_y=h_y_bits,
        h_y_kind=h_y_kind,
        mean_log_q=mean_log_q_bits,
        n=int(n),
        M=n_samples,
        seed=seed,
        task=task,
        decoder=desc,
        noise_variance=None if s2_out is None else [float(v) for v in np.atleast_1d(s2_out)],
    )


# --------------------------------------------------------------------------------------------------
# The training objective and an epoch accumulator
# --------------------------------------------------------------------------------------------------
def vib_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mu: torch.Tensor,
    log_var: torch.Tensor,
    *,
    beta: float,
    task: str = "classification",
) -> torch.Tensor:
    """The VIB objective in nats, differentiable: distortion + β · rate (Alemi et al. 2017).

    ``classification``: mean cross-entropy of ``pred`` logits against integer ``target``; ``regression``:
    mean squared error summed over outputs (``pred`` (B,) or (B, k), ``target`` the same size). A 3-D
    ``pred`` (S, B, K) carries S reparameterised samples per input, averaged over. rate = mean_i KL[N(μ_i, σ_i²) ‖ N(0, I)] (`gaussian_rate_nats`).
    Minimising it maximises a lower bound on I(Z;Y) − β I(Z;X) (up to the constant H(Y)).
    """
    beta = check_float_param(beta, "beta", "vib_loss", minimum=0.0)
    task = check_choice(task, "task", "vib_loss", _TASKS)
    if task == "classification":
        logits = pred if pred.ndim == 3 else pred[None]
        s = logits.shape[0]
        distortion = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.repeat(s))
    else:
        t = target.to(pred.dtype).reshape(target.shape[0], -1)
        p = pred if pred.ndim == 3 else pred.reshape(1, t.shape[0], -1)
        if p.shape[1:] != t.shape:
            raise ValueError(
                f"pred must have shape {tuple(t.shape)} (or (S, *{tuple(t.shape)}) with a sample axis) to "
                f"match target. Got shape {tuple(pred.shape)}."
            )
        distortion = ((p - t) ** 2).sum(dim=-1).mean()
    return distortion + beta * gaussian_rate_nats(mu, log_var)


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

    def update(self, mu: Any, log_var: Any, y: Any = None, logits: Any = None) -> None:
        """Add one batch: encoder (mu, log_var) of shape (B, d); labels (B,); logits (B, K) or (S, B, K)."""
        mu_t, lv_t = _check_gaussian(mu, log_var)
        b = mu_t.shape[0]
        self._rate_sum += float(gaussian_kl_nats(mu_t, lv_t).sum())
        self._n += b
        if y is not None and logits is not None:
            y_np = check_labels(y, b, name="y", min_classes=1)
            lg = _as_tensor64(logits)
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
        return out


# --------------------------------------------------------------------------------------------------
# Estimators for information_plane
# --------------------------------------------------------------------------------------------------
class _VariationalEstimator(BaseEstimator):
    input_kind = "gaussian"
    _owner = "VariationalEstimator"

    def _init_common(self, decoder, task, n_samples, seed, n_folds, beta, noise_variance) -> None:
        owner = self._owner
        self.task = check_choice(task, "task", owner, _TASKS)
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
                f"{_PROBES[self.task]} probe, {self.n_folds}-fold cross-fitted"
                if isinstance(self.decoder, str) else _describe_decoder(self.decoder)
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
        mu_t, lv_t = _check_gaussian(t, log_var, name="t", layer=layer, epoch=epoch)
        n = int(mu_t.shape[0])
        if self.task == "classification":
            check_labels(y, n)
        else:
            _check_regression_target(y, n)
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

    def estimate(self, t: Any, y: Any, x: Any = None, *, layer: str | None = None, epoch: int | None = None,
                 log_var: Any = None) -> MIResult:
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
    value up to Monte Carlo error) or ``"upper"`` (leave-one-out); ``I_TY`` = `barber_agakov` (``"lower"``).
    The result's conventions also carry the rate and the implied gap KL[p(z) ‖ N(0, I)] in bits.

    Parameters
    ----------
    bound : {"lower", "upper"}
        Which mixture bound is ``I_XT``.
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

    def estimate(self, t: Any, y: Any, x: Any = None, *, layer: str | None = None, epoch: int | None = None,
                 log_var: Any = None) -> MIResult:
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
            "units": "bits",
        }
        return MIResult(
            I_XT=mix.lower if self.bound == "lower" else mix.upper, I_TY=ba.value, bound_XT=self.bound,
            bound_TY="lower", estimator=self.name, n_samples=int(mu_t.shape[0]), conventions=conventions,
        )
