"""Record chosen layers of any ``torch.nn.Module`` on a fixed probe set, without touching the model's code.

A probe pass attaches forward hooks to the chosen modules, runs the probe set through the model in eval mode
under ``torch.inference_mode()`` in batches, and removes every hook and restores every module's own
``.training`` flag (and the RNG state) in ``finally`` — also when the forward raises. Between recordings no
hook is attached, so training runs at full speed.

Choosing layers (``layers=``, a single item or a list of them):

* ``"fc2"`` — a name from ``model.named_modules()``;
* ``"block*"`` / ``"encoder.?.conv"`` — an `fnmatch` glob over those names (all matches, in module order;
  the root module ``""`` is never matched by a glob or a type);
* ``nn.ReLU`` — every submodule of that type; ``model.fc2`` — a module itself;
* ``Layer("enc", output=0, gaussian=True, name="z")`` — the explicit spec (`Layer`), also the one way to
  record one element of a tuple/list/dict output (``Layer("heads", output="mu")``, stored as
  ``"heads['mu']"``). A string is always a name or a glob (``"act[1-3]"`` is a character class).

What is stored per layer and probe row: the output flattened to one row, ``(N, C·H·W)`` for a conv feature
map, float32 on the CPU (a copy: later in-place ops cannot change it). A module returning a
``torch.distributions.Normal`` (or ``Independent(Normal)``) is recorded as Gaussian, ``mu = loc`` and
``log_var = 2 ln(scale)``; a ``(mean, log-variance)`` pair or ``{"mu", "log_var"}`` dict is Gaussian when
the spec says ``gaussian=True`` (``gaussian="std"`` / ``"var"`` if the second element is a standard deviation
or a variance). Variational bounds use both parts later.

Schedules (`Schedule`): ``Schedule.every(k)``, ``Schedule.log_spaced(last, n)`` (dense early, sparse late, as
Shwartz-Ziv & Tishby 2017), ``Schedule.explicit([...])`` and unions ``a | b``. ``schedule=`` also takes an int
k (every k epochs), a list of epochs, or None (every epoch). The schedule and the epochs actually recorded are
stored.

Epoch rules of `Recorder.step`: epochs must not decrease within one recorder (ValueError: an accidental
restart of the epoch counter would corrupt the trajectory); calling it again with the same epoch is a no-op;
an epoch already in the store (e.g. after resuming) is skipped (``on_existing="skip"``, the default) or
raises (``on_existing="raise"``). Stored epochs are never overwritten.
"""
from __future__ import annotations

import difflib
import fnmatch
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ._distributed import check_writer_rank
from ._reductions import Reducer, Reduction
from ._validation import check_activations, check_int_param, check_labels, param_error
from .store import BaseStore, MemoryStore, ZarrStore

__all__ = ["Layer", "Schedule", "Recorder", "record", "resolve_layers", "every", "log_spaced", "explicit"]

Selector = int | str
GaussianParam = Literal["log_var", "std", "var"]

_MODEL_REPR_CHARS = 20_000


