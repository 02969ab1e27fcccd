"""Noisy layers in the results table: what each estimator sees of a noisy layer, and the standard-error columns.

A store's noisy layer (recorded with ``Layer(name, noise=spec)`` and ``Recorder(..., draws=m)``) holds
(N, m·d) float32: row i's m propagated pre-noise draws one after the other; the metadata ``"noise"`` holds
{layer: {"spec", "draws", "seed"}}. An estimator that takes noise (``uses_noise = True``, `NoisyEstimator`)
gets the N·m rows (N·m, d) with their input ids and labels repeated, and the layer's spec; every other
estimator gets the first draw, (N, d), which for the first noisy layer is the deterministic output.

Columns: ``I_XT_se``, ``I_TY_se`` (bits): the Monte Carlo standard errors an estimator reports
(``conventions["stderr_XT_bits"]``), NaN for estimators that report none.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._core.noise_specs import noise_from_dict
from ._providers import Flags, Provider, RowContext

__all__ = ["SE_COLUMNS", "StandardErrors", "with_standard_errors", "store_noise", "uses_noise", "applies", "noisy_view", "se_values", "default_estimators",
           "warn_few_draws", "first_draw"]

SE_COLUMNS = ["I_XT_se", "I_TY_se"]
#: Below this many draws per input a deeper noisy layer's p(t|x) (a mixture over the draws) is biased by more
#: than its Monte Carlo standard error says (measured: tests/nets/test_noisy_pipeline.py).
MIN_DRAWS_FOR_SE = 8


def store_noise(store: Any) -> dict[str, dict[str, Any]]:
    """{layer: {"spec", "draws", "seed"}} of the store's noisy layers (empty for a plain store)."""
    meta = getattr(store, "metadata", None) or {}
    return dict(meta.get("noise") or {})


def uses_noise(est: Any) -> bool:
    return bool(getattr(est, "uses_noise", False))


def applies(est: Any, noise: Mapping[str, Any] | None) -> bool:
    """Whether ``est`` estimates this layer: a noise-taking estimator without a spec of its own needs a noisy layer."""
    return not (uses_noise(est) and getattr(est, "noise", None) is None and not noise)


def noisy_view(est: Any, t: np.ndarray, y: np.ndarray, x: Any, noise: Mapping[str, Any] | None,
               kwargs: dict[str, Any]) -> tuple[Any, np.ndarray, Any]:
    """(t, y, x) as ``est`` sees a layer; for a noise-taking estimator ``kwargs`` gains ``noise=``."""
    if not noise:
        return t, y, x
    draws = int(noise["draws"])
    n = t.shape[0]
    t3 = np.asarray(t).reshape(n, draws, -1)
    if not uses_noise(est):
        return t3[:, 0, :], y, x
    kwargs["noise"] = noise_from_dict(noise["spec"])
    ids = np.arange(n) if x is None else np.unique(np.asarray(x).reshape(n, -1), axis=0, return_inverse=True)[1]
    ids = np.asarray(ids).reshape(-1)
    if (t3 == t3[:, :1]).all():  # no noise upstream (the first noisy layer): p(t|x) is one Gaussian
        return t3[:, 0, :], y, (None if x is None else ids)
    return t3.reshape(n * draws, -1), np.repeat(y, draws), np.repeat(ids, draws)


def first_draw(t: Any, noise: Mapping[str, Any]) -> np.ndarray:
    """(N, d): the first of a noisy layer's draws (for the first noisy layer, the deterministic output)."""
    t = np.asarray(t)
    return t.reshape(t.shape[0], int(noise["draws"]), -1)[:, 0, :]


def se_values(res: Any) -> dict[str, float]:
    conv = getattr(res, "conventions", None) or {}
    return {"I_XT_se": float(conv.get("stderr_XT_bits", math.nan)),
            "I_TY_se": float(conv.get("stderr_TY_bits", math.nan))}


class StandardErrors(Provider):
    """``I_XT_se``, ``I_TY_se`` (bits): the Monte Carlo standard errors an estimator reports
    (``conventions["stderr_XT_bits"]``), NaN for those that report none. Switched on by `information_plane`
    when a noise-taking estimator is among its estimators."""

    handles_draws = True

    def columns(self) -> list[str]:
        return list(SE_COLUMNS)

    def dtypes(self) -> dict[str, str]:
        return {c: "float64" for c in SE_COLUMNS}

    def row_columns(self, ctx: RowContext) -> dict[str, Any]:
        return se_values(ctx.result)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StandardErrors)

    def __hash__(self) -> int:
        return hash(StandardErrors)


def with_standard_errors(providers: tuple) -> tuple:
    """``providers`` with `StandardErrors` inserted before the flags (whose DPI test reads the errors)."""
    if any(isinstance(p, StandardErrors) for p in providers):
        return providers
    at = next((i for i, p in enumerate(providers) if isinstance(p, Flags)), len(providers))
    return (*providers[:at], StandardErrors(), *providers[at:])


def check_planned(tasks: list, estimators: Mapping[str, Any], layer_order: list[str]) -> None:
    """No task because the noisy estimator found no noisy layer: say so."""
    if not tasks and any(uses_noise(e) for e in estimators.values()):
        raise ValueError(
            f"Nothing to compute: the noisy estimator needs noisy layers (Layer(name, noise=...)) and the "
            f"selected layers {layer_order} have none recorded. Record with noise, or choose another estimator "
            "(e.g. 'binning')."
        )


def default_estimators(stores: Mapping[str, Any]) -> str:
    """``"noisy"`` for stores with noisy layers, else ``"binning"``."""
    return "noisy" if any(store_noise(s) for s in stores.values()) else "binning"


def warn_few_draws(stores: Mapping[str, Any], df: pd.DataFrame) -> None:
    """One warning when a deeper noisy layer was recorded with fewer than `MIN_DRAWS_FOR_SE` draws."""
    few = sorted({f"{layer} (draws={info['draws']})" for s in stores.values()
                  for i, (layer, info) in enumerate(store_noise(s).items())
                  if i > 0 and int(info["draws"]) < MIN_DRAWS_FOR_SE})
    if few and "I_XT_se" in df.columns:
        warnings.warn(
            f"information_plane: noisy layers {few} have fewer than {MIN_DRAWS_FOR_SE} propagated draws per "
            "input; their p(t|x) is a mixture over the draws, so I_XT is biased by more than the stated "
            "I_XT_se (Monte Carlo error only). Record with Recorder(..., draws=8) or more.",
            UserWarning, stacklevel=3,
        )
