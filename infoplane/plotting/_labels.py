"""Layer labels that do not overlap, and the legend entries that explain rings and error bars.

`LabelPlacer` is an invisible artist drawn just before the labels (zorder below theirs): at every draw it
reads each label's anchor (the layer's last point) and the direction of the trajectory's last step in
display space, then places the labels one by one, trying offsets along that direction first and turning
away from it in 45° steps at growing distances, keeping the first box (the renderer's window extent) that
overlaps no label already placed and stays inside the axes. Because it runs at draw time it sees the final
layout (colour bars, constrained layout, a saved figure's DPI) and the frame of an animation.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox, IdentityTransform

__all__ = ["MARKERS", "LabelPlacer", "layer_markers", "diagnostic_handles", "GID_LABEL"]

#: One marker per layer in the legend modes (shallow to deep), so the legend tells layers apart.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")
GID_LABEL = "layer-label"
#: Distances (points) from the anchor tried in turn, and the turns (degrees) away from the trajectory.
_RADII = (5.0, 11.0, 18.0, 27.0, 38.0, 52.0, 70.0)
_TURNS = (0.0, 45.0, -45.0, 90.0, -90.0, 135.0, -135.0, 180.0)
_PAD = 1.0  # pixels of air between two label boxes


def layer_markers(marker: str | Sequence[str] | None, n_layers: int, legend: bool) -> list[str]:
    """The marker of each layer: as given, else ``MARKERS`` in a legend mode (distinct), else circles."""
    if marker is None:
        return [MARKERS[i % len(MARKERS)] if legend else "o" for i in range(n_layers)]
    if isinstance(marker, str):
        return [marker] * n_layers
    marker = list(marker)
    if not marker:
        raise ValueError("marker must be a marker or a non-empty sequence of markers. Got an empty sequence.")
    return [marker[i % len(marker)] for i in range(n_layers)]


def _direction(line: Line2D | None, ax: Axes) -> np.ndarray:
    """Unit vector (display space) of the trajectory's last step, continued beyond its last point."""
    if line is not None:
        xy = np.asarray(line.get_xydata(), dtype=np.float64)
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if len(xy) >= 2:
            px = ax.transData.transform(xy)
            step = px[-1] - px[:-1]
            far = np.hypot(step[:, 0], step[:, 1]) > 2.0  # the last point at least 2 px away
            if far.any():
                d = step[np.flatnonzero(far)[-1]]
                return d / np.hypot(*d)
    return np.array([1.0, 1.0]) / np.sqrt(2.0)  # up and to the right: the usual free side of a rising plane


def _alignment(d: np.ndarray) -> tuple[str, str]:
    """Text alignment that makes the box grow away from the anchor in direction ``d``."""
    ha = "left" if d[0] > 0.3 else "right" if d[0] < -0.3 else "center"
    va = "bottom" if d[1] > 0.3 else "top" if d[1] < -0.3 else "center"
    return ha, va


