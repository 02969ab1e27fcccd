"""Drawing one information-plane panel: trajectories per layer (and probe), epoch-coloured points, error bars,
rings, labels placed without overlap, and a legend that explains every mark drawn.

The statistics come ready from `plane_table`; this module only draws. What each artist is can be found by its
gid (`infoplane.plotting.GID_*`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from . import _utils as pu
from ._labels import GID_LABEL, LabelPlacer, diagnostic_handles, layer_markers
from ._runs import PROBE, PROBE_STYLES, probe_levels
from ._utils import GID_H_X, GID_H_Y, GID_INTERVAL, GID_POINTS, GID_SATURATED, GID_SPREAD, GID_TRAJECTORY

__all__ = ["GID_SE", "draw_plane", "draw_diagnostics", "draw_references"]

GID_SE = "standard-error"
LINE_STYLE = {"color": "0.45", "linewidth": 0.8, "alpha": 0.9, "zorder": 1.5}


def draw_references(ax: Axes, H_X: float | None, H_Y: float | None, *, text: bool = True) -> None:
    """I(T;X) <= H(X) bounds the x axis of the plane and I(T;Y) <= H(Y) its y axis."""
    pu._reference_line(ax, H_X, "H(X)", vertical=True, gid=GID_H_X, text=text)
    pu._reference_line(ax, H_Y, "H(Y)", vertical=False, gid=GID_H_Y, text=text)


def _explained(table: pd.DataFrame) -> dict[str, str]:
    """{gid: legend text} of the marks that may be drawn on a plane of ``table``."""
    n_runs = int(table["n_runs"].max()) if "n_runs" in table.columns and table["n_runs"].notna().any() else None
    runs = f" over {n_runs} runs" if n_runs and n_runs > 1 else " over runs"
    return {
        GID_SPREAD: f"± 1 SD{runs}",
        GID_SE: "± 1 SE of the estimate",
        GID_INTERVAL: "bootstrap interval",
        GID_SATURATED: "saturated (I(T;X) ≈ log2 N)",
        pu.GID_UNRELIABLE: "unreliable (self-check or sample-size check)",
    }


def _errorbars(ax: Axes, x, y, xerr, yerr, gid: str, colours: Any, label: str) -> None:
    if not (np.any(xerr > 0) or np.any(yerr > 0)):
        return
    bars = ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", elinewidth=0.7, capsize=0, alpha=0.55,
                       zorder=2.0, label=label)
    for collection in bars.lines[2]:
        collection.set_color(colours)
        collection.set_gid(gid)


def _draw_errors(ax: Axes, sub: pd.DataFrame, x, y, colours: Any, layer: str) -> None:
    """± 1 SD across runs (``*_std``), else ± 1 SE of one run's estimate (``*_se``), coloured by epoch."""
    for (cx, cy), gid in (((pu.STD_COLUMNS["I_XT"], pu.STD_COLUMNS["I_TY"]), GID_SPREAD),
                          ((pu.SE_COLUMNS["I_XT"], pu.SE_COLUMNS["I_TY"]), GID_SE)):
        if cx in sub.columns or cy in sub.columns:
            xerr = np.nan_to_num(sub[cx].to_numpy(dtype=np.float64)) if cx in sub.columns else np.zeros(len(x))
            yerr = np.nan_to_num(sub[cy].to_numpy(dtype=np.float64)) if cy in sub.columns else np.zeros(len(x))
            if np.any(xerr > 0) or np.any(yerr > 0):
                _errorbars(ax, x, y, xerr, yerr, gid, colours, f"_{layer} {gid}")
                return


def draw_diagnostics(ax: Axes, sub: pd.DataFrame, x: np.ndarray, y: np.ndarray, s: float) -> None:
    """Ring saturated points and draw bootstrap intervals, when the table has those columns."""
    if all(c in sub.columns for c in pu.INTERVAL_COLUMNS):
        lo_x, hi_x, lo_y, hi_y = (sub[c].to_numpy(dtype=np.float64) for c in pu.INTERVAL_COLUMNS)
        xerr = np.clip(np.nan_to_num(np.vstack([x - lo_x, hi_x - x])), 0, None)
        yerr = np.clip(np.nan_to_num(np.vstack([y - lo_y, hi_y - y])), 0, None)
        bars = ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.35", elinewidth=0.6, capsize=0,
                           alpha=0.6, zorder=2.0, label="_interval")
        for collection in bars.lines[2]:
            collection.set_gid(GID_INTERVAL)
    bad = np.zeros(len(sub), dtype=bool)
    for col in pu.RELIABLE_COLUMNS:
        if col in sub.columns:
            bad |= sub[col].astype("boolean").eq(False).fillna(False).to_numpy(dtype=bool)
    if bad.any():  # drawn over the epoch colour: grey = a self-check or the sample-size check rejected this point
        ax.scatter(x[bad], y[bad], s=s, c="0.65", edgecolors="none", zorder=2.55, gid=pu.GID_UNRELIABLE,
                   label="_unreliable")
    if "saturated" in sub.columns:
        sat = sub["saturated"].to_numpy(dtype=bool)
        if sat.any():
            ax.scatter(x[sat], y[sat], s=2.5 * s, facecolors="none", edgecolors="crimson", linewidths=0.8,
                       zorder=2.6, gid=GID_SATURATED, label="_saturated")


