"""Diagnostics on information-plane rows: saturation, DPI violations, bootstrap intervals, subsamples."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infoplane.analysis import DEFAULT_DPI_TOLERANCE_BITS, add_flags, information_plane
from infoplane.estimators import BinningEstimator, KDEEstimator
from infoplane.nets import load_szt
from infoplane.store import MemoryStore

X, Y = load_szt(return_X_y=True)  # 4096 distinct 12-bit inputs
WIDTH = BinningEstimator(bin_width=0.5)  # bits 0/1 fall in distinct bins


def _store(layers: dict[str, np.ndarray], epochs=(0, 1), n: int = 4096) -> MemoryStore:
    store = MemoryStore()
    store.set_labels(Y[:n])
    for e in epochs:
        store.write_epoch(e, {name: a[:n].astype(np.float32) for name, a in layers.items()})
    return store


def test_identity_of_a_12_bit_input_is_saturated_and_a_narrow_layer_is_not():
    store = _store({"identity": X, "three_bits": X[:, :3]})
    df = information_plane(store, estimators=WIDTH, progress=False)
    ident = df[df.layer == "identity"]
    np.testing.assert_allclose(ident.I_XT, 12.0)  # log2 4096: every input in its own bin
    assert ident.saturated.all()
    narrow = df[df.layer == "three_bits"]
    np.testing.assert_allclose(narrow.I_XT, 3.0)
    assert not narrow.saturated.any() and not df.dpi_violation.any()  # 12 bits then 3: the DPI holds
    assert df.attrs["diagnostics"]["dpi_tolerance_bits"] == {"binning": DEFAULT_DPI_TOLERANCE_BITS}


def test_deeper_layer_with_more_information_is_flagged():
    # Recording order says "two_bits" is shallower than "six_bits": I(T;X) rises by 4 bits, a violation.
    # The first 512 inputs: bits 0-2 are constant there, so use the low bits (columns 6 onwards).
    store = _store({"two_bits": X[:, 6:8], "six_bits": X[:, 6:], "one_bit": X[:, 11:]}, epochs=(0,), n=512)
    df = information_plane(store, estimators={"w": WIDTH, "kde": KDEEstimator(1e-3)}, progress=False)
    flags = df.set_index(["layer", "estimator"]).dpi_violation.groupby(level=[0, 1]).all()
    assert flags[("six_bits", "w")] and flags[("six_bits", "kde")]
    assert not flags[("two_bits", "w")] and not flags[("one_bit", "w")]  # 1 bit < min(2, 6): consistent
    # Within the tolerance nothing fires: a deeper layer 0.05 bits above is not flagged (tolerance 0.1).
    table = pd.DataFrame({"epoch": 0, "layer": ["a", "b"], "estimator": "e", "I_XT": [2.0, 2.05],
                          "I_TY": [1.0, 0.5], "n_samples": 4096})
    assert not add_flags(table).dpi_violation.any()
    assert add_flags(table, tolerances={"e": 0.01}).dpi_violation.tolist() == [False, True]
    table.loc[1, "I_XT"] = math.nan  # an estimator that does not report I_XT never flags on it
    assert not add_flags(table, tolerances={"e": 0.01}).dpi_violation.any()


def test_flags_on_the_committed_szt_tanh_run():
    # The full SZT tanh run of figures/ (5 seeds x 10,000 epochs, mean over seeds, SZT binning, 45 epochs).
    path = Path(__file__).resolve().parents[2] / "figures" / "data" / "szt_information_plane.csv"
    df = pd.read_csv(path)
    df = df[df.activation == "tanh"].rename(columns={"activation": "run"})
    flags = add_flags(df, layer_order=["act1", "act2", "act3", "act4", "act5", "softmax"])
    assert not flags.dpi_violation.any()  # binning decreases along the chain at every epoch
    by_layer = flags.groupby("layer").saturated.mean()
    assert by_layer["act1"] == 1.0  # 10 tanh units x 30 bins separate all 4096 inputs: nothing to learn there
    assert (by_layer[["act3", "act4", "act5", "softmax"]] == 0).all()


def test_bootstrap_interval_and_subsample_columns():
    onehot = np.eye(2)[Y]
    store = _store({"identity": X, "onehot": onehot}, epochs=(0,))
    df = information_plane(store, estimators=WIDTH, ci=0.9, n_boot=20, subsample=(0.25, 0.5), progress=False)
    assert {"I_XT_low", "I_XT_high", "I_TY_low", "I_TY_high", "I_XT_at_0.25", "I_TY_at_0.5"} <= set(df.columns)
    ident = df.set_index("layer").loc["identity"]
    # Subsets of distinct inputs stay distinct: I(T;X) = log2(m) exactly.
    assert ident["I_XT_at_0.25"] == pytest.approx(10.0) and ident["I_XT_at_0.5"] == pytest.approx(11.0)
    # Bootstrap samples repeat rows (~63% distinct): their plug-in values lie below 12 bits (the bias), and the
    # basic interval reflects that bias back above the estimate (a saturated layer: flagged, meaningless).
    assert 12.0 < ident.I_XT_low <= ident.I_XT_high and ident.saturated
    oh = df.set_index("layer").loc["onehot"]
    h_y = float(-(np.bincount(Y) / len(Y) * np.log2(np.bincount(Y) / len(Y))).sum())
    assert oh.I_TY == pytest.approx(h_y) and oh.I_TY_low <= h_y <= oh.I_TY_high
    assert oh.I_TY_high - oh.I_TY_low < 0.01  # H(Y) of a near-balanced resample varies by ~1e-3 bits
    again = information_plane(store, estimators=WIDTH, ci=0.9, n_boot=20, subsample=(0.25, 0.5), progress=False)
    pd.testing.assert_frame_equal(df, again)  # seeded by (run, epoch, layer)


def test_diagnostics_off_and_bad_options():
    store = _store({"identity": X}, epochs=(0,))
    df = information_plane(store, estimators=WIDTH, diagnostics=False, progress=False)
    assert "saturated" not in df.columns and "I_XT_low" not in df.columns
    with pytest.raises(ValueError, match="'ci' parameter of information_plane must be a float in \\(0, 1\\). Got 1.5"):
        information_plane(store, estimators=WIDTH, ci=1.5, progress=False)
    with pytest.raises(ValueError, match="'n_boot' parameter of information_plane must be an int >= 2. Got 1"):
        information_plane(store, estimators=WIDTH, ci=0.9, n_boot=1, progress=False)
    with pytest.raises(ValueError, match="'subsample' parameter of information_plane must hold fractions in"):
        information_plane(store, estimators=WIDTH, subsample=(0.5, 1.0), progress=False)


def test_plots_ring_saturated_points_and_draw_intervals():
    import matplotlib.pyplot as plt

    from infoplane.plotting import GID_INTERVAL, GID_SATURATED, plot_information_plane

    store = _store({"identity": X, "three_bits": X[:, :3]}, epochs=(0, 1, 2))
    df = information_plane(store, estimators=WIDTH, ci=0.9, n_boot=5, progress=False)
    ax = plot_information_plane(df, layer_labels="legend")
    rings = [c for c in ax.collections if c.get_gid() == GID_SATURATED]
    assert len(rings) == 1 and np.allclose(rings[0].get_offsets()[:, 0], 12.0)  # the 3 identity points only
    assert len(rings[0].get_offsets()) == 3
    assert sum(c.get_gid() == GID_INTERVAL for c in ax.collections) == 2 * 2  # x and y bars per layer
    assert "saturated" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    plt.close("all")
    ax = plot_information_plane(df.drop(columns=["saturated", "I_XT_low", "I_XT_high", "I_TY_low", "I_TY_high"]))
    assert not any(c.get_gid() in (GID_SATURATED, GID_INTERVAL) for c in ax.collections)
    plt.close("all")
