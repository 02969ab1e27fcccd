"""The probe pass: hooks on the chosen modules, the probe through the model, the captured rows assembled.

Two steps, each testable alone:

1. `HookContext` — a context manager that attaches one forward hook per recorded module, puts the model in
   eval mode under ``torch.inference_mode()`` and a forked RNG, and on exit removes every hook and restores
   every module's own ``.training`` flag (and the RNG state), also when the forward raises. Its `forward`
   runs one batch, checks that each layer fired once, and re-raises a failed forward ``from`` the original
   error with the epoch, the probe rows and the layers that fired before it.
2. `assemble` — the captured batches of each layer as one (N, d) float32 array (or ``{"mu", "log_var"}``),
   checked finite.

`probe_pass` is the two together; `Recorder.step` and `record` call it. The probe itself is checked and
converted here too (`probe_keys`, `as_probe`), and so are devices (`as_device`, `model_device`).
"""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

import numpy as np
import torch
from torch import nn

from .._core.validation import check_activations, check_device
from ._layers import _Resolved, _selector_text
from ._reductions import Reducer

__all__ = ["HookContext", "assemble", "probe_pass", "probe_keys", "as_probe", "as_device", "model_device"]

Activations = dict[str, "np.ndarray | dict[str, np.ndarray]"]


def probe_keys(probe: Any) -> tuple[str, ...] | None:
    """The keyword names of a dict probe (passed as ``model(**batch)``), or None for positional inputs."""
    if not isinstance(probe, Mapping):
        return None
    bad = [k for k in probe if not isinstance(k, str)]
    if bad or not probe:
        raise ValueError(f"a dict probe must map keyword names (str) to arrays. Got keys {list(probe)!r}.")
    return tuple(probe)


def as_probe(probe: Any, model: nn.Module) -> tuple[tuple[torch.Tensor, ...], int]:
    """The probe as a tuple of CPU tensors (positional inputs of the model) and its number of rows."""
    if isinstance(probe, Mapping):  # keyword inputs: the values, in the order of _probe_keys
        probe = tuple(probe.values())
    parts = probe if isinstance(probe, tuple) else (probe,)
    if not parts:
        raise ValueError("probe must hold at least one input array. Got an empty tuple.")
    float_dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    tensors = []
    for i, part in enumerate(parts):
        label = "probe" if len(parts) == 1 else f"probe[{i}]"
        if isinstance(part, torch.Tensor):
            t = part.detach()
        else:
            arr = np.asarray(part)
            if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
                raise TypeError(f"{label} must be a numeric array or tensor. Got dtype {arr.dtype}.")
            t = torch.from_numpy(np.ascontiguousarray(arr))
        if t.is_complex():
            raise TypeError(f"{label} must hold real numbers. Got dtype {t.dtype}.")
        if t.ndim == 0:
            raise ValueError(f"{label} must have a first dimension of probe rows. Got a scalar.")
        if t.shape[0] == 0:
            raise ValueError(f"{label} must hold at least one row. Got shape {tuple(t.shape)}.")
        if t.is_floating_point() and t.dtype != float_dtype:
            t = t.to(float_dtype)
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{label} contains NaN or Inf ({int((~torch.isfinite(t)).sum()):,} values).")
        tensors.append(t)
    lengths = {len(t) for t in tensors}
    if len(lengths) > 1:
        raise ValueError(f"every array of probe must have the same number of rows. Got {[len(t) for t in tensors]}.")
    return tuple(tensors), len(tensors[0])


def as_device(device: Any, owner: str) -> torch.device:
    return check_device(device, "device", owner)  # one this torch can use: checked before any work


