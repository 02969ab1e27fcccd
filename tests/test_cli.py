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