# ---------------------------------------------------------------------------------------------- layer specs
@dataclass(frozen=True)
class Layer:
    """One recorded representation: a module, optionally one element of its output, optionally Gaussian.

    Parameters
    ----------
    module : str or nn.Module
        The module: its exact name in ``model.named_modules()`` (``""`` is the model itself), or the module.
    output : int, str, tuple of them, or None
        Which element of a tuple/list (int) or dict (str) output to record; a tuple walks nested outputs
        (``(0, "mu")`` is ``output[0]["mu"]``). None records the output itself.
    gaussian : bool or {"log_var", "std", "var"}, default False
        The selected output is a Gaussian's parameters: a pair ``(mean, second)`` or a dict with keys
        ``"mu"`` and ``"log_var"``; ``True``/``"log_var"`` means the second is the natural-log variance,
        ``"std"`` a standard deviation, ``"var"`` a variance. Stored as ``mu`` and ``log_var``.
        (A ``torch.distributions.Normal`` output is recognised without this flag.)
    name : str, optional
        The logical name stored; default: the module name followed by the selector, e.g. ``"enc[0]"``.
    pool : "global" or int, optional
        Spatial average pooling of an (N, C, *spatial) output inside the hook: ``"global"`` -> (N, C); k ->
        k x k windows. A non-spatial output raises ValueError naming ``pool``.
    project : int, optional
        Seeded Gaussian random projection to k dimensions (entries N(0, 1/k)), 1 <= k <= width: keeps pairwise
        distances within 1 ± ε (Johnson-Lindenstrauss), so KDE and k-NN estimates move little
        (`infoplane._reductions.projection_kde_bracket` states how little).
    units : sequence of int, optional
        A fixed subset of the (pooled, flattened) units, by index.
    dtype : {"float32", "float16"}, optional
        Storage dtype (float16 halves the store; values beyond ±65,504 raise).
    seed : int, optional
        Seed of the projection matrix (default 0).

    Unset reductions take the `Recorder`'s defaults. Order: pool, flatten, units, project, dtype; all inside
    the forward hook, so only the reduced batch is ever copied off the model's device.
    """

    module: str | nn.Module
    output: Selector | tuple[Selector, ...] | None = None
    gaussian: bool | GaussianParam = False
    name: str | None = None
    pool: int | str | None = None
    project: int | None = None
    units: Sequence[int] | None = None
    dtype: str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.gaussian not in (False, True, "log_var", "std", "var"):
            raise param_error("Layer", "gaussian", "one of False, True, 'log_var', 'std', 'var'", self.gaussian)
        red = self.reduction
        object.__setattr__(self, "units", red.units)  # a tuple: hashable and immutable
        object.__setattr__(self, "dtype", red.dtype)
        path = self.path
        for sel in path:
            if isinstance(sel, bool) or not isinstance(sel, (int, str)):
                raise param_error("Layer", "output", "an int, a str, a tuple of them or None", self.output)

    @property
    def reduction(self) -> Reduction:
        """The validated reductions of this spec (unset ones None)."""
        return Reduction.create(self.pool, self.units, self.project, self.dtype, self.seed, owner="Layer")

    @property
    def path(self) -> tuple[Selector, ...]:
        if self.output is None:
            return ()
        return tuple(self.output) if isinstance(self.output, tuple) else (self.output,)


def _selector_text(path: tuple[Selector, ...]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else f"[{s!r}]" for s in path)


@dataclass(frozen=True)
class _Resolved:
    name: str
    module_name: str
    module: nn.Module = field(compare=False, repr=False)
    path: tuple[Selector, ...]
    gaussian: bool | GaussianParam
    reduction: Reduction = Reduction()
    reducer: Reducer | None = field(default=None, compare=False, repr=False)

    def with_defaults(self, default: Reduction) -> _Resolved:
        """This layer with the recorder's default reductions filling its unset ones (and a reducer if any)."""
        red = self.reduction.with_defaults(default)
        if self.gaussian and not red.is_identity:
            raise ValueError(
                f"layer {self.name!r} is Gaussian (mean, log-variance): pool/project/units/dtype reduce plain "
                "activations only."
            )
        return replace(self, reduction=red, reducer=None if red.is_identity else Reducer(red, self.name))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module_name,
            "module_type": type(self.module).__name__,
            "output": list(self.path),
            "gaussian": self.gaussian,
            "reduction": self.reduction.to_dict(),
        }


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _unknown_layer(name: str, names: list[str]) -> KeyError:
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    rest = [n for n in names if n not in close]
    listed = ", ".join(repr(n) for n in close + rest[: max(0, 60 - len(close))])
    more = f", ... ({len(names)} in all)" if len(names) > 60 else ""
    hint = f" Closest: {', '.join(map(repr, close))}." if close else ""
    return KeyError(
        f"layers: no module named {name!r} in the model.{hint} Available named_modules() names: "
        f"{listed}{more}."
    )


