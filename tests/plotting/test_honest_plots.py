"""Plots that do not mislead: labels without overlap, explained rings and error bars, a minimum span in bits,
probes and configurations never averaged, estimator settings in titles, I(T;Y)-only estimators refused.

Every check reads the drawn artists (data, window extents from the renderer, legend texts), never pixels.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from infoplane import plotting  # noqa: E402
from infoplane.plotting._draw import GID_SE  # noqa: E402
from infoplane.plotting._labels import GID_LABEL  # noqa: E402
from infoplane.plotting._span import GID_SPAN_NOTE  # noqa: E402

SZT_LAYERS = ["act1", "act2", "act3", "act4", "act5", "softmax"]
EPOCHS = [0, 1, 3, 10, 30, 100, 300, 1000]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def szt_table(runs=("0",), spread=1.0):
    """An SZT-like tanh plane: act1-act3 end together at (12, 1) bits, as in the issue; deeper layers compress."""
    final = {"act1": (12.0, 0.999), "act2": (11.99, 0.999), "act3": (11.97, 0.998), "act4": (9.3, 0.997),
             "act5": (2.6, 0.99), "softmax": (1.25, 0.97)}
    rows = []
    for r_i, run in enumerate(runs):
        for layer, (fx, fy) in final.items():
            for k, epoch in enumerate(EPOCHS):
                f = k / (len(EPOCHS) - 1)
                rows.append({"run": run, "epoch": epoch, "layer": layer, "estimator": "binning",
                             "I_XT": min(12.0, fx + spread * (1 - f) * (12 - fx) / 2 + 0.01 * r_i),
                             "I_TY": fy * (0.2 + 0.8 * f) + 0.001 * r_i, "bound_XT": "estimate",
                             "bound_TY": "estimate", "n_samples": 4096, "saturated": fx > 11.9 and f == 1.0})
    df = pd.DataFrame(rows)
    df.attrs["layers"] = SZT_LAYERS
    df.attrs["conventions"] = {"binning": {"estimator": "binning", "scheme": "edges",
                                           "edges": np.linspace(-1, 1, 31).tolist()}}
    return df


def label_boxes(ax):
    """The window extents of the layer labels' text boxes, after a draw (the placement runs at draw time)."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_gid() == GID_LABEL]
    return labels, [Text.get_window_extent(t, renderer) for t in labels], [t.get_window_extent(renderer)
                                                                           for t in labels]


def overlapping_pairs(boxes):
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


# ---------------------------------------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("figsize", [(5.0, 4.4), (3.4, 2.9)])
def test_layer_labels_do_not_overlap_on_the_szt_plane(figsize):
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    plotting.plot_information_plane(szt_table(), H_X=12.0, H_Y=0.9992, epoch_scale="log", ax=ax)
    labels, text_boxes, extents = label_boxes(ax)
    assert [t.get_text() for t in labels] == SZT_LAYERS
    assert not overlapping_pairs(text_boxes)
    assert not overlapping_pairs(extents)  # the annotation's own extent too (no arrow patch joins them)
    table = szt_table()
    for t in labels:  # each label still names its layer's last point
        last = table[table["layer"] == t.get_text()].sort_values("epoch").iloc[-1]
        assert t.xy == (last["I_XT"], last["I_TY"])
    # and the boxes avoid the H(X) / H(Y) names
    renderer = fig.canvas.get_renderer()
    others = [t.get_window_extent(renderer) for t in ax.texts if t.get_gid() != GID_LABEL and t.get_text()]
    assert not [1 for b in text_boxes for o in others if b.overlaps(o)]


