"""Figures of the information plane, drawn from tidy results tables.

Plotting knows no estimator, recorder or store: every function takes a tidy :class:`pandas.DataFrame`
(one row per run, epoch, layer and estimator, with ``I_XT`` and ``I_TY`` in bits; see the results-table
contract) and draws on a Matplotlib Axes. As in seaborn, each function takes ``ax=None`` (then draws on
``plt.gca()``) and returns the Axes; the grid takes ``fig=None`` and returns the Figure; the animation
returns a :class:`matplotlib.animation.FuncAnimation` (`infoplane.plotting._animate`); curves against epoch are
in `infoplane.plotting._curves`. Nothing here calls ``plt.show()`` or saves files.

The information plane (Shwartz-Ziv & Tishby 2017, arXiv 1703.00810; Saxe et al. 2018) places each layer T
at each recorded epoch at (I(T;X), I(T;Y)); points are coloured by epoch with viridis (purple at the first
epoch, yellow at the last) and joined in epoch order, one thin line per layer. Since T is a function of X,
I(T;X) <= H(X) and I(T;Y) <= H(Y) (data processing), drawn as reference lines when ``H_X`` / ``H_Y`` are given.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib import ticker as mticker
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure

from .._core.validation import check_choice
from . import _utils as pu
from ._draw import draw_plane
from ._runs import check_has_i_xt
from ._settings import estimator_settings
from ._span import DEFAULT_MIN_SPAN, check_min_span, ensure_min_span
from ._utils import (
    _ax_or_gca,
    _optional_bits,
)

__all__ = ["plot_information_plane", "plot_information_plane_grid"]

XLABEL = "I(T;X) [bits]"
YLABEL = "I(T;Y) [bits]"
QUANTITY_LABELS = {"I_XT": XLABEL, "I_TY": YLABEL}
LAYER_LABEL_CHOICES = ("annotate", "legend", "both", None)


def _add_epoch_colorbar(fig: Figure, mappable: Any, ax: Any, norm: mcolors.Normalize, **kwargs: Any):
    cbar = fig.colorbar(mappable, ax=ax, label="epoch", **kwargs)
    if isinstance(norm, (mcolors.LogNorm, mcolors.SymLogNorm)):
        cbar.ax.yaxis.set_major_formatter(pu.epoch_formatter())
        cbar.ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    return cbar


def _prepare_plane(
    df: pd.DataFrame, estimator: str | None, layers: Sequence[str] | str | None, *, owner: str,
    allow_several: bool = False, plane: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    pu.check_table(df, pu.PLANE_COLUMNS, numeric=("epoch", "I_XT", "I_TY"))
    pu.check_finite_columns(df, ["I_XT", "I_TY"], allow_nan=True)
    sub = pu.select_estimator(df, estimator, allow_several=allow_several)
    chosen = pu.select_layers(sub, layers)
    if plane:  # the plane needs I(T;X): an I(T;Y)-only estimator is drawn by plot_mi_vs_epoch
        drawn = sub[sub["layer"].isin(chosen)]
        groups = drawn.groupby("estimator", sort=False) if "estimator" in drawn.columns else [(None, drawn)]
        for label, rows in groups:
            rows.attrs = df.attrs
            check_has_i_xt(rows, label, owner)
    return sub, chosen


def _auto_title(df: pd.DataFrame) -> str:
    """The estimator's label and its settings (bins, σ², k, ...) when the rows hold one estimator."""
    if "estimator" in df.columns and df["estimator"].nunique() == 1:
        label = df["estimator"].iloc[0]
        settings = estimator_settings(df, label)
        return f"{label} ({settings})" if settings else str(label)
    return ""


