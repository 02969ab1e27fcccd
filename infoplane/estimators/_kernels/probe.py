"""The cross-fitted probe decoder q(y|z) behind the Barber–Agakov bounds (private).

A probe is fitted on all folds but one and scored on the held-out fold, for each fold (k-fold
cross-fitting), so no row is scored by a probe that saw it: H(Y) + mean log q(y|z) is then a lower bound
on I(Z;Y) in expectation for the population too, not only for the probe set. Classification: standardised
multinomial logistic regression fitted by full-batch L-BFGS in torch, every fold at once (`logreg`), its C
chosen on each training fold by inner validation (``C="auto"``; C = 1 lost 0.12 bits on well-separated
10-class tasks), mixed with ``PROBE_SMOOTHING`` of the uniform distribution so an unseen class costs a
finite amount; the fits start from ``state`` when given (warm starts across epochs: the objective is convex,
the same optimum in fewer iterations). Regression: least squares with the decoder variance fitted on the
training folds (scikit-learn).

`cross_fitted_log2_q` is the API for deterministic activations: per-row log2 q(y_i | t_i) in bits.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..._core.threads import outer_threads, torch_threads
from ..._core.units import LN2
from ..._core.validation import check_int_param
from .gaussian import gaussian_log_q
from .logreg import Design, cross_fit

__all__ = ["PROBE_SMOOTHING", "probe_folds", "probe_log_q", "cross_fitted_log2_q", "classification_log_q"]

# Mixing weight of the uniform distribution in the probe decoder: keeps log q finite for a class a training
# fold never saw; costs at most -ln(1 - 1e-6) ≈ 1.4e-6 bits of the bound.
PROBE_SMOOTHING = 1e-6


def probe_folds(n: int, n_folds: int, seed: int | None, y_cls: np.ndarray | None) -> np.ndarray:
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


def classification_log_q(
    z: np.ndarray, y: np.ndarray, n_folds: int, seed: int | None, n_classes: int, *, C: Any = "auto",
    device: Any = None, state: dict | None = None, threads: int | None = None,
) -> tuple[np.ndarray, dict]:
    """Cross-fitted log q(y_i | z_im) (nats, (N, M)) of the torch logistic probe, and an info dict:
    ``C`` (per fold), ``evaluations`` (batched L-BFGS evaluations, every fold at once), ``state`` (the
    weights reached, for a warm start at the next epoch), ``warm_start`` (whether ``state`` was used) and
    ``train_log_q`` (nats: the mean over folds of each fold's probe scored on its own training rows, the
    in-sample counterpart of the held-out mean of log q, for the over-fitting check).

    The M samples of one input share its fold; every fold's probe is fitted at once (`logreg.cross_fit`),
    whose last product already scores every fold's probe on every row: the held-out and the in-sample
    values are both read from it (no further product). On the CPU the fit runs on ``threads`` torch threads
    (None: the caller's count, `outer_threads`)."""
    import torch

    n, m, d = z.shape
    folds = probe_folds(n, n_folds, seed, y.ravel().astype(np.int64))
    dev = torch.device("cpu" if device is None else device)
    y_rows = np.repeat(y, m)
    # A fixed count on the CPU (the float32 reductions' order, hence the last bits, depend on it); other
    # devices are left as they are.
    cpu_threads = (threads or outer_threads()) if dev.type == "cpu" else None
    with torch_threads(cpu_threads):
        design = Design.build(z.reshape(-1, d), y_rows, n_classes, dev)
        folds_rows = np.repeat(folds, m)
        log_p, info = cross_fit(design, folds_rows, C, 0 if seed is None else int(seed), state, draws=m)
        # every fold's probe on every row, the true class's probability: (folds, rows)
        rows = torch.arange(len(y_rows), device=dev)
        p = log_p[:, torch.as_tensor(y_rows, device=dev), rows].exp().cpu().numpy()
    log_q_all = np.log((1.0 - PROBE_SMOOTHING) * p + PROBE_SMOOTHING / n_classes)
    own = folds_rows[None, :] == np.arange(log_q_all.shape[0])[:, None]  # fold f's probe on fold f's rows
    # in-sample: each fold's probe on its own training rows (the other folds), averaged per fold, then over folds
    train = np.where(own, 0.0, log_q_all).sum(axis=1) / (~own).sum(axis=1)
    info["train_log_q"] = float(train.mean())
    return log_q_all[folds_rows, np.arange(len(y_rows))].reshape(n, m), info


def probe_log_q(
    z: np.ndarray, y: np.ndarray, task: str, n_folds: int, seed: int | None, n_classes: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cross-fitted log q(y_i | z_im) (nats, shape (N, M)): each fold is scored by a probe fitted on the others.

    Classification: `classification_log_q` (standardised multinomial logistic regression, C by inner
    validation). Regression: least squares, with the decoder variance s² fitted on the training folds'
    residuals. Returns (log q, mean s² or None).
    """
    if task == "classification":
        return classification_log_q(z, y, n_folds, seed, n_classes)[0], None
    from sklearn.linear_model import LinearRegression

    n, m, d = z.shape
    folds = probe_folds(n, n_folds, seed, None)
    log_q = np.empty((n, m))
    s2_all = []
    for k in range(n_folds):  # loop over folds, each a vectorised fit
        tr, te = folds != k, folds == k
        z_tr, z_te = z[tr].reshape(-1, d), z[te].reshape(-1, d)
        y_tr = np.repeat(y[tr], m, axis=0)
        y_te = np.repeat(y[te], m, axis=0)
        probe = LinearRegression().fit(z_tr, y_tr)
        s2 = np.maximum(((y_tr - probe.predict(z_tr).reshape(y_tr.shape)) ** 2).mean(axis=0), 1e-300)
        s2_all.append(s2)
        log_q[te] = gaussian_log_q(y_te - probe.predict(z_te).reshape(y_te.shape), s2).reshape(-1, m)
    return log_q, (np.mean(s2_all, axis=0) if s2_all else None)


def cross_fitted_log2_q(
    t: np.ndarray, y: np.ndarray, *, n_folds: int = 5, seed: int | None = 0, n_classes: int | None = None
) -> np.ndarray:
    """Cross-fitted log2 q(y_i | t_i) per row, in bits (<= 0), of a logistic-regression probe.

    ``t``: (N, d) float activations; ``y``: (N,) integer class ids in 0..n_classes − 1 (default max + 1).
    The folds are stratified by class (when every class has ``n_folds`` rows) and seeded. The mean
    cross-entropy in bits is ``-cross_fitted_log2_q(...).mean()``; H(Y) minus it is the Barber–Agakov bound.
    """
    n_folds = check_int_param(n_folds, "n_folds", "cross_fitted_log2_q", minimum=2)
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    z = np.asarray(t, dtype=np.float64)[:, None, :]
    log_q, _ = probe_log_q(z, y, "classification", n_folds, seed, k)
    return log_q[:, 0] / LN2