def resolve_layers(model: nn.Module, layers: Any) -> list[_Resolved]:
    """Turn a ``layers=`` argument into concrete (name, module, output selector, gaussian) entries.

    One function per kind of entry: a module type (`_by_type`), a module (`_by_module`), a name or glob
    (`_by_name`, for strings and `Layer` specs). The same layer listed twice is kept once.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module. Got {type(model).__name__}.")
    named = dict(model.named_modules())
    out: list[_Resolved] = []
    for item in _layer_items(layers):
        for module_name, spec in _resolve_one(item, named):
            name = spec.name if spec.name is not None else module_name + _selector_text(spec.path)
            out.append(_Resolved(name or "output", module_name, named[module_name], spec.path, spec.gaussian,
                                 spec.reduction))
    return _unique_layers(out)


def _layer_items(layers: Any) -> list[Any]:
    if isinstance(layers, (str, Layer, nn.Module, type)):
        layers = [layers]
    try:
        items = list(layers)
    except TypeError:
        raise TypeError(
            "layers must be a name, glob, module, module type, Layer, or a list of them. "
            f"Got {type(layers).__name__}."
        ) from None
    if not items:
        raise ValueError("layers must select at least one module. Got an empty selection.")
    return items


def _resolve_one(item: Any, named: dict[str, nn.Module]) -> list[tuple[str, Layer]]:
    """[(module name, spec)] of one entry of ``layers``."""
    if isinstance(item, type) and issubclass(item, nn.Module):
        return [(n, Layer(n)) for n in _by_type(item, named)]
    if isinstance(item, (str, nn.Module)):
        item = Layer(item)
    if not isinstance(item, Layer):
        raise TypeError(
            f"each entry of layers must be a name, glob, module, module type or Layer. Got {type(item).__name__}."
        )
    if isinstance(item.module, nn.Module):
        return [(_by_module(item.module, named), item)]
    if not isinstance(item.module, str):
        raise TypeError(f"Layer.module must be a name or an nn.Module. Got {type(item.module).__name__}.")
    matches = _by_name(item.module, named)
    if item.name is not None and len(matches) > 1:
        raise ValueError(f"Layer name={item.name!r} cannot name the {len(matches)} matches of a glob.")
    return [(n, item) for n in matches]


def _by_type(kind: type, named: dict[str, nn.Module]) -> list[str]:
    matches = [n for n, m in named.items() if n and isinstance(m, kind)]
    if not matches:
        present = sorted({type(m).__name__ for n, m in named.items() if n})
        raise ValueError(f"layers: no submodule of type {kind.__name__} in the model (types present: {present}).")
    return matches


def _by_module(module: nn.Module, named: dict[str, nn.Module]) -> str:
    for n, m in named.items():
        if m is module:
            return n
    raise KeyError(f"layers: the module {type(module).__name__} given is not a submodule of the model.")


def _by_name(text: str, named: dict[str, nn.Module]) -> list[str]:
    """The module named ``text``, else the modules (not the root) whose names match the glob ``text``."""
    if text in named:
        return [text]
    names = [n for n in named if n]
    if not _is_glob(text):
        raise _unknown_layer(text, names)
    matches = fnmatch.filter(names, text)
    if not matches:
        raise ValueError(
            f"layers: the pattern {text!r} matched no module (empty selection). Available named_modules() "
            f"names: {', '.join(map(repr, names[:60]))}" + (f", ... ({len(names)} in all)." if len(names) > 60 else ".")
            + " One element of a module's output is Layer(name, output=...), not a string."
        )
    return matches


def _unique_layers(resolved: list[_Resolved]) -> list[_Resolved]:
    unique: dict[str, _Resolved] = {}
    for r in resolved:
        if r.name in unique:
            if unique[r.name] != r or unique[r.name].module is not r.module:
                raise ValueError(f"layers: two different specs are both named {r.name!r}; give one a name=.")
            continue  # the same layer listed twice
        unique[r.name] = r
    return list(unique.values())


# ---------------------------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class Schedule:
    """Which epochs to record. Build with `every`, `log_spaced`, `explicit`, or ``a | b`` (union).

    ``epoch in schedule`` tells whether an epoch is recorded; `epochs_until(last)` lists them;
    `to_dict`/`from_dict` round-trip through JSON (the store keeps it).
    """

    kind: Literal["every", "explicit", "union"]
    k: int = 1
    start: int = 0
    stop: int | None = None
    epochs: tuple[int, ...] = ()
    parts: tuple[Schedule, ...] = ()
    label: str | None = None  # how it was made, e.g. "log_spaced(last=1000, n=100)"

    @classmethod
    def every(cls, k: int = 1, *, start: int = 0, stop: int | None = None) -> Schedule:
        """Epochs ``start, start + k, start + 2k, ...`` (up to ``stop`` inclusive, if given)."""
        k = check_int_param(k, "k", "Schedule.every", minimum=1)
        start = check_int_param(start, "start", "Schedule.every", minimum=0)
        if stop is not None:
            stop = check_int_param(stop, "stop", "Schedule.every", minimum=start)
        return cls("every", k=k, start=start, stop=stop)

    @classmethod
    def log_spaced(cls, last: int, n: int = 100) -> Schedule:
        """At most ``n`` epochs in [0, last], log-spaced (dense early, sparse late), always with 0 and ``last``.

        ``unique(round(logspace(0, log10(last + 1), n)) - 1)``: rounding merges the first points, so fewer
        than ``n`` epochs come out when early epochs collide (all of 0..last when ``n > last``).
        """
        last = check_int_param(last, "last", "Schedule.log_spaced", minimum=0)
        n = check_int_param(n, "n", "Schedule.log_spaced", minimum=2)
        points = np.unique(np.rint(np.logspace(0.0, np.log10(last + 1.0), n)).astype(np.int64) - 1)
        points = np.union1d(points, [0, last])
        return cls("explicit", epochs=tuple(int(e) for e in points), label=f"log_spaced(last={last}, n={n})")

    @classmethod
    def explicit(cls, epochs: Iterable[int]) -> Schedule:
        """Exactly these epochs (duplicates dropped, sorted)."""
        if isinstance(epochs, (str, bytes)) or not isinstance(epochs, Iterable):
            raise param_error("Schedule.explicit", "epochs", "a non-empty list of ints >= 0", epochs)
        values = list(epochs)
        for e in values:
            check_int_param(e, "epochs", "Schedule.explicit", minimum=0)
        if not values:
            raise param_error("Schedule.explicit", "epochs", "a non-empty list of ints >= 0", values)
        return cls("explicit", epochs=tuple(sorted({int(e) for e in values})))

    def __or__(self, other: Schedule) -> Schedule:
        if not isinstance(other, Schedule):
            return NotImplemented
        return Schedule("union", parts=(self, other))

    def __contains__(self, epoch: object) -> bool:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)):
            return False
        epoch = int(epoch)
        if self.kind == "every":
            return epoch >= self.start and (self.stop is None or epoch <= self.stop) and (
                (epoch - self.start) % self.k == 0
            )
        if self.kind == "explicit":
            return epoch in self._set
        return any(epoch in p for p in self.parts)

    @property
    def _set(self) -> frozenset[int]:
        cached = self.__dict__.get("_cached_set")
        if cached is None:
            cached = frozenset(self.epochs)
            object.__setattr__(self, "_cached_set", cached)
        return cached

    def epochs_until(self, last: int) -> list[int]:
        """The scheduled epochs in [0, last], ascending."""
        if self.kind == "every":
            stop = last if self.stop is None else min(last, self.stop)
            return list(range(self.start, stop + 1, self.k))
        if self.kind == "explicit":
            return [e for e in self.epochs if e <= last]
        return sorted(set().union(*(p.epochs_until(last) for p in self.parts)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (stored in the store's metadata as ``"schedule"``)."""
        if self.kind == "every":
            return {"kind": "every", "k": self.k, "start": self.start, "stop": self.stop}
        if self.kind == "explicit":
            out: dict[str, Any] = {"kind": "explicit", "epochs": list(self.epochs)}
            if self.label:
                out["label"] = self.label
            return out
        return {"kind": "union", "parts": [p.to_dict() for p in self.parts]}

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Schedule:
        kind = spec.get("kind")
        if kind == "every":
            return cls.every(spec.get("k", 1), start=spec.get("start", 0), stop=spec.get("stop"))
        if kind == "explicit":
            out = cls.explicit(spec["epochs"])
            return cls("explicit", epochs=out.epochs, label=spec.get("label"))
        if kind == "union":
            parts = [cls.from_dict(p) for p in spec["parts"]]
            result = parts[0]
            for p in parts[1:]:
                result = result | p
            return result
        raise ValueError(f"unknown schedule kind {kind!r} in {dict(spec)!r}.")

    @classmethod
    def coerce(cls, schedule: Any) -> Schedule:
        """None -> every epoch; int k -> every k; list of ints -> explicit; dict -> `from_dict`."""
        if schedule is None:
            return cls.every(1)
        if isinstance(schedule, Schedule):
            return schedule
        if isinstance(schedule, Mapping):
            return cls.from_dict(schedule)
        if isinstance(schedule, (int, np.integer)) and not isinstance(schedule, bool):
            return cls.every(int(schedule))
        if isinstance(schedule, (Sequence, np.ndarray, range)) and not isinstance(schedule, str):
            return cls.explicit(int(e) if isinstance(e, np.integer) else e for e in schedule)
        raise param_error(
            "Recorder", "schedule", "a Schedule, an int k (every k epochs), a list of epochs or None", schedule
        )


