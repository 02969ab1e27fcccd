"""Noisy layers: forward hooks that add a layer's noise (`GaussianNoise`, `GaussianDropout`) and sample propagation.

`noise_hooks` adds each noisy layer's noise to its output while open (in eval mode, and in training mode
when asked), optionally capturing the output *before* the noise. `propagate` pushes ``draws`` noise draws of
every probe row through the noisy network (noise at every noisy layer) and returns, per noisy layer, the
(N, draws, d) pre-noise outputs: the "centres" of sample propagation (Goldfeld et al. 2019), which the
`Recorder` stores and `infoplane.noise.sample_propagation` returns. Noise is drawn on the CPU from one seeded
generator, in the order the hooks fire, and moved to the output's device: a seed and a batch size give the
same draws everywhere.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .._core.validation import check_activations, check_int_param, param_error
from ._layers import _Resolved

__all__ = ["NoiseHooks", "noise_hooks", "propagate", "check_draws", "warn_bernoulli_dropout", "recorder_pass"]

#: > 0 while a Recorder records: `add_noise`'s hooks then stand aside (the Recorder adds each noisy layer's own
#: noise itself, and its plain pass is noise-free), so training with add_noise and recording never add twice.
_RECORDING = [0]


@contextlib.contextmanager
def recorder_pass() -> Iterator[None]:
    """Mark a Recorder's probe passes (see `_RECORDING`)."""
    _RECORDING[0] += 1
    try:
        yield
    finally:
        _RECORDING[0] -= 1


def check_draws(draws: Any, owner: str) -> int:
    """``draws`` as an int >= 2 (two draws at least: one cannot say how much the draws scatter)."""
    return check_int_param(draws, "draws", owner, minimum=2)


def warn_bernoulli_dropout(model: nn.Module, owner: str) -> None:
    """Warn once when the model holds ``torch.nn.Dropout`` layers beside the noisy path."""
    found = [n for n, m in model.named_modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]
    if found:
        warnings.warn(
            f"{owner}: the model has Bernoulli dropout {found}. Off in the probe pass (eval mode), it adds no "
            "noise there; and on, its I(X;T) would be infinite for continuous inputs (Adilova, Geiger & "
            "Fischer 2023, Thm 3.1). Use infoplane.noise.GaussianDropout(rate) for a finite I(X;T).",
            UserWarning, stacklevel=3,
        )


@dataclass
class NoiseHooks:
    """What `noise_hooks` yields: the noisy layers, and (with ``capture=True``) their pre-noise outputs.

    ``centres[name]`` is a list of (batch, units) float32 CPU tensors, one per forward call, in call order.
    """

    layers: dict[str, nn.Module]
    specs: dict[str, Any]
    capture: bool
    centres: dict[str, list[torch.Tensor]] = field(default_factory=dict)


def _check_noisy(layers: list[_Resolved], owner: str) -> None:
    for layer in layers:
        if layer.noise is None:
            raise ValueError(f"{owner}: layer {layer.name!r} has no noise spec.")
        if layer.path or layer.gaussian:
            raise ValueError(
                f"{owner}: noise goes on a module's whole tensor output; layer {layer.name!r} selects "
                f"{'a Gaussian' if layer.gaussian else 'an element of the output'}."
            )


@contextlib.contextmanager
def noise_hooks(layers: list[_Resolved], *, seed: int | None = 0, training: bool = True,
                capture: bool = False, owner: str = "add_noise") -> Iterator[NoiseHooks]:
    """Add each layer's noise (``layer.noise``) to its output while the context is open; hooks off on exit."""
    _check_noisy(layers, owner)
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(check_int_param(seed, "seed", owner))
    hooks = NoiseHooks({ly.name: ly.module for ly in layers}, {ly.name: ly.noise for ly in layers}, capture,
                       {ly.name: [] for ly in layers} if capture else {})

    def make(layer: _Resolved):
        def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
            if not isinstance(output, torch.Tensor):
                raise TypeError(
                    f"{owner}: noise needs a tensor output, but layer {layer.name!r} returned "
                    f"{type(output).__name__}; put the noise on a module that returns a tensor."
                )
            if (module.training and not training) or (_RECORDING[0] and owner != "Recorder"):
                return None
            if capture:
                hooks.centres[layer.name].append(output.detach().reshape(output.shape[0], -1).float().cpu())
            dtype = output.dtype if output.is_floating_point() else torch.float32
            eps = torch.randn(output.shape, generator=gen, dtype=dtype).to(output.device)
            return layer.noise.sample(output, eps)

        return hook

    with ExitStack() as stack:
        for layer in layers:
            stack.callback(layer.module.register_forward_hook(make(layer)).remove)
        yield hooks


def _restore_modes(modes: list[tuple[torch.nn.Module, bool]]) -> None:
    for module, training in modes:
        module.training = training


def propagate(
    model: nn.Module,
    probe: tuple[torch.Tensor, ...],
    n: int,
    layers: list[_Resolved],
    *,
    draws: int,
    seed: int | None,
    batch_size: int,
    device: torch.device,
    keys: tuple[str, ...] | None = None,
    epoch: int | None = None,
) -> dict[str, np.ndarray]:
    """{noisy layer: float32 (N, draws, d)}: each probe row's ``draws`` propagated pre-noise outputs.

    Runs the model in eval mode under ``torch.inference_mode()`` on (row, draw) pairs, row-major (row i's
    draws are consecutive), ``batch_size`` pairs per forward; modes and the global RNG state are restored.
    """
    rows = torch.arange(n).repeat_interleave(draws)
    modes = [(m, m.training) for m in model.modules()]
    with ExitStack() as stack:
        stack.callback(_restore_modes, modes)
        stack.enter_context(torch.random.fork_rng(devices=[]))
        stack.enter_context(recorder_pass())  # any add_noise hooks stand aside: these add the noise
        hooks = stack.enter_context(noise_hooks(layers, seed=seed, training=False, capture=True, owner="Recorder"))
        model.eval()
        stack.enter_context(torch.inference_mode())
        for start in range(0, rows.numel(), batch_size):  # loop over batches of (input, draw) pairs
            idx = rows[start : start + batch_size]
            batch = [t[idx.to(t.device)].to(device, non_blocking=True) for t in probe]
            model(**dict(zip(keys, batch))) if keys else model(*batch)
    out = {}
    for layer in layers:
        parts = hooks.centres[layer.name]
        if not parts:
            raise RuntimeError(f"noisy layer {layer.name!r} never fired during the probe pass.")
        values = torch.cat(parts).numpy()
        if values.shape[0] != rows.numel():
            raise ValueError(f"noisy layer {layer.name!r} ran more than once per forward pass; record a module "
                             "that is called once per forward.")
        check_activations(values, name="activations", layer=layer.name, epoch=epoch, allow_torch=False)
        out[layer.name] = values.reshape(n, draws, -1)
    return out


def as_probe_rows(probe: Any, owner: str) -> torch.Tensor:
    """A non-empty batch of inputs as a tensor (for `sample_propagation`)."""
    x = probe if isinstance(probe, torch.Tensor) else torch.as_tensor(np.asarray(probe))
    if x.ndim < 1 or x.shape[0] == 0:
        raise param_error(owner, "probe", "a non-empty batch of inputs", tuple(x.shape))
    return x
