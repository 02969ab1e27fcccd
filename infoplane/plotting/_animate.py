"""The information plane animated over training (a Matplotlib ``FuncAnimation``, frame k = epochs up to the k-th)."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
from matplotlib.animation import FuncAnimation
from matplotlib.axes import Axes

from ._plane import _plane
from ._span import DEFAULT_MIN_SPAN

__all__ = ["animate_information_plane"]


def animate_information_plane(
    df: pd.DataFrame,
    *,
    estimator: str | None = None,
    layers: Sequence[str] | str | None = None,
    epoch_scale: str = "linear",
    H_X: float | None = None,
    H_Y: float | None = None,
    layer_labels: str | None = "annotate",
    cmap: str | mcolors.Colormap = "viridis",
    marker: str | Sequence[str] | None = None,
    s: float = 22.0,
    min_span: float | None = DEFAULT_MIN_SPAN,
    interval: float = 150.0,
    repeat: bool = True,
    ax: Axes | None = None,
) -> FuncAnimation:
    """Animate the information plane over training: frame k shows every point up to the k-th epoch.

    The axes limits and the colour bar (limits = the epoch range) are fixed from the whole table, so frames
    are comparable; the title gives the epoch. Several runs are averaged (no spread is drawn). Save with
    Pillow as a GIF: ``anim.save("plane.gif", writer="pillow", fps=10)``.

    Parameters
    ----------
    df, estimator, layers, epoch_scale, H_X, H_Y, layer_labels, cmap, marker, s, min_span
        As in :func:`plot_information_plane` (labels are re-placed without overlap at every frame).
    interval : float
        Delay between frames in milliseconds (when shown; ``save`` takes ``fps``).
    repeat : bool
        Loop when shown.
    ax : Axes, optional
        Axes to draw on; default ``plt.gca()``.

    Returns
    -------
    FuncAnimation
        One frame per distinct epoch, in increasing order. Keep a reference to it until saved or shown.
    """
    ax, artists, table = _plane(df, estimator=estimator, layers=layers, epoch_scale=epoch_scale, H_X=H_X,
                                H_Y=H_Y, spread=False, layer_labels=layer_labels, cmap=cmap, colorbar=True,
                                marker=marker, s=s, title=None, line_kws=None, scatter_kws=None, ax=ax,
                                owner="animate_information_plane", min_span=min_span)
    frames = np.sort(pd.unique(table["epoch"]))
    data = []
    for line, collection, text in artists.values():  # each line holds its full trajectory before frame 0
        data.append((line, collection, text, np.asarray(collection.get_array()),
                     np.asarray(line.get_xdata(), dtype=np.float64), np.asarray(line.get_ydata(), dtype=np.float64)))
    # freeze the full table's view (get_*lim resolves the lazy autoscale first) so frames share one view
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    base_title = ax.get_title()

    def update(k: int):
        epoch = frames[k]
        changed = []
        for line, collection, text, epochs, x, y in data:
            keep = epochs <= epoch
            line.set_data(x[keep], y[keep])
            collection.set_offsets(np.column_stack([x[keep], y[keep]]))
            collection.set_array(epochs[keep])
            changed += [line, collection]
            if text is not None:
                text.set_visible(bool(keep.any()))
                if keep.any():
                    text.xy = (x[keep][-1], y[keep][-1])
                changed.append(text)
        ax.set_title(f"{base_title}, epoch {epoch:g}" if base_title else f"epoch {epoch:g}")
        return changed

    return FuncAnimation(ax.figure, update, frames=len(frames), interval=interval, repeat=repeat, blit=False)