every = Schedule.every
log_spaced = Schedule.log_spaced
explicit = Schedule.explicit


# ---------------------------------------------------------------------------------------------- probe pass
def _probe_keys(probe: Any) -> tuple[str, ...] | None:
    """The keyword names of a dict probe (passed as ``model(**batch)``), or None for positional inputs."""
    if not isinstance(probe, Mapping):
        return None
    bad = [k for k in probe if not isinstance(k, str)]
    if bad or not probe:
        raise ValueError(f"a dict probe must map keyword names (str) to arrays. Got keys {list(probe)!r}.")
    return tuple(probe)


def _as_probe(probe: Any, model: nn.Module) -> tuple[tuple[torch.Tensor, ...], int]:
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


def _as_device(device: Any, owner: str) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"The 'device' parameter of {owner} must name a torch device ('cpu', 'cuda:0', ...). Got {device!r} ({exc})."
        ) from None


def _model_device(model: nn.Module) -> torch.device:
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


def _probe_pass(
    model: nn.Module,
    layers: list[_Resolved],
    probe: tuple[torch.Tensor, ...],
    n: int,
    *,
    batch_size: int,
    device: torch.device,
    epoch: int | None,
    keys: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray | dict[str, np.ndarray]]:
    """Hooks on, probe through the model in eval mode, hooks off; every layer's (N, d) float32 activations."""
    captured: dict[str, list] = {layer.name: [] for layer in layers}
    calls: dict[str, int] = {layer.name: 0 for layer in layers}
    by_module: dict[int, list[_Resolved]] = {}
    for layer in layers:
        by_module.setdefault(id(layer.module), []).append(layer)
    batch_rows = [0]

    def make_hook(specs: list[_Resolved]):
        def hook(module, args, output):
            for spec in specs:
                calls[spec.name] += 1
                captured[spec.name].append(_capture(output, spec, batch_rows[0]))

        return hook

    with ExitStack() as stack:
        # Registered first, so it runs last: each module gets back its own flag, whatever train()/eval() did.
        stack.callback(_restore_modes, [(m, m.training) for m in model.modules()])
        # Sampling layers must not shift the training run's random stream.
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            stack.enter_context(torch.random.fork_rng(devices=[index], device_type="cuda"))
        else:
            stack.enter_context(torch.random.fork_rng(devices=[]))
        for specs in by_module.values():
            handle = specs[0].module.register_forward_hook(make_hook(specs))
            stack.callback(handle.remove)
        model.eval()
        stack.enter_context(torch.inference_mode())
        for start in range(0, n, batch_size):
            batch = [t[start : start + batch_size].to(device, non_blocking=True) for t in probe]
            batch_rows[0] = len(batch[0])
            before = dict(calls)
            model(**dict(zip(keys, batch))) if keys else model(*batch)
            for layer in layers:
                fired = calls[layer.name] - before[layer.name]
                if fired > 1:
                    raise ValueError(
                        f"layer {layer.name!r} (module {layer.module_name!r}) ran {fired} times in one forward "
                        "pass; record a module that is called once per forward (reused modules, e.g. one "
                        "ReLU applied twice, have no single output)."
                    )
            if start == 0:
                silent = [layer.name for layer in layers if calls[layer.name] == 0]
                if silent:
                    raise RuntimeError(
                        f"layer(s) {silent} never fired during the probe pass: the model's forward does not "
                        "call these modules (forward hooks saw no output)."
                    )

    result: dict[str, np.ndarray | dict[str, np.ndarray]] = {}
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