def test_labels_without_overlap_when_every_layer_ends_at_one_point_and_in_a_grid():
    rows = [{"epoch": e, "layer": f"l{i}", "I_XT": 12 - 0.2 * i * (3 - e), "I_TY": 1 - 0.1 * i * (3 - e)}
            for i in range(8) for e in range(4)]
    fig, ax = plt.subplots(figsize=(4, 3))
    plotting.plot_information_plane(pd.DataFrame(rows), ax=ax)
    labels, boxes, _ = label_boxes(ax)
    assert len(labels) == 8 and not overlapping_pairs(boxes)
    fig = plotting.plot_information_plane_grid(szt_table(runs=("0", "1")), col="run")
    for panel in fig.axes[:2]:
        assert not overlapping_pairs(label_boxes(panel)[1])


def test_the_animation_keeps_labels_apart_at_every_frame():
    fig, ax = plt.subplots(figsize=(4, 3))
    anim = plotting.animate_information_plane(szt_table(), ax=ax)
    for k in (2, len(EPOCHS) - 1):
        anim._func(k)
        visible = [b for t, b in zip(*label_boxes(ax)[:2]) if t.get_visible()]
        assert len(visible) == len(SZT_LAYERS) and not overlapping_pairs(visible)


def test_legend_mode_gives_each_layer_its_own_marker():
    fig, ax = plt.subplots()
    plotting.plot_information_plane(szt_table(), layer_labels="legend", ax=ax)
    legend = ax.get_legend()
    entries = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles)}
    markers = [entries[layer].get_marker() for layer in SZT_LAYERS]
    assert len(set(markers)) == len(SZT_LAYERS)
    drawn = [c.get_paths()[0].vertices.tobytes() for c in ax.collections if c.get_gid() == plotting.GID_POINTS]
    assert len(set(drawn)) == len(SZT_LAYERS)  # the points use those markers too
    fig, ax = plt.subplots()
    plotting.plot_information_plane(szt_table(), layer_labels="legend", marker="o", ax=ax)  # as asked
    assert {h.get_marker() for h in ax.get_legend().legend_handles if h.get_label() in SZT_LAYERS} == {"o"}


# ---------------------------------------------------------------------------------------------------------
# rings and error bars in the legend, in every labelling mode
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["annotate", "legend", "both", None])
def test_the_saturation_ring_and_error_bars_have_legend_entries_in_every_mode(mode):
    fig, ax = plt.subplots()
    plotting.plot_information_plane(szt_table(runs=("0", "1", "2")), layer_labels=mode, ax=ax)
    assert [c for c in ax.collections if c.get_gid() == plotting.GID_SATURATED]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "saturated (I(T;X) ≈ log2 N)" in texts
    assert "± 1 SD over 3 runs" in texts
    ring = ax.get_legend().legend_handles[texts.index("saturated (I(T;X) ≈ log2 N)")]
    assert ring.get_markerfacecolor() == "none" and ring.get_markeredgecolor() == "crimson"


def test_standard_error_columns_are_drawn_and_explained():
    df = szt_table()
    df["I_XT_se"] = 0.2
    df["I_TY_se"] = 0.01
    fig, ax = plt.subplots()
    plotting.plot_information_plane(df, ax=ax)
    xbar, ybar = [c for c in ax.collections if c.get_gid() == GID_SE][:2]
    np.testing.assert_allclose(np.ptp(np.asarray(xbar.get_segments()[0])[:, 0]), 0.4)  # ± 0.2 bits
    np.testing.assert_allclose(np.ptp(np.asarray(ybar.get_segments()[0])[:, 1]), 0.02)
    assert "± 1 SE of the estimate" in [t.get_text() for t in ax.get_legend().get_texts()]
    fig, ax = plt.subplots()
    plotting.plot_information_plane(df, spread=False, ax=ax)
    assert not [c for c in ax.collections if c.get_gid() == GID_SE]


# ---------------------------------------------------------------------------------------------------------
# minimum span
# ---------------------------------------------------------------------------------------------------------
def flat_table(spread_bits=0.02):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"epoch": np.arange(20), "layer": "fc", "estimator": "kde-upper",
                         "I_XT": 3.0 + spread_bits * rng.random(20), "I_TY": 0.9 + spread_bits * rng.random(20)})