def plot_information_plane(
    df: pd.DataFrame,
    *,
    estimator: str | None = None,
    layers: Sequence[str] | str | None = None,
    epoch_scale: str = "linear",
    H_X: float | None = None,
    H_Y: float | None = None,
    spread: bool = True,
    layer_labels: str | None = "annotate",
    cmap: str | mcolors.Colormap = "viridis",
    colorbar: bool = True,
    marker: str | Sequence[str] | None = None,
    s: float = 22.0,
    min_span: float | None = DEFAULT_MIN_SPAN,
    title: str | None = None,
    line_kws: dict | None = None,
    scatter_kws: dict | None = None,
    legend_kws: dict | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw per-layer trajectories in the information plane, points coloured by epoch.

    Each layer T is a thin line through its points (I(T;X), I(T;Y)) in epoch order; the points are coloured
    by epoch with ``cmap`` (viridis: purple at the first epoch, yellow at the last) and a colour bar labelled
    "epoch" whose limits are the table's epoch range (vmin = first epoch, vmax = last epoch).

    Parameters
    ----------
    df : DataFrame
        Tidy results table with columns ``epoch``, ``layer``, ``I_XT``, ``I_TY`` (bits), and usually
        ``run``, ``estimator``. Several runs are averaged per (layer, epoch) and the standard deviation
        across runs (ddof=1) is the spread, but only runs that differ in the seed alone: a ``probe`` column
        (training vs held-out probe) draws each probe apart, in its own line style, and runs that differ in
        another column (``activation``, ``n_samples``, ...) raise `ValueError` naming
        ``plot_information_plane_grid(df, col=...)``. A summarized table (``I_XT_std``, ``I_TY_std``
        columns, from ``summarize_runs``) is drawn as it is.
    estimator : str, optional
        Which estimator's rows to draw. Required when the table holds more than one.
    layers : sequence of str, optional
        Layers to draw, in this order. Default: ``df.attrs["layers"]`` order, then order of appearance.
    epoch_scale : {"linear", "log"}
        Colour scale of epochs. ``"log"`` uses LogNorm when all epochs are > 0 and SymLogNorm with
        linthresh = 1 epoch otherwise, so epoch 0 is drawn (linear on [0, 1], logarithmic above).
    H_X, H_Y : float, optional
        Entropies H(X) and H(Y) in bits (e.g. 12 and 0.9992 for the SZT task); drawn as dashed lines,
        the upper limits of I(T;X) and I(T;Y).
    spread : bool
        Draw error bars coloured by epoch: ± one standard deviation across runs when known, else ± one
        standard error of a single run's estimate (``I_XT_se`` / ``I_TY_se`` columns, e.g. a noisy
        estimator's). Every kind of error bar and the rings of saturated points get a legend entry, in every
        ``layer_labels`` mode.
    layer_labels : {"annotate", "legend", "both", None}
        Name each layer next to its last point (offset along the trajectory's last step, moved until no two
        labels overlap, with a thin leader line), in a legend with one marker per layer, both, or not at all.
    cmap : str or Colormap
        Epoch colormap (default viridis).
    colorbar : bool
        Add the "epoch" colour bar.
    marker : str or sequence of str, optional
        Point marker, or one per layer (cycled), e.g. ``("o", "s", "^", "D", "v", "P")``. Default: circles,
        or one distinct marker per layer when the layers are named in a legend.
    s : float
        Marker area in points².
    min_span : float or None, default 0.5
        Smallest span of each axis, in bits: a view narrower than this is widened around its middle and a
        note in the lower left corner says so, so that a 0.02-bit wobble does not fill the axes like a
        trajectory. None or 0: Matplotlib's autoscaling alone.
    title : str, optional
        Axes title; default the estimator's label and its settings from ``df.attrs["conventions"]`` (or
        columns such as ``n_bins``, ``noise_variance``), e.g. ``"kde-upper (σ² = 0.001)"``, when the drawn
        rows hold a single estimator ("" for none).
    line_kws, scatter_kws : dict, optional
        Extra keyword arguments for the joining lines (``Axes.plot``) and the points (``Axes.scatter``).
    legend_kws : dict, optional
        Extra keyword arguments for ``Axes.legend`` (with ``layer_labels="legend"``), e.g.
        ``{"loc": "upper left", "bbox_to_anchor": (1.25, 1)}`` to put it outside a crowded plane.
    ax : Axes, optional
        Axes to draw on; default ``plt.gca()``.

    Returns
    -------
    Axes
        The Axes drawn on. Joining lines carry ``gid="trajectory"`` and the layer as label; point
        collections ``gid="epoch-points"``; reference lines ``gid="H_X"`` / ``"H_Y"``; labels
        ``gid="layer-label"``.

    Raises
    ------
    ValueError
        When the estimator gives no I(T;X) (k-NN, probe, critics: I_XT is NaN), pointing to
        `plot_mi_vs_epoch`; when runs differ in more than the seed (see ``df``).

    References
    ----------
    Shwartz-Ziv & Tishby (2017), Opening the black box of deep neural networks via information,
    arXiv:1703.00810. Saxe et al. (2018), On the information bottleneck theory of deep learning, ICLR.
    """
    ax, _, _ = _plane(df, estimator=estimator, layers=layers, epoch_scale=epoch_scale, H_X=H_X, H_Y=H_Y,
                      spread=spread, layer_labels=layer_labels, cmap=cmap, colorbar=colorbar, marker=marker,
                      s=s, title=title, line_kws=line_kws, scatter_kws=scatter_kws, legend_kws=legend_kws,
                      ax=ax, owner="plot_information_plane", min_span=min_span)
    return ax


def _plane(df, *, estimator, layers, epoch_scale, H_X, H_Y, spread, layer_labels, cmap, colorbar, marker, s,
           title, line_kws, scatter_kws, ax, owner, legend_kws=None, min_span=DEFAULT_MIN_SPAN):
    """plot_information_plane's body; also returns the artists and the drawn table for the animation."""
    check_choice(layer_labels, "layer_labels", owner, LAYER_LABEL_CHOICES)
    H_X = _optional_bits(H_X, "H_X", owner)
    H_Y = _optional_bits(H_Y, "H_Y", owner)
    min_span = check_min_span(min_span, owner)
    ax = _ax_or_gca(ax)
    sub, chosen = _prepare_plane(df, estimator, layers, owner=owner)
    table = pu.plane_table(sub, chosen)
    norm = pu.epoch_norm(table["epoch"], epoch_scale, owner=owner)
    artists = draw_plane(ax, table, chosen, norm, cmap, spread=spread, layer_labels=layer_labels,
                         marker=marker, s=s, line_kws=line_kws, scatter_kws=scatter_kws, H_X=H_X, H_Y=H_Y,
                         legend_kws=legend_kws)
    ensure_min_span(ax, min_span)
    ax.set_xlabel(XLABEL)
    ax.set_ylabel(YLABEL)
    ax.set_title(_auto_title(sub) if title is None else title)
    if colorbar:
        first_points = next(iter(artists.values()))[1]
        _add_epoch_colorbar(ax.figure, first_points, ax, norm)
    return ax, artists, table


