"""Recording: forward hooks on an existing model record chosen layers on a probe set at scheduled epochs.

`Recorder` (context manager, ``step(epoch)``), `record` (one probe pass, no store), `Layer` (the explicit
layer spec: output element, Gaussian parts, in-hook reductions), `Schedule` (which epochs), and
`resolve_layers` (names, globs, types and modules to ``(name, module)`` pairs). See `Recorder` for the
layer selectors, the stored shapes and the epoch rules.
"""
from __future__ import annotations

from ._layers import GaussianParam, Layer, Selector, resolve_layers
from ._noisy import NoiseHooks, as_probe_rows, noise_hooks, propagate, warn_bernoulli_dropout
from ._recorder import Recorder, record
from ._reductions import Reduction, jl_epsilon, projection_kde_bracket
from ._schedule import Schedule

__all__ = [
    "Recorder", "record", "Layer", "Schedule", "resolve_layers", "Reduction", "Selector", "GaussianParam",
    "jl_epsilon", "projection_kde_bracket",
    "NoiseHooks", "noise_hooks", "propagate", "as_probe_rows", "warn_bernoulli_dropout",
]