def test_a_plane_with_a_002_bit_spread_keeps_the_minimum_span_and_says_so():
    fig, ax = plt.subplots()
    plotting.plot_information_plane(flat_table(), ax=ax)
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    assert hi - lo == pytest.approx(0.5) and lo < 0.9 and hi > 0.92  # the data in the middle of 0.5 bits
    assert ax.get_xlim()[1] - ax.get_xlim()[0] == pytest.approx(0.5)
    (note,) = [t for t in ax.texts if t.get_gid() == GID_SPAN_NOTE]
    assert "0.5 bits" in note.get_text()
    fig, ax = plt.subplots()
    plotting.plot_information_plane(flat_table(), min_span=2.0, ax=ax)
    assert ax.get_ylim()[1] - ax.get_ylim()[0] == pytest.approx(2.0)
    assert ax.get_ylim()[0] >= min(0.0, 0.9)  # never opens more negative bits than the data's own view
    fig, ax = plt.subplots()
    plotting.plot_information_plane(flat_table(), min_span=None, ax=ax)
    assert ax.get_ylim()[1] - ax.get_ylim()[0] < 0.1 and not [t for t in ax.texts if t.get_gid() == GID_SPAN_NOTE]
    fig, ax = plt.subplots()
    plotting.plot_information_plane(szt_table(), ax=ax)  # a real trajectory is left alone
    assert not [t for t in ax.texts if t.get_gid() == GID_SPAN_NOTE]
    with pytest.raises(ValueError, match="'min_span' parameter of plot_information_plane must be None or"):
        plotting.plot_information_plane(flat_table(), min_span=-1)


def test_the_grid_keeps_the_minimum_span_in_every_panel():
    df = pd.concat([flat_table().assign(run="a"), flat_table(0.01).assign(run="b")])
    fig = plotting.plot_information_plane_grid(df, col="run")
    for ax in fig.axes[:2]:
        assert ax.get_ylim()[1] - ax.get_ylim()[0] >= 0.5 - 1e-12


# ---------------------------------------------------------------------------------------------------------
# runs that differ in more than the seed
# ---------------------------------------------------------------------------------------------------------
def probe_table():
    """A training-probe and a held-out-probe run of one network: 1 bit apart in I(T;Y)."""
    train = szt_table().assign(run="train", probe="train")
    held = szt_table().assign(run="held-out", probe="held-out", n_samples=1024)
    held["I_TY"] -= 0.5
    return pd.concat([train, held], ignore_index=True)


def test_two_probe_runs_are_not_averaged_but_drawn_apart():
    df = probe_table()
    fig, ax = plt.subplots()
    plotting.plot_information_plane(df, ax=ax)
    lines = [line for line in ax.lines if line.get_gid() == plotting.GID_TRAJECTORY]
    assert len(lines) == 2 * len(SZT_LAYERS)
    for probe, style in (("train", "-"), ("held-out", "--")):
        part = df[(df.probe == probe) & (df.layer == "act5")].sort_values("epoch")
        (line,) = [ln for ln in lines if ln.get_label() in ("act5", f"act5 [{probe}]")
                   and ln.get_linestyle() == style]
        np.testing.assert_array_equal(line.get_ydata(), part["I_TY"].to_numpy())  # the probe's own values
    assert not [c for c in ax.collections if c.get_gid() == plotting.GID_SPREAD]  # no spread across probes
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "probe: train" in texts and "probe: held-out" in texts
    fig = plotting.plot_information_plane_grid(df, col="probe")
    assert [a.get_title().split("\n")[0] for a in fig.axes[:2]] == ["probe = train", "probe = held-out"]


