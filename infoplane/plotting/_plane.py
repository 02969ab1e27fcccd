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
from matplotlib.lines import Line2D

from .._core.validation import check_choice
from . import _utils as pu
from ._utils import (
    GID_H_X,
    GID_H_Y,
    GID_INTERVAL,
    GID_POINTS,
    GID_SATURATED,
    GID_SE,
    GID_SPREAD,
    GID_TRAJECTORY,
    _ax_or_gca,
    _colormap,
    _optional_bits,
    _reference_line,
)

__all__ = ["plot_information_plane", "plot_information_plane_grid"]

XLABEL = "I(T;X) [bits]"
YLABEL = "I(T;Y) [bits]"
QUANTITY_LABELS = {"I_XT": XLABEL, "I_TY": YLABEL}
LAYER_LABEL_CHOICES = ("annotate", "legend", "both", None)


def _draw_references(ax: Axes, H_X: float | None, H_Y: float | None, *, text: bool = True) -> None:
    """I(T;X) <= H(X) bounds the x axis of the plane and I(T;Y) <= H(Y) its y axis."""
    _reference_line(ax, H_X, "H(X)", vertical=True, gid=GID_H_X, text=text)
    _reference_line(ax, H_Y, "H(Y)", vertical=False, gid=GID_H_Y, text=text)


def _marker_for(marker: str | Sequence[str], i: int) -> str:
    if isinstance(marker, str):
        return marker
    return list(marker)[i % len(marker)]


def _draw_plane(
    ax: Axes,
    table: pd.DataFrame,
    layers: Sequence[str],
    norm: mcolors.Normalize,
    cmap: Any,
    *,
    spread: bool,
    layer_labels: str | None,
    marker: str | Sequence[str],
    s: float,
    line_kws: dict | None,
    scatter_kws: dict | None,
    H_X: float | None = None,
    H_Y: float | None = None,
    legend_kws: dict | None = None,
) -> dict[str, tuple[Line2D, Any, Any]]:
    """Draw one panel: per-layer joining lines, epoch-coloured points, optional spread; return the artists."""
    artists: dict[str, tuple[Line2D, Any, Any]] = {}
    cmap = _colormap(cmap)
    line_style = {"color": "0.45", "linewidth": 0.8, "alpha": 0.9, "zorder": 1.5} | (line_kws or {})
    scatter_style = {"s": s, "edgecolors": "none", "zorder": 2.5} | (scatter_kws or {})
    x_all = table["I_XT"].to_numpy(dtype=np.float64)
    x_left_from = np.nanmax(x_all) - 0.1 * (np.nanmax(x_all) - min(np.nanmin(x_all), 0.0))
    for i, layer in enumerate(layers):
        sub = table[table["layer"] == layer]
        if sub.empty:
            continue
        x = sub["I_XT"].to_numpy(dtype=np.float64)
        y = sub["I_TY"].to_numpy(dtype=np.float64)
        epochs = sub["epoch"].to_numpy()
        (line,) = ax.plot(x, y, label=layer, gid=GID_TRAJECTORY, **line_style)
        points = ax.scatter(x, y, c=epochs, cmap=cmap, norm=norm, marker=_marker_for(marker, i),
                            label=f"_{layer} points", gid=GID_POINTS, **scatter_style)
        if spread and "I_XT_std" in sub.columns and "I_TY_std" in sub.columns:
            xerr = np.nan_to_num(sub["I_XT_std"].to_numpy(dtype=np.float64))
            yerr = np.nan_to_num(sub["I_TY_std"].to_numpy(dtype=np.float64))
            if np.any(xerr > 0) or np.any(yerr > 0):
                bars = ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", elinewidth=0.7, capsize=0,
                                   alpha=0.55, zorder=2.0, label=f"_{layer} spread")
                for collection in bars.lines[2]:
                    collection.set_color(cmap(norm(epochs)))
                    collection.set_gid(GID_SPREAD)
        _draw_diagnostics(ax, sub, x, y, s)
        annotation = None
        if layer_labels in ("annotate", "both"):
            # a label right of a point at the right edge would spill out of the axes: put it on the left
            left = x[-1] > x_left_from
            annotation = ax.annotate(layer, xy=(x[-1], y[-1]), xytext=(-5 if left else 5, 3),
                                     textcoords="offset points", fontsize="small", color="0.15",
                                     ha="right" if left else "left", va="bottom", zorder=3)
        artists[layer] = (line, points, annotation)
    legend = layer_labels in ("legend", "both")
    # with a legend the entropy lines are named in it, not by text that the legend could cover
    _draw_references(ax, H_X, H_Y, text=not legend)
    if legend:
        handles = [Line2D([], [], color="0.45", linewidth=0.8, marker=_marker_for(marker, i),
                          markerfacecolor="0.3", markeredgecolor="none", label=layer)
                   for i, layer in enumerate(layers) if layer in artists]
        handles += [line for line in ax.lines if line.get_gid() in (GID_H_X, GID_H_Y)]
        if any(c.get_gid() == GID_SATURATED for c in ax.collections):
            handles.append(Line2D([], [], linestyle="none", marker="o", markerfacecolor="none",
                                  markeredgecolor="crimson", label="saturated (I(T;X) ≈ log2 N)"))
        style = {"title": "layer", "loc": "best", "fontsize": "small", "title_fontsize": "small",
                 "framealpha": 0.85, "edgecolor": "none"} | (legend_kws or {})
        ax.legend(handles=handles, **style)
    return artists


