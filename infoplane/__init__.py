"""infoplane: information-plane analysis of neural networks.

Record chosen layers of any PyTorch model on a fixed probe set at scheduled epochs (`Recorder`, `record`),
keep them in memory or in a crash-safe zarr store (`open_store`), estimate I(T;X) and I(T;Y) in bits
(`infoplane.estimators`: binning, KDE bounds, variational bounds) into tidy tables (`information_plane`), and
draw epoch-coloured trajectories (`infoplane.plotting`).
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import datasets, estimators, models
from ._types import MIResult
from .analysis import compression_scores, information_plane, summarize_runs
from .models import GaussianEncoder, SZTNet, VIBClassifier, VIBRegressor
from .recording import Layer, Recorder, Schedule, record
from .results_io import load_results, save_results
from .store import MemoryStore, StoreLockedError, ZarrStore, open_store
from .sweeps import beta_sweep

__all__ = [
    "__version__",
    "MIResult",
    "Recorder",
    "record",
    "Layer",
    "Schedule",
    "open_store",
    "MemoryStore",
    "ZarrStore",
    "StoreLockedError",
    "information_plane",
    "summarize_runs",
    "compression_scores",
    "save_results",
    "load_results",
    "beta_sweep",
    "SZTNet",
    "GaussianEncoder",
    "VIBClassifier",
    "VIBRegressor",
    "datasets",
    "estimators",
    "models",
]


def __getattr__(name: str):
    # matplotlib is imported only when plots are asked for; the ground-truth suite when it is used.
    if name in ("plotting", "groundtruth"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'infoplane' has no attribute {name!r}")
