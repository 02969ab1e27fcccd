"""What may be averaged: runs that differ only in the seed. Probes are kept apart; other differences refuse.

A results table's ``run`` column names repetitions; plotting averages them per (layer, epoch) with their
spread. That is right for seeds and wrong for anything else: a run on the training probe and a run on a
held-out probe, a tanh run and a ReLU run. So before averaging:

* a ``probe`` column (``information_plane`` writes it from each store's ``probe_name``) splits the table:
  each probe is averaged on its own and drawn with its own line style;
* any other column that is constant within every run but differs between runs (``activation``, ``beta``,
  ``n_samples`` — a held-out probe is usually smaller, ...) means the runs are different experiments: the
  plot refuses, naming the column and ``plot_information_plane_grid(df, col=...)``.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from .._core.tables import listed

__all__ = ["PROBE", "probe_levels", "check_runs_comparable", "check_has_i_xt", "PROBE_STYLES"]

PROBE = "probe"
#: Line styles of the probes of one plane, in order of appearance (train solid, held-out dashed, ...).
PROBE_STYLES = ("-", "--", ":", "-.")
#: Columns that are the same experiment whatever their value: ids, seeds and the measured quantities.
_NOT_CONFIGURATION = {"run", "seed", "epoch", "layer", "estimator", PROBE, "bound_XT", "bound_TY", "n_runs",
                      "saturated", "dpi_violation", "geo_compression", "reason", "reliable"}
_MEASURED = re.compile(r"^I_|_(std|se|low|high|min|max|reliable|reason|shuffled)$")


def probe_levels(table: pd.DataFrame) -> list[Any]:
    """The probes of ``table`` in order of appearance (``[None]`` without a ``probe`` column)."""
    if PROBE not in table.columns:
        return [None]
    return list(pd.unique(table[PROBE]))


def _configuration_columns(sub: pd.DataFrame) -> list[str]:
    return [c for c in sub.columns if c not in _NOT_CONFIGURATION and not _MEASURED.search(str(c))]


def check_runs_comparable(sub: pd.DataFrame, *, name: str = "df") -> None:
    """Raise unless the runs of ``sub`` (one probe) differ only in the seed, so they may be averaged.

    A column constant within each run whose value differs between runs is a difference of configuration:
    averaging would draw one line through two experiments.
    """
    if "run" not in sub.columns or sub["run"].nunique() < 2:
        return
    for column in _configuration_columns(sub):
        per_run = sub.groupby("run", sort=False)[column].agg(lambda s: tuple(pd.unique(s.dropna())))
        if any(len(v) > 1 for v in per_run):  # varies within a run: a per-point quantity, not a setting
            continue
        values = list(dict.fromkeys(v[0].item() if isinstance(v[0], np.generic) else v[0] for v in per_run if v))
        if len(values) > 1:
            example = column if column != "n_samples" else "probe"
            raise ValueError(
                f"the runs of {name} differ in {column!r} ({listed(values)}), not only in the seed, so they "
                f"are not averaged into one line. Draw them apart with plot_information_plane_grid(df, "
                f"col={column!r}) (or col='run'), filter df to one {column}, or, for a training and a held-out "
                f"probe, give the table a {example!r} column (information_plane writes one from each "
                "Recorder's probe_name)."
            )


def check_has_i_xt(sub: pd.DataFrame, label: Any, owner: str) -> None:
    """Raise when no row of ``sub`` has a finite I(T;X): an I(T;Y)-only estimator has no plane to draw."""
    values = pd.to_numeric(sub["I_XT"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isfinite(values).any():
        return
    what = f"estimator {label!r}" if label is not None else "the table"
    note = ""
    conventions = sub.attrs.get("conventions") or {}
    if isinstance(conventions, dict) and isinstance(conventions.get(label), dict):
        reason = conventions[label].get("I_XT_note")
        note = f" ({reason})" if reason else ""
    quoted = f", estimator={label!r}" if label is not None else ""
    raise ValueError(
        f"{owner} needs I(T;X), but {what} gives none: I_XT is NaN in every row{note}. Draw its I(T;Y) "
        f"against epoch with plot_mi_vs_epoch(df, 'I_TY'{quoted}) instead."
    )
