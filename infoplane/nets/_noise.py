"""Networks with noise: a noise spec after chosen layers of any model (`add_noise`), and sample propagation.

In a deterministic network I(X;T) of a continuous input is infinite (on a finite probe set: log2 N once rows
differ), so the information plane measures geometry, not information (Goldfeld et al. 2019; Adilova, Geiger &
Fischer 2023). Noise makes I(X;T) finite and meaningful: `GaussianNoise(std)`, T_l = f_l(T_{l−1}) + Z_l with
Z_l ~ N(0, std² I), or `GaussianDropout(rate)`, T_l = f_l(T_{l−1}) ⊙ (1 + σ ε). `add_noise` does that to an
unchanged model with forward hooks (while training it, by default, and in eval mode); `sample_propagation`
records what `infoplane.estimators.NoisyEstimator` needs: for every probe input, m propagated noise draws of
each noisy layer's output *before* its own noise (its centres). ``Recorder(..., draws=m)`` with
``Layer(name, noise=spec)`` records the same draws at every scheduled epoch.

Layers are chosen exactly as the `Recorder` chooses them (`infoplane.recording.resolve_layers`: names, globs,
types, modules, `Layer` specs with their own ``noise=``). Hooks always come off (``finally``); the model's
mode is restored; noise is drawn on the CPU from a seeded generator and moved to the output's device.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from .._core.noise_specs import as_noise_spec
from .._core.validation import check_bool_param, check_int_param
from ..recording import (
    NoiseHooks,
    as_probe_rows,
    noise_hooks,
    propagate,
    resolve_layers,
    warn_bernoulli_dropout,
)

__all__ = ["NoiseHooks", "add_noise", "PropagatedLayer", "sample_propagation"]


def _noisy_layers(model: torch.nn.Module, layers: Any, spec: Any, owner: str) -> list:
    """Resolved layers, each with its noise: the layer's own ``noise=`` or ``spec``."""
    default = None if spec is None else as_noise_spec(spec, owner, "spec")
    out = []
    for layer in resolve_layers(model, layers):
        noise = layer.noise if layer.noise is not None else default
        if noise is None:
            raise ValueError(
                f"{owner}: layer {layer.name!r} has no noise: give spec=GaussianNoise(std) / "
                "GaussianDropout(rate), or Layer(name, noise=...)."
            )
        out.append(replace(layer, noise=noise))
    warn_bernoulli_dropout(model, owner)
    return out


@contextlib.contextmanager
def add_noise(
    model: torch.nn.Module,
    layers: Any,
    spec: Any = None,
    training: bool = True,
    *,
    seed: int | None = 0,
    capture: bool = False,
) -> Iterator[NoiseHooks]:
    """Add the noise ``spec`` to the outputs of ``layers`` while the context is open.

    Noise is added in training mode (train the noisy network itself) unless ``training=False``, and always in
    evaluation mode, except while a `Recorder` records: its hooks then stand aside, since the Recorder adds
    each ``Layer(name, noise=...)``'s noise itself (and its plain pass is noise-free), so training inside
    ``add_noise`` with ``callback=rec.step`` never adds the noise twice. With ``capture=True`` each noisy layer's output
    *before* its noise is kept in ``hooks.centres`` (what `NoisyEstimator` takes). Forward hooks only: the
    model's code and parameters are untouched, and the hooks are removed on exit, also after an exception.

    Parameters
    ----------
    model : torch.nn.Module
    layers : name, glob, module, module type, Layer, or a list of them
        As for the `Recorder` (an unknown name raises KeyError listing the real ones).
    spec : GaussianNoise, GaussianDropout or float
        The noise (a float s is ``GaussianNoise(s)``); optional where every `Layer` carries its own ``noise=``.
    training : bool, default True
        Also add noise in training mode.
    seed : int or None
        Seed of a CPU generator for the noise.
    capture : bool
        Keep the pre-noise outputs.

    Examples
    --------
    >>> with add_noise(model, "dense*", GaussianDropout(0.2)):
    ...     train(model, X, y, epochs=50)
    """
    training = check_bool_param(training, "training", "add_noise")
    capture = check_bool_param(capture, "capture", "add_noise")
    resolved = _noisy_layers(model, layers, spec, "add_noise")
    with noise_hooks(resolved, seed=seed, training=training, capture=capture) as hooks:
        yield hooks


@dataclass(frozen=True)
class PropagatedLayer:
    """One noisy layer's centres for `NoisyEstimator`: ``centres`` (N·m, units) float32, ``inputs`` (N·m,)
    the probe row each came from, ``labels`` (N·m,) when labels were given, and the layer's ``noise``."""

    centres: np.ndarray
    inputs: np.ndarray
    labels: np.ndarray | None
    noise: Any = None


def sample_propagation(
    model: torch.nn.Module,
    probe: Any,
    layers: Any,
    spec: Any = None,
    *,
    labels: Any = None,
    n_samples: int = 8,
    seed: int | None = 0,
    batch_size: int = 1024,
) -> dict[str, PropagatedLayer]:
    """Push ``n_samples`` noise draws of every probe input through the noisy network; record each noisy
    layer's pre-noise output (Goldfeld et al. 2019's sample propagation).

    The model runs in eval mode without gradient (its mode is restored), with each layer's noise. For the
    first noisy layer the m centres of an input are equal (given X = x it is a single Gaussian); for deeper
    ones they differ, and T | X = x is the mixture over them. Then ``NoisyEstimator(noise=layer.noise)
    .estimate(layer.centres, layer.labels, x=layer.inputs)`` gives I(X;T) and I(T;Y). The same ``seed`` and
    ``batch_size`` give exactly the draws ``Recorder(..., draws=n_samples, noise_seed=seed)`` records.
    Cost: m forward passes of the probe set; memory N·m·units per layer.
    """
    n_samples = check_int_param(n_samples, "n_samples", "sample_propagation", minimum=1)
    batch_size = check_int_param(batch_size, "batch_size", "sample_propagation", minimum=1)
    resolved = _noisy_layers(model, layers, spec, "sample_propagation")
    x = as_probe_rows(probe, "sample_propagation")
    param = next(iter(model.parameters()), None)
    device = torch.device("cpu") if param is None else param.device
    if param is not None and x.is_floating_point():
        x = x.to(dtype=param.dtype)
    n = x.shape[0]
    centres = propagate(model, (x,), n, resolved, draws=n_samples, seed=seed, batch_size=batch_size, device=device)
    rows = np.arange(n).repeat(n_samples)
    y = None if labels is None else np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    return {
        layer.name: PropagatedLayer(
            centres=centres[layer.name].reshape(n * n_samples, -1), inputs=rows,
            labels=None if y is None else y[rows], noise=layer.noise,
        )
        for layer in resolved
    }