def plot_information_plane_grid(
    df: pd.DataFrame,
    row: str | None = None,
    col: str | None = None,
    *,
    row_order: Sequence[Any] | None = None,
    col_order: Sequence[Any] | None = None,
    estimator: str | None = None,
    layers: Sequence[str] | str | None = None,
    epoch_scale: str = "linear",
    H_X: float | None = None,
    H_Y: float | None = None,
    spread: bool = True,
    layer_labels: str | None = "annotate",
    cmap: str | mcolors.Colormap = "viridis",
    marker: str | Sequence[str] | None = None,
    s: float = 16.0,
    min_span: float | None = DEFAULT_MIN_SPAN,
    sharex: bool = True,
    sharey: bool = True,
    panel_size: tuple[float, float] = (3.4, 2.9),
    fig: Figure | None = None,
) -> Figure:
    """Small multiples of the information plane: one panel per value of ``row`` × ``col``.

    Any column can split the panels, e.g. ``col="estimator", row="run"`` to compare estimators across
    seeds, or ``col="activation"`` for tanh against ReLU. All panels share one epoch colour scale and one
    colour bar (limits = the epoch range of the whole drawn table), so colours mean the same epoch
    everywhere. Each panel is drawn as by :func:`plot_information_plane` (several runs inside one panel are
    averaged when they differ only in the seed; ``col="probe"`` puts a training and a held-out probe side by
    side) and titled ``"<row> = <value> | <col> = <value>"``, with a second line stating the estimator's
    settings (bins, σ², ...) when the table's conventions give them.

    Parameters
    ----------
    df : DataFrame
        Tidy results table (columns ``epoch``, ``layer``, ``I_XT``, ``I_TY`` in bits, plus ``row``/``col``).
    row, col : str, optional
        Columns whose values make the rows and columns of the grid (at least one of them).
    row_order, col_order : sequence, optional
        Values to show and their order; default order of appearance.
    estimator : str, optional
        Required when the table holds several estimators, unless ``"estimator"`` is ``row`` or ``col``.
    fig : Figure, optional
        Figure to draw in (it should be empty); default a new ``plt.figure`` with constrained layout sized
        ``panel_size`` (inches) per panel.
    Other parameters are as in :func:`plot_information_plane`.

    Returns
    -------
    Figure
        The figure. ``fig.axes[:n_rows * n_cols]`` are the panels in row-major order; the last Axes is the
        shared colour bar.
    """
    owner = "plot_information_plane_grid"
    if row is None and col is None:
        raise ValueError("plot_information_plane_grid needs row= and/or col= naming a column of df.")
    check_choice(layer_labels, "layer_labels", owner, LAYER_LABEL_CHOICES)
    H_X = _optional_bits(H_X, "H_X", owner)
    H_Y = _optional_bits(H_Y, "H_Y", owner)
    min_span = check_min_span(min_span, owner)
    facets = [c for c in (row, col) if c is not None]
    pu.check_table(df, list(pu.PLANE_COLUMNS) + [c for c in facets if c not in pu.PLANE_COLUMNS],
                   numeric=("epoch", "I_XT", "I_TY"))
    pu.check_finite_columns(df, ["I_XT", "I_TY"], allow_nan=True)
    sub, chosen = _prepare_plane(df, estimator, layers, owner=owner, allow_several="estimator" in facets)

    rows = _facet_levels(sub, row, row_order, "row_order")
    cols = _facet_levels(sub, col, col_order, "col_order")
    if fig is None:
        fig = plt.figure(figsize=(panel_size[0] * len(cols) + 0.9, panel_size[1] * len(rows)),
                         layout="constrained")
    elif not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure or None. Got {type(fig).__name__}.")
    axes = fig.subplots(len(rows), len(cols), sharex=sharex, sharey=sharey, squeeze=False)
    shown = _facet_mask(sub, row, rows, col, cols)
    norm = pu.epoch_norm(sub.loc[shown, "epoch"], epoch_scale, owner=owner)
    mappable = None
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax = axes[i, j]
            panel = sub[_facet_mask(sub, row, [r], col, [c])]
            ax.set_title(_panel_title(panel, ((row, r), (col, c))), fontsize="medium")
            artists = _draw_panel(ax, panel, chosen, norm, cmap, spread=spread, layer_labels=layer_labels,
                                  marker=marker, s=s, H_X=H_X, H_Y=H_Y)
            if mappable is None and artists:
                mappable = next(iter(artists.values()))[1]
            if i == len(rows) - 1:
                ax.set_xlabel(XLABEL)
            if j == 0:
                ax.set_ylabel(YLABEL)
    for ax in axes.ravel():  # after every panel: shared axes take the union of the views first
        ensure_min_span(ax, min_span)
    if mappable is None:  # pragma: no cover - the table is non-empty, so some panel has points
        mappable = ScalarMappable(norm=norm, cmap=cmap)
    _add_epoch_colorbar(fig, mappable, axes.ravel().tolist(), norm, shrink=0.6 if len(rows) > 1 else 1.0,
                        aspect=30 if len(rows) > 1 else 20)
    return fig


