"""Layer specs and their resolution against a model: `Layer`, `resolve_layers` (see `infoplane.recording`)."""
from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from torch import nn

from .._core.noise_specs import NoiseSpec, as_noise_spec
from .._core.validation import param_error
from ._reductions import Reducer, Reduction

__all__ = ["Layer", "resolve_layers", "Selector", "GaussianParam"]

Selector = int | str
GaussianParam = Literal["log_var", "std", "var"]


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
        Spatial average pooling of an ``(N, C, *spatial)`` output inside the hook: ``"global"`` -> (N, C); k ->
        k x k windows. A non-spatial output raises ValueError naming ``pool``.
    project : int, optional
        Seeded Gaussian random projection to k dimensions (entries N(0, 1/k)), 1 <= k <= width: keeps pairwise
        distances within 1 ± ε (Johnson-Lindenstrauss), so KDE and k-NN estimates move little
        (`infoplane.recording._reductions.projection_kde_bracket` states how little).
    units : sequence of int, optional
        A fixed subset of the (pooled, flattened) units, by index.
    dtype : {"float32", "float16"}, optional
        Storage dtype (float16 halves the store; values beyond ±65,504 raise).
    seed : int, optional
        Seed of the projection matrix (default 0).
    noise : GaussianNoise or GaussianDropout, optional
        The layer is noisy (`infoplane.noise`): while recording, the noise is added to its output and the
        `Recorder` stores ``draws`` propagated draws per probe row of its output *before* its own noise
        (noise at every noisy layer upstream; Goldfeld et al. 2019's sample propagation), which
        `information_plane` estimates with the ``"noisy"`` preset. No reduction may be combined with it
        (they would break the noise model).

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
    noise: NoiseSpec | None = None

    def __post_init__(self) -> None:
        if self.name is not None and not (isinstance(self.name, str) and self.name.strip()):
            raise param_error("Layer", "name", "a non-empty str (the name stored) or None", self.name)
        if self.noise is not None:
            object.__setattr__(self, "noise", as_noise_spec(self.noise, "Layer", "noise"))
            if self.gaussian:
                raise ValueError("Layer: a Gaussian layer (gaussian=...) cannot also take noise=; choose one.")
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
    noise: NoiseSpec | None = None

    def with_defaults(self, default: Reduction) -> _Resolved:
        """This layer with the recorder's default reductions filling its unset ones (and a reducer if any)."""
        red = self.reduction.with_defaults(default)
        if self.noise is not None and not red.is_identity:
            raise ValueError(
                f"layer {self.name!r} has noise={self.noise!r}: pool/project/units/dtype would break the noise "
                f"model (the estimator needs the exact output before the noise); got reductions {red.to_dict()}. "
                "Record it without reductions, or put the noise on a smaller layer."
            )
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
            "noise": None if self.noise is None else self.noise.to_dict(),
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
                                 spec.reduction, noise=spec.noise))
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
