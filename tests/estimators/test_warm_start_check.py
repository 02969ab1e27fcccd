"""Warm starts of the trained estimators (the critics): the held-out check of `_kernels.warm`.

`warm_or_cold` is checked on scripted runs (which run it keeps, what it trains, what it records); the
estimators on small seeded problems: a state from the previous "epoch" is used and kept (and its bound is
not below the cold one by more than the standard error), a state stuck where training cannot leave (all
weights zero: dead ReLUs, constant codes) is caught and the reported estimate is then exactly the cold one,
a state of another width is ignored, and ``warm_start=False`` ignores any state. The chain keeps its
held-out rows: a state that trained on this epoch's rows under another split is not scored on them.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infoplane.estimators import CriticEstimator
from infoplane.estimators._kernels.warm import Run, warm_or_cold


class _Script:
    """train(init, budget) returning scripted runs: (objective, epochs, stopped early) by start kind."""

    def __init__(self, warm, cold_at_budget, cold_full):
        self.warm, self.cold_at_budget, self.cold_full, self.calls = warm, cold_at_budget, cold_full, []

    def __call__(self, init, budget):
        self.calls.append(("warm" if init is not None else "cold", budget))
        if init is not None:
            objective, epochs, stopped = self.warm
        elif budget < 100:
            objective, epochs, stopped = self.cold_at_budget
        else:
            objective, epochs, stopped = self.cold_full
        return Run(result=(init is not None, budget), state="s", objective=objective, se=0.1, epochs=epochs,
                   stopped_early=stopped)


def test_warm_or_cold_keeps_a_warm_start_unless_a_cold_one_beats_it_by_more_than_its_se():
    script = _Script(warm=(1.0, 12, True), cold_at_budget=(1.05, 12, False), cold_full=(1.3, 80, True))
    run, info = warm_or_cold(script, "state", 100)
    assert run.result == (True, 100) and info["warm_start"] and not info["warm_check"]["fell_back"]
    assert script.calls == [("warm", 100), ("cold", 12)]  # the check: a cold start for the warm run's epochs
    # better by more than the SE, the check was cut by its budget: the cold start is rerun to its end
    script = _Script(warm=(1.0, 12, True), cold_at_budget=(1.2, 12, False), cold_full=(1.3, 80, True))
    run, info = warm_or_cold(script, "state", 100)
    assert run.result == (False, 100) and not info["warm_start"] and info["warm_check"]["fell_back"]
    assert script.calls == [("warm", 100), ("cold", 12), ("cold", 100)] and info["warm_check"]["epochs_trained"] == 104
    # the check stopped early by itself: it is the whole cold run, nothing more is trained
    script = _Script(warm=(1.0, 12, True), cold_at_budget=(1.2, 9, True), cold_full=(1.3, 80, True))
    run, info = warm_or_cold(script, "state", 100)
    assert run.result == (False, 12) and script.calls == [("warm", 100), ("cold", 12)]
    assert info["warm_check"]["epochs_trained"] == 21
    # no state: one cold run, no check
    script = _Script(warm=(1.0, 12, True), cold_at_budget=(1.2, 9, True), cold_full=(1.3, 80, True))
    run, info = warm_or_cold(script, None, 100)
    assert script.calls == [("cold", 100)] and info == {"warm_start": False, "warm_check": None}


def _layer(step=0, n=600, d=12):
    """The same 600 inputs at successive "epochs": each step moves every activation a little."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, n)
    t = rng.normal(size=(4, d))[y] + rng.normal(size=(n, d))
    for _ in range(step):
        t = t + 0.1 * rng.normal(size=(n, d))
    return t.astype(np.float32), y


def _zeroed(state):
    return {**state, "weights": {k: torch.zeros_like(v) for k, v in state["weights"].items()}}


ESTIMATORS = {
    "critic": lambda **kw: CriticEstimator("infonce", epochs=80, patience=6, batch_size=64, **kw),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_warm_start_is_used_caught_when_stuck_and_ignored_when_it_does_not_fit(name):
    make = ESTIMATORS[name]
    est = make()
    first, state = est.estimate_with_state(*_layer())
    assert not first.conventions["warm_start"] and first.conventions["warm_check"] is None
    t, y = _layer(step=1)  # the next epoch: a little different
    warm, _ = est.estimate_with_state(t, y, state=state)
    cold, _ = est.estimate_with_state(t, y, state={**state, "weights": None})  # cold, on the chain's split
    check = warm.conventions["warm_check"]
    if check["fell_back"]:  # the check preferred the cold start: then the estimate is exactly the cold one
        assert not warm.conventions["warm_start"] and warm.I_TY == cold.I_TY
    else:
        assert warm.conventions["warm_start"] and check["warm_objective"] >= check["cold_objective"] - check["se"]
    if name == "critic":  # here the warm start is kept, and it is the point of it: fewer epochs
        assert warm.conventions["warm_start"] and check["warm_epochs"] < cold.conventions["epochs_run"]
        assert check["epochs_trained"] == check["warm_epochs"] + check["check_epochs"]
        assert warm.I_TY >= cold.I_TY - max(check["se"] / math.log(2), 0.05)
    # all weights zero: dead ReLUs / constant codes that training cannot leave; the cold start wins
    stuck, _ = est.estimate_with_state(t, y, state=_zeroed(state))
    assert stuck.conventions["warm_check"]["fell_back"] and not stuck.conventions["warm_start"]
    assert stuck.I_TY == cold.I_TY and stuck.conventions["I_TY_raw"] == cold.conventions["I_TY_raw"]
    # a state of another width is not used; warm_start=False uses none
    other, _ = est.estimate_with_state(t[:, :8], y, state=state)
    assert not other.conventions["warm_start"] and other.conventions["warm_check"] is None
    off, _ = make(warm_start=False).estimate_with_state(t, y, state=state)
    assert not off.conventions["warm_start"] and off.I_TY == est.estimate(t, y).I_TY


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_a_warm_start_is_not_scored_on_rows_it_trained_on(name):
    """The chain's held-out rows are kept by row index (the next epoch's canonical order, hence its seeded
    split, differs), so the held-out rows of the warm estimate are those of the state: never trained on."""
    make = ESTIMATORS[name]
    t0, y = _layer()
    _, state = make(seed=1).estimate_with_state(t0, y)  # another seed: another split of the same rows
    t1, _ = _layer(step=1)
    res, new_state = make().estimate_with_state(t1, y, state=state)
    assert res.conventions["warm_check"] is not None
    np.testing.assert_array_equal(new_state["held_out"], state["held_out"])
    assert res.conventions["n_test"] == len(state["held_out"])
    # rows in another order are not the same inputs row by row: the labels no longer match, no warm start
    perm = np.random.default_rng(3).permutation(len(y))
    moved, _ = make().estimate_with_state(t1[perm], y[perm], state=state)
    assert moved.conventions["warm_check"] is None


@pytest.mark.parametrize("objective", ["infonce", "nwj", "smile"])
def test_row_shares_average_to_the_training_objective(objective):
    from infoplane.estimators._kernels.critic_objectives import row_terms as _row_terms
    from infoplane.estimators._kernels.critic_objectives import train_objective as _train_objective

    scores = torch.randn(9, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rows = _row_terms(scores, objective, 5.0, train=True)
    assert rows.shape == (9,)
    assert float(rows.mean()) == pytest.approx(float(_train_objective(scores, objective, 5.0)), abs=1e-12)