def _rotate(d: np.ndarray, degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.array([d[0] * np.cos(a) - d[1] * np.sin(a), d[0] * np.sin(a) + d[1] * np.cos(a)])


def _overlap(a: Bbox, b: Bbox) -> bool:
    return a.x0 < b.x1 + _PAD and b.x0 < a.x1 + _PAD and a.y0 < b.y1 + _PAD and b.y0 < a.y1 + _PAD


def _inside(box: Bbox, frame: Bbox) -> bool:
    return box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1


class LabelPlacer(Artist):
    """Places ``labels`` (annotations of layer names) without overlap each time the axes are drawn.

    Parameters
    ----------
    labels : sequence of (Annotation, Line2D or None)
        Each label and the trajectory it names (its last step gives the preferred direction).
    """

    def __init__(self, labels: Sequence[tuple[Annotation, Line2D | None]]) -> None:
        super().__init__()
        self.labels = list(labels)
        self.set_zorder(2.99)  # just below the labels (zorder 3): placed before they are drawn
        self.set_in_layout(False)
        self.set_gid("label-placer")

    def get_window_extent(self, renderer: Any = None) -> Bbox:
        return Bbox.null()

    def draw(self, renderer: Any) -> None:
        if self.axes is None or not self.labels:
            return
        self.place(renderer)
        self._draw_leaders(renderer)

    def place(self, renderer: Any) -> None:
        """Choose every visible label's offset; boxes of labels placed earlier are never overlapped.

        Other texts of the axes (the H(X) / H(Y) names, notes) are obstacles too.
        """
        ax = self.axes
        frame = ax.get_window_extent(renderer)
        data_px = self._data_points(ax)
        mine = {id(text) for text, _ in self.labels}
        placed: list[Bbox] = [t.get_window_extent(renderer) for t in ax.texts
                              if id(t) not in mine and t.get_visible() and t.get_text()]
        for text, line in self.labels:
            if text.get_visible():
                placed.append(self._place_one(text, _direction(line, ax), placed, frame, data_px, renderer))

    def _draw_leaders(self, renderer: Any) -> None:
        """A thin line from each point to its label when the label sits more than a few points away."""
        ax = self.axes
        far = renderer.points_to_pixels(_RADII[1] - 0.5)
        for text, _ in self.labels:
            if not text.get_visible() or np.hypot(*text.xyann) < _RADII[1] - 0.5:
                continue
            anchor = ax.transData.transform(np.asarray(text.xy, dtype=np.float64))
            box = text.get_window_extent(renderer)
            end = np.clip(anchor, [box.x0, box.y0], [box.x1, box.y1])  # nearest point of the box
            if np.hypot(*(end - anchor)) < 0.25 * far:
                continue
            leader = Line2D([anchor[0], end[0]], [anchor[1], end[1]], transform=IdentityTransform(),
                            color="0.55", linewidth=0.5, zorder=self.get_zorder())
            leader.set_figure(ax.figure)
            leader.draw(renderer)

    @staticmethod
    def _data_points(ax: Axes) -> np.ndarray:
        """Display coordinates of every drawn trajectory point (labels prefer not to cover them)."""
        xy = [np.asarray(line.get_xydata(), dtype=np.float64) for line in ax.lines if line.get_gid() == "trajectory"]
        xy = np.concatenate(xy) if xy else np.empty((0, 2))
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        return ax.transData.transform(xy) if len(xy) else xy

    def _place_one(self, text: Annotation, d0: np.ndarray, placed: list[Bbox], frame: Bbox,
                   data_px: np.ndarray, renderer: Any) -> Bbox:
        """The first offset with no clash, inside the axes, covering fewest points; else the least bad one."""
        best: tuple[tuple[int, int, int], Bbox, np.ndarray, float] | None = None
        for radius in _RADII:
            for turn in _TURNS:
                d = _rotate(d0, turn)
                box = self._try(text, d, radius, renderer)
                covered = int(np.count_nonzero((data_px[:, 0] > box.x0) & (data_px[:, 0] < box.x1)
                                               & (data_px[:, 1] > box.y0) & (data_px[:, 1] < box.y1)))
                score = (sum(_overlap(box, other) for other in placed), 0 if _inside(box, frame) else 1, covered)
                if best is None or score < best[0]:
                    best = (score, box, d, radius)
                if score == (0, 0, 0):
                    return box
        assert best is not None  # _RADII and _TURNS are not empty
        _, box, d, radius = best
        self._try(text, d, radius, renderer)
        return box

    @staticmethod
    def _try(text: Annotation, d: np.ndarray, radius: float, renderer: Any) -> Bbox:
        ha, va = _alignment(d)
        text.set_horizontalalignment(ha)
        text.set_verticalalignment(va)
        text.xyann = (float(d[0] * radius), float(d[1] * radius))
        return text.get_window_extent(renderer)


def diagnostic_handles(ax: Axes, gids: dict[str, str]) -> list[Line2D]:
    """Legend proxies for the rings and error bars drawn on ``ax``: {gid: label} of what to look for."""
    handles = []
    drawn = {c.get_gid() for c in ax.collections}
    for gid, label in gids.items():
        if gid not in drawn:
            continue
        if gid == "unreliable":
            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=6, markerfacecolor="0.65",
                                  markeredgecolor="none", label=label))
        elif gid == "saturated":
            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=7, markerfacecolor="none",
                                  markeredgecolor="crimson", label=label))
        else:
            handles.append(Line2D([], [], linestyle="none", marker="+", markersize=9, markeredgewidth=0.8,
                                  color="0.35", label=label))
    return handles
