"""beta_sweep: a tiny sweep shows the VIB trade-off in a tidy table (bits)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from infoplane.nets import beta_sweep

COLUMNS = [
    "dataset", "seed", "beta", "epoch", "rate_bits", "mixture_lower_bits", "mixture_upper_bits", "tight_upper_bits",
    "gap_bits",
    "ba_bits", "h_y_bits", "test_accuracy", "train_loss", "train_accuracy",
]


@pytest.fixture(scope="module")
def sweep():
    # Tiny: three βs, 12 epochs at lr 3e-3, records at 0, 6, 12; a few seconds on 2 cores.
    return beta_sweep("digits", betas=[1e-3, 1e-1, 3.0], epochs=12, record_every=6, n_samples=2, lr=3e-3,
                      z_dim=8, hidden=(128,), seed=0)


def test_tidy_table_with_the_contract_columns(sweep):
    assert list(sweep.columns[: len(COLUMNS)]) == COLUMNS
    assert len(sweep) == 3 * 3
    assert sorted(sweep["epoch"].unique()) == [0, 6, 12]
    assert sweep.loc[sweep.epoch == 0, "train_loss"].isna().all()
    assert sweep.loc[sweep.epoch > 0, ["train_loss", "test_accuracy"]].notna().all().all()
    json.dumps(sweep.attrs["conventions"])


def test_bounds_are_consistent_at_every_row(sweep):
    n = int(sweep["n_probe"].iloc[0])
    assert (sweep["mixture_lower_bits"] <= math.log2(n) + 1e-9).all()
    # Rate >= the probe-set I(Z;X) up to Monte Carlo error (M = 2: allow 0.05 bits).
    assert (sweep["rate_bits"] >= sweep["mixture_lower_bits"] - 0.05).all()
    assert (sweep["ba_bits"] <= sweep["h_y_bits"] + 1e-12).all()
    np.testing.assert_allclose(sweep["rate_bits"] - sweep["gap_bits"], sweep["mixture_lower_bits"], atol=1e-9)
    tight = np.minimum(sweep["rate_bits"], sweep["mixture_upper_bits"])
    np.testing.assert_array_equal(sweep["tight_upper_bits"], tight)


def test_the_trade_off_rate_falls_with_beta_and_accuracy_then_drops(sweep):
    last = sweep[sweep.epoch == 12].set_index("beta")
    rates = last["rate_bits"].to_numpy()
    assert np.all(np.diff(rates) < 0), rates
    # β = 3 squeezes the code to almost nothing (< 0.5 bit) and accuracy toward chance (0.1).
    assert last.loc[3.0, "rate_bits"] < 0.5
    assert last.loc[1e-3, "test_accuracy"] > 0.8 > last.loc[3.0, "test_accuracy"] + 0.3


def test_deterministic_under_a_seed_whatever_the_order(sweep):
    # One β alone (so run first, from a different global RNG state) reproduces its rows of the sweep.
    again = beta_sweep("digits", betas=[1e-1], epochs=12, record_every=6, n_samples=2, lr=3e-3,
                       z_dim=8, hidden=(128,), seed=0)
    np.testing.assert_allclose(again["rate_bits"], sweep.loc[sweep.beta == 1e-1, "rate_bits"], rtol=1e-6)


def test_szt_quick_runs():
    df = beta_sweep("szt", betas=[1e-2], epochs=2, record_every=2, n_samples=1, hidden=(16,), z_dim=2)
    assert set(df.epoch) == {0, 2} and (df.h_y_bits.round(4) == 0.9992).all()


def test_bad_parameters_name_the_argument():
    with pytest.raises(ValueError, match="'dataset' parameter of beta_sweep"):
        beta_sweep("mnist")
    with pytest.raises(ValueError, match="'betas' parameter of beta_sweep"):
        beta_sweep(betas=[-1.0])
    with pytest.raises(ValueError, match="'record_every' parameter of beta_sweep must be an int >= 1"):
        beta_sweep(betas=[1.0], record_every=0)
