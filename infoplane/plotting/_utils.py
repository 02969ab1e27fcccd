"""Private helpers of :mod:`infoplane.plotting`: table checks, selection, averaging over runs, epoch norms.

Everything here works on tidy pandas tables (see the results-table contract) and computes the statistics
*before* anything is drawn, as seaborn does, so the drawing code only draws.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib import colors as mcolors
from matplotlib import ticker as mticker
from matplotlib.axes import Axes

from .._core import tables as _tables
from .._core.tables import listed
from .._core.validation import check_choice
from ._runs import PROBE, check_runs_comparable

__all__ = [
    "listed",
    "check_table",
    "select_estimator",
    "select_layers",
    "layer_order",
    "plane_table",
    "epoch_norm",
    "epoch_formatter",
    "set_epoch_xscale",
]

PLANE_COLUMNS = ("epoch", "layer", "I_XT", "I_TY")
STD_COLUMNS = {"I_XT": "I_XT_std", "I_TY": "I_TY_std"}


def check_finite_columns(df: Any, columns: Sequence[str], *, allow_nan: bool = True) -> None:
    """Raise naming the column when it holds an infinite value (a plot would draw it at the axis' edge)."""
    _tables.check_finite_columns(df, columns, allow_nan=allow_nan)


def check_table(df: Any, required: Sequence[str], *, name: str = "df", numeric: Sequence[str] = ()) -> None:
    """Raise unless ``df`` is a non-empty DataFrame holding ``required`` columns, ``numeric`` ones numbers."""
    _tables.check_table(df, required, name=name, numeric=numeric, purpose="plot")


def select_estimator(
    df: pd.DataFrame, estimator: str | None, *, name: str = "df", allow_several: bool = False
) -> pd.DataFrame:
    """Keep the rows of one estimator; ``estimator=None`` is allowed only if the table holds one.

    A table without an ``estimator`` column is treated as holding a single, unnamed estimator.
    """
    if "estimator" not in df.columns:
        if estimator is not None:
            raise ValueError(
                f"estimator={estimator!r} was given but {name} has no 'estimator' column; "
                f"it has columns {listed(df.columns)}."
            )
        return df
    present = list(pd.unique(df["estimator"]))
    if estimator is None:
        if len(present) > 1 and not allow_several:
            raise ValueError(
                f"{name} holds {len(present)} estimators ({listed(present)}); pass estimator= to choose one, "
                "or draw them side by side with plot_information_plane_grid(df, col='estimator')."
            )
        return df
    if estimator not in present:
        raise ValueError(f"estimator {estimator!r} is not in {name}; it holds {listed(present)}.")
    return df[df["estimator"] == estimator]


def layer_order(df: pd.DataFrame) -> list[str]:
    """Layers in network order: ``df.attrs['layers']`` where given, then any others by first appearance."""
    present = list(pd.unique(df["layer"]))
    declared = [layer for layer in df.attrs.get("layers", []) or [] if layer in set(present)]
    return declared + [layer for layer in present if layer not in set(declared)]


def select_layers(df: pd.DataFrame, layers: Sequence[str] | str | None, *, name: str = "df") -> list[str]:
    """Return the layers to draw, in order; unknown names raise listing the table's layers."""
    available = layer_order(df)
    if layers is None:
        return available
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, (Sequence, np.ndarray, pd.Index)):
        raise TypeError(f"layers must be a layer name or a sequence of layer names. Got {type(layers).__name__}.")
    layers = list(layers)
    if not layers:
        raise ValueError("layers must name at least one layer. Got an empty sequence.")
    unknown = [layer for layer in layers if layer not in set(available)]
    if unknown:
        raise ValueError(f"unknown layer(s) {listed(unknown)}; {name} holds layers {listed(available)}.")
    return layers


#: Bootstrap-interval columns of a results table (`infoplane.analysis`), drawn as error bars when present.
INTERVAL_COLUMNS = ("I_XT_low", "I_XT_high", "I_TY_low", "I_TY_high")


#: Standard-error columns (e.g. a noisy estimator's Monte Carlo SE), drawn as ± SE error bars for one run.
SE_COLUMNS = {"I_XT": "I_XT_se", "I_TY": "I_TY_se"}