def test_seeds_within_each_probe_are_averaged():
    a = probe_table()
    b = probe_table().assign(run=lambda d: d["run"] + "-seed1", I_TY=lambda d: d["I_TY"] + 0.02)
    fig, ax = plt.subplots()
    plotting.plot_information_plane(pd.concat([a, b], ignore_index=True), ax=ax)
    line = next(ln for ln in ax.lines if ln.get_label() == "act5")
    expected = a[(a.probe == "train") & (a.layer == "act5")].sort_values("epoch")["I_TY"].to_numpy() + 0.01
    np.testing.assert_allclose(line.get_ydata(), expected)


def test_runs_that_differ_in_a_setting_are_refused_naming_the_grid():
    df = probe_table().drop(columns="probe")  # two probes told apart by nothing but their size
    with pytest.raises(ValueError, match=r"differ in 'n_samples' \(4096, 1024\).*plot_information_plane_grid"
                                         r"\(df, col='n_samples'\)"):
        plotting.plot_information_plane(df)
    tanh_relu = pd.concat([szt_table().assign(run="0", activation="tanh"),
                           szt_table().assign(run="1", activation="relu")])
    with pytest.raises(ValueError, match=r"differ in 'activation'.*col='activation'"):
        plotting.plot_mi_vs_epoch(tanh_relu)
    fig = plotting.plot_information_plane_grid(tanh_relu, col="activation")  # the way out works
    assert len(fig.axes) == 3
    seeds = pd.concat([szt_table().assign(run="0", seed=0), szt_table().assign(run="1", seed=1)])
    plotting.plot_information_plane(seeds)  # seeds alone are averaged


def test_mi_vs_epoch_draws_probes_apart():
    fig, ax = plt.subplots()
    plotting.plot_mi_vs_epoch(probe_table(), "I_TY", ax=ax)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "act5 [train]" in labels and "act5 [held-out]" in labels


# ---------------------------------------------------------------------------------------------------------
# titles and I(T;Y)-only estimators
# ---------------------------------------------------------------------------------------------------------
def test_titles_state_the_estimator_settings():
    fig, ax = plt.subplots()
    plotting.plot_information_plane(szt_table(), ax=ax)
    assert ax.get_title() == "binning (30 bins on [-1, 1])"
    df = flat_table()
    df.attrs["conventions"] = {"kde-upper": {"noise_variance": 0.001, "bound": "upper"}}
    fig, ax = plt.subplots()
    plotting.plot_information_plane(df, ax=ax)
    assert ax.get_title() == "kde-upper (σ² = 0.001)"
    fig, ax = plt.subplots()  # without conventions, a settings column does
    plotting.plot_information_plane(flat_table().assign(n_bins=50, estimator="binning"), ax=ax)
    assert ax.get_title() == "binning (bins = 50)"
    fig = plotting.plot_information_plane_grid(szt_table(), col="run")
    assert fig.axes[0].get_title() == "run = 0\nbinning (30 bins on [-1, 1])"


def test_an_estimator_without_i_xt_is_refused_pointing_to_plot_mi_vs_epoch():
    df = szt_table().assign(estimator="knn", I_XT=np.nan)
    df.attrs["conventions"] = {"knn": {"k": 3, "I_XT_note": "not estimated: I(T;X) = log2 N"}}
    with pytest.raises(ValueError, match=r"estimator 'knn' gives none: I_XT is NaN in every row \(not estimated"
                                         r".*plot_mi_vs_epoch\(df, 'I_TY', estimator='knn'\)"):
        plotting.plot_information_plane(df)
    with pytest.raises(ValueError, match="plot_mi_vs_epoch"):
        plotting.plot_information_plane_grid(pd.concat([szt_table(), df]), col="estimator")
    with pytest.raises(ValueError, match="plot_mi_vs_epoch"):
        plotting.animate_information_plane(df)
    fig, ax = plt.subplots()
    plotting.plot_mi_vs_epoch(df, "I_TY", ax=ax)  # the way out works
    assert len(ax.lines) == len(SZT_LAYERS)
    from infoplane.integrations._logging import _plane_figure

    assert _plane_figure(df, "knn").axes[0].get_title() == "knn: I(T;Y)"  # log_to(figure=True) still logs it
