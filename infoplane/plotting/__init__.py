"""Figures of the information plane, drawn from tidy results tables (bits on every axis).

Plotting knows no estimator, recorder or store. Every function takes a tidy `pandas.DataFrame` and
``ax=None``, draws on the given (or a new) Axes and returns it; none calls ``plt.show()`` or saves a file.
"""
from __future__ import annotations

from ._animate import animate_information_plane
from ._curves import plot_mi_vs_epoch
from ._plane import plot_information_plane, plot_information_plane_grid
from ._utils import (
    GID_H_X,
    GID_H_Y,
    GID_INTERVAL,
    GID_POINTS,
    GID_SATURATED,
    GID_SPREAD,
    GID_TRAJECTORY,
)
from ._vib import plot_rate_gap, plot_vib_tradeoff

__all__ = [
    "plot_information_plane",
    "plot_information_plane_grid",
    "plot_mi_vs_epoch",
    "plot_vib_tradeoff",
    "plot_rate_gap",
    "animate_information_plane",
    # the gid of each kind of artist, so tests and users can find what was drawn
    "GID_TRAJECTORY",
    "GID_POINTS",
    "GID_SPREAD",
    "GID_INTERVAL",
    "GID_SATURATED",
    "GID_H_X",
    "GID_H_Y",
]
