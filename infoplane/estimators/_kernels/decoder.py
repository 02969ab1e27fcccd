"""The Barber–Agakov lower bound on I(Z;Y), in bits, for a Gaussian layer and any decoder (private; public
through `infoplane.estimators.variational.barber_agakov`).

`barber_agakov` checks its inputs, draws z, and dispatches to the decoder at hand: the cross-fitted probe
(``_probe``), or a callable's logits (classification) or predictions (regression); each is a small helper.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..._core.types import ArrayLike, BABound, TensorLike
from ..._core.units import LN2, entropy_bits
from ..._core.validation import (
    check_choice,
    check_float_param,
    check_gaussian,
    check_int_param,
    check_labels,
    check_regression_target,
)
from .gaussian import TASKS, gaussian_log_q, generator, reparameterize
from .probe import probe_log_q
from .rows import canonical_order

__all__ = ["PROBES", "barber_agakov", "describe_decoder"]

#: The probe decoder of each task.
PROBES = {"classification": "logistic", "regression": "linear"}


def describe_decoder(decoder: Any) -> str:
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


def barber_agakov(
    mu: TensorLike,
    log_var: TensorLike,
    y: ArrayLike,
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
      logistic regression, C chosen per fold by inner validation on a quarter of its inputs (all M samples
      of an input on one side: with samples of one input on both sides, weak penalties looked best and the
      bound lost up to 0.75 bits at small variances), mixed with 1e-6 of the uniform distribution so an
      unseen class costs a finite amount; regression: least squares with s² fitted on the training folds.

    The rows are put in a canonical order first (`canonical_order`), so the result does not depend on their
    order.

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
    task = check_choice(task, "task", owner, TASKS)
    n_samples = check_int_param(n_samples, "n_samples", owner, minimum=1)
    n_folds = check_int_param(n_folds, "n_folds", owner, minimum=2)
    batch_size = check_int_param(batch_size, "batch_size", owner, minimum=1)
    mu_t, lv_t = check_gaussian(mu, log_var)
    n, d = mu_t.shape
    y_np, h_y_bits, h_y_kind = _ba_targets(y, n, task, h_y)
    if isinstance(decoder, str) and task == "classification" and n_classes is None:
        # The probe's classes are the distinct labels mapped to 0..K-1: a label of 1e7 costs nothing.
        y_np = np.unique(y_np, return_inverse=True)[1].reshape(-1).astype(np.int64)
    if noise_variance is not None:
        noise_variance = check_float_param(noise_variance, "noise_variance", owner, positive=True)
    if isinstance(decoder, str):
        check_choice(decoder, "decoder", owner, ("probe", "logistic", "linear"))
    elif not callable(decoder):
        raise TypeError(f"decoder must be a callable (z -> logits/predictions) or 'probe'. Got {decoder!r}.")

    # Rows in a canonical order before drawing and splitting, so that the same rows in another order give the
    # same number (the draws and the probe's folds depend on the seed and the data only); a mean over rows.
    order = canonical_order(mu_t.cpu().numpy(), lv_t.cpu().numpy(), y_np)
    order_t = torch.as_tensor(order, device=mu_t.device)
    mu_t, lv_t, y_np = mu_t[order_t], lv_t[order_t], y_np[order]
    z = reparameterize(mu_t, lv_t, n_samples, generator(seed))  # (N, M, d) float64
    if not bool(torch.isfinite(z).all()) or float(z.abs().max()) > 1e100:
        raise ValueError(
            f"{owner}: the samples z = mu + exp(log_var / 2) * eps are beyond what a decoder can fit (|z| up to "
            f"{float(z.abs().max()):.3g}; log_var is too extreme: it spans [{float(lv_t.min()):.4g}, "
            f"{float(lv_t.max()):.4g}]). Check the encoder's log_var (natural-log variances)."
        )
    if isinstance(decoder, str):
        k = _probe_classes(y_np, task, n_classes)
        log_q, s2_out = probe_log_q(z.cpu().numpy(), y_np, task, n_folds, seed, k)
        desc, mean_log_q = f"{PROBES[task]} probe, {n_folds}-fold cross-fitted", float(log_q.mean())
    else:
        flat = z.reshape(-1, d)
        outs = [_apply_decoder(decoder, flat[s : s + batch_size]) for s in range(0, flat.shape[0], batch_size)]
        out = torch.cat(outs, dim=0).cpu()
        desc = describe_decoder(decoder)
        if not bool(torch.isfinite(out).all()):
            raise ValueError(
                f"decoder {desc!r} returned NaN or Inf ({int((~torch.isfinite(out)).sum()):,} of {out.numel():,} "
                "values); the bound needs finite logits or predictions."
            )
        if task == "classification":
            mean_log_q, s2_out = _decoder_log_q_classes(out, y_np, n_samples), None
        else:
            mean_log_q, s2_out = _decoder_log_q_regression(out, y_np, n_samples, noise_variance)
    mean_log_q_bits = mean_log_q / LN2
    return BABound(
        value=h_y_bits + mean_log_q_bits, h_y=h_y_bits, h_y_kind=h_y_kind, mean_log_q=mean_log_q_bits, n=int(n),
        M=n_samples, seed=seed, task=task, decoder=desc,
        noise_variance=None if s2_out is None else [float(v) for v in np.atleast_1d(s2_out)],
    )


def _ba_targets(y: Any, n: int, task: str, h_y: float | None) -> tuple[np.ndarray, float, str]:
    """(checked y, H(Y) in bits, what kind of H(Y)) for `barber_agakov`."""
    if h_y is not None:
        h_y = check_float_param(h_y, "h_y", "barber_agakov")
        if task == "classification":
            raise ValueError(
                "The 'h_y' parameter of barber_agakov applies to task='regression' only (for classification H(Y) "
                f"is the entropy of the label frequencies). Got h_y={h_y!r} with task='classification'."
            )
    if task == "classification":
        y_np = check_labels(y, n, name="y", min_classes=1)
        if y_np.min() < 0:
            raise ValueError(f"y must hold class labels >= 0. Got {int(y_np.min())}.")
        # Counts of the distinct labels, never a bincount up to max(y).
        return y_np, entropy_bits(np.unique(y_np, return_counts=True)[1]), "label frequencies"
    y_np = check_regression_target(y, n)
    if h_y is None:
        return y_np, _gaussian_h_y_nats(y_np) / LN2, "differential, fitted Gaussian"
    return y_np, check_float_param(h_y, "h_y", "barber_agakov"), "given"


def _probe_classes(y_np: np.ndarray, task: str, n_classes: int | None) -> int:
    """The probe decoder's number of classes: ``n_classes`` if given (>= max label + 1), else max label + 1."""
    k = int(y_np.max()) + 1 if task == "classification" else 0
    if n_classes is None:
        return k
    k_given = check_int_param(n_classes, "n_classes", "barber_agakov", minimum=1)
    if task == "classification" and k_given < k:
        raise ValueError(
            f"y holds labels outside the decoder's classes 0..{k_given - 1} (n_classes={k_given}): found label {k - 1}."
        )
    return k_given


