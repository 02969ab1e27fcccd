"""The torch L-BFGS probe: scikit-learn's optimum at a fixed C, C chosen by inner validation (C = 1 loses
bits on well-separated classes), and warm starts that reach the cold start's bound."""
from __future__ import annotations

import numpy as np
import pytest

from infoplane._core.units import entropy_bits
from infoplane.estimators import ProbeEstimator
from infoplane.estimators._kernels.probe import PROBE_SMOOTHING, probe_folds
from infoplane.estimators._kernels.rows import canonical_order
from infoplane.estimators.probe import probe_mi


def _task(n=1000, d=10, scale=2.0, k=10, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    return rng.normal(size=(k, d))[y] * scale + rng.normal(size=(n, d)), y


def _sklearn_probe(t, y, C):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    o = canonical_order(t, y)
    t, y = t[o], y[o]
    k = int(y.max()) + 1
    folds = probe_folds(len(y), 5, 0, y)
    log2_q = np.empty(len(y))
    for f in range(5):
        tr, te = folds != f, folds == f
        p = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000)).fit(t[tr], y[tr])
        q = (1 - PROBE_SMOOTHING) * p.predict_proba(t[te]) + PROBE_SMOOTHING / k
        log2_q[te] = np.log2(q[np.arange(te.sum()), y[te]])
    return entropy_bits(np.bincount(y)) + log2_q.mean()


@pytest.mark.parametrize("C", [1.0, pytest.param(30.0, marks=pytest.mark.slow)])
def test_torch_solver_reaches_sklearns_bound(C):
    t, y = _task(n=600, d=8, k=4, seed=1)
    assert probe_mi(t, y, C=C) == pytest.approx(_sklearn_probe(t, y, C), abs=0.01)


@pytest.mark.slow
def test_C_by_inner_validation_recovers_what_C1_loses():
    t, y = _task()
    c1, c100, auto = probe_mi(t, y, C=1.0), probe_mi(t, y, C=100.0), probe_mi(t, y)
    assert c100 - c1 > 0.02  # the loss of C = 1 on well-separated classes
    assert auto > c1 + 0.02 and auto == pytest.approx(c100, abs=0.01)
    res = ProbeEstimator().estimate(t, y)
    assert len(res.conventions["C_chosen"]) == 5 and min(res.conventions["C_chosen"]) >= 10.0
    assert 0 < res.conventions["I_TY_se"] < 0.1


def test_warm_start_gives_the_cold_bound():
    t, y = _task(n=800, d=12, seed=2)
    est = ProbeEstimator()
    _, state = est.estimate_with_state(t, y)
    later = t + 0.1 * np.random.default_rng(3).normal(size=t.shape)  # the next epoch: a little different
    warm, _ = est.estimate_with_state(later, y, state=state)
    cold = est.estimate(later, y)
    assert warm.conventions["warm_start"] and not cold.conventions["warm_start"]
    assert warm.I_TY == pytest.approx(cold.I_TY, abs=0.01)
    off, _ = ProbeEstimator(warm_start=False).estimate_with_state(later, y, state=state)
    assert not off.conventions["warm_start"] and off.I_TY == cold.I_TY


def test_bad_C_is_named():
    with pytest.raises(ValueError, match=r"'C' parameter of ProbeEstimator must be"):
        ProbeEstimator(C=0.0)
    with pytest.raises(ValueError, match=r"'C' parameter of probe_mi must be"):
        probe_mi(np.zeros((10, 2)), np.arange(10) % 2, C="best")
