"""Silent wrong answers of issue 10 (item 8): each case now gives the right number or an error naming the
argument. Expected values are closed forms, not the code's own output."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infoplane.estimators import (
    BinningEstimator,
    KDEEstimator,
    barber_agakov,
    gaussian_rate,
    mixture_mi_bounds,
)
from infoplane.store import MemoryStore

N = 20
rng = np.random.default_rng(0)
MU = rng.normal(size=(N, 2))
Y = np.arange(N) % 2


def test_gaussian_rate_that_overflows_names_log_var():
    # Before: inf. KL = ½(e^1000 + ...) is beyond float64: no finite answer exists, so an error.
    with pytest.raises(ValueError, match=r"gaussian_rate: the rate is not finite .*log_var is too extreme"):
        gaussian_rate(MU, np.full((N, 2), 1000.0))


def test_gaussian_rate_with_tiny_variance_is_the_closed_form():
    # σ² = e^-1000 underflows to 0 but KL = ½ Σ_j (σ² + μ² − 1 − ln σ²) = ½ Σ_j (μ² + 999) is exact.
    expected = float(np.mean(0.5 * (MU**2 + 999.0).sum(axis=1))) / math.log(2)
    assert gaussian_rate(MU, np.full((N, 2), -1000.0)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("log_var", [1000.0, -1000.0])
def test_mixture_bounds_that_overflow_name_log_var(log_var):
    # Before: NaN bounds with no error.
    with pytest.raises(ValueError, match=r"mixture_mi_bounds: .* not finite .*log_var is too extreme"):
        mixture_mi_bounds(MU, np.full((N, 2), log_var))


def test_a_decoder_returning_nan_is_named():
    # Before: the bound came out NaN.
    with pytest.raises(ValueError, match=r"decoder 'callable:.*' returned NaN or Inf \(320 of 320 values\)"):
        barber_agakov(MU, np.zeros((N, 2)), Y, decoder=lambda z: torch.full((z.shape[0], 2), float("nan")))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"h_y": float("nan"), "task": "regression"}, "'h_y' parameter of barber_agakov must be a finite float"),
    ({"h_y": float("inf"), "task": "regression"}, "'h_y' parameter of barber_agakov must be a finite float"),
    ({"h_y": float("nan")}, "'h_y' parameter of barber_agakov must be a finite float"),
    ({"h_y": 1.0}, "'h_y' parameter of barber_agakov applies to task='regression' only"),
    ({"seed": 1.5}, "'seed' parameter must be an int or None. Got 1.5"),
    ({"seed": True}, "'seed' parameter must be an int or None"),
])
def test_barber_agakov_refuses_truncated_or_ignored_parameters(kwargs, match):
    y = Y.astype(float) if kwargs.get("task") == "regression" else Y
    with pytest.raises(ValueError, match=match):
        barber_agakov(MU, np.zeros((N, 2)), y, **kwargs)


def test_mixture_bounds_refuse_a_fractional_seed():
    with pytest.raises(ValueError, match="'seed' parameter must be an int or None. Got 1.5"):
        mixture_mi_bounds(MU, np.zeros((N, 2)), seed=1.5)


def test_barber_agakov_remaps_labels_before_allocating():
    # Before: a label of 1e7 made the probe allocate (rows, 1e7 + 1) probabilities (12 GiB at N = 4,096);
    # a label of 1e12 would not even fit. The bound depends on the partition of the rows only.
    mu, lv = MU, np.zeros((N, 2))
    small = barber_agakov(mu, lv, Y).value
    assert barber_agakov(mu, lv, np.where(Y == 1, 10**12, 0)).value == small
    assert barber_agakov(mu, lv, np.where(Y == 1, 7, 3)).value == small


def test_kde_on_huge_finite_activations_is_exact():
    # Before: NaN. Rows 1e300 apart under noise σ² = 1e-3 are perfectly separated: I(T;X) = log2 N and
    # I(T;Y) = H(Y) = 1 bit exactly.
    res = KDEEstimator().estimate(MU * 1e300, Y)
    assert res.I_XT == pytest.approx(math.log2(N), abs=1e-12)
    assert res.I_TY == pytest.approx(1.0, abs=1e-12)
    big = np.random.default_rng(1).normal(size=(500, 3)) * 1e306  # the mean of these overflows unscaled
    assert KDEEstimator().estimate(big, np.arange(500) % 2).I_XT == pytest.approx(math.log2(500), abs=1e-12)


def test_kde_is_invariant_to_a_large_offset():
    # Distances in float64 lose precision at activations of about 1e6 unless the rows are centred.
    t = np.random.default_rng(2).normal(size=(200, 3)) * 0.05
    y = np.arange(200) % 2
    near, far = KDEEstimator().estimate(t, y), KDEEstimator().estimate(t + 1e6, y)
    assert far.I_XT == pytest.approx(near.I_XT, abs=1e-6)
    assert far.I_TY == pytest.approx(near.I_TY, abs=1e-6)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_bin_codes_beyond_int64_raise(as_tensor):
    # Before: floor(t / w) >= 2^63 wrapped to one int64 value: distinct values shared a bin, I_XT = 0.
    t = MU * 1e10
    t = torch.as_tensor(t) if as_tensor else t
    with pytest.raises(ValueError, match=r"'bin_width' parameter of BinningEstimator is too small .* beyond int64"):
        BinningEstimator(bin_width=1e-10).estimate(t, Y)
    assert BinningEstimator(bin_width=1e-3).estimate(t, Y).I_XT == pytest.approx(math.log2(N))  # distinct rows


def test_information_plane_refuses_fractional_epochs():
    from infoplane import information_plane

    store = MemoryStore()
    store.set_labels(Y)
    for e in (0, 1):
        store.write_epoch(e, {"a": MU + e})
    with pytest.raises(ValueError, match=r"'epochs' parameter of information_plane must hold ints. Got 1.7"):
        information_plane(store, estimators="binning", epochs=[1.7], progress=False)
    with pytest.raises(TypeError, match="'epoch' parameter of activations must be an int. Got True"):
        store.activations(True, "a")


# --------------------------------------------------------------------------------------------------
# Issue 21: groundtruth.evaluate and odd estimators; Schedule.log_spaced bounded
# --------------------------------------------------------------------------------------------------
class _Returns:
    """An estimator whose estimate() returns ``value`` (an MIResult with that I_TY, or the value itself)."""

    name = "odd"

    def __init__(self, value, wrap=True):
        self.value, self.wrap = value, wrap

    def estimate(self, t, y):
        if not self.wrap:
            return self.value
        from infoplane import MIResult

        return MIResult(I_XT=0.0, I_TY=self.value, bound_XT="estimate", bound_TY="estimate", estimator="odd",
                        n_samples=len(t))


def _evaluate(est):
    from infoplane import groundtruth

    return groundtruth.evaluate({"odd": est}, tasks="gauss-1x1", n_samples=200, seeds=[0], progress=False)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_evaluate_does_not_store_a_non_finite_estimate_as_a_plain_row(value):
    # Before: a NaN or inf estimate became a row with estimate_bits = nan, error_bits = nan, and no flag.
    with pytest.warns(RuntimeWarning, match=r"'odd'.*not finite"):
        df = _evaluate(_Returns(value))
    assert np.isfinite(df["estimate_bits"]).all() and len(df) == 0
    assert "not finite" in df.attrs["failed"]["odd"]["gauss-1x1"]


@pytest.mark.parametrize("value", [None, 0.5, "1.0", (0.5,)])
def test_evaluate_names_an_estimator_that_returns_no_result(value):
    # Before: a raw AttributeError ("'NoneType' object has no attribute 'I_TY'").
    with pytest.raises(TypeError, match=r"estimators\['odd'\].*returned .*MIResult"):
        _evaluate(_Returns(value, wrap=False))


class _Buggy:
    name = "buggy"

    def estimate(self, t, y):
        return None + 1  # an estimator's own bug: TypeError


def test_evaluate_propagates_an_estimators_own_type_error():
    # Before: listed as "skipped" (as if the estimator had refused the data).
    from infoplane import groundtruth

    with pytest.raises(TypeError, match="unsupported operand"):
        groundtruth.evaluate({"buggy": _Buggy()}, tasks="gauss-1x1", n_samples=200, seeds=[0], progress=False)


def test_evaluate_still_skips_an_input_check_refusal():
    from infoplane import groundtruth

    df = groundtruth.evaluate({"bins": BinningEstimator(n_bins=4)}, tasks="gauss-1x1", n_samples=200, seeds=[0],
                              progress=False)
    assert len(df) == 0 and "gauss-1x1" in df.attrs["skipped"]["bins"]


@pytest.mark.parametrize(("args", "match"), [
    ((10**18, 10**7), r"'n' parameter of Schedule.log_spaced"),
    ((10**18, 50), r"'last' parameter of Schedule.log_spaced"),
    ((1000, 10**9), r"'n' parameter"),
])
def test_log_spaced_is_bounded_and_raises_at_once(args, match):
    # Before: Schedule.log_spaced(10**18, 10**7) ran for minutes (and 10**18 + 1.0 is not exact in float64).
    import time

    from infoplane import Schedule

    start = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        Schedule.log_spaced(*args)
    assert time.perf_counter() - start < 0.5


def test_log_spaced_at_the_bounds_is_exact():
    from infoplane import Schedule

    sched = Schedule.log_spaced(10**15, 100)
    assert sched.epochs[0] == 0 and sched.epochs[-1] == 10**15 and len(sched.epochs) <= 100
