"""A minimum span, in bits, for the axes of an information plane, so that noise does not look like a trajectory.

Matplotlib scales each axis to the data: a layer whose I(T;Y) moves by 0.02 bits fills the whole height, and
estimator noise reads as a trend. `ensure_min_span` widens an axis whose view is narrower than ``min_span``
bits around the middle of its view (never below zero bits further than the data's own view goes) and says
so in a note in the lower left corner of the axes (gid ``"min-span-note"``).
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from matplotlib.axes import Axes

__all__ = ["DEFAULT_MIN_SPAN", "GID_SPAN_NOTE", "check_min_span", "ensure_min_span"]

#: Default smallest span of each axis of the plane, bits (settable per call with ``min_span=``).
DEFAULT_MIN_SPAN = 0.5
GID_SPAN_NOTE = "min-span-note"


def check_min_span(value: Any, owner: str) -> float | None:
    """``min_span`` as a float of bits >= 0, or None (no minimum); anything else raises naming it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"The 'min_span' parameter of {owner} must be None or a finite number of bits >= 0 "
                         f"(the smallest span of each axis). Got {value!r} instead.")
    return float(value)


def _widened(lo: float, hi: float, span: float) -> tuple[float, float] | None:
    """New limits of width ``span`` centred on the view, or None when the view is wide enough."""
    if hi - lo >= span:
        return None
    centre = 0.5 * (lo + hi)
    new_lo = centre - 0.5 * span
    floor = min(lo, 0.0)  # bits are >= 0: do not open more negative room than the view already has
    if new_lo < floor:
        new_lo = floor
    return new_lo, new_lo + span


def ensure_min_span(ax: Axes, min_span: float | None, *, note: bool = True) -> list[str]:
    """Widen the x and y view of ``ax`` to at least ``min_span`` bits; return the axes widened ("x", "y").

    With ``note``, a small text in the lower left corner states the scale ("axes span ≥ 0.5 bits") when an
    axis was widened, so a reader knows the flat look is real.
    """
    if min_span is None or min_span <= 0:
        return []
    widened = []
    for axis, get, set_ in (("x", ax.get_xlim, ax.set_xlim), ("y", ax.get_ylim, ax.set_ylim)):
        new = _widened(*get(), min_span)
        if new is not None:
            set_(*new)
            widened.append(axis)
    if widened and note and not any(t.get_gid() == GID_SPAN_NOTE for t in ax.texts):
        # lower left: the lower right holds the H(X) name, the top the H(Y) line and most legends
        ax.text(0.01, 0.01, f"{' and '.join(widened)} span ≥ {min_span:g} bits (min_span)",
                transform=ax.transAxes, ha="left", va="bottom", fontsize="x-small", color="0.45",
                gid=GID_SPAN_NOTE, zorder=0.6)
    return widened