def _decoder_log_q_classes(out: torch.Tensor, y_np: np.ndarray, n_samples: int) -> float:
    """Mean ln q(y|z) (nats) of a decoder's logits ``out`` (N·M, K) for labels ``y_np`` (N,)."""
    if out.ndim != 2:
        raise ValueError(f"decoder must return logits of shape (B, n_classes). Got shape {tuple(out.shape)}.")
    k = out.shape[1]
    if y_np.max() >= k:
        bad = np.unique(y_np[y_np >= k]).tolist()
        raise ValueError(f"y holds labels outside the decoder's classes 0..{k - 1}: found {bad}.")
    log_p = torch.log_softmax(out, dim=1)
    y_rep = torch.as_tensor(np.repeat(y_np, n_samples))
    return float(log_p.gather(1, y_rep[:, None]).mean())


def _decoder_log_q_regression(
    out: torch.Tensor, y_np: np.ndarray, n_samples: int, noise_variance: float | None
) -> tuple[float, np.ndarray]:
    """(mean ln N(y; f(z), s²) in nats, s² per output) for a decoder's predictions ``out``; s² fitted if None."""
    y_rep = np.repeat(y_np, n_samples, axis=0)
    pred = out.numpy().reshape(y_rep.shape[0], -1)
    if pred.shape != y_rep.shape:
        raise ValueError(
            f"decoder must return predictions with {y_rep.shape[1]} output(s) per row. Got shape {tuple(out.shape)}."
        )
    resid = y_rep - pred
    if noise_variance is None:
        s2 = np.maximum((resid * resid).mean(axis=0), 1e-300)
    else:
        s2 = np.full(y_rep.shape[1], noise_variance)
    return float(gaussian_log_q(resid, s2).mean()), s2
