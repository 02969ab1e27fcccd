"""figures/make_figures.py --quick rebuilds every figure and its numbers (the CI smoke run of the pipeline).

The script runs once, as a subprocess (as a user runs it), into a temporary directory; the tests then check
each PNG is a real image, each CSV has the columns and finite values its figure needs, and the exact cases of
the ground-truth figure are exact.
"""
from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "figures" / "make_figures.py"

pytestmark = pytest.mark.slow  # one run of the whole pipeline (about 40 s on 2 cores)

#: Every figure the script must write, and the columns its CSV must hold.
FIGURES = {
    "szt_information_plane": ["activation", "epoch", "layer", "estimator", "I_XT", "I_TY", "I_XT_std", "n_runs"],
    "saxe_comparison": ["activation", "epoch", "layer", "estimator", "preset", "I_XT", "I_TY"],
    "estimator_agreement": ["run", "activation", "seed", "epoch", "layer", "estimator", "preset", "I_XT", "I_TY",
                            "bound_XT", "bound_TY", "n_samples"],
    "compression_scores": ["activation", "layer", "estimator", "method", "compression", "compression_std",
                           "I_XT_max", "I_XT_final", "peak_epoch", "n_runs"],
    "ground_truth": ["case", "parameter", "value", "seed", "estimator", "quantity", "estimate", "exact"],
    "vib_beta_sweep": ["seed", "beta", "epoch", "rate_bits", "mixture_lower_bits", "mixture_upper_bits",
                       "gap_bits", "ba_bits", "test_accuracy"],
    "vib_information_plane": ["epoch", "layer", "estimator", "I_XT", "I_TY", "bound_XT", "bound_TY"],
    "ground_truth_suite": ["task", "kind", "dims", "n_samples", "seed", "estimator", "true_bits", "estimate_bits",
                           "error_bits", "seconds"],
    "wide_estimators": ["network", "epoch", "layer", "estimator", "I_XT", "I_TY", "bound_XT", "bound_TY",
                        "n_samples", "geo_compression"],
}
NUMERIC = ["I_XT", "I_TY", "compression", "estimate", "exact", "rate_bits", "mixture_lower_bits", "ba_bits"]


