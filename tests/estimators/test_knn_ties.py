"""k-NN on tied rows (issue 19): tie-breaking noise gives the discrete truth where the counts of repeated rows
read −1 to −5.6 bits; refusal on request; the Ross estimate capped at H(Y) with a flag and a warning."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from infoplane.estimators.knn import KNNEstimator, ksg_mi, ross_mi


def _discrete_task(n=1000, seed=0):
    """T = 3 · one-hot(C), Y = C with probability 0.8 else uniform: I(T;Y) = I(C;Y), every row repeated."""
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 4, n)
    y = np.where(rng.random(n) < 0.2, rng.integers(0, 4, n), c)
    truth = 2.0 - (-(0.85 * np.log2(0.85) + 3 * 0.05 * np.log2(0.05)))  # H(Y) - H(Y|C), uniform C
    return 3.0 * np.eye(4)[c], y, truth


@pytest.mark.parametrize("metric", ["max", "euclidean"])
def test_tied_rows_are_jittered_to_the_discrete_truth(metric):
    t, y, truth = _discrete_task()
    with pytest.warns(RuntimeWarning, match="repeat another row exactly"):
        res = KNNEstimator(metric=metric).estimate(t, y)
    assert res.I_TY == pytest.approx(truth, abs=0.1)
    assert res.conventions["tied_rows"] == len(t) and res.conventions["ties"] == "jitter"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ross_mi(t, y, metric=metric, ties="keep") < -3  # what the counts of ties read
        independent = np.random.default_rng(5).integers(0, 4, len(t))
        assert abs(ross_mi(t, independent, metric=metric)) < 0.05  # truth 0
        assert ksg_mi(t, y.astype(float), metric=metric) == pytest.approx(truth, abs=0.1)


def test_saturated_relu_layer():
    """Half the rows all zero (a dead ReLU layer for class 0): truth H(Y) = 1 bit."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2000, 5))
    y = (z[:, 0] > 0).astype(int)
    t = np.maximum(z, 0.0)
    t[y == 0] = 0.0
    with pytest.warns(RuntimeWarning, match="repeat another row"):
        assert ross_mi(t, y) == pytest.approx(1.0, abs=0.05)


def test_ties_raise_names_the_argument_and_untied_data_is_untouched():
    t, y, _ = _discrete_task(300)
    with pytest.raises(ValueError, match=r"rows of t repeat another row exactly .* ties='jitter'"):
        KNNEstimator(ties="raise").estimate(t, y)
    with pytest.raises(ValueError, match=r"'ties' parameter of KNNEstimator must be one of"):
        KNNEstimator(ties="noise")
    rng = np.random.default_rng(2)
    u = rng.normal(size=(300, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = KNNEstimator(ties="raise").estimate(u, y)
    assert a.conventions["tied_rows"] == 0
    assert a.I_TY == KNNEstimator(ties="jitter", seed=7).estimate(u, y).I_TY


def test_ross_capped_at_label_entropy():
    """Two far-apart clusters: Ross reads ψ(N) − ψ(N/2) > 1 bit = H(Y); reported H(Y), flagged, warned."""
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 100)
    t = rng.normal(size=(200, 20)) + 100.0 * y[:, None]
    with pytest.warns(RuntimeWarning, match=r"exceeds H\(Y\) = 1.0000 bits"):
        res = KNNEstimator().estimate(t, y)
    assert res.conventions["I_TY_raw"] > 1.0 and res.I_TY == pytest.approx(1.0, abs=1e-12)
    assert res.conventions["I_TY_capped"] is True and res.conventions["H_Y_bits"] == pytest.approx(1.0)