def plane_table(
    df: pd.DataFrame, layers: Sequence[str], quantities: Sequence[str] = ("I_XT", "I_TY"), *, name: str = "df"
) -> pd.DataFrame:
    """One row per (layer, epoch[, probe]): the mean over runs and, where known, the spread (``*_std``, ``n_runs``).

    A table with a ``run`` column holding several runs is averaged here; the standard deviation across runs
    uses ddof=1 (one run gives NaN: no spread to draw). Runs are averaged only when they differ in nothing
    but the seed (`check_runs_comparable`); a ``probe`` column keeps each probe apart. A summarized table
    (already carrying ``I_XT_std`` / ``I_TY_std``) is used as it is, and a single run keeps its standard
    errors (``I_XT_se`` / ``I_TY_se``). Several rows for one (layer, epoch) that are not distinct runs are
    ambiguous and raise.
    """
    sub = df[df["layer"].isin(layers)]
    probe = [PROBE] if PROBE in sub.columns else []
    keys = ["layer", "epoch"] + probe
    has_runs = "run" in sub.columns and sub["run"].nunique() > 1
    has_std = all(STD_COLUMNS[q] in sub.columns for q in quantities)
    dup_keys = keys + (["run"] if "run" in sub.columns else [])
    dup = sub.duplicated(dup_keys, keep=False)
    if dup.any():
        example = sub.loc[dup, dup_keys].iloc[0].to_dict()
        raise ValueError(
            f"{name} has several rows for one {tuple(dup_keys)} (e.g. {example}); filter it to one "
            "estimator and configuration, or give each repetition its own 'run' label."
        )
    if has_runs and not has_std:
        for _, group in (sub.groupby(PROBE, sort=False) if probe else [(None, sub)]):
            check_runs_comparable(group, name=name)
        # a mean point is marked when any run's point is saturated, grey when any run's is unreliable
        extra = {c: (c, "any") for c in ("saturated",) if c in sub.columns}
        extra.update({c: (c, "all") for c in RELIABLE_COLUMNS if c in sub.columns})
        extra = extra or None
        out = _tables.mean_sd(sub, keys, quantities, ddof=1, extra=extra)
    else:
        cols = keys + list(quantities) + [STD_COLUMNS[q] for q in quantities if has_std]
        # diagnostics (infoplane.analysis) of one run travel with the points
        cols += [c for c in ("n_runs", "saturated", *RELIABLE_COLUMNS, *INTERVAL_COLUMNS,
                             *(SE_COLUMNS[q] for q in quantities))
                 if c in sub.columns]
        out = sub[cols].copy()
    order = {layer: i for i, layer in enumerate(layers)}
    out["_order"] = out["layer"].map(order)
    sort = ["_order", "epoch"]
    if probe:
        out["_probe"] = out[PROBE].map({p: i for i, p in enumerate(pd.unique(sub[PROBE]))})
        sort = ["_order", "_probe", "epoch"]
    out = out.sort_values(sort, kind="stable").drop(columns=[c for c in ("_order", "_probe") if c in out])
    return out.reset_index(drop=True)


def epoch_norm(epochs: Any, scale: str = "linear", *, owner: str = "plot") -> mcolors.Normalize:
    """Colour normalisation whose limits are the epoch range (vmin = first epoch, vmax = last epoch).

    ``scale="log"`` uses LogNorm when every epoch is > 0 and otherwise SymLogNorm with linthresh = 1 epoch
    (linear on [0, 1], logarithmic above, the linear part one decade wide), so epoch 0 gets the first colour
    and 1, 10, 100, ... are evenly spaced. A single epoch widens the range by half an epoch either side,
    because a colour bar cannot span zero width.
    """
    check_choice(scale, "epoch_scale", owner, ("linear", "log"))
    epochs = np.asarray(epochs, dtype=np.float64)
    vmin, vmax = float(np.nanmin(epochs)), float(np.nanmax(epochs))
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
        if scale == "log":
            vmin = max(vmin, 0.0)
    if scale == "linear":
        return mcolors.Normalize(vmin=vmin, vmax=vmax)
    if vmin < 0:
        raise ValueError(f"epoch_scale='log' needs epochs >= 0. Got a first epoch of {vmin:g}.")
    if vmin > 0:
        return mcolors.LogNorm(vmin=vmin, vmax=vmax)
    return mcolors.SymLogNorm(linthresh=1.0, linscale=1.0, vmin=vmin, vmax=vmax, base=10)