def _load_script():
    spec = importlib.util.spec_from_file_location("make_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("figures")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out), "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"make_figures.py --quick failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out, proc


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_is_a_real_image(quick_run, name):
    out, _ = quick_run
    path = out / f"{name}.png"
    assert path.is_file(), f"{name}.png was not written"
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.width >= 800 and img.height >= 300, img.size
        pixels = np.asarray(img.convert("L"), dtype=np.float64)
    # Something was drawn: a blank canvas has a single grey level.
    assert pixels.std() > 5.0


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_figure_has_its_numbers(quick_run, name):
    out, _ = quick_run
    df = pd.read_csv(out / "data" / f"{name}.csv")
    assert len(df) > 0
    missing = set(FIGURES[name]) - set(df.columns)
    assert not missing, f"{name}.csv lacks {missing}"
    for column in NUMERIC:
        if column in df.columns:
            values = df[column]
            if name == "wide_estimators" and column == "I_XT":  # I(T;Y)-only estimators leave I(T;X) NaN
                values = values[~df["estimator"].isin(["knn", "probe", "critic"])]
            if name == "compression_scores" and column == "compression":  # saturated: NaN with its reason
                unscored = df[column].isna()
                assert df.loc[unscored, "reason"].notna().all(), "a NaN compression score without a reason"
                values = values[~unscored]
            assert np.isfinite(values.to_numpy(dtype=np.float64)).all(), f"{name}.csv: {column} not finite"


def test_szt_runs_follow_the_protocol(quick_run):
    """All six SZTNet layers at the scheduled epochs; MI on all 4096 inputs; bits within their ceilings."""
    out, _ = quick_run
    mf = _load_script()
    s = mf.QUICK
    df = pd.read_csv(out / "data" / "estimator_agreement.csv")
    expected_epochs = list(mf.Schedule.log_spaced(s.epochs, s.n_record).epochs)
    assert sorted(df["epoch"].unique()) == expected_epochs
    assert list(dict.fromkeys(df["layer"])) == ["act1", "act2", "act3", "act4", "act5", "softmax"]
    assert set(df["activation"]) == {"tanh", "relu"}
    assert set(df["preset"]) == {"binning", "binning-width", "binning-adaptive", "kde-upper", "kde-lower"}
    assert (df["n_samples"] == 4096).all()
    # I(T;X) <= H(X) = 12 bits and I(T;Y) <= H(Y) < 1 bit (data processing), up to rounding.
    assert (df["I_XT"] <= 12 + 1e-9).all() and (df["I_XT"] >= 0).all()
    assert (df["I_TY"] <= 1 + 1e-9).all() and (df["I_TY"] >= 0).all()
    # KDE: the Bhattacharyya lower bound never exceeds the pairwise-KL upper bound on I(T;X).
    kde = df[df["preset"].str.startswith("kde")].pivot_table(index=["activation", "epoch", "layer"],
                                                             columns="preset", values="I_XT")
    assert (kde["kde-lower"] <= kde["kde-upper"] + 1e-9).all()


def test_compression_table_covers_every_configuration(quick_run):
    out, _ = quick_run
    df = pd.read_csv(out / "data" / "compression_scores.csv")
    configs = set(zip(df["activation"], df["estimator"]))
    assert configs == {("tanh", "binning"), ("tanh", "binning-width"), ("tanh", "kde-upper"),
                       ("relu", "binning-width"), ("relu", "kde-upper"), ("relu", "binning")}
    assert set(df["layer"]) == {"act1", "act2", "act3", "act4", "act5"}  # hidden layers only
    assert len(df) == 30
    # compression = max - final mean, so it is >= 0 and at most the maximum.
    # Saturated trajectories get no score (NaN with a reason, issue 18); the others are >= 0 and <= the max.
    scored = df[df["compression"].notna()]
    assert df.loc[df["compression"].isna(), "reason"].notna().all()
    assert (scored["compression"] >= -1e-12).all() and (scored["compression"] <= scored["I_XT_max"] + 1e-12).all()


def test_ground_truth_exact_cases_are_exact(quick_run):
    """Discrete closed forms hold to rounding; the rate matches its closed form on a standardised input."""
    out, _ = quick_run
    df = pd.read_csv(out / "data" / "ground_truth.csv")
    discrete = df[df["case"].isin(["one_hot_labels", "distinct_rows", "constant_layer"])]
    assert len(discrete) >= 5 * 8
    # Plug-in entropies of exact discrete cases: only float rounding separates them (1e-9 bits).
    np.testing.assert_allclose(discrete["estimate"], discrete["exact"], atol=1e-9)
    rate = df[(df["case"] == "linear_gaussian") & (df["quantity"] == "R")]
    np.testing.assert_allclose(rate["estimate"], rate["exact"], atol=1e-9)  # analytic: rounding only
    # The Gaussian channel's exact value is 1/2 log2(1 + s^2/v).
    channel = df[df["case"] == "gaussian_channel"]
    snr = np.where(channel["parameter"].str.startswith("N"), 10.0, channel["value"])
    np.testing.assert_allclose(channel["exact"], 0.5 * np.log2(1 + snr), rtol=1e-12)


def test_vib_tables_are_bounds_in_bits(quick_run):
    out, _ = quick_run
    sweep = pd.read_csv(out / "data" / "vib_beta_sweep.csv")
    assert (sweep["mixture_lower_bits"] <= math.log2(1797) + 1e-6).all()  # the all-j mixture is <= log2 N
    assert (sweep["ba_bits"] <= sweep["h_y_bits"] + 1e-9).all()  # I_BA <= H(Y) for classes
    plane = pd.read_csv(out / "data" / "vib_information_plane.csv")
    assert set(plane["bound_XT"]) == {"upper", "lower"} and set(plane["bound_TY"]) == {"lower"}


def test_timings_and_no_stores_left(quick_run):
    out, proc = quick_run
    timings = pd.read_csv(out / "data" / "timings.csv")
    assert timings["stage"].iloc[-1] == "total" and (timings["seconds"] >= 0).all()
    assert "total:" in proc.stdout
    assert not (out / "runs").exists()  # stores are scratch unless --keep-runs


def test_real_network_figure_and_numbers(quick_run):
    """The noisy real-network figure: both nets, binning beside the noisy estimator (with its standard errors),
    the probe's I(T;Y) on the ConvNet; noisy rows below log2 N + tolerance and with finite SEs."""
    out, _ = quick_run
    with Image.open(out / "real_network.png") as img:
        assert img.format == "PNG" and img.width >= 800 and np.asarray(img.convert("L"), float).std() > 5.0
    df = pd.read_csv(out / "data" / "real_network.csv")
    assert set(df["network"]) == {"ConvNet", "FC 64-512-128-32-10"}
    conv = df[df["network"] == "ConvNet"]
    assert set(conv["layer"]) == {"dense1.1", "dense2"} and set(conv["estimator"]) == {"binning-width", "noisy", "probe"}
    noisy = df[df["estimator"] == "noisy"]
    assert np.isfinite(noisy[["I_XT", "I_TY", "I_XT_se", "I_TY_se"]]).all(axis=None)
    # a layer saturated at log2 N in quick mode has every Monte Carlo term equal: SE 0
    assert (noisy["I_XT_se"] >= 0).all() and df.loc[df["estimator"] == "probe", "I_XT"].isna().all()
    assert (noisy["I_XT"] <= np.log2(noisy["n_samples"]) + 3 * noisy["I_XT_se"] + 1e-9).all()
    assert (out / "data" / "real_network_compression.csv").is_file()


def test_manifest_records_every_figure(quick_run):
    """data/manifest.json: per figure the mode, settings, commit, its own wall time and the machine."""
    import json

    out, _ = quick_run
    manifest = json.loads((out / "data" / "manifest.json").read_text())["figures"]
    mf = _load_script()
    assert set(manifest) == set(mf.FIGURES)
    for name, entry in manifest.items():
        assert entry["mode"] == "quick" and entry["settings"]["mode"] == "quick", name
        assert entry["wall_s"] >= 0 and entry["machine"]["cpus"] >= 1, name
        assert len(entry["machine"]["load_average"]) == 3 and "commit" in entry, name
    assert set(manifest["szt_information_plane"]["shared_stages_s"]) == {"train", "estimate"}
    assert manifest["wide_estimators"]["settings"]["wide"] == mf.WIDE["quick"]


def test_only_selects_a_figure_and_the_stages_it_needs():
    mf = _load_script()
    assert [k for k, _, _ in mf.select_stages("wide_estimators")] == ["train", "wide_estimators"]
    assert [k for k, _, _ in mf.select_stages("compression_scores,ground_truth")] == [
        "train", "estimate", "compression_scores", "ground_truth"]
    assert [k for k, _, _ in mf.select_stages(None)] == ["train", "estimate", *mf.FIGURES]
    with pytest.raises(SystemExit, match="--only: expected figure names"):
        mf.select_stages("szt_plane")
    mf_full = mf.FULL
    assert mf.needed_runs("wide_estimators,ground_truth", mf_full) == [("tanh", 0)]
    assert mf.needed_runs("wide_estimators,saxe_comparison", mf_full) is None
    assert mf.needed_runs("train", mf_full) is None and mf.needed_runs(None, mf_full) is None