def record(
    model: nn.Module,
    probe: Any,
    layers: Any,
    *,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
    **reductions: Any,
) -> dict[str, np.ndarray | dict[str, np.ndarray]]:
    """One probe pass at a checkpoint: ``{layer: float32 (N, d)}``, or ``{"mu", "log_var"}`` for a Gaussian.

    ``probe`` is a numpy array or tensor (or a tuple of them: positional inputs; or a dict of them: keyword
    inputs); ``layers`` as for `Recorder`, and so are the default reductions ``pool``, ``project``,
    ``units``, ``dtype``, ``seed``. The model's modes, hooks and RNG state are left exactly as found.
    """
    resolved = _with_reductions(resolve_layers(model, layers), reductions, "record")
    batch_size = check_int_param(batch_size, "batch_size", "record", minimum=1)
    keys = _probe_keys(probe)
    tensors, n = _as_probe(probe, model)
    device = _model_device(model) if device is None else _as_device(device, "record")
    return _probe_pass(model, resolved, tensors, n, batch_size=batch_size, device=device, epoch=None, keys=keys)


def _with_reductions(layers: list[_Resolved], defaults: dict[str, Any], owner: str) -> list[_Resolved]:
    """Each layer with the default reductions (keywords pool, project, units, dtype, seed) filling its own."""
    unknown = set(defaults) - {"pool", "project", "units", "dtype", "seed"}
    if unknown:
        raise TypeError(f"{owner} got unexpected keyword argument(s) {sorted(unknown)}.")
    default = Reduction.create(**defaults, owner=owner)
    return [layer.with_defaults(default) for layer in layers]