def epoch_formatter() -> mticker.Formatter:
    """Plain numbers (0, 1, 10, 1000) rather than powers of ten: epochs are counts."""
    return mticker.FuncFormatter(lambda value, _pos: f"{value:g}")


def set_epoch_xscale(ax: Any, epochs: Any, scale: str, *, owner: str) -> None:
    """Put the x (epoch) axis on a linear or log scale; log copes with epoch 0 through symlog (linthresh 1)."""
    check_choice(scale, "epoch_scale", owner, ("linear", "log"))
    if scale == "linear":
        return
    first = float(np.nanmin(np.asarray(epochs, dtype=np.float64)))
    if first < 0:
        raise ValueError(f"epoch_scale='log' needs epochs >= 0. Got a first epoch of {first:g}.")
    if first > 0:
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=1.0, linscale=1.0)
        ax.set_xlim(left=0.0)  # symlog margins would otherwise open an empty negative-epoch decade
    ax.xaxis.set_major_formatter(epoch_formatter())
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())


# gids let callers (and the tests) find each kind of artist without relying on draw order.
GID_TRAJECTORY = "trajectory"
GID_POINTS = "epoch-points"
GID_SPREAD = "spread"
GID_SATURATED = "saturated"
GID_UNRELIABLE = "unreliable"
#: Columns of `information_plane` (``self_check``, on by default; ``I_XT_reliable``/``I_TY_reliable`` with
#: ``reliability=True``): a point is drawn grey when any is False.
RELIABLE_COLUMNS = ("I_XT_reliable", "I_TY_reliable", "self_check")
GID_INTERVAL = "interval"
GID_H_X = "H_X"
GID_H_Y = "H_Y"
REFERENCE_STYLE = {"color": "0.35", "linestyle": "--", "linewidth": 0.9, "zorder": 0.5}


def _ax_or_gca(ax: Axes | None) -> Axes:
    if ax is None:
        return plt.gca()
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None. Got {type(ax).__name__}.")
    return ax


def _colormap(cmap: str | mcolors.Colormap) -> mcolors.Colormap:
    if isinstance(cmap, mcolors.Colormap):
        return cmap
    if cmap not in colormaps:
        raise ValueError(f"cmap must be a Matplotlib Colormap or a registered colormap name. Got {cmap!r}.")
    return colormaps[cmap]


def _optional_bits(value: Any, param: str, owner: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"The {param!r} parameter of {owner} must be None or a finite number of bits >= 0. "
                         f"Got {value!r} instead.")
    return float(value)


def _reference_line(ax: Axes, value: float | None, name: str, *, vertical: bool, gid: str,
                    text: bool = True, text_at_end: bool = False) -> None:
    """A dashed line at an entropy that bounds a mutual information, named at the line's end.

    Drawn after the data: the view is widened so the line sits inside the axes, not on the frame.
    """
    if value is None:
        return
    label = f"{name} = {value:.4g} bits"
    if vertical:
        line = ax.axvline(value, label=label, **REFERENCE_STYLE)
        lo, hi = ax.get_xlim()
        if value >= hi - 0.02 * (hi - lo):
            ax.set_xlim(lo, value + 0.04 * (value - lo))
        if text:  # bottom right of the plane is empty: layers gain I(T;Y) as they gain I(T;X)
            ax.annotate(name, xy=(value, 0.0), xycoords=ax.get_xaxis_transform(), xytext=(-3, 3),
                        textcoords="offset points", ha="right", va="bottom", fontsize="small", color="0.35")
    else:
        line = ax.axhline(value, label=label, **REFERENCE_STYLE)
        lo, hi = ax.get_ylim()
        if value >= hi - 0.02 * (hi - lo):
            ax.set_ylim(lo, value + 0.04 * (value - lo))
        if text:
            ax.annotate(name, xy=(1.0 if text_at_end else 0.0, value), xycoords=ax.get_yaxis_transform(),
                        xytext=(-3 if text_at_end else 3, -3), textcoords="offset points",
                        ha="right" if text_at_end else "left", va="top", fontsize="small", color="0.35")
    line.set_gid(gid)
