"""The cross-fitted probe decoder q(y|z) behind the Barber–Agakov bounds (private).

A probe is fitted on all folds but one and scored on the held-out fold, for each fold (k-fold
cross-fitting), so no row is scored by a probe that saw it: H(Y) + mean log q(y|z) is then a lower bound
on I(Z;Y) in expectation for the population too, not only for the probe set. Classification: standardised
multinomial logistic regression (C = 1), mixed with ``PROBE_SMOOTHING`` of the uniform distribution so an
unseen class costs a finite amount; regression: least squares with the decoder variance fitted on the
training folds. scikit-learn does the fitting (imported when first used).

`cross_fitted_log2_q` is the API for deterministic activations: per-row log2 q(y_i | t_i) in bits.
"""
from __future__ import annotations

import numpy as np

from ..._core.units import LN2
from ..._core.validation import check_int_param
from .gaussian import gaussian_log_q

__all__ = ["PROBE_SMOOTHING", "probe_folds", "probe_log_q", "cross_fitted_log2_q"]

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


def probe_log_q(
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
    folds = probe_folds(n, n_folds, seed, y.ravel().astype(np.int64) if task == "classification" else None)
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
            p = (1.0 - PROBE_SMOOTHING) * p + PROBE_SMOOTHING / n_classes
            log_q[te] = np.log(p[np.arange(len(y_te)), y_te]).reshape(-1, m)
        else:
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