# ---------------------------------------------------------------------------------------------- recorder
def _fingerprint(tensors: tuple[torch.Tensor, ...]) -> str:
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(str((tuple(t.shape), str(t.dtype))).encode())
        digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()


class Recorder:
    """Record chosen layers of ``model`` on ``probe`` at scheduled epochs, around your own training loop.

    Examples
    --------
    >>> with Recorder(model, layers=["fc1", "act*"], probe=X, labels=y,
    ...               schedule=Schedule.log_spaced(1000, 100), store="run.zarr") as rec:
    ...     rec.step(0)
    ...     for epoch in range(1, 1001):
    ...         train_one_epoch(model)
    ...         rec.step(epoch)          # records only when the schedule says so
    >>> infoplane.models.train(model, X, y, epochs=1000, callback=rec.step)   # or as a callback

    Parameters
    ----------
    model : nn.Module
        Any module; its code is not touched. Hooks exist only during a probe pass.
    layers : name, glob, module, module type, Layer, or a list of them
        See the module docstring. Unknown names raise KeyError listing ``named_modules()``.
    probe : array or tensor (or a tuple of them, or a dict of them)
        The fixed inputs, N rows, run at every recording (batched by ``batch_size``): a tuple is passed
        positionally, a dict ``{name: array}`` by keyword (``model(**batch)``, e.g. a Hugging Face model's
        ``input_ids`` and ``attention_mask``).
    labels : array of int, optional
        (N,) labels of the probe rows, stored for the analysis of I(T;Y).
    schedule : Schedule, int, list of int or None
        When to record; None records every epoch. With a store that already has a schedule, None keeps it.
    store : None, path or store
        None: a fresh `MemoryStore`. A path: a `ZarrStore` opened with mode "a" (created, or resumed: its
        epochs are kept, new ones appended) and closed with the recorder. A store object: used as is.
    batch_size : int, default 1024
        Probe rows per forward pass.
    device : str or torch.device, optional
        Where to run the probe; default: where the model's parameters are at each recording.
    on_existing : {"skip", "raise"}, default "skip"
        What `step` does with a scheduled epoch the store already holds (after resuming).
    pool, project, units, dtype, seed : optional
        Default reductions for every layer that does not set its own (see `Layer`): applied inside the hook,
        so a conv layer of 10,000 x 25,088 values is never held in full, only one batch of it. Stored in the
        metadata (``"reductions"``, and each layer spec).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Any,
        probe: Any,
        *,
        labels: Any = None,
        schedule: Any = None,
        store: BaseStore | str | os.PathLike | None = None,
        batch_size: int = 1024,
        device: str | torch.device | None = None,
        on_existing: Literal["skip", "raise"] = "skip",
        pool: int | str | None = None,
        project: int | None = None,
        units: Sequence[int] | None = None,
        dtype: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.model = model
        self.layer_specs = _with_reductions(
            resolve_layers(model, layers),
            {"pool": pool, "project": project, "units": units, "dtype": dtype, "seed": seed}, "Recorder")
        self.batch_size = check_int_param(batch_size, "batch_size", "Recorder", minimum=1)
        self._probe_keys = _probe_keys(probe)
        self._probe, self.n_probe = _as_probe(probe, model)
        self.labels = None if labels is None else check_labels(labels, None, name="labels", min_classes=1)
        if self.labels is not None and len(self.labels) != self.n_probe:
            raise ValueError(
                f"labels must have one entry per probe row: probe has {self.n_probe:,} rows, labels has "
                f"{len(self.labels):,}."
            )
        self.device = None if device is None else _as_device(device, "Recorder")
        if on_existing not in ("skip", "raise"):
            raise param_error("Recorder", "on_existing", "one of 'skip', 'raise'", on_existing)
        self.on_existing = on_existing
        if isinstance(store, (str, os.PathLike)) or (isinstance(store, ZarrStore) and store.mode != "r"):
            check_writer_rank("Recorder")  # one writer per store under torch.distributed: rank 0
        self._owns_store = store is None or isinstance(store, (str, os.PathLike))
        if store is None:
            self.store: BaseStore = MemoryStore()
        elif isinstance(store, (str, os.PathLike)):
            self.store = ZarrStore(store, mode="a")
        elif isinstance(store, BaseStore):
            self.store = store
        else:
            raise TypeError(f"store must be None, a path or a MemoryStore/ZarrStore. Got {type(store).__name__}.")
        try:
            self.schedule = self._setup_store(schedule)
        except BaseException:
            self.close()
            raise
        self.recorded: list[int] = []  # recorded by this recorder (the store may hold more, from before)
        self.skipped: list[int] = []  # scheduled but already in the store
        self._last_step: int | None = None
        self._device_probe: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    @property
    def layers(self) -> list[str]:
        """Logical names of the recorded layers."""
        return [layer.name for layer in self.layer_specs]

    @property
    def epochs(self) -> list[int]:
        """Every epoch in the store, ascending (including those from before a resume)."""
        return self.store.epochs

    def _setup_store(self, schedule: Any) -> Schedule:
        store = self.store
        previous = store.metadata
        fingerprint = _fingerprint(self._probe)
        if store.layers:  # resuming: the same layers and the same probe, or the trajectory means nothing
            if sorted(store.layers) != sorted(self.layers):
                raise ValueError(
                    f"layers {self.layers} differ from the layers already in the store {store.layers}; record "
                    "into a new store."
                )
            if store.n_probe != self.n_probe:
                raise ValueError(
                    f"probe has {self.n_probe:,} rows but the store was recorded with {store.n_probe:,}; record "
                    "into a new store."
                )
        if previous.get("probe_sha256") not in (None, fingerprint):
            raise ValueError("probe differs from the probe the store was recorded with; record into a new store.")
        if schedule is None and "schedule" in previous:
            sched = Schedule.from_dict(previous["schedule"])
        else:
            sched = Schedule.coerce(schedule)
        if self.labels is not None:
            store.set_labels(self.labels)
        store.set_metadata(
            schedule=sched.to_dict(),
            layer_specs=[layer.to_dict() for layer in self.layer_specs],
            reductions={layer.name: layer.reduction.to_dict() for layer in self.layer_specs},
            n_probe=self.n_probe,
            probe_shape=[list(t.shape) for t in self._probe],
            probe_keys=None if self._probe_keys is None else list(self._probe_keys),
            probe_dtype=[str(t.dtype).replace("torch.", "") for t in self._probe],
            probe_sha256=fingerprint,
            batch_size=self.batch_size,
            model_class=f"{type(self.model).__module__}.{type(self.model).__qualname__}",
            model_repr=repr(self.model)[:_MODEL_REPR_CHARS],
            torch_version=torch.__version__,
        )
        return sched

    def due(self, epoch: int) -> bool:
        """Whether the schedule records ``epoch`` (regardless of what the store holds)."""
        return epoch in self.schedule

    def _probe_on(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        if device.type == "cpu":
            return self._probe
        if device not in self._device_probe:  # moved once, reused at every recording
            self._device_probe[device] = tuple(t.to(device) for t in self._probe)
        return self._device_probe[device]

    def step(self, epoch: int, model: nn.Module | None = None, *, force: bool = False) -> bool:
        """Record ``epoch`` if the schedule (or ``force``) says so; return whether it was recorded.

        Accepts ``(epoch, model)`` so that it can be passed as ``callback=rec.step`` to
        `infoplane.models.train`. Epochs must not decrease; a repeated epoch is a no-op; an epoch already
        in the store is skipped or raises, per ``on_existing``.
        """
        epoch = check_int_param(epoch, "epoch", "Recorder.step", minimum=0)
        if model is not None and model is not self.model:
            raise ValueError("Recorder.step got a model other than the one the recorder was built for.")
        if self._last_step is not None and epoch < self._last_step:
            raise ValueError(
                f"epochs passed to Recorder.step must not decrease: got {epoch} after {self._last_step}."
            )
        repeated = epoch == self._last_step
        self._last_step = epoch
        if repeated or not (force or epoch in self.schedule):
            return False
        if epoch in self.store:
            if self.on_existing == "raise":
                raise ValueError(f"epoch {epoch} is already in the store (on_existing='raise').")
            self.skipped.append(epoch)
            return False
        device = self.device if self.device is not None else _model_device(self.model)
        data = _probe_pass(
            self.model,
            self.layer_specs,
            self._probe_on(device),
            self.n_probe,
            batch_size=self.batch_size,
            device=device,
            epoch=epoch,
            keys=self._probe_keys,
        )
        self.store.write_epoch(epoch, data)
        self.recorded.append(epoch)
        return True

    def close(self) -> None:
        """Close a store the recorder opened from a path (releases its writer lock)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Recorder(layers={self.layers!r}, n_probe={self.n_probe}, schedule={self.schedule.to_dict()!r}, "
            f"store={self.store!r})"
        )