def _trajectories(table: pd.DataFrame, layers: Sequence[str]):
    """(key, layer, probe, probe index, rows) of every line to draw: one per layer and probe."""
    probes = probe_levels(table)
    for layer in layers:
        rows = table[table["layer"] == layer]
        for j, probe in enumerate(probes):
            part = rows if probe is None else rows[rows[PROBE] == probe]
            if part.empty:
                continue
            key = layer if j == 0 or probe is None else f"{layer} [{probe}]"
            yield key, layer, probe, j, part


def draw_plane(
    ax: Axes, table: pd.DataFrame, layers: Sequence[str], norm: mcolors.Normalize, cmap: Any, *,
    spread: bool, layer_labels: str | None, marker: str | Sequence[str] | None, s: float,
    line_kws: dict | None, scatter_kws: dict | None, H_X: float | None = None, H_Y: float | None = None,
    legend_kws: dict | None = None,
) -> dict[str, tuple[Line2D, Any, Any]]:
    """Draw one panel: per-layer (and per-probe) lines, epoch-coloured points, error bars, rings, labels."""
    cmap = pu._colormap(cmap)
    legend = layer_labels in ("legend", "both")
    markers = dict(zip(layers, layer_markers(marker, len(layers), legend)))
    scatter_style = {"s": s, "edgecolors": "none", "zorder": 2.5} | (scatter_kws or {})
    artists: dict[str, tuple[Line2D, Any, Any]] = {}
    placed = []
    for key, layer, _probe, j, sub in _trajectories(table, layers):
        x = sub["I_XT"].to_numpy(dtype=np.float64)
        y = sub["I_TY"].to_numpy(dtype=np.float64)
        epochs = sub["epoch"].to_numpy()
        style = LINE_STYLE | {"linestyle": PROBE_STYLES[j % len(PROBE_STYLES)]} | (line_kws or {})
        (line,) = ax.plot(x, y, label=key, gid=GID_TRAJECTORY, **style)
        points = ax.scatter(x, y, c=epochs, cmap=cmap, norm=norm, marker=markers[layer],
                            label=f"_{key} points", gid=GID_POINTS, **scatter_style)
        if spread:
            _draw_errors(ax, sub, x, y, cmap(norm(epochs)), key)
        draw_diagnostics(ax, sub, x, y, s)
        annotation = None
        if layer_labels in ("annotate", "both"):
            annotation = ax.annotate(layer, xy=(x[-1], y[-1]), xytext=(5, 3), textcoords="offset points",
                                     fontsize="small", color="0.15", ha="left", va="bottom", zorder=3,
                                     gid=GID_LABEL, annotation_clip=False)
            placed.append((annotation, line))
        artists[key] = (line, points, annotation)
    if placed:
        ax.add_artist(LabelPlacer(placed))
    # with a legend the entropy lines are named in it, not by text that the legend could cover
    draw_references(ax, H_X, H_Y, text=not legend)
    _legend(ax, table, layers, markers, artists, legend=legend, legend_kws=legend_kws)
    return artists


def _legend(ax: Axes, table: pd.DataFrame, layers: Sequence[str], markers: dict[str, str], artists: dict,
            *, legend: bool, legend_kws: dict | None) -> None:
    """The layers (legend modes), probes' line styles and every ring or error bar drawn, in every mode."""
    handles: list[Any] = []
    if legend:
        handles += [Line2D([], [], color="0.45", linewidth=0.8, marker=markers[layer], markerfacecolor="0.3",
                           markeredgecolor="none", label=layer) for layer in layers if layer in artists]
        handles += [line for line in ax.lines if line.get_gid() in (GID_H_X, GID_H_Y)]
    probes = probe_levels(table)
    if len(probes) > 1:
        handles += [Line2D([], [], color="0.45", linewidth=1.0, linestyle=PROBE_STYLES[j % len(PROBE_STYLES)],
                           label=f"probe: {probe}") for j, probe in enumerate(probes)]
    handles += diagnostic_handles(ax, _explained(table))
    if not handles:
        return
    style = {"loc": "best", "fontsize": "small", "title_fontsize": "small", "framealpha": 0.85,
             "edgecolor": "none"} | ({"title": "layer"} if legend else {}) | (legend_kws or {})
    ax.legend(handles=handles, **style)
