"""Helpers of the command line (`infoplane.__main__`): estimator specs with parameters, a user's model, help.

``--estimators`` takes a comma-separated list of estimator specs, each a preset name or an estimator name
with optional parameters::

    kde-upper:noise_variance=0.1,binning:n_bins=50:strategy=adaptive,knn:k=5

A spec is ``NAME`` or ``NAME:PARAM=VALUE[:PARAM=VALUE...]``; a further ``PARAM=VALUE`` after a comma (no
colon before its ``=``) also belongs to the spec before it (``binning:n_bins=50,strategy=adaptive``). Values
are read as Python literals where they parse (``0.1``, ``50``, ``true``/``false``, ``none``) and as text
otherwise (``lower``). Each spec builds its estimator at once (`make_estimator`), so a bad name, an unknown
parameter or a bad value is a usage error naming the spec.

``record --model MODULE:FUNCTION`` imports ``FUNCTION`` from ``MODULE`` (a module importable from the current
directory, or a ``path/to/file.py``) and calls it with no arguments; it returns ``(model, probe, labels)``.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

__all__ = ["HelpFormatter", "EstimatorSpec", "parse_estimators", "estimator_names", "estimator_parameters",
           "load_model"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows an option's default only when it says something: never "(default: None)" or "(default: False)"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default in (None, False, argparse.SUPPRESS) or action.nargs == 0:
            return text
        if isinstance(default, (list, tuple)) and not default:
            return text
        return text + " (default: %(default)s)"


def estimator_names() -> tuple[list[str], dict[str, type]]:
    """(preset names, {estimator name: class}) that ``--estimators`` accepts."""
    from .estimators.presets import ESTIMATOR_PRESETS, estimator_classes

    return list(ESTIMATOR_PRESETS), estimator_classes()


def estimator_parameters(cls: type) -> list[str]:
    """The parameters an estimator class takes (its ``__init__``'s, ``self`` left out)."""
    return [p for p in inspect.signature(cls).parameters if p != "self"]


def _value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


class EstimatorSpec:
    """One ``NAME[:PARAM=VALUE...]`` of ``--estimators``: its label, name, parameters and estimator."""

    def __init__(self, name: str, params: dict[str, Any], text: str) -> None:
        self.name, self.params, self.text = name, params, text
        self.estimator = self._build()

    @property
    def label(self) -> str:
        """The table's estimator label: the name, plus the parameters (``kde-upper(noise_variance=0.1)``)."""
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.params.items())})"

    def _class(self) -> type:
        from .estimators.presets import ESTIMATOR_PRESETS

        presets_, classes = estimator_names()
        if self.name in presets_:
            return _preset_class(ESTIMATOR_PRESETS[self.name][1], classes)
        if self.name in classes:
            return classes[self.name]
        raise argparse.ArgumentTypeError(
            f"unknown estimator {self.name!r} in {self.text!r}; choose a preset ({', '.join(presets_)}) or an "
            f"estimator ({', '.join(classes)}), with optional parameters, e.g. 'kde-upper:noise_variance=0.1'"
        )

    def _build(self) -> Any:
        from .estimators.presets import make_estimator

        cls = self._class()
        accepted = estimator_parameters(cls)
        unknown = [k for k in self.params if k not in accepted]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"estimator {self.name!r} ({cls.__name__}) takes no parameter {', '.join(map(repr, unknown))} "
                f"(in {self.text!r}); it takes: {', '.join(accepted)}"
            )
        required = [name for name, p in inspect.signature(cls).parameters.items()
                    if name != "self" and p.default is inspect.Parameter.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and name not in self.params]
        if required:
            raise argparse.ArgumentTypeError(
                f"estimator {self.name!r} ({cls.__name__}) needs parameter(s) {', '.join(map(repr, required))} "
                f"(in {self.text!r}), e.g. '{self.name}:{required[0]}=knn'")
        params = dict(self.params)
        if isinstance(params.get("estimator"), str):  # a wrapper (SampleSizeCheck): the wrapped one by name
            params["estimator"] = EstimatorSpec(params["estimator"], {}, self.text).estimator
        try:
            return make_estimator(self.name, **params)
        except (TypeError, ValueError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise argparse.ArgumentTypeError(f"bad parameters in {self.text!r}: {message}") from None


def _preset_class(factory: Any, classes: dict[str, type]) -> type:
    """The class a preset builds (its ``class_name``), found among the estimator classes."""
    wanted = getattr(factory, "class_name", None)
    for cls in classes.values():
        if cls.__name__ == wanted:
            return cls
    return type(factory())  # a preset of another shape: build it once to see its class


def _split(text: str) -> list[tuple[str, list[str], str]]:
    """[(name, ["k=v", ...], spec text)] from the comma-separated specs; bare ``k=v`` joins the spec before."""
    specs: list[tuple[str, list[str], str]] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        head = token.split("=", 1)[0]
        if "=" in token and ":" not in head:  # "strategy=adaptive": one more parameter of the spec before
            if not specs:
                raise argparse.ArgumentTypeError(
                    f"{token!r} is a parameter without an estimator; write NAME:PARAM=VALUE, e.g. "
                    f"'binning:n_bins=50'. Got {text!r}")
            name, params, spec_text = specs[-1]
            specs[-1] = (name, params + [token], f"{spec_text},{token}")
            continue
        name, *params = token.split(":")
        specs.append((name.strip(), [p.strip() for p in params if p.strip()], token))
    return specs


def parse_estimators(text: str) -> dict[str, Any]:
    """{label: estimator} from the ``--estimators`` text; usage errors (argparse) say what is wrong."""
    specs = _split(text)
    if not specs:
        presets_, classes = estimator_names()
        raise argparse.ArgumentTypeError(
            f"--estimators needs at least one estimator; choose from {', '.join(presets_ + list(classes))}. "
            f"Got {text!r}")
    out: dict[str, Any] = {}
    for name, params, spec_text in specs:
        parsed: dict[str, Any] = {}
        for item in params:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise argparse.ArgumentTypeError(
                    f"parameter {item!r} in {spec_text!r} is not PARAM=VALUE (e.g. noise_variance=0.1)")
            if key.strip() in parsed:
                raise argparse.ArgumentTypeError(f"parameter {key.strip()!r} is given twice in {spec_text!r}")
            parsed[key.strip()] = _value(value)
        spec = EstimatorSpec(name, parsed, spec_text)
        if spec.label in out:
            raise argparse.ArgumentTypeError(f"estimators must not repeat: {spec.label!r} is given twice in {text!r}")
        out[spec.label] = spec.estimator
    return out


# --------------------------------------------------------------------------------------------------
# A user's model
# --------------------------------------------------------------------------------------------------
def _import(module: str) -> Any:
    if module.endswith(".py"):
        path = Path(module)
        if not path.is_file():
            raise FileNotFoundError(f"--model: the file {module!r} does not exist.")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules.setdefault(path.stem, mod)
        spec.loader.exec_module(mod)
        return mod
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # the console script does not put the current directory first
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ImportError(f"--model: cannot import module {module!r} ({exc}); run from the directory that "
                          "holds it, or give a path/to/file.py.") from None


def load_model(spec: str) -> tuple[Any, Any, Any]:
    """``(model, probe, labels)`` from ``MODULE:FUNCTION``: the function is called with no arguments.

    Checked: ``model`` is a ``torch.nn.Module``, ``probe`` has N rows, ``labels`` is N integer labels.
    """
    import numpy as np
    import torch

    module, sep, function = spec.rpartition(":")
    if not sep or not module or not function:
        raise ValueError(f"--model must be MODULE:FUNCTION (e.g. mymodels:build), returning (model, probe, "
                         f"labels). Got {spec!r}.")
    mod = _import(module)
    fn = getattr(mod, function, None)
    if not callable(fn):
        raise ValueError(f"--model: module {module!r} has no function {function!r}.")
    out = fn()
    if not isinstance(out, tuple) or len(out) != 3:
        raise ValueError(f"--model: {spec}() must return a tuple (model, probe, labels). Got "
                         f"{type(out).__name__}{f' of length {len(out)}' if isinstance(out, tuple) else ''}.")
    model, probe, labels = out
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"--model: the model returned by {spec}() must be a torch.nn.Module. Got "
                        f"{type(model).__name__}.")
    n = len(probe)
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if labels.ndim != 1 or len(labels) != n or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"--model: labels returned by {spec}() must be {n} integer class labels (one per "
                         f"probe row). Got shape {labels.shape} and dtype {labels.dtype}.")
    return model, probe, labels
