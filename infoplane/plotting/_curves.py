"""Curves against epoch: one mutual information (bits) per layer over training, from a tidy results table."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .._core.validation import check_choice
from . import _utils as pu
from ._plane import QUANTITY_LABELS, _auto_title, _prepare_plane
from ._runs import PROBE, PROBE_STYLES, probe_levels
from ._utils import (
    GID_H_X,
    GID_H_Y,
    GID_SPREAD,
    GID_TRAJECTORY,
    _ax_or_gca,
    _colormap,
    _optional_bits,
    _reference_line,
)

__all__ = ["plot_mi_vs_epoch"]


def plot_mi_vs_epoch(
    df: pd.DataFrame,
    quantity: str = "I_XT",
    *,
    estimator: str | None = None,
    layers: Sequence[str] | str | None = None,
    epoch_scale: str = "linear",
    H_X: float | None = None,
    H_Y: float | None = None,
    spread: bool = True,
    palette: Sequence[Any] | str | None = None,
    legend: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw one mutual information (``I_XT`` or ``I_TY``, bits) against epoch, one line per layer.

    Parameters
    ----------
    df : DataFrame
        Tidy results table (``epoch``, ``layer``, ``I_XT``, ``I_TY`` in bits); several runs are averaged
        and their ± one standard deviation drawn as a band (``spread=True``).
    quantity : {"I_XT", "I_TY"}
        I(T;X) or I(T;Y).
    estimator, layers : as in :func:`plot_information_plane`.
    epoch_scale : {"linear", "log"}
        Scale of the epoch axis; ``"log"`` is symlog (linear on [0, 1] epochs) when epoch 0 is present.
    H_X, H_Y : float, optional
        Reference line at H(X) (for ``I_XT``) or H(Y) (for ``I_TY``), bits; the other one is ignored.
    palette : sequence of colours or colormap name, optional
        Layer colours, shallow to deep; default Matplotlib's colour cycle (C0, C1, ...).
    legend : bool
        Add a legend naming the layers.
    ax : Axes, optional
        Axes to draw on; default ``plt.gca()``.

    Returns
    -------
    Axes
        The Axes; each layer's line carries ``gid="trajectory"`` and the layer as label.
    """
    owner = "plot_mi_vs_epoch"
    check_choice(quantity, "quantity", owner, ("I_XT", "I_TY"))
    H_X = _optional_bits(H_X, "H_X", owner)
    H_Y = _optional_bits(H_Y, "H_Y", owner)
    ax = _ax_or_gca(ax)
    sub, chosen = _prepare_plane(df, estimator, layers, owner=owner, plane=False)
    table = pu.plane_table(sub, chosen)
    if palette is None:
        colours = [f"C{i % 10}" for i in range(len(chosen))]
    elif isinstance(palette, str):
        colours = list(_colormap(palette)(np.linspace(0.0, 0.9, max(len(chosen), 2))))
    else:
        colours = list(palette)
        if not colours:
            raise ValueError("palette must hold at least one colour. Got an empty sequence.")
    _epoch_lines(ax, table, chosen, colours, quantity, spread)
    # named at the right end: the legend usually takes the free top-left corner of a rising curve
    if quantity == "I_XT":
        _reference_line(ax, H_X, "H(X)", vertical=False, gid=GID_H_X, text_at_end=True)
    else:
        _reference_line(ax, H_Y, "H(Y)", vertical=False, gid=GID_H_Y, text_at_end=True)
    pu.set_epoch_xscale(ax, table["epoch"], epoch_scale, owner=owner)
    ax.set_xlabel("epoch")
    ax.set_ylabel(QUANTITY_LABELS[quantity])
    ax.set_title(_auto_title(sub) if title is None else title)
    if legend:
        handles = [line for line in ax.lines if line.get_gid() == GID_TRAJECTORY]
        ax.legend(handles=handles, title="layer", fontsize="small", title_fontsize="small", frameon=False)
    return ax


def _epoch_lines(ax: Axes, table: pd.DataFrame, chosen: list[str], colours: list, quantity: str,
                 spread: bool) -> None:
    """One line per layer (and probe: its own line style), with its ± 1 SD band across runs."""
    std_col = pu.STD_COLUMNS[quantity]
    probes = probe_levels(table)
    for i, layer in enumerate(chosen):
        for j, probe in enumerate(probes):
            part = table[table["layer"] == layer]
            part = part if probe is None else part[part[PROBE] == probe]
            if part.empty:
                continue
            epochs = part["epoch"].to_numpy()
            values = part[quantity].to_numpy(dtype=np.float64)
            colour = colours[i % len(colours)]
            label = layer if len(probes) == 1 else f"{layer} [{probe}]"
            ax.plot(epochs, values, color=colour, linewidth=1.4, marker="o", markersize=2.5, label=label,
                    linestyle=PROBE_STYLES[j % len(PROBE_STYLES)], gid=GID_TRAJECTORY)
            if spread and std_col in part.columns:
                std = np.nan_to_num(part[std_col].to_numpy(dtype=np.float64))
                if np.any(std > 0):
                    band = ax.fill_between(epochs, values - std, values + std, color=colour, alpha=0.2,
                                           linewidth=0, label=f"_{label} spread")
                    band.set_gid(GID_SPREAD)