def _draw_diagnostics(ax: Axes, sub: pd.DataFrame, x: np.ndarray, y: np.ndarray, s: float) -> None:
    """Ring saturated points and draw bootstrap intervals, when the table has those columns."""
    if all(c in sub.columns for c in pu.INTERVAL_COLUMNS):
        lo_x, hi_x, lo_y, hi_y = (sub[c].to_numpy(dtype=np.float64) for c in pu.INTERVAL_COLUMNS)
        xerr = np.clip(np.nan_to_num(np.vstack([x - lo_x, hi_x - x])), 0, None)
        yerr = np.clip(np.nan_to_num(np.vstack([y - lo_y, hi_y - y])), 0, None)
        bars = ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.35", elinewidth=0.6, capsize=0,
                           alpha=0.6, zorder=2.0, label="_interval")
        for collection in bars.lines[2]:
            collection.set_gid(GID_INTERVAL)
    if "I_XT_se" in sub.columns and "I_TY_se" in sub.columns:  # a noisy estimator's ± 1 standard error
        xerr = np.nan_to_num(sub["I_XT_se"].to_numpy(dtype=np.float64))
        yerr = np.nan_to_num(sub["I_TY_se"].to_numpy(dtype=np.float64))
        if np.any(xerr > 0) or np.any(yerr > 0):
            bars = ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.2", elinewidth=0.8, capsize=1.5,
                               alpha=0.7, zorder=2.1, label="_standard error")
            for collection in bars.lines[2]:
                collection.set_gid(GID_SE)
    if "saturated" in sub.columns:
        sat = sub["saturated"].to_numpy(dtype=bool)
        if sat.any():
            ax.scatter(x[sat], y[sat], s=2.5 * s, facecolors="none", edgecolors="crimson", linewidths=0.8,
                       zorder=2.6, gid=GID_SATURATED, label="_saturated")


def _add_epoch_colorbar(fig: Figure, mappable: Any, ax: Any, norm: mcolors.Normalize, **kwargs: Any):
    cbar = fig.colorbar(mappable, ax=ax, label="epoch", **kwargs)
    if isinstance(norm, (mcolors.LogNorm, mcolors.SymLogNorm)):
        cbar.ax.yaxis.set_major_formatter(pu.epoch_formatter())
        cbar.ax.yaxis.set_minor_formatter(mticker.NullFormatter())
    return cbar


def _prepare_plane(
    df: pd.DataFrame, estimator: str | None, layers: Sequence[str] | str | None, *, owner: str,
    allow_several: bool = False,
) -> tuple[pd.DataFrame, list[str]]:
    pu.check_table(df, pu.PLANE_COLUMNS, numeric=("epoch", "I_XT", "I_TY"))
    sub = pu.select_estimator(df, estimator, allow_several=allow_several)
    chosen = pu.select_layers(sub, layers)
    if owner.startswith("plot_information_plane") and sub["I_XT"].isna().all():
        named = sorted(map(str, pd.unique(sub["estimator"]))) if "estimator" in sub.columns else []
        raise ValueError(
            f"{owner}: estimator(s) {named} report I(T;Y) only (I_XT is NaN on every row), so there is no "
            "plane to draw; use plot_mi_vs_epoch(df, 'I_TY', estimator=...) for their I(T;Y) against epoch."
        )
    return sub, chosen


