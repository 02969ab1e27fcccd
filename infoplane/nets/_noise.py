"""Networks with noise: Gaussian noise N(0, s² I) after chosen layers of any model, and sample propagation.

In a deterministic network I(X;T) of a continuous input is infinite (on a finite probe set: log2 N once rows
differ), so the information plane measures geometry, not information (Goldfeld et al. 2019). Adding noise
T_l = f_l(T_{l−1}) + Z_l, Z_l ~ N(0, s² I), makes I(X;T) finite and meaningful. `add_noise` does that to an
unchanged model with forward hooks, during the probe pass of a recording (and, if asked, during training);
`sample_propagation` records what `infoplane.estimators.NoisyEstimator` needs: for every probe input, m
propagated noise draws of each noisy layer's output *before* its own noise (its centres).

Hooks always come off (``finally``); the model's mode is restored; noise is drawn on the CPU from a seeded
generator and moved to the output's device, so a seed gives the same noise everywhere.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._core.validation import check_bool_param, check_float_param, check_int_param, param_error

__all__ = ["NoiseHooks", "add_noise", "PropagatedLayer", "sample_propagation"]


def _resolve(model: torch.nn.Module, layers: Iterable[str | torch.nn.Module] | str) -> dict[str, torch.nn.Module]:
    """Layer names (as in ``model.named_modules()``) or modules -> {name: module}; unknown names raise."""
    named = dict(model.named_modules())
    by_module = {id(m): n for n, m in named.items()}
    out: dict[str, torch.nn.Module] = {}
    if not isinstance(layers, (str, torch.nn.Module, list, tuple, set)):
        raise TypeError(
            f"The 'layers' parameter of add_noise must be a module name, a submodule, or a list of them. "
            f"Got {type(layers).__name__} {layers!r}."
        )
    for layer in [layers] if isinstance(layers, (str, torch.nn.Module)) else list(layers):
        if isinstance(layer, str):
            if layer not in named or layer == "":
                raise KeyError(f"layers: no module named {layer!r} in the model. Available: {sorted(n for n in named if n)}")
            out[layer] = named[layer]
        elif isinstance(layer, torch.nn.Module) and id(layer) in by_module:
            out[by_module[id(layer)]] = layer
        else:
            raise TypeError(f"The 'layers' parameter of add_noise must hold module names or submodules of the model. Got {layer!r}.")
    if not out:
        raise ValueError("The 'layers' parameter of add_noise must name at least one module of the model. Got none.")
    return out


@dataclass
class NoiseHooks:
    """What `add_noise` yields: the noisy layers, and (with ``capture=True``) their pre-noise outputs.

    ``centres[name]`` is a list of (batch, units) float32 CPU tensors, one per forward call, in call order.
    """

    layers: dict[str, torch.nn.Module]
    std: float
    capture: bool
    centres: dict[str, list[torch.Tensor]] = field(default_factory=dict)


@contextlib.contextmanager
def add_noise(
    model: torch.nn.Module,
    layers: Iterable[str | torch.nn.Module] | str,
    std: float,
    *,
    seed: int | None = 0,
    training: bool = False,
    capture: bool = False,
) -> Iterator[NoiseHooks]:
    """Add N(0, std² I) to the outputs of ``layers`` while the context is open.

    Noise is added in evaluation mode (the recorder's probe pass runs there) and, with ``training=True``,
    also in training mode (train the noisy network itself). With ``capture=True`` each noisy layer's output
    *before* its noise is kept in ``hooks.centres`` (what `NoisyEstimator` takes). Forward hooks only: the
    model's code and parameters are untouched, and the hooks are removed on exit, also after an exception.

    Parameters
    ----------
    model : torch.nn.Module
    layers : str, module, or an iterable of them
        Names as in ``model.named_modules()`` (an unknown name raises KeyError listing the real ones).
    std : float
        s > 0, the noise standard deviation (activation units).
    seed : int or None
        Seed of a CPU generator for the noise.
    training : bool
        Also add noise in training mode.
    capture : bool
        Keep the pre-noise outputs.
    """
    std = check_float_param(std, "std", "add_noise", positive=True)
    training = check_bool_param(training, "training", "add_noise")
    capture = check_bool_param(capture, "capture", "add_noise")
    resolved = _resolve(model, layers)
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(check_int_param(seed, "seed", "add_noise"))
    hooks = NoiseHooks(resolved, std, capture, {n: [] for n in resolved} if capture else {})
    handles = []

    def make(name: str):
        def hook(module: torch.nn.Module, inputs: Any, output: Any) -> Any:
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"add_noise: layer {name!r} returned {type(output).__name__}, not a tensor.")
            if module.training and not training:
                return None
            if capture:
                hooks.centres[name].append(output.detach().reshape(output.shape[0], -1).float().cpu())
            noise = torch.randn(output.shape, generator=gen, dtype=output.dtype if output.is_floating_point()
                                else torch.float32).to(output.device)
            return output + std * noise

        return hook

    try:
        for name, module in resolved.items():
            handles.append(module.register_forward_hook(make(name)))
        yield hooks
    finally:
        for h in handles:
            h.remove()


@dataclass(frozen=True)
class PropagatedLayer:
    """One noisy layer's centres for `NoisyEstimator`: ``centres`` (N·m, units) float32, ``inputs`` (N·m,)
    the probe row each came from, and ``labels`` (N·m,) when labels were given."""

    centres: np.ndarray
    inputs: np.ndarray
    labels: np.ndarray | None


def sample_propagation(
    model: torch.nn.Module,
    probe: Any,
    layers: Iterable[str | torch.nn.Module] | str,
    std: float,
    *,
    labels: Any = None,
    n_samples: int = 8,
    seed: int | None = 0,
    batch_size: int = 1024,
) -> dict[str, PropagatedLayer]:
    """Push ``n_samples`` noise draws of every probe input through the noisy network; record each noisy
    layer's pre-noise output (Goldfeld et al. 2019's sample propagation).

    The model runs in eval mode without gradient (its mode is restored), noise N(0, std² I) after each of
    ``layers``. For the first noisy layer the m centres of an input are equal (given X = x it is a single
    Gaussian); for deeper ones they differ, and T | X = x is the mixture over them. Then
    ``NoisyEstimator(std).estimate(layer.centres, layer.labels, x=layer.inputs)`` gives I(X;T) and I(T;Y).
    Cost: m forward passes of the probe set; memory N·m·units per layer.
    """
    n_samples = check_int_param(n_samples, "n_samples", "sample_propagation", minimum=1)
    batch_size = check_int_param(batch_size, "batch_size", "sample_propagation", minimum=1)
    x = probe if isinstance(probe, torch.Tensor) else torch.as_tensor(np.asarray(probe))
    if x.ndim < 1 or x.shape[0] == 0:
        raise param_error("sample_propagation", "probe", "a non-empty batch of inputs", tuple(x.shape))
    param = next(iter(model.parameters()), None)
    if param is not None:
        x = x.to(device=param.device, dtype=param.dtype if x.is_floating_point() else x.dtype)
    n = x.shape[0]
    rows = torch.arange(n).repeat_interleave(n_samples)
    was_training = model.training
    model.eval()
    try:
        with add_noise(model, layers, std, seed=seed, capture=True) as hooks, torch.no_grad():
            for s in range(0, rows.numel(), batch_size):  # loop over batches of (input, draw) pairs
                model(x[rows[s : s + batch_size].to(x.device)])
    finally:
        model.train(was_training)
    y = None if labels is None else np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    return {
        name: PropagatedLayer(
            centres=torch.cat(parts).numpy(), inputs=rows.numpy(),
            labels=None if y is None else y[rows.numpy()],
        )
        for name, parts in hooks.centres.items()
    }
