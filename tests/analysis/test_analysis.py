"""Tests of infoplane.analysis: tables from real stores and estimators, parallel paths, files, summaries."""
from __future__ import annotations

import json
import math

import joblib
import numpy as np
import pandas as pd
import pytest

from infoplane._core.types import MIResult
from infoplane.analysis import (
    RESULT_COLUMNS,
    compression_scores,
    information_plane,
    load_results,
    save_results,
    summarize_runs,
)
from infoplane.estimators import BinningEstimator, KDEEstimator
from infoplane.estimators._base import BaseEstimator
from infoplane.estimators.presets import ESTIMATOR_PRESETS, make_estimator
from infoplane.store import MemoryStore, ZarrStore

N = 8
LABELS = np.array([0, 1] * (N // 2))
EPOCHS = [0, 1, 2, 3]


def _staircase(epoch: int) -> np.ndarray:
    """N rows whose width-1 bins hold 2**epoch rows each: I(T;X) = log2(N) - epoch bits exactly."""
    return (np.arange(N) // 2**epoch).astype(np.float32)[:, None]


def _fill(store, labels=LABELS):
    if labels is not None:
        store.set_labels(labels)
    for e in EPOCHS:
        # "stair": 8 / 2**e equal bins of 2**e rows; "onehot": one-hot(y), I(T;Y) = H(Y) = 1 bit, I(T;X) = 1 bit.
        store.write_epoch(e, {"stair": _staircase(e), "onehot": np.eye(2, dtype=np.float32)[LABELS]})
    return store


@pytest.fixture
def memory_store():
    return _fill(MemoryStore())


@pytest.fixture
def zarr_store(tmp_path):
    store = _fill(ZarrStore(tmp_path / "run.zarr", mode="w", durable=False))
    store.close()
    return tmp_path / "run.zarr"


def _random_store(n=256, epochs=6, seed=0, gaussian=False):
    rng = np.random.default_rng(seed)
    store = MemoryStore()
    store.set_labels(rng.integers(0, 2, n))
    for e in range(epochs):
        data = {
            "h1": np.tanh(rng.normal(size=(n, 5)) * (1 + e)).astype(np.float32),
            "h2": np.tanh(rng.normal(size=(n, 3))).astype(np.float32),
        }
        if gaussian:
            data["z"] = {"mu": rng.normal(size=(n, 2)).astype(np.float32),
                         "log_var": np.full((n, 2), -float(e), dtype=np.float32)}
        store.write_epoch(e, data)
    return store


WIDTH1 = BinningEstimator(bin_width=1.0)


# --------------------------------------------------------------------------------------------------
# Exact values and table shape
# --------------------------------------------------------------------------------------------------
def test_table_holds_exact_binning_values_per_epoch_and_layer(memory_store):
    df = information_plane(memory_store, estimators=WIDTH1, progress=False)
    assert list(df.columns) == RESULT_COLUMNS + ["saturated", "dpi_violation", "self_check", "self_check_note"]
    assert len(df) == len(EPOCHS) * 2
    stair = df[df.layer == "stair"]
    # Closed form: 2**(3 - e) equiprobable symbols -> I(T;X) = 3 - e bits; tolerance 1e-12 (float rounding only).
    np.testing.assert_allclose(stair.I_XT, [3.0 - e for e in EPOCHS], atol=1e-12)
    onehot = df[df.layer == "onehot"]
    np.testing.assert_allclose(onehot.I_TY, 1.0, atol=1e-12)  # one-hot(y), balanced: H(Y) = 1 bit
    np.testing.assert_allclose(onehot.I_XT, 1.0, atol=1e-12)
    assert (df.n_samples == N).all() and (df.bound_XT == "estimate").all() and (df.run == "0").all()


def test_dtypes_attrs_and_sorted_order(memory_store):
    est = {"w1": WIDTH1, "kde": KDEEstimator(noise_variance=1e-3)}
    df = information_plane(memory_store, estimators=est, progress=False)
    assert df.epoch.dtype == np.int64 and df.n_samples.dtype == np.int64
    assert df.I_XT.dtype == np.float64 and df.I_TY.dtype == np.float64
    assert df.attrs["layers"] == memory_store.layers
    assert df.attrs["estimators"] == ["w1", "kde"]
    assert df.attrs["conventions"]["kde"]["noise_variance"] == 1e-3
    assert df.attrs["conventions"]["w1"]["bin_width"] == 1.0
    assert df.attrs["units"] == "bits"
    json.dumps(df.attrs)  # JSON-able, as the sidecar needs
    expected = [(e, layer, lab) for e in EPOCHS for layer in memory_store.layers for lab in ("w1", "kde")]
    assert list(zip(df.epoch, df.layer, df.estimator)) == expected
    assert df.index.equals(pd.RangeIndex(len(df)))
    assert set(df.loc[df.estimator == "kde", "bound_XT"]) == {"upper"}


def test_sources_store_path_and_several_runs(memory_store, zarr_store):
    a = information_plane(memory_store, estimators=WIDTH1, progress=False)
    c = information_plane(zarr_store, estimators=WIDTH1, progress=False)
    d = information_plane(str(zarr_store), estimators=WIDTH1, progress=False)
    for other in (c, d):
        pd.testing.assert_frame_equal(a, other)
    runs = information_plane({"seed1": memory_store, "seed0": zarr_store}, estimators=WIDTH1, progress=False)
    assert list(pd.unique(runs.run)) == ["seed1", "seed0"]  # runs in the order given
    assert runs.attrs["runs"] == ["seed1", "seed0"]
    pd.testing.assert_frame_equal(
        runs[runs.run == "seed0"].drop(columns="run").reset_index(drop=True), a.drop(columns="run")
    )
    listed = information_plane([memory_store, memory_store], estimators=WIDTH1, progress=False)
    assert list(pd.unique(listed.run)) == ["0", "1"]


def test_source_is_a_real_recorder():
    import torch

    from infoplane import Recorder
    from infoplane.nets import SZTNet, load_szt

    X, y = load_szt(return_X_y=True)
    X, y = X[::16], y[::16]  # 256 distinct inputs keep the test fast
    model = SZTNet(seed=0)
    with Recorder(model, model.layer_names, X, labels=y, schedule=[0, 1]) as rec:
        rec.step(0)
        with torch.no_grad():
            model.fc1.weight.mul_(3.0)  # a visible change between the two recordings
        rec.step(1)
    df = information_plane(rec, estimators="binning", progress=False)
    assert df.attrs["layers"] == model.layer_names and sorted(set(df.epoch)) == [0, 1]
    # the table holds what the estimator says about the recorded arrays (exactly the same computation)
    direct = make_estimator("binning").estimate(rec.store.activations(1, "act1"), y)
    assert df[(df.epoch == 1) & (df.layer == "act1")].I_XT.item() == direct.I_XT


def test_layer_and_epoch_selection(memory_store):
    df = information_plane(memory_store, estimators=WIDTH1, layers="stair", epochs=[3, 1], progress=False)
    assert list(df.layer) == ["stair", "stair"] and list(df.epoch) == [1, 3]
    np.testing.assert_allclose(df.I_XT, [2.0, 0.0], atol=1e-12)


def test_labels_argument_overrides_store_labels(memory_store):
    flipped = 1 - LABELS
    df = information_plane(memory_store, labels=flipped, estimators=WIDTH1, layers=["onehot"], progress=False)
    np.testing.assert_allclose(df.I_TY, 1.0, atol=1e-12)  # one-hot(y) still determines 1 - y exactly


def test_presets_labels_and_duplicate_labels(memory_store):
    assert set(ESTIMATOR_PRESETS) >= {"binning", "binning-width", "binning-adaptive", "kde-upper", "kde-lower"}
    szt = make_estimator("binning")
    np.testing.assert_array_equal(szt.edges, np.linspace(-1, 1, 30))
    assert make_estimator("binning-width").bin_width == 0.07
    kde_lower = make_estimator("kde-lower")
    assert (kde_lower.bound, kde_lower.noise_variance) == ("lower", 1e-3)
    df = information_plane(
        memory_store, estimators=["binning", KDEEstimator(), KDEEstimator(bound="lower")], epochs=[0], progress=False,
    )
    assert df.attrs["estimators"] == ["binning", "kde-upper", "kde-lower"]
    assert df.attrs["conventions"]["kde-lower"]["bound"] == "lower"
    # Equal labels are an error, never renamed: the preset "binning" and a BinningEstimator are both "binning".
    with pytest.raises(ValueError, match=r"estimators\[0\] and estimators\[1\] are both labelled 'binning'.*dict"):
        information_plane(memory_store, estimators=["binning", WIDTH1], progress=False)
    named = information_plane(memory_store, estimators={"szt": "binning", "w1": WIDTH1}, epochs=[0], progress=False)
    assert named.attrs["estimators"] == ["szt", "w1"]


# --------------------------------------------------------------------------------------------------
# Gaussian layers
# --------------------------------------------------------------------------------------------------
class _LogVarEcho(BaseEstimator):
    """A test estimator: I_XT = mean log_var, I_TY = mean mu, so the test sees what it was given."""

    name = "echo"
    input_kind = "gaussian"

    def estimate(self, t, y, x=None, *, layer=None, epoch=None, log_var=None):
        return MIResult(float(np.mean(log_var)), float(np.mean(t)), "upper", "lower", self.name, len(t), {})


def test_gaussian_layers_get_mu_and_log_var_and_deterministic_layers_are_skipped():
    store = _random_store(n=64, epochs=3, gaussian=True)
    assert store.layer_kind("z") == "gaussian"
    df = information_plane(store, estimators={"echo": _LogVarEcho(), "bins": WIDTH1}, progress=False)
    echo = df[df.estimator == "echo"]
    assert set(echo.layer) == {"z"}  # skipped on h1, h2
    assert df.attrs["skipped"] == {"echo": ["h1", "h2"]}
    np.testing.assert_allclose(echo.I_XT, [0.0, -1.0, -2.0], atol=1e-6)  # log_var = -epoch, float32 exact
    mu = np.array([store.activations(e, "z").mean() for e in store.epochs])
    np.testing.assert_allclose(echo.I_TY, mu, rtol=1e-6)
    # the deterministic estimator bins mu: same value as binning mu directly
    direct = WIDTH1.estimate(store.activations(1, "z", part="mu"), store.labels)
    row = df[(df.estimator == "bins") & (df.layer == "z") & (df.epoch == 1)]
    assert row.I_XT.item() == pytest.approx(direct.I_XT, abs=1e-12)


def test_real_variational_estimator_on_a_gaussian_layer():
    from infoplane.estimators.variational import RateEstimator

    n = 128
    store = MemoryStore()
    labels = np.arange(n) % 2
    store.set_labels(labels)
    zeros = np.zeros((n, 3), dtype=np.float32)
    rng = np.random.default_rng(1)
    mu1 = (labels[:, None] * 2.0 + 0.1 * rng.normal(size=(n, 3))).astype(np.float32)
    store.write_epoch(0, {"z": {"mu": zeros, "log_var": zeros}, "h": zeros + 1})
    store.write_epoch(1, {"z": {"mu": mu1, "log_var": zeros - 2}, "h": zeros + 1})
    est = RateEstimator(n_samples=2, n_folds=2)
    df = information_plane(store, estimators=est, progress=False)
    assert list(df.layer) == ["z", "z"] and df.attrs["skipped"] == {"rate": ["h"]}
    assert df.I_XT.iloc[0] == 0.0  # closed form: the rate of N(0, I) against N(0, I) is exactly 0
    direct = est.estimate(mu1, labels, log_var=zeros - 2)
    assert df.I_XT.iloc[1] == direct.I_XT and df.I_TY.iloc[1] == direct.I_TY  # same seeded computation
    assert (df.bound_XT == "upper").all() and (df.bound_TY == "lower").all()


def test_only_gaussian_estimators_on_deterministic_layers_raises(memory_store):
    with pytest.raises(ValueError, match="Nothing to compute.*deterministic"):
        information_plane(memory_store, estimators=_LogVarEcho(), progress=False)


# --------------------------------------------------------------------------------------------------
# Parallel paths give the serial table
# --------------------------------------------------------------------------------------------------
ESTIMATORS = ["binning", "kde-upper"]


@pytest.mark.slow  # starts loky workers
def test_loky_n_jobs_2_equals_serial_memory_and_zarr(tmp_path):
    store = _random_store()
    serial = information_plane(store, estimators=ESTIMATORS, progress=False)
    parallel = information_plane(store, estimators=ESTIMATORS, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(serial, parallel)  # bitwise: same arrays, same code, same order
    assert serial.attrs == parallel.attrs
    with joblib.parallel_config(backend="loky", n_jobs=2):  # the user's own joblib configuration
        configured = information_plane(store, estimators=ESTIMATORS, progress=False)
    pd.testing.assert_frame_equal(serial, configured)
    zs = ZarrStore(tmp_path / "z", mode="w", durable=False)
    zs.set_labels(store.labels)
    for e in store.epochs:
        zs.write_epoch(e, {layer: store.activations(e, layer) for layer in store.layers})
    zs.close()
    from_path = information_plane(tmp_path / "z", estimators=ESTIMATORS, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(serial, from_path)


@pytest.mark.slow  # starts a dask cluster
@pytest.mark.parametrize("processes", [False, True])
def test_dask_backend_on_local_cluster_equals_serial(tmp_path, processes):
    distributed = pytest.importorskip("distributed")
    store = _random_store(n=128, epochs=4)
    zs = ZarrStore(tmp_path / "z", mode="w", durable=False)
    zs.set_labels(store.labels)
    for e in store.epochs:
        zs.write_epoch(e, {layer: store.activations(e, layer) for layer in store.layers})
    zs.close()
    serial = information_plane(store, estimators=ESTIMATORS, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        via_arg = information_plane(tmp_path / "z", estimators=ESTIMATORS, backend="dask", progress=False)
        with joblib.parallel_config(backend="dask"):
            via_config = information_plane(store, estimators=ESTIMATORS, progress=False)
    pd.testing.assert_frame_equal(serial, via_arg)
    pd.testing.assert_frame_equal(serial, via_config)


def test_dask_backend_without_client_raises_clearly():
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match="backend='dask' needs a running dask.distributed Client"):
        information_plane(_random_store(epochs=1), estimators=WIDTH1, backend="dask", progress=False)


def test_progress_bar_runs(memory_store, capsys):
    information_plane(memory_store, estimators=WIDTH1, progress=True)
    assert "information plane" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors(memory_store):
    with pytest.raises(KeyError, match="Unknown estimator preset 'nope'; presets are: binning"):
        information_plane(memory_store, estimators="nope", progress=False)
    with pytest.raises(KeyError, match=r"layers \['fc9'\] not recorded in run '0'; recorded layers: "
                                       r"\['stair', 'onehot'\]"):
        information_plane(memory_store, estimators=WIDTH1, layers=["fc9"], progress=False)
    with pytest.raises(KeyError, match=r"epochs \[7\] not recorded.*\[0, 1, 2, 3\]"):
        information_plane(memory_store, estimators=WIDTH1, epochs=7, progress=False)
    with pytest.raises(ValueError, match="labels must have one label per row of the activations \\(8\\). Got 3"):
        information_plane(memory_store, labels=[0, 1, 0], estimators=WIDTH1, progress=False)
    with pytest.raises(ValueError, match="estimators must have unique labels.*'kde-upper'"):
        information_plane(memory_store, estimators=[KDEEstimator(), KDEEstimator()], progress=False)
    with pytest.raises(TypeError, match=r"estimators\[1\] must be an estimator"):
        information_plane(memory_store, estimators=[WIDTH1, 3], progress=False)
    with pytest.raises(ValueError, match="estimators must hold at least one"):
        information_plane(memory_store, estimators=[], progress=False)
    with pytest.raises(TypeError, match="source must be a Recorder, a store"):
        information_plane(42, estimators=WIDTH1, progress=False)
    with pytest.raises(FileNotFoundError, match="no store at"):
        information_plane("/nonexistent/store.zarr", estimators=WIDTH1, progress=False)
    with pytest.raises(ValueError, match="'n_jobs' parameter of information_plane must be None or a non-zero"):
        information_plane(memory_store, estimators=WIDTH1, n_jobs=0, progress=False)
    with pytest.raises(ValueError, match="The 'backend' parameter must be one of"):
        information_plane(memory_store, estimators=WIDTH1, backend="spark", progress=False)


def test_missing_labels_raise():
    store = _fill(MemoryStore(), labels=None)
    with pytest.raises(ValueError, match="labels are needed for I\\(T;Y\\).*Run '0' has no stored labels"):
        information_plane(store, estimators=WIDTH1, progress=False)
    df = information_plane(store, labels=LABELS, estimators=WIDTH1, progress=False)
    assert len(df) == 8


@pytest.mark.parametrize("func", [summarize_runs, compression_scores])
def test_table_functions_reject_bad_tables(func):
    good = _table([("r", 0, "a", "e", 1.0, 0.5)])
    with pytest.raises(ValueError, match=r"df is missing required column\(s\) .I_XT."):
        func(good.drop(columns="I_XT"))
    with pytest.raises(ValueError, match="df is empty"):
        func(good.iloc[:0])
    with pytest.raises(TypeError, match="df must be a pandas DataFrame"):
        func({"I_XT": [1]})
    with pytest.raises(ValueError, match="rows sharing their"):
        func(pd.concat([good, good], ignore_index=True))


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".csv.gz"])
def test_save_and_load_round_trip_identical(tmp_path, suffix):
    store = _random_store(epochs=3)
    df = information_plane({"a": store, "b": store}, estimators=ESTIMATORS, progress=False)
    path = save_results(df, tmp_path / f"results{suffix}")
    back = load_results(path)
    pd.testing.assert_frame_equal(df, back, check_exact=True)  # dtypes and floats bit for bit
    assert back.attrs == df.attrs
    if suffix != ".parquet":
        assert (tmp_path / f"results{suffix}.json").exists()
    for table in (summarize_runs(df), compression_scores(df, aggregate=True)):
        back = load_results(save_results(table, tmp_path / f"t{suffix}"))
        pd.testing.assert_frame_equal(table, back, check_exact=True)
        assert back.attrs == table.attrs


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match=r"path must end in \.csv .* or \.parquet"):
        save_results(_table([("r", 0, "a", "e", 1.0, 0.5)]), tmp_path / "x.xlsx")
    with pytest.raises(FileNotFoundError, match="No results table"):
        load_results(tmp_path / "missing.csv")
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "bare.csv", index=False)
    with pytest.warns(UserWarning, match="no conventions sidecar"):
        assert load_results(tmp_path / "bare.csv").attrs == {}


# --------------------------------------------------------------------------------------------------
# Summaries over runs and compression scores, on hand-made tables
# --------------------------------------------------------------------------------------------------
def _table(rows):
    df = pd.DataFrame(rows, columns=["run", "epoch", "layer", "estimator", "I_XT", "I_TY"])
    df["bound_XT"] = "estimate"
    df["bound_TY"] = "estimate"
    df["n_samples"] = 100
    return df


def test_summarize_runs_exact():
    df = _table([
        ("s0", 0, "a", "e", 1.0, 0.1), ("s1", 0, "a", "e", 2.0, 0.3), ("s2", 0, "a", "e", 3.0, 0.5),
        ("s0", 5, "a", "e", 4.0, 1.0), ("s1", 5, "a", "e", 6.0, 1.0),
    ])
    out = summarize_runs(df)
    assert list(out.epoch) == [0, 5]
    first, last = out.iloc[0], out.iloc[1]
    # mean of 1, 2, 3 = 2; sample std = sqrt(((1)^2 + 0 + 1^2) / 2) = 1; tolerances: float rounding only
    assert first.I_XT == pytest.approx(2.0, abs=1e-12) and first.I_XT_std == pytest.approx(1.0, abs=1e-12)
    assert first.I_TY == pytest.approx(0.3, abs=1e-12) and first.I_TY_std == pytest.approx(0.2, abs=1e-12)
    assert (first.I_XT_min, first.I_XT_max, first.n_runs) == (1.0, 3.0, 3)
    assert last.I_XT == pytest.approx(5.0) and last.I_XT_std == pytest.approx(math.sqrt(2.0), abs=1e-12)
    assert last.I_TY_std == 0.0 and last.n_runs == 2
    pop = summarize_runs(df, ddof=0)
    assert pop.I_XT_std.iloc[0] == pytest.approx(math.sqrt(2 / 3), abs=1e-12)
    single = summarize_runs(df[df.run == "s0"])
    assert single.I_XT_std.isna().all() and (single.n_runs == 1).all()  # one run: no spread (ddof=1)
    assert out.attrs["summary"]["runs"] == ["s0", "s1", "s2"]
    mixed = df.copy()
    mixed.loc[0, "bound_XT"] = "upper"
    with pytest.raises(ValueError, match="mixes bound kinds across runs"):
        summarize_runs(mixed)


def test_compression_scores_exact():
    df = _table([("r0", 0, "L", "e", 1.0, 0.0), ("r0", 10, "L", "e", 3.0, 0.0), ("r0", 100, "L", "e", 2.0, 0.0),
                 ("r1", 0, "L", "e", 2.0, 0.0), ("r1", 10, "L", "e", 4.0, 0.0), ("r1", 100, "L", "e", 4.0, 0.0)])
    # shuffled rows: the score sorts by epoch itself
    scores = compression_scores(df.sample(frac=1.0, random_state=0))
    r0 = scores[scores.run == "r0"].iloc[0]
    assert r0.peak_epoch == 10 and r0.I_XT_max == 3.0 and r0.I_XT_final == 2.0
    assert r0.compression == pytest.approx(1.0, abs=1e-12)
    assert r0.compression_fraction == pytest.approx(1 / 3, abs=1e-12)
    r1 = scores[scores.run == "r1"].iloc[0]  # rises then flat: no compression, peak at its first maximum
    assert (r1.compression, r1.compression_fraction, r1.peak_epoch) == (0.0, 0.0, 10)
    two = compression_scores(df, final_epochs=2)
    assert two.compression.tolist() == pytest.approx([3.0 - 2.5, 0.0], abs=1e-12)  # final = mean(3, 2)
    agg = compression_scores(df, aggregate=True).iloc[0]
    assert agg.compression == pytest.approx(0.5, abs=1e-12)
    assert agg.compression_std == pytest.approx(math.sqrt(0.5), abs=1e-12)  # std of (1, 0), ddof=1
    assert agg.compression_fraction == pytest.approx(1 / 6, abs=1e-12)
    assert (agg.peak_epoch, agg.n_runs) == (10.0, 2)
    assert compression_scores(df, final_epochs=2).attrs["compression"]["final_epochs"] == 2


def test_compression_scores_zero_maximum_and_bad_final_epochs():
    df = _table([("r", 0, "L", "e", 0.0, 0.0), ("r", 1, "L", "e", 0.0, 0.0)])
    assert math.isnan(compression_scores(df).compression_fraction.item())
    with pytest.raises(ValueError, match="'final_epochs' parameter of compression_scores must be an int >= 1"):
        compression_scores(df, final_epochs=0)


def test_compression_on_real_staircase(memory_store):
    # stair: I(T;X) = 3, 2, 1, 0 bits: peak at epoch 0, falls 3 bits, fraction 1
    df = information_plane(memory_store, estimators=WIDTH1, progress=False)
    row = compression_scores(df).set_index("layer").loc["stair"]
    assert (row.peak_epoch, row.compression, row.compression_fraction) == (0, 3.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Shuffle baseline column
# --------------------------------------------------------------------------------------------------
def test_shuffle_column_is_the_estimators_value_under_permuted_labels(tmp_path):
    # One-hot(y) carries I(T;Y) = H(Y) = 1 bit exactly. With the labels permuted the true value is 0; for a
    # 2x2 table at N = 2,000 the plug-in bias is ~1/(2N ln 2) = 4e-4 bits and the chi-square fluctuation
    # of the same order, so 0.01 bits is a generous but failing-if-broken ceiling.
    rng = np.random.default_rng(1)
    y = rng.permutation(np.repeat([0, 1], 1000))
    store = MemoryStore()
    store.set_labels(y)
    store.write_epoch(0, {"onehot": np.eye(2, dtype=np.float32)[y]})
    df = information_plane(store, estimators={"w": WIDTH1}, shuffle=3, progress=False)
    assert df["I_TY"].iloc[0] == pytest.approx(1.0, abs=1e-12)
    assert 0.0 <= df["I_TY_shuffled"].iloc[0] < 0.01
    direct = WIDTH1.shuffle_baseline(np.eye(2)[y], y, n_permutations=3, seed=0)
    assert df["I_TY_shuffled"].iloc[0] == direct.I_TY
    parallel = information_plane(store, estimators={"w": WIDTH1}, shuffle=3, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(df, parallel)
    path = save_results(df, tmp_path / "t.csv")
    pd.testing.assert_frame_equal(load_results(path), df)
    assert "I_TY_shuffled" not in information_plane(store, estimators={"w": WIDTH1}, progress=False)
    with pytest.raises(ValueError, match=r"'shuffle' parameter of information_plane must be an int >= 0"):
        information_plane(store, estimators={"w": WIDTH1}, shuffle=-1, progress=False)
