"""Held-out probes: two Recorders (training and held-out probe) of one network, a ``probe`` column in the
tables, summaries and scores per probe, and plots that keep the probes apart."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from infoplane import plotting  # noqa: E402
from infoplane.analysis import (  # noqa: E402
    compression_scores,
    information_plane,
    load_results,
    save_results,
    summarize_runs,
)
from infoplane.recording import Recorder  # noqa: E402


def net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def record_both(seed, x_train, y_train, x_held, y_held):
    """One network, two Recorders stepped by one callback: the training probe and the held-out probe."""
    model = net(seed)
    train = Recorder(model, ["1"], x_train, labels=y_train, probe_name="train")
    held = Recorder(model, ["1"], x_held, labels=y_held, probe_name="held-out")
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for epoch in range(3):
        train.step(epoch)
        held.step(epoch)
        loss = nn.functional.cross_entropy(model(torch.as_tensor(x_train)), torch.as_tensor(y_train))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return train, held


@pytest.fixture(scope="module")
def recorded():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    runs = {}
    for seed in (0, 1):
        train, held = record_both(seed, x[:60], y[:60], x[60:], y[60:])
        runs[f"{seed}/train"], runs[f"{seed}/held-out"] = train, held
    return runs


def test_the_probe_name_becomes_a_probe_column(recorded, tmp_path):
    df = information_plane(recorded, estimators="binning", progress=False)
    assert list(df.columns[:2]) == ["run", "probe"]
    assert df.groupby("run")["probe"].first().to_dict() == {
        "0/train": "train", "0/held-out": "held-out", "1/train": "train", "1/held-out": "held-out"}
    assert set(df.loc[df.probe == "train", "n_samples"]) == {60} and set(df.loc[df.probe == "held-out", "n_samples"]) == {20}
    assert df.attrs["probes"]["1/held-out"] == "held-out"
    assert recorded["0/train"].store.metadata["probe_name"] == "train"
    path = tmp_path / "t.csv"
    save_results(df, path)
    assert list(load_results(path)["probe"].unique()) == ["train", "held-out"]  # survives a file
    no_names = information_plane({"a": recorded["0/train"].store}, estimators="binning", progress=False)
    assert "probe" in no_names.columns  # a named store gives the column even alone
    unnamed = Recorder(net(0), ["1"], np.zeros((5, 3), np.float32), labels=np.arange(5) % 2)
    unnamed.step(0)
    assert "probe" not in information_plane(unnamed, progress=False).columns  # nothing named: no column


def test_summaries_and_scores_keep_the_probes_apart(recorded):
    df = information_plane(recorded, estimators="binning", progress=False)
    summary = summarize_runs(df)
    assert set(summary["probe"]) == {"train", "held-out"} and (summary["n_runs"] == 2).all()
    part = df[(df.probe == "held-out") & (df.epoch == 2) & (df.layer == "1")]
    row = summary[(summary.probe == "held-out") & (summary.epoch == 2) & (summary.layer == "1")]
    np.testing.assert_allclose(row["I_XT"].iloc[0], part["I_XT"].mean())  # the mean of the held-out runs only
    scores = compression_scores(df, aggregate=True)
    assert set(scores["probe"]) == {"train", "held-out"}


def test_the_plots_keep_the_probes_apart(recorded):
    df = information_plane(recorded, estimators="binning", progress=False)
    fig, ax = plt.subplots()
    plotting.plot_information_plane(df, ax=ax)
    lines = [ln for ln in ax.lines if ln.get_gid() == plotting.GID_TRAJECTORY]
    assert sorted(ln.get_linestyle() for ln in lines) == ["-", "--"]
    held = df[(df.probe == "held-out")].groupby("epoch")["I_TY"].mean().to_numpy()
    (dashed,) = [ln for ln in lines if ln.get_linestyle() == "--"]
    np.testing.assert_allclose(dashed.get_ydata(), held)
    fig = plotting.plot_information_plane_grid(df, col="probe")
    assert len(fig.axes) == 3
    plt.close("all")
    with pytest.raises(ValueError, match="probe_name"):
        Recorder(net(0), ["1"], np.zeros((5, 3), np.float32), probe_name="")
