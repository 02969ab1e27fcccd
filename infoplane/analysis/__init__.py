"""Analysis: information-plane tables from recorded runs, summaries, diagnostics, geometry, result files.

`information_plane` turns recorded runs into one tidy table (one row per run, epoch, layer and estimator,
numbers in bits); `summarize_runs` and `compression_scores` summarise it; `add_flags` marks rows that cannot be
trusted (saturation, data-processing violations); `geometric_compression` measures class clustering directly;
`save_results` / `load_results` write and read tables crash-safely with their conventions. Every column that
`information_plane` adds beside the estimates comes from a column provider (`Provider`, `ColumnProvider`).
"""
from __future__ import annotations

from ._diagnostics import DEFAULT_DPI_TOLERANCE_BITS, SATURATION_MARGIN_BITS, add_flags
from ._engine import RESULT_COLUMNS
from ._geometry import geometric_compression
from ._plane import compression_scores, information_plane, summarize_runs
from ._providers import ColumnProvider, Provider, RowContext, TableContext
from ._results import load_results, save_results, sidecar_path

__all__ = [
    "information_plane",
    "summarize_runs",
    "compression_scores",
    "add_flags",
    "geometric_compression",
    "save_results",
    "load_results",
    "sidecar_path",
    "ColumnProvider",
    "Provider",
    "RowContext",
    "TableContext",
    "RESULT_COLUMNS",
    "SATURATION_MARGIN_BITS",
    "DEFAULT_DPI_TOLERANCE_BITS",
]
