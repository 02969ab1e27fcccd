"""The estimator's settings in words for panel titles (bins, σ², k, ...), from a table's conventions or columns.

A results table carries each estimator's conventions in ``df.attrs["conventions"][label]`` (written beside a
CSV as JSON by `save_results`); a table without them may still hold the settings as columns (``n_bins``,
``noise_variance``, ...) with one value. Only settings that change the numbers are named.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["estimator_settings", "settings_from_conventions"]

#: Settings that may be a column of the table, in the order they are named, and how each is written.
_COLUMN_SETTINGS = ("n_bins", "bin_width", "noise_variance", "noise_std", "k", "draws", "n_draws", "latent_dim")


def _g(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float, np.number)) and not isinstance(value, bool) else str(value)


def _binning(conv: Mapping[str, Any]) -> list[str]:
    edges = conv.get("edges")
    if edges:
        return [f"{len(edges) - 1} bins on [{_g(edges[0])}, {_g(edges[-1])}]"]
    if conv.get("bin_width") is not None:
        return [f"bin width {_g(conv['bin_width'])}"]
    if conv.get("n_bins") is not None:
        strategy = conv.get("strategy", "uniform")
        return [f"{_g(conv['n_bins'])} bins" + ("" if strategy == "uniform" else f", {strategy}")]
    return []


def _generic(conv: Mapping[str, Any]) -> list[str]:
    parts = []
    if conv.get("noise_variance") is not None:
        parts.append(f"σ² = {_g(conv['noise_variance'])}")
    if conv.get("noise_std") is not None:
        parts.append(f"σ = {_g(conv['noise_std'])}")
    if conv.get("k") is not None:
        parts.append(f"k = {_g(conv['k'])}")
    for key, name in (("n_draws", "draws"), ("draws", "draws"), ("latent_dim", "latent dim")):
        if conv.get(key) is not None:
            parts.append(f"{_g(conv[key])} {name}")
            break
    return parts


def settings_from_conventions(conv: Any) -> str:
    """``"30 bins on [-1, 1]"``, ``"σ² = 0.001"``, ``"k = 3"``, ... from one estimator's conventions ("" if none)."""
    if not isinstance(conv, Mapping):
        return ""
    parts = _binning(conv) + _generic(conv)
    return ", ".join(dict.fromkeys(parts))


def _from_columns(df: pd.DataFrame) -> str:
    parts = []
    for col in _COLUMN_SETTINGS:
        if col in df.columns:
            values = pd.unique(df[col].dropna())
            if len(values) == 1:
                name = {"noise_variance": "σ²", "noise_std": "σ", "n_bins": "bins", "bin_width": "bin width"}.get(
                    col, col.replace("_", " "))
                parts.append(f"{name} = {_g(values[0])}")
    return ", ".join(parts)


def estimator_settings(df: pd.DataFrame, label: Any) -> str:
    """The settings of estimator ``label`` in ``df`` in words: its conventions in attrs, else its columns."""
    conventions = df.attrs.get("conventions") or {}
    text = settings_from_conventions(conventions.get(label)) if isinstance(conventions, Mapping) else ""
    return text or _from_columns(df)