def _width_error(model: nn.Module, exc: BaseException, where: str) -> ValueError | None:
    """The module of ``model`` that raised, and the input width it expects, or None if there is none to name."""
    names = {id(m): n for n, m in model.named_modules()}
    failing, tb = None, exc.__traceback__
    while tb is not None:  # the innermost frame whose ``self`` is a module of this model
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, nn.Module) and id(owner) in names:
            failing = owner
        tb = tb.tb_next
    width = getattr(failing, "in_features", None) or getattr(failing, "in_channels", None)
    if not isinstance(exc, RuntimeError) or failing is None or width is None:
        return None
    what = "in_features" if hasattr(failing, "in_features") else "in_channels"
    return ValueError(
        f"the probe does not fit the model: module {names[id(failing)] or '(the model)'!r} "
        f"({type(failing).__name__}) expects inputs of width {width} ({what}); the forward pass failed {where}. "
        f"(torch: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    )


def model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.device.type == "meta":
            raise ValueError(
                "model has parameters on the meta device (shapes without data), so it cannot be run on the "
                "probe; materialise it first (e.g. model.to_empty(device='cpu') and load its weights)."
            )
        return tensor.device
    return torch.device("cpu")


def _select(output: Any, layer: _Resolved) -> Any:
    value = output
    for depth, sel in enumerate(layer.path):
        where = "output" + _selector_text(layer.path[:depth])
        if isinstance(value, Mapping):
            if sel not in value:
                raise KeyError(
                    f"layer {layer.name!r}: {where} of module {layer.module_name!r} is a dict without key "
                    f"{sel!r}; keys: {list(value)}."
                )
        elif isinstance(value, (tuple, list)):
            if not isinstance(sel, int) or not -len(value) <= sel < len(value):
                raise IndexError(
                    f"layer {layer.name!r}: {where} of module {layer.module_name!r} is a "
                    f"{type(value).__name__} of {len(value)} elements; cannot take [{sel!r}]."
                )
        else:
            raise TypeError(
                f"layer {layer.name!r}: {where} of module {layer.module_name!r} is a {type(value).__name__}, "
                f"which has no element [{sel!r}]."
            )
        value = value[sel]
    return value


def _flat32(t: Any, layer: _Resolved, n_rows: int, what: str = "output", reducer: Reducer | None = None) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        hint = ""
        if isinstance(t, (tuple, list, Mapping)):
            hint = (
                f"; choose an element with Layer({layer.module_name!r}, output=0 | 'key') or the string form "
                f"'{layer.module_name}[0]', or declare a (mean, log-variance) pair with gaussian=True"
            )
        raise TypeError(f"layer {layer.name!r}: the {what} is a {type(t).__name__}, not a tensor{hint}.")
    if t.ndim == 0 or t.shape[0] != n_rows:
        raise ValueError(
            f"layer {layer.name!r}: the {what} has shape {tuple(t.shape)}, but its first dimension must be the "
            f"batch of {n_rows} probe rows."
        )
    if reducer is not None:  # pool / units / project / float16 on the model's device, then one small copy
        return reducer(t, n_rows)
    t = t.detach().reshape(n_rows, -1)
    copied = t.dtype != torch.float32 or t.device.type != "cpu"
    t = t.float().cpu()
    # Clone what did not get copied already: a later in-place op (ReLU(inplace=True)) must not change it.
    return t if copied else t.clone()


def _capture(output: Any, layer: _Resolved, n_rows: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    value = _select(output, layer)
    if isinstance(value, torch.distributions.Independent):
        value = value.base_dist
    if isinstance(value, torch.distributions.Distribution):
        if not isinstance(value, torch.distributions.Normal):
            raise TypeError(
                f"layer {layer.name!r}: outputs a {type(value).__name__}; only Normal distributions are recorded."
            )
        if layer.reducer is not None:
            raise ValueError(
                f"layer {layer.name!r} outputs a Normal distribution: pool/project/units/dtype reduce plain "
                "activations only."
            )
        mu = _flat32(value.loc.expand(value.batch_shape), layer, n_rows, "Normal's loc")
        scale = _flat32(value.scale.expand(value.batch_shape), layer, n_rows, "Normal's scale")
        return mu, 2.0 * torch.log(scale)
    if layer.gaussian:
        if isinstance(value, Mapping) and {"mu", "log_var"} <= set(value):
            first, second = value["mu"], value["log_var"]
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            first, second = value
        else:
            raise TypeError(
                f"layer {layer.name!r} is declared gaussian, so its output must be a (mean, log-variance) pair "
                f"or a dict with 'mu' and 'log_var'. Got {type(value).__name__}."
            )
        mu = _flat32(first, layer, n_rows, "mean")
        second = _flat32(second, layer, n_rows, "second Gaussian parameter")
        if layer.gaussian == "std":
            second = 2.0 * torch.log(second)
        elif layer.gaussian == "var":
            second = torch.log(second)
        if second.shape != mu.shape:
            raise ValueError(
                f"layer {layer.name!r}: mean and log-variance shapes differ: {tuple(mu.shape)} and "
                f"{tuple(second.shape)}."
            )
        return mu, second
    return _flat32(value, layer, n_rows, reducer=layer.reducer)


def _restore_modes(modes: list[tuple[nn.Module, bool]]) -> None:
    for module, training in modes:
        module.training = training


class HookContext:
    """Forward hooks on the recorded modules for one probe pass (a context manager; see the module docstring).

    ``captured[name]`` collects each batch's rows of layer ``name``; ``calls[name]`` counts its hook's calls.
    """

    def __init__(self, model: nn.Module, layers: list[_Resolved], device: torch.device) -> None:
        self.model = model
        self.layers = layers
        self.device = device
        self.captured: dict[str, list] = {layer.name: [] for layer in layers}
        self.calls: dict[str, int] = {layer.name: 0 for layer in layers}
        self._rows = 0
        self._hook_error: Exception | None = None
        self._stack = ExitStack()

    def _hook(self, specs: list[_Resolved]):
        def hook(module, args, output):
            for spec in specs:
                self.calls[spec.name] += 1
                try:
                    self.captured[spec.name].append(_capture(output, spec, self._rows))
                except Exception as exc:
                    self._hook_error = exc  # our own error, naming the layer: re-raised as it is
                    raise

        return hook

    def __enter__(self) -> HookContext:
        stack = self._stack
        try:
            # Registered first, so it runs last: each module gets back its own flag, whatever train()/eval() did.
            stack.callback(_restore_modes, [(m, m.training) for m in self.model.modules()])
            # Sampling layers must not shift the training run's random stream.
            if self.device.type == "cuda":
                index = self.device.index if self.device.index is not None else torch.cuda.current_device()
                stack.enter_context(torch.random.fork_rng(devices=[index], device_type="cuda"))
            else:
                stack.enter_context(torch.random.fork_rng(devices=[]))
            by_module: dict[int, list[_Resolved]] = {}
            for layer in self.layers:
                by_module.setdefault(id(layer.module), []).append(layer)
            for specs in by_module.values():
                handle = specs[0].module.register_forward_hook(self._hook(specs))
                stack.callback(handle.remove)
            self.model.eval()
            stack.enter_context(torch.inference_mode())
        except BaseException:
            stack.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

    def forward(self, batch: list[torch.Tensor], keys: tuple[str, ...] | None, *, start: int,
                epoch: int | None) -> None:
        """Run one batch (probe rows ``start:start+len``) through the model; check every layer fired once."""
        self._rows = len(batch[0])
        before = dict(self.calls)
        try:
            self.model(**dict(zip(keys, batch))) if keys else self.model(*batch)
        except Exception as exc:
            fired = [name for name in self.calls if self.calls[name] > before[name]]
            where = _where(epoch, start, start + self._rows, fired, [n for n in self.calls if n not in fired])
            if exc is self._hook_error:  # a recorded output we cannot store: its own error, with a note
                exc.add_note(f"While recording {where}.")
                raise
            width = _width_error(self.model, exc, where)
            if width is not None:
                raise width from exc
            raise RuntimeError(
                f"The forward pass of {type(self.model).__name__} failed {where}: {type(exc).__name__}: {exc}"
            ) from exc
        for layer in self.layers:
            fired_n = self.calls[layer.name] - before[layer.name]
            if fired_n > 1:
                raise ValueError(
                    f"layer {layer.name!r} (module {layer.module_name!r}) ran {fired_n} times in one forward "
                    "pass; record a module that is called once per forward (reused modules, e.g. one "
                    "ReLU applied twice, have no single output)."
                )

    def check_all_fired(self) -> None:
        """RuntimeError naming the layers whose hook never ran (the forward does not call those modules)."""
        silent = [layer.name for layer in self.layers if self.calls[layer.name] == 0]
        if silent:
            raise RuntimeError(
                f"layer(s) {silent} never fired during the probe pass: the model's forward does not "
                "call these modules (forward hooks saw no output)."
            )


def _where(epoch: int | None, start: int, stop: int, fired: list[str], silent: list[str]) -> str:
    when = "in record() (no epoch)" if epoch is None else f"at epoch {epoch}"
    return (f"{when}, on probe rows {start}:{stop}; layers whose hooks had fired in this batch: {fired}, "
            f"not reached: {silent}")


def assemble(captured: Mapping[str, list], layers: list[_Resolved], epoch: int | None) -> Activations:
    """Each layer's captured batches as one (N, d) float32 array, or ``{"mu", "log_var"}``; checked finite."""
    result: Activations = {}
    for layer in layers:
        pieces = captured[layer.name]
        kinds = {isinstance(p, tuple) for p in pieces}
        if len(kinds) > 1:
            raise TypeError(f"layer {layer.name!r} returned a Gaussian in some batches and a tensor in others.")
        if isinstance(pieces[0], tuple):
            mu = torch.cat([p[0] for p in pieces]).numpy()
            log_var = torch.cat([p[1] for p in pieces]).numpy()
            check_activations(mu, name="mu", layer=layer.name, epoch=epoch, allow_torch=False)
            check_activations(log_var, name="log_var", layer=layer.name, epoch=epoch, allow_torch=False)
            result[layer.name] = {"mu": mu, "log_var": log_var}
        else:
            values = torch.cat(pieces).numpy()
            check_activations(values, name="activations", layer=layer.name, epoch=epoch, allow_torch=False)
            result[layer.name] = values
    return result


def probe_pass(
    model: nn.Module,
    layers: list[_Resolved],
    probe: tuple[torch.Tensor, ...],
    n: int,
    *,
    batch_size: int,
    device: torch.device,
    epoch: int | None,
    keys: tuple[str, ...] | None = None,
) -> Activations:
    """Hooks on, probe through the model in eval mode, hooks off; every layer's (N, d) float32 activations."""
    with HookContext(model, layers, device) as hooks:
        for start in range(0, n, batch_size):
            batch = [t[start : start + batch_size].to(device, non_blocking=True) for t in probe]
            hooks.forward(batch, keys, start=start, epoch=epoch)
            if start == 0:
                hooks.check_all_fired()
        captured = hooks.captured
    return assemble(captured, layers, epoch)
