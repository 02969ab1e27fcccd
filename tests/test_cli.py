"""Tests of the command line (python -m infoplane), run in-process through main(argv)."""
from __future__ import annotations

import pytest

from infoplane.__main__ import build_parser, main, parse_schedule
from infoplane.analysis import load_results
from infoplane.nets import SZTNet
from infoplane.store import open_store

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LAYERS = SZTNet().layer_names


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny `run` shared by the tests that read its files (3 epochs, 2 recorded, binning only)."""
    out = tmp_path_factory.mktemp("run")
    code = main(["run", "--out", str(out), "--epochs", "3", "--schedule", "0,3", "--estimators", "binning",
                 "--n-jobs", "1", "--no-progress"])
    return code, out


def test_no_subcommand_prints_help_and_fails(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "choose a sub-command" in err and "python -m infoplane run --out results/" in err


@pytest.mark.parametrize(
    "command, options",
    [
        (None, ["run", "record", "estimate", "plot"]),
        ("run", ["--activation", "--epochs", "--seed", "--schedule", "--estimators", "--out", "--n-jobs",
                 "--no-progress", "--batch-size", "--lr", "--overwrite", "--final-epochs", "--dask-scheduler",
                 "kde-upper"]),
        ("record", ["--activation", "--epochs", "--seed", "--schedule", "--out", "--no-progress"]),
        ("estimate", ["STORE", "--estimators", "--out", "--layers", "--epochs", "--n-jobs", "--no-progress"]),
        ("plot", ["TABLE", "--out", "--estimators", "--layers", "--epoch-scale", "--hx", "--hy", "--dpi"]),
    ],
)
def test_help_of_every_subcommand(capsys, command, options):
    argv = ["--help"] if command is None else [command, "--help"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text


def test_every_option_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


@pytest.mark.slow  # needs the tiny `run` (trains a net)
def test_run_writes_its_files(tiny_run, capsys):
    code, out = tiny_run
    assert code == 0
    for name in ("store.zarr", "training.csv", "information_plane.csv", "information_plane.csv.json",
                 "compression.csv", "information_plane.png"):
        assert (out / name).exists(), name
    assert (out / "information_plane.png").read_bytes()[:8] == PNG_MAGIC
    df = load_results(out / "information_plane.csv")
    assert sorted(set(df.epoch)) == [0, 3] and list(df.attrs["layers"]) == LAYERS
    assert len(df) == 2 * len(LAYERS) and set(df.estimator) == {"binning"}
    assert (df.n_samples == 4096).all()  # all 4096 inputs are the probe
    assert df.attrs["conventions"]["binning"]["edges"][0] == -1.0
    store = open_store(out / "store.zarr")
    assert store.epochs == [0, 3] and store.labels.shape == (4096,)
    assert store.metadata["command_line"]["epochs"] == 3
    scores = load_results(out / "compression.csv")
    assert list(scores.layer) == LAYERS


@pytest.mark.slow  # needs the tiny `run` (trains a net)
def test_run_refuses_to_overwrite_without_flag(tiny_run, capsys):
    _, out = tiny_run
    assert main(["record", "--out", str(out), "--epochs", "1", "--no-progress"]) == 1
    assert "exists" in capsys.readouterr().err


@pytest.mark.slow  # needs the tiny `run` (trains a net)
def test_estimate_and_plot_a_store(tiny_run, tmp_path, capsys):
    _, out = tiny_run
    table = tmp_path / "kde.parquet"
    code = main(["estimate", str(out / "store.zarr"), "--estimators", "kde-upper,binning-width", "--layers",
                 "act5,softmax", "--epochs", "3", "--out", str(table), "--no-progress"])
    assert code == 0
    df = load_results(table)
    assert list(df.layer.unique()) == ["act5", "softmax"] and set(df.epoch) == {3}
    assert list(df.estimator.unique()) == ["kde-upper", "binning-width"]
    assert (tmp_path / "kde_compression.parquet").exists()
    assert "compression of I(T;X)" in capsys.readouterr().out
    png = tmp_path / "figure.png"
    assert main(["plot", str(table), "--out", str(png), "--estimators", "kde-upper", "--hx", "12"]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert main(["plot", str(out / "information_plane.csv")]) == 0
    assert (out / "information_plane.png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--estimators", "binning,nope"], "unknown estimator"),
        (["run", "--estimators", "binning,binning"], "must not repeat"),
        (["run", "--schedule", "sometimes"], "--schedule must be 'log:N'"),
        (["run", "--epochs", "0"], "expected a positive integer"),
        (["run", "--activation", "swish"], "unknown activation 'swish'"),
        (["run", "--n-jobs", "0"], "non-zero"),
        (["plot", "x.csv", "--epoch-scale", "cubic"], "invalid choice"),
        (["estimate"], "the following arguments are required: STORE"),
    ],
)
def test_bad_arguments_are_usage_errors(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow  # needs the tiny `run` (trains a net)
def test_bad_inputs_fail_with_a_message(tiny_run, tmp_path, capsys):
    _, out = tiny_run
    assert main(["estimate", str(tmp_path / "missing.zarr")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["estimate", str(out / "store.zarr"), "--layers", "fc9", "--out", str(tmp_path / "t.csv"),
                 "--no-progress"]) == 1
    assert "layers ['fc9'] not recorded" in capsys.readouterr().err
    assert main(["plot", str(out / "information_plane.csv"), "--estimators", "kde-lower",
                 "--out", str(tmp_path / "p.png")]) == 1
    assert "estimator(s) ['kde-lower'] not in the table" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "none.csv")]) == 1
    assert "No results table" in capsys.readouterr().err


def test_parse_schedule():
    assert parse_schedule("0,5,1", 10).epochs_until(10) == [0, 1, 5]
    assert parse_schedule("every:4", 10).epochs_until(10) == [0, 4, 8, 10]  # the last epoch is always recorded
    assert parse_schedule("all", 3).epochs_until(3) == [0, 1, 2, 3]
    log = parse_schedule("log:30", 300).epochs_until(300)
    assert log[0] == 0 and log[-1] == 300 and 20 <= len(log) <= 30
    with pytest.raises(ValueError, match="--schedule must be"):
        parse_schedule("log:x", 10)


# --------------------------------------------------------------------------------------------------
# --estimators with parameters, every preset and estimator name
# --------------------------------------------------------------------------------------------------
def test_estimators_take_parameters_and_every_preset_and_estimator_name():
    from infoplane._cli import estimator_names, parse_estimators
    from infoplane.estimators import BinningEstimator, KDEEstimator, KNNEstimator

    ests = parse_estimators("kde-upper:noise_variance=0.1,binning:n_bins=50,strategy=adaptive,knn:k=5:metric=max")
    assert list(ests) == ["kde-upper(noise_variance=0.1)", "binning(n_bins=50, strategy=adaptive)",
                          "knn(k=5, metric=max)"]
    kde, binning, knn = ests.values()
    assert isinstance(kde, KDEEstimator) and kde.noise_variance == 0.1 and kde.bound == "upper"  # preset kept
    assert isinstance(binning, BinningEstimator) and binning.n_bins == 50 and binning.edges is None
    assert binning.strategy == "adaptive"  # the preset's 30 edges gave way to the scheme asked for
    assert isinstance(knn, KNNEstimator) and knn.k == 5
    presets, classes = estimator_names()
    assert {"knn", "probe", "critic", "noisy", "kde", "rate", "mixture", "latent", "sample-size"} <= set(classes)
    for name in presets + list(classes):  # every name builds with its defaults
        spec = f"{name}:estimator=knn" if name == "sample-size" else name  # a wrapper names what it wraps
        (est,) = parse_estimators(spec).values()
        assert est.name == (name.split("-")[0] if name in presets else name)
    assert list(parse_estimators("binning,kde-upper")) == ["binning", "kde-upper"]  # the default is unchanged


@pytest.mark.parametrize(
    "spec, message",
    [
        ("knn:k=0", "bad parameters in 'knn:k=0': The 'k' parameter of KNNEstimator must be an int >= 1"),
        ("kde-upper:sigma=1", "estimator 'kde-upper' (KDEEstimator) takes no parameter 'sigma'"),
        ("kde:noise_variance=-1", "The 'noise_variance' parameter of KDEEstimator must be a finite float > 0"),
        ("knn:k", "parameter 'k' in 'knn:k' is not PARAM=VALUE"),
        ("knn:k=3:k=4", "parameter 'k' is given twice"),
        ("n_bins=5", "is a parameter without an estimator"),
        ("kde-upper,kde-upper", "must not repeat"),
        ("latentish", "unknown estimator 'latentish'"),
        ("sample-size", "estimator 'sample-size' (SampleSizeCheck) needs parameter(s) 'estimator'"),
    ],
)
def test_bad_estimator_specs_are_usage_errors(capsys, spec, message):
    assert main(["estimate", "store.zarr", "--estimators", spec]) == 2
    assert message in capsys.readouterr().err


def test_help_texts_have_no_default_none_noise(capsys):
    for command in ("run", "record", "estimate", "plot"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "(default: None)" not in text and "(default: False)" not in text, command
        assert "(default: 300)" in text or command in ("estimate", "plot")  # real defaults are still shown
    assert main(["estimate", "--help"]) == 0
    text = capsys.readouterr().out
    assert "knn: KNNEstimator(k, metric, target" in text
    assert 'example: --estimators "kde-upper:noise_variance=0.1,binning:n_bins=50,knn:k=5"' in text


def test_an_existing_store_is_refused_naming_overwrite(tmp_path, capsys):
    (tmp_path / "store.zarr").mkdir()
    assert main(["record", "--out", str(tmp_path), "--epochs", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err


# --------------------------------------------------------------------------------------------------
# record --model MODULE:FUNCTION
# --------------------------------------------------------------------------------------------------
USER_MODULE = '''
import numpy as np
import torch
from torch import nn


class Tiny(nn.Module):
    layer_names = ["hidden", "act"]

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.hidden = nn.Linear(3, 4)
        self.act = nn.Tanh()
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


def build():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3)).astype(np.float32)
    return Tiny(), x, (x[:, 0] > 0).astype(np.int64)


def unnamed():
    model, x, y = build()
    return nn.Sequential(nn.Linear(3, 2)), x, y


def wrong():
    return 1, 2
'''


@pytest.mark.slow  # trains a tiny user model and estimates it (about 3 s)
def test_record_a_users_model_and_estimate_it_with_parameters(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_models.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert main(["record", "--model", "my_models:build", "--out", str(out), "--epochs", "2", "--schedule", "0,2",
                 "--no-progress"]) == 0
    assert "trained my_models:build()" in capsys.readouterr().out
    store = open_store(out / "store.zarr")
    assert store.layers == ["hidden", "act"] and store.epochs == [0, 2] and store.labels.shape == (60,)
    assert store.metadata["task"] == "my_models:build"
    table = out / "t.csv"
    assert main(["estimate", str(out / "store.zarr"), "--estimators",
                 "binning:n_bins=8,kde-upper:noise_variance=0.05,knn:k=2", "--out", str(table), "--n-jobs", "1",
                 "--no-progress"]) == 0
    df = load_results(table)
    assert list(df.estimator.unique()) == ["binning(n_bins=8)", "kde-upper(noise_variance=0.05)", "knn(k=2)"]
    assert df.attrs["conventions"]["kde-upper(noise_variance=0.05)"]["noise_variance"] == 0.05
    assert df[df.estimator == "knn(k=2)"].I_XT.isna().all()  # k-NN gives I(T;Y) only
    png = tmp_path / "p.png"
    assert main(["plot", str(table), "--out", str(png)]) == 0  # k-NN's panel is I(T;Y) against epoch
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert main(["record", "--model", str(tmp_path / "my_models.py") + ":build", "--out", str(out),
                 "--epochs", "1", "--no-progress", "--overwrite"]) == 0  # a file path works too


@pytest.mark.parametrize(
    "spec, message",
    [
        ("my_models", "--model must be MODULE:FUNCTION"),
        ("no_such_module:build", "cannot import module 'no_such_module'"),
        ("my_models:missing", "has no function 'missing'"),
        ("my_models:wrong", "must return a tuple (model, probe, labels). Got tuple of length 2"),
        ("my_models:unnamed", "name the layers to record with --layers"),
    ],
)
def test_bad_models_fail_with_a_message(tmp_path, capsys, monkeypatch, spec, message):
    (tmp_path / "my_models.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["record", "--model", spec, "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "store.zarr").exists()  # nothing written