def _panel_title(panel: pd.DataFrame, facets: Sequence[tuple[str | None, Any]]) -> str:
    """``"row = r | col = c"``, and the estimator's settings on a second line when they are known."""
    title = " | ".join(f"{k} = {v}" for k, v in facets if k is not None)
    if "estimator" not in panel.columns or panel["estimator"].nunique() != 1:
        return title
    label = panel["estimator"].iloc[0]
    settings = estimator_settings(panel, label)
    if not settings:
        return title
    named = any(k == "estimator" for k, _ in facets)
    return f"{title}\n{settings if named else f'{label} ({settings})'}"


def _facet_levels(sub: pd.DataFrame, column: str | None, order: Sequence[Any] | None, param: str) -> list[Any]:
    """The values of a facet column to draw, in order (``[None]`` without the facet)."""
    if column is None:
        return [None]
    present = list(pd.unique(sub[column]))
    if order is None:
        return present
    unknown = [v for v in order if v not in set(present)]
    if unknown:
        raise ValueError(f"{param} holds value(s) {pu.listed(unknown)} not in column {column!r}; "
                         f"it holds {pu.listed(present)}.")
    return list(order)


def _facet_mask(sub: pd.DataFrame, row: str | None, rows: list[Any], col: str | None, cols: list[Any]) -> np.ndarray:
    """Rows of ``sub`` whose ``row`` value is in ``rows`` and ``col`` value in ``cols`` (absent facets: all)."""
    mask = np.ones(len(sub), dtype=bool)
    for column, values in ((row, rows), (col, cols)):
        if column is not None:
            mask &= sub[column].isin(values).to_numpy()
    return mask


def _draw_panel(ax: Axes, panel: pd.DataFrame, chosen: list[str], norm: mcolors.Normalize, cmap: Any,
                **kwargs: Any) -> dict:
    """One grid panel: the plane of its rows (averaged over runs), or "no data"."""
    if panel.empty:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.5")
        return {}
    panel_layers = [layer for layer in chosen if layer in set(panel["layer"])]
    table = pu.plane_table(panel, panel_layers)
    return draw_plane(ax, table, panel_layers, norm, cmap, line_kws=None, scatter_kws=None, **kwargs)
