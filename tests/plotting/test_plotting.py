"""Tests of infoplane.plotting: they check the artists drawn (data, colours, norms), never pixels."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless and deterministic; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402
from PIL import Image  # noqa: E402

from infoplane import plotting  # noqa: E402
from infoplane.plotting._plane import QUANTITY_LABELS  # noqa: E402

LAYERS = ["l1", "l2", "l3"]
EPOCHS = [0, 1, 2, 5, 10]
VIRIDIS = matplotlib.colormaps["viridis"]


def make_table(*, runs=("0",), estimators=("binning",), layers=LAYERS, epochs=EPOCHS, shuffle=True):
    """A hand-made results table whose values encode (run, layer, epoch) so every drawn number is checkable."""
    rows = []
    for e_i, est in enumerate(estimators):
        for r_i, run in enumerate(runs):
            for l_i, layer in enumerate(layers):
                for epoch in epochs:
                    rows.append({
                        "run": run, "epoch": epoch, "layer": layer, "estimator": est,
                        "I_XT": 10.0 - 2.0 * l_i + 0.1 * epoch + 2.0 * r_i + 5.0 * e_i,
                        "I_TY": 0.1 * l_i + 0.05 * epoch + 0.2 * r_i,
                        "bound_XT": "estimate", "bound_TY": "estimate", "n_samples": 4096,
                    })
    df = pd.DataFrame(rows)
    if shuffle:  # plotting must sort by epoch itself
        df = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    df.attrs["layers"] = list(layers)
    return df


def by_gid(artists, gid):
    return [a for a in artists if a.get_gid() == gid]


def trajectories(ax):
    return by_gid(ax.lines, plotting.GID_TRAJECTORY)


def points(ax):
    return by_gid(ax.collections, plotting.GID_POINTS)


def expected(df, layer, column, run=None):
    sub = df[df["layer"] == layer] if run is None else df[(df["layer"] == layer) & (df["run"] == run)]
    return sub.sort_values("epoch")[column].to_numpy()


# ---------------------------------------------------------------------------------------------------------
# plot_information_plane
# ---------------------------------------------------------------------------------------------------------
def test_plane_one_line_per_layer_with_the_table_values_in_epoch_order():
    df = make_table()
    fig, ax = plt.subplots()
    returned = plotting.plot_information_plane(df, ax=ax)
    assert returned is ax
    lines = trajectories(ax)
    assert [line.get_label() for line in lines] == LAYERS
    for line, layer in zip(lines, LAYERS):
        np.testing.assert_array_equal(line.get_xdata(), expected(df, layer, "I_XT"))
        np.testing.assert_array_equal(line.get_ydata(), expected(df, layer, "I_TY"))
    assert ax.get_xlabel() == "I(T;X) [bits]"
    assert ax.get_ylabel() == "I(T;Y) [bits]"
    assert ax.get_title() == "binning"


def test_plane_ax_none_draws_on_current_axes():
    fig, ax = plt.subplots()
    assert plotting.plot_information_plane(make_table()) is ax


def test_plane_colorbar_limits_equal_the_epoch_range_and_colours_follow_epoch():
    df = make_table(epochs=[3, 4, 8, 20])
    fig, ax = plt.subplots()
    plotting.plot_information_plane(df, ax=ax)
    colls = points(ax)
    assert len(colls) == len(LAYERS)
    cbar = colls[0].colorbar
    assert cbar is not None and cbar.ax.get_ylabel() == "epoch"
    assert (cbar.norm.vmin, cbar.norm.vmax) == (3, 20)
    assert all(c.norm is cbar.norm for c in colls)  # one scale for all layers
    fig.canvas.draw()  # scalar-mapped face colours are computed at draw time
    for coll, layer in zip(colls, LAYERS):
        faces = coll.get_facecolors()
        assert len(faces) == 4
        # exact: the norm maps the first epoch to 0 and the last to 1, viridis' two ends
        np.testing.assert_allclose(faces[0], VIRIDIS(0.0))
        np.testing.assert_allclose(faces[-1], VIRIDIS(1.0))
        np.testing.assert_array_equal(coll.get_offsets()[:, 0], expected(df, layer, "I_XT"))


@pytest.mark.parametrize(("epochs", "norm_type"), [([0, 1, 10, 100], mcolors.SymLogNorm),
                                                    ([1, 10, 100], mcolors.LogNorm)])
def test_plane_log_epoch_scale_handles_epoch_zero(epochs, norm_type):
    fig, ax = plt.subplots()
    plotting.plot_information_plane(make_table(epochs=epochs), epoch_scale="log", ax=ax)
    coll = points(ax)[0]
    assert isinstance(coll.norm, norm_type)
    assert (coll.norm.vmin, coll.norm.vmax) == (epochs[0], epochs[-1])
    fig.canvas.draw()
    faces = coll.get_facecolors()
    np.testing.assert_allclose(faces[0], VIRIDIS(0.0))
    np.testing.assert_allclose(faces[-1], VIRIDIS(1.0))
    # log spacing: 1, 10, 100 are evenly spaced in colour (10 is halfway between 1 and 100)
    np.testing.assert_allclose(coll.norm(10.0), (coll.norm(1.0) + coll.norm(100.0)) / 2, atol=1e-12)


def test_plane_reference_lines_at_entropies():
    fig, ax = plt.subplots()
    plotting.plot_information_plane(make_table(), H_X=12.0, H_Y=0.9992, ax=ax)
    (hx,) = by_gid(ax.lines, plotting.GID_H_X)
    (hy,) = by_gid(ax.lines, plotting.GID_H_Y)
    np.testing.assert_array_equal(hx.get_xdata(), [12.0, 12.0])
    np.testing.assert_array_equal(hy.get_ydata(), [0.9992, 0.9992])
    assert ax.get_xlim()[1] > 12.0 and ax.get_ylim()[1] > 0.9992  # inside the view, not on the frame
    fig, ax = plt.subplots()
    plotting.plot_information_plane(make_table(), ax=ax)
    assert not by_gid(ax.lines, plotting.GID_H_X) and not by_gid(ax.lines, plotting.GID_H_Y)


def test_plane_layer_labels_annotate_and_legend():
    fig, ax = plt.subplots()
    plotting.plot_information_plane(make_table(), ax=ax, layer_labels="both")
    df = make_table()
    texts = {t.get_text(): t for t in ax.texts}
    for layer in LAYERS:  # annotated at the last epoch's point
        assert texts[layer].xy == (expected(df, layer, "I_XT")[-1], expected(df, layer, "I_TY")[-1])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == LAYERS
    fig, ax = plt.subplots()
    plotting.plot_information_plane(make_table(), ax=ax, layer_labels="legend", H_X=12.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == LAYERS + ["H(X) = 12 bits"]
    assert not ax.texts  # no annotations, and H(X) is named in the legend only
    fig, ax = plt.subplots()
    plotting.plot_information_plane(make_table(), ax=ax, layer_labels=None)
    assert not ax.texts and ax.get_legend() is None


def test_plane_filters_estimator_and_layers_in_the_given_order():
    df = make_table(estimators=("binning", "kde"))
    fig, ax = plt.subplots()
    plotting.plot_information_plane(df, estimator="kde", layers=["l3", "l1"], ax=ax)
    lines = trajectories(ax)
    assert [line.get_label() for line in lines] == ["l3", "l1"]
    kde = df[df["estimator"] == "kde"]
    np.testing.assert_array_equal(lines[0].get_xdata(), expected(kde, "l3", "I_XT"))
    assert ax.get_title() == "kde"


def test_plane_averages_runs_and_draws_their_spread():
    df = make_table(runs=("a", "b"))
    fig, ax = plt.subplots()
    plotting.plot_information_plane(df, ax=ax)
    line = trajectories(ax)[0]
    # runs differ by exactly +2 bits (I_XT) and +0.2 bits (I_TY): the mean is run a plus half of that
    np.testing.assert_allclose(line.get_xdata(), expected(df, "l1", "I_XT", run="a") + 1.0)
    np.testing.assert_allclose(line.get_ydata(), expected(df, "l1", "I_TY", run="a") + 0.1)
    bars = by_gid(ax.collections, plotting.GID_SPREAD)
    assert len(bars) == 2 * len(LAYERS)  # x and y error bars per layer
    # std (ddof=1) of {v, v + 2} is sqrt(2): each x bar spans mean ± sqrt(2)
    seg = bars[0].get_segments()[0]
    np.testing.assert_allclose(abs(seg[1][0] - seg[0][0]), 2 * np.sqrt(2.0))
    fig, ax = plt.subplots()
    plotting.plot_information_plane(df, spread=False, ax=ax)
    assert not by_gid(ax.collections, plotting.GID_SPREAD)


def test_plane_uses_std_columns_of_a_summarized_table():
    df = make_table(shuffle=False).drop(columns="run")
    df["I_XT_std"] = 0.5
    df["I_TY_std"] = 0.25
    df["n_runs"] = 3
    fig, ax = plt.subplots()
    plotting.plot_information_plane(df, ax=ax)
    xbar, ybar = by_gid(ax.collections, plotting.GID_SPREAD)[:2]
    np.testing.assert_allclose(np.ptp(np.asarray(xbar.get_segments()[0])[:, 0]), 1.0)
    np.testing.assert_allclose(np.ptp(np.asarray(ybar.get_segments()[0])[:, 1]), 0.5)


def test_plane_single_epoch_widens_the_colour_range():
    fig, ax = plt.subplots()
    plotting.plot_information_plane(make_table(epochs=[7]), ax=ax)
    norm = points(ax)[0].norm
    assert (norm.vmin, norm.vmax) == (6.5, 7.5)


# ---------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors():
    df = make_table(estimators=("binning", "kde"))
    with pytest.raises(ValueError, match=r"holds 2 estimators \('binning', 'kde'\); pass estimator="):
        plotting.plot_information_plane(df)
    with pytest.raises(ValueError, match=r"estimator 'knn' is not in df; it holds 'binning', 'kde'"):
        plotting.plot_information_plane(df, estimator="knn")
    with pytest.raises(ValueError, match=r"unknown layer\(s\) 'fc9'; df holds layers 'l1', 'l2', 'l3'"):
        plotting.plot_information_plane(df, estimator="kde", layers=["l1", "fc9"])
    with pytest.raises(ValueError, match=r"missing required column\(s\) 'layer', 'I_TY'"):
        plotting.plot_information_plane(df.drop(columns=["layer", "I_TY"]), estimator="kde")
    with pytest.raises(ValueError, match=r"df is empty \(0 rows\)"):
        plotting.plot_information_plane(df.iloc[:0])
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        plotting.plot_information_plane(df.to_dict())
    with pytest.raises(TypeError, match="column 'I_XT' of df must hold numbers"):
        plotting.plot_information_plane(df.assign(I_XT="x"), estimator="kde")
    with pytest.raises(ValueError, match="'epoch_scale' parameter of plot_information_plane must be one of"):
        plotting.plot_information_plane(df, estimator="kde", epoch_scale="sqrt")
    with pytest.raises(ValueError, match="'H_X' parameter of plot_information_plane must be None or a finite"):
        plotting.plot_information_plane(df, estimator="kde", H_X=-1.0)
    with pytest.raises(ValueError, match=r"several rows for one \('layer', 'epoch', 'run'\)"):
        plotting.plot_information_plane(pd.concat([df, df]), estimator="kde")
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plotting.plot_information_plane(df, estimator="kde", ax="left")


# ---------------------------------------------------------------------------------------------------------
# plot_information_plane_grid
# ---------------------------------------------------------------------------------------------------------
def test_grid_panels_titles_and_one_shared_colorbar():
    df = make_table(runs=("0", "1"), estimators=("binning", "kde"), shuffle=False)  # panels: order of appearance
    # give one panel a narrower epoch range: the shared scale must still be the whole table's
    df = df[~((df["run"] == "1") & (df["estimator"] == "kde") & (df["epoch"] == 10))]
    fig = plotting.plot_information_plane_grid(df, row="run", col="estimator", H_X=20.0)
    panels, cbar_axes = fig.axes[:4], fig.axes[4:]
    assert len(cbar_axes) == 1 and cbar_axes[0].get_ylabel() == "epoch"
    assert [ax.get_title() for ax in panels] == [
        "run = 0 | estimator = binning", "run = 0 | estimator = kde",
        "run = 1 | estimator = binning", "run = 1 | estimator = kde",
    ]
    for ax, (run, est) in zip(panels, [("0", "binning"), ("0", "kde"), ("1", "binning"), ("1", "kde")]):
        lines = trajectories(ax)
        assert len(lines) == len(LAYERS)
        cell = df[(df["run"] == run) & (df["estimator"] == est)]
        np.testing.assert_array_equal(lines[1].get_xdata(), expected(cell, "l2", "I_XT"))
        assert all((c.norm.vmin, c.norm.vmax) == (0, 10) for c in points(ax))
        assert len(by_gid(ax.lines, plotting.GID_H_X)) == 1
    assert panels[-1].get_xlabel() == "I(T;X) [bits]" and panels[0].get_ylabel() == "I(T;Y) [bits]"


def test_grid_single_facet_order_and_errors():
    df = make_table(estimators=("binning", "kde"))
    fig = plotting.plot_information_plane_grid(df, col="estimator", col_order=["kde"])
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "estimator = kde"
    with pytest.raises(ValueError, match="needs row= and/or col="):
        plotting.plot_information_plane_grid(df)
    with pytest.raises(ValueError, match=r"holds 2 estimators"):
        plotting.plot_information_plane_grid(df, col="run")
    with pytest.raises(ValueError, match=r"missing required column\(s\) 'activation'"):
        plotting.plot_information_plane_grid(df, col="activation", estimator="kde")
    with pytest.raises(ValueError, match=r"col_order holds value\(s\) 'knn' not in column 'estimator'"):
        plotting.plot_information_plane_grid(df, col="estimator", col_order=["knn"])


def test_grid_draws_into_a_given_figure():
    fig = plt.figure()
    assert plotting.plot_information_plane_grid(make_table(), col="run", fig=fig) is fig


# ---------------------------------------------------------------------------------------------------------
# plot_mi_vs_epoch
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("quantity", ["I_XT", "I_TY"])
def test_mi_vs_epoch_one_line_per_layer(quantity):
    df = make_table()
    fig, ax = plt.subplots()
    assert plotting.plot_mi_vs_epoch(df, quantity, ax=ax, H_X=12.0, H_Y=1.0) is ax
    lines = trajectories(ax)
    assert [line.get_label() for line in lines] == LAYERS
    for line, layer in zip(lines, LAYERS):
        np.testing.assert_array_equal(line.get_xdata(), EPOCHS)
        np.testing.assert_array_equal(line.get_ydata(), expected(df, layer, quantity))
    assert ax.get_ylabel() == QUANTITY_LABELS[quantity] and ax.get_xlabel() == "epoch"
    gid = plotting.GID_H_X if quantity == "I_XT" else plotting.GID_H_Y
    (ref,) = by_gid(ax.lines, gid)
    np.testing.assert_array_equal(ref.get_ydata(), [12.0, 12.0] if quantity == "I_XT" else [1.0, 1.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == LAYERS


def test_mi_vs_epoch_log_scale_and_spread():
    fig, ax = plt.subplots()
    plotting.plot_mi_vs_epoch(make_table(runs=("a", "b")), epoch_scale="log", ax=ax)
    assert ax.get_xscale() == "symlog" and ax.get_xlim()[0] == 0.0  # epoch 0 kept, no negative decade
    assert len(by_gid(ax.collections, plotting.GID_SPREAD)) == len(LAYERS)
    fig, ax = plt.subplots()
    plotting.plot_mi_vs_epoch(make_table(epochs=[1, 10, 100]), epoch_scale="log", ax=ax)
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="'quantity' parameter of plot_mi_vs_epoch must be one of"):
        plotting.plot_mi_vs_epoch(make_table(), "I_XY")


# ---------------------------------------------------------------------------------------------------------
# VIB β sweep
# ---------------------------------------------------------------------------------------------------------
def make_sweep(betas=(1e-3, 1e-2, 1e-1, 1.0), epochs=(5, 10)):
    rows = []
    for b in betas:
        for e in epochs:
            rate = (-np.log10(b) if b > 0 else 4.0) + e / 10  # encodes (β, epoch) so the drawn epoch is checkable
            rows.append({"beta": b, "epoch": e, "rate_bits": rate, "mixture_lower_bits": 0.6 * rate,
                         "mixture_upper_bits": 0.8 * rate, "ba_bits": rate / 4, "test_accuracy": 0.9})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1)


def test_vib_tradeoff_final_epoch_points_coloured_by_log_beta():
    df = make_sweep()
    fig, ax = plt.subplots()
    assert plotting.plot_vib_tradeoff(df, ax=ax, H_Y=1.0, annotate=True) is ax
    (coll,) = by_gid(ax.collections, "beta-points")
    rate = -np.log10([1e-3, 1e-2, 1e-1, 1.0]) + 1.0  # epoch 10 is the last
    np.testing.assert_allclose(coll.get_offsets(), np.column_stack([rate, rate / 4]))
    assert isinstance(coll.norm, mcolors.LogNorm) and (coll.norm.vmin, coll.norm.vmax) == (1e-3, 1.0)
    assert coll.colorbar.ax.get_ylabel() == "β"
    assert len(ax.texts) == 4 + 1  # one label per β, plus "H(Y)"
    assert "[bits]" in ax.get_xlabel() and "[bits]" in ax.get_ylabel()
    fig, ax = plt.subplots()
    plotting.plot_vib_tradeoff(df, epoch=5, ax=ax)
    np.testing.assert_allclose(by_gid(ax.collections, "beta-points")[0].get_offsets()[:, 0], rate - 0.5)


def test_vib_tradeoff_beta_zero_and_errors():
    fig, ax = plt.subplots()
    plotting.plot_vib_tradeoff(make_sweep(betas=(0.0, 1e-2, 1.0)), ax=ax)
    assert isinstance(by_gid(ax.collections, "beta-points")[0].norm, mcolors.SymLogNorm)
    with pytest.raises(ValueError, match=r"missing required column\(s\) 'ba_bits'"):
        plotting.plot_vib_tradeoff(make_sweep().drop(columns="ba_bits"))
    with pytest.raises(ValueError, match=r"epoch 7 is missing for beta\(s\)"):
        plotting.plot_vib_tradeoff(make_sweep(), epoch=7)


def test_rate_gap_lines_and_band():
    df = make_sweep()
    fig, ax = plt.subplots()
    assert plotting.plot_rate_gap(df, ax=ax, H_X=10.0) is ax
    betas = [1e-3, 1e-2, 1e-1, 1.0]
    rate = -np.log10(betas) + 1.0
    lines = {line.get_gid(): line for line in ax.lines}
    for gid, factor in [("rate", 1.0), ("mixture_lower", 0.6), ("mixture_upper", 0.8)]:
        np.testing.assert_allclose(lines[gid].get_xdata(), betas)
        np.testing.assert_allclose(lines[gid].get_ydata(), factor * rate)
    np.testing.assert_array_equal(lines[plotting.GID_H_X].get_ydata(), [10.0, 10.0])
    assert len(by_gid(ax.collections, "mixture_band")) == 1
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "I(Z;X) [bits]"
    # A leave-one-out bound above the rate: the drawn upper bound is the tighter one, the rate.
    loose = df.assign(mixture_upper_bits=1.5 * df["rate_bits"])
    fig, ax = plt.subplots()
    plotting.plot_rate_gap(loose, ax=ax)
    lines = {line.get_gid(): line for line in ax.lines}
    np.testing.assert_allclose(lines["mixture_upper"].get_ydata(), rate)


# ---------------------------------------------------------------------------------------------------------
# animation
# ---------------------------------------------------------------------------------------------------------
def test_animation_frames_show_points_up_to_each_epoch_and_save_as_gif(tmp_path):
    df = make_table()
    fig, ax = plt.subplots(figsize=(3, 2.5), dpi=50)  # small: the GIF is written in well under a second
    anim = plotting.animate_information_plane(df, ax=ax)
    assert isinstance(anim, FuncAnimation)
    anim._func(2)  # frame 2 = epoch 2: the points of epochs 0, 1, 2
    line = trajectories(ax)[0]
    np.testing.assert_array_equal(line.get_xdata(), expected(df, "l1", "I_XT")[:3])
    assert len(points(ax)[0].get_offsets()) == 3
    assert points(ax)[0].norm.vmax == 10  # the colour bar keeps the whole epoch range
    assert ax.get_title().endswith("epoch 2")
    # the view stays fixed on the whole table, not on the points shown so far
    assert ax.get_xlim()[0] <= df["I_XT"].min() and ax.get_xlim()[1] >= df["I_XT"].max()
    assert ax.get_ylim()[0] <= df["I_TY"].min() and ax.get_ylim()[1] >= df["I_TY"].max()
    path = tmp_path / "plane.gif"
    anim.save(path, writer="pillow", fps=5)
    with Image.open(path) as gif:
        assert gif.n_frames == len(EPOCHS)