def _auto_title(df: pd.DataFrame) -> str:
    if "estimator" in df.columns and df["estimator"].nunique() == 1:
        return str(df["estimator"].iloc[0])
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
    marker: str | Sequence[str] = "o",
    s: float = 22.0,
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
        ``run``, ``estimator``. If it holds several runs they are averaged per (layer, epoch) and the
        standard deviation across runs (ddof=1) is the spread; a summarized table (``I_XT_std``,
        ``I_TY_std`` columns, from ``summarize_runs``) is drawn as it is.
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
        Draw ± one standard deviation across runs as error bars (coloured by epoch) when known.
    layer_labels : {"annotate", "legend", "both", None}
        Name each layer at its last point, in a legend, both, or not at all.
    cmap : str or Colormap
        Epoch colormap (default viridis).
    colorbar : bool
        Add the "epoch" colour bar.
    marker : str or sequence of str
        Point marker, or one per layer (cycled), e.g. ``("o", "s", "^", "D", "v", "P")``.
    s : float
        Marker area in points².
    title : str, optional
        Axes title; default the estimator's label when the drawn rows hold a single one ("" for none).
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
        collections ``gid="epoch-points"``; reference lines ``gid="H_X"`` / ``"H_Y"``.

    References
    ----------
    Shwartz-Ziv & Tishby (2017), Opening the black box of deep neural networks via information,
    arXiv:1703.00810. Saxe et al. (2018), On the information bottleneck theory of deep learning, ICLR.
    """
    ax, _, _ = _plane(df, estimator=estimator, layers=layers, epoch_scale=epoch_scale, H_X=H_X, H_Y=H_Y,
                      spread=spread, layer_labels=layer_labels, cmap=cmap, colorbar=colorbar, marker=marker,
                      s=s, title=title, line_kws=line_kws, scatter_kws=scatter_kws, legend_kws=legend_kws,
                      ax=ax, owner="plot_information_plane")
    return ax


def _plane(df, *, estimator, layers, epoch_scale, H_X, H_Y, spread, layer_labels, cmap, colorbar, marker, s,
           title, line_kws, scatter_kws, ax, owner, legend_kws=None):
    """plot_information_plane's body; also returns the artists and the drawn table for the animation."""
    check_choice(layer_labels, "layer_labels", owner, LAYER_LABEL_CHOICES)
    H_X = _optional_bits(H_X, "H_X", owner)
    H_Y = _optional_bits(H_Y, "H_Y", owner)
    ax = _ax_or_gca(ax)
    sub, chosen = _prepare_plane(df, estimator, layers, owner=owner)
    table = pu.plane_table(sub, chosen)
    norm = pu.epoch_norm(table["epoch"], epoch_scale, owner=owner)
    artists = _draw_plane(ax, table, chosen, norm, cmap, spread=spread, layer_labels=layer_labels,
                          marker=marker, s=s, line_kws=line_kws, scatter_kws=scatter_kws, H_X=H_X, H_Y=H_Y,
                          legend_kws=legend_kws)
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
    marker: str | Sequence[str] = "o",
    s: float = 16.0,
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
    averaged) and titled ``"<row> = <value> | <col> = <value>"``.

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
    facets = [c for c in (row, col) if c is not None]
    pu.check_table(df, list(pu.PLANE_COLUMNS) + [c for c in facets if c not in pu.PLANE_COLUMNS],
                   numeric=("epoch", "I_XT", "I_TY"))
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
            ax.set_title(" | ".join(f"{k} = {v}" for k, v in ((row, r), (col, c)) if k is not None),
                         fontsize="medium")
            panel = sub[_facet_mask(sub, row, [r], col, [c])]
            artists = _draw_panel(ax, panel, chosen, norm, cmap, spread=spread, layer_labels=layer_labels,
                                  marker=marker, s=s, H_X=H_X, H_Y=H_Y)
            if mappable is None and artists:
                mappable = next(iter(artists.values()))[1]
            if i == len(rows) - 1:
                ax.set_xlabel(XLABEL)
            if j == 0:
                ax.set_ylabel(YLABEL)
    if mappable is None:  # pragma: no cover - the table is non-empty, so some panel has points
        mappable = ScalarMappable(norm=norm, cmap=cmap)
    _add_epoch_colorbar(fig, mappable, axes.ravel().tolist(), norm, shrink=0.6 if len(rows) > 1 else 1.0,
                        aspect=30 if len(rows) > 1 else 20)
    return fig


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
    return _draw_plane(ax, table, panel_layers, norm, cmap, line_kws=None, scatter_kws=None, **kwargs)
