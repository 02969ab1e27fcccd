"""infoplane: information-plane analysis of neural networks.

Record chosen layers of any PyTorch model on a fixed probe set at scheduled epochs (`Recorder`, `record`),
keep them in memory or in a crash-safe zarr store (`open_store`), estimate I(T;X) and I(T;Y) in bits
(`infoplane.estimators`: binning, KDE bounds, variational bounds, k-NN, critics, a probe, noisy networks)
into tidy tables (`information_plane`), and draw epoch-coloured trajectories (`infoplane.plotting`).

Where things are: `recording`, `store`, `estimators`, `analysis`, `plotting` — one folder per stage of the
pipeline — and `nets` (reference networks, data sets, training, noise, β sweeps), `groundtruth` (tasks of
known mutual information), `integrations` (Lightning, Hugging Face, loggers, DDP).
"""
from __future__ import annotations

__version__ = "0.2.0.dev0"

from . import estimators, nets
from ._core.types import MIResult
from ._core.warnings import SaturationWarning
from .analysis import compression_scores, information_plane, load_results, save_results, summarize_runs
from .nets import GaussianEncoder, SZTNet, VIBClassifier, VIBRegressor, beta_sweep
from .recording import Layer, Recorder, Schedule, record
from .store import MemoryStore, StoreLockedError, ZarrStore, open_store

__all__ = [
    "__version__",
    "MIResult",
    "SaturationWarning",
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
    "estimators",
    "nets",
]

# Imported on first use: matplotlib only when plots are asked for, the ground-truth suite when it is used,
# and the module paths that 0.2 moved (each warns once, naming its new home).
_LAZY = ("plotting", "groundtruth", "integrations")


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    if name in ("models", "datasets", "sweeps", "diagnostics", "geometry", "results_io", "presets", "noise"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'infoplane' has no attribute {name!r}")
