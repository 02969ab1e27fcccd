"""Column providers: every column `information_plane` adds beside the estimates comes from one of these.

A provider is a small picklable object (it travels to joblib workers) with four hooks, all optional
(`Provider` has no-op defaults):

- ``columns()`` — the names of the columns it adds, in table order;
- ``task_columns(task, t, log_var)`` — values shared by every estimator's row of one (run, epoch, layer), computed
  once per task in the worker (e.g. ``geo_compression``);
- ``row_columns(ctx)`` — values of one estimator's row (`RowContext`: the task, the estimator, its inputs and its
  `MIResult`), in the worker (e.g. ``I_TY_shuffled``, bootstrap intervals, a standard error from the result);
- ``table(df, ctx)`` — the whole table after assembly (`TableContext`), for columns that compare rows (e.g.
  ``saturated``, ``dpi_violation``); it returns the new table.

``dtypes()`` gives the dtypes of its per-row columns. A provider switched on by a keyword of
`information_plane` declares that keyword in ``keywords`` ({name: default}), builds itself in
``from_options`` (validating the values, errors naming ``owner``; None when switched off) and documents the
keyword in ``doc`` (a numpydoc parameter entry, appended to `information_plane`'s docstring).

Adding a column is one place: write a `Provider` subclass here and append it to `PROVIDERS` (the order of
`PROVIDERS` is the order of the columns). A provider instance can also be passed directly:
``information_plane(..., providers=[MyProvider()])``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from .._core.types import MIResult, TensorLike
from .._core.validation import as_numpy, check_bool_param, check_int_param
from . import _diagnostics
from ._geometry import geometric_compression

if TYPE_CHECKING:
    from ._engine import Task

__all__ = [
    "ColumnProvider",
    "Provider",
    "RowContext",
    "TableContext",
    "ShuffleBaseline",
    "Resampled",
    "Geometry",
    "Flags",
    "Reliability",
    "SelfCheck",
    "PROVIDERS",
    "from_options",
    "options_doc",
]


@dataclass(frozen=True)
class RowContext:
    """One estimate, as a provider's ``row_columns`` sees it.

    ``kwargs`` are the keywords the estimator's ``estimate`` got (``layer``, ``epoch``, and ``log_var`` for a
    Gaussian estimator): pass them on when estimating again (``est.estimate(t, task.y, x, **ctx.kwargs)``).
    """

    task: Task
    label: str
    estimator: Any
    t: Any
    x: Any
    kwargs: Mapping[str, Any]
    result: MIResult


@dataclass(frozen=True)
class TableContext:
    """What a provider's ``table`` hook knows beside the table: the estimators {label: estimator}, the ``x``
    given to `information_plane`, the run names and the layer order."""

    estimators: Mapping[str, Any]
    x: Any
    runs: Sequence[str]
    layer_order: Sequence[str]


@runtime_checkable
class ColumnProvider(Protocol):
    """The interface of a column provider (see the module docstring); `Provider` implements it with no-ops."""

    def columns(self) -> list[str]: ...

    def dtypes(self) -> dict[str, str]: ...

    def task_columns(self, task: Task, t: TensorLike, log_var: TensorLike) -> dict[str, Any]: ...

    def row_columns(self, ctx: RowContext) -> dict[str, Any]: ...

    def table(self, df: pd.DataFrame, ctx: TableContext) -> pd.DataFrame: ...


class Provider:
    """Base class of the column providers: every hook a no-op, no keywords."""

    #: The `information_plane` keywords this provider reads, with their defaults.
    keywords: ClassVar[Mapping[str, Any]] = {}
    #: numpydoc entries for those keywords (appended to `information_plane`'s docstring).
    doc: ClassVar[str] = ""

    @classmethod
    def from_options(cls, owner: str, options: Mapping[str, Any]) -> Provider | None:
        """The provider for these keyword values ({keyword: value} for every one of ``keywords``), or None
        when they switch it off; bad values raise errors naming ``owner``'s parameter."""
        return None

    def columns(self) -> list[str]:
        return []

    def dtypes(self) -> dict[str, str]:
        return {}

    def task_columns(self, task: Task, t: TensorLike, log_var: TensorLike) -> dict[str, Any]:
        return {}

    def row_columns(self, ctx: RowContext) -> dict[str, Any]:
        return {}

    def table(self, df: pd.DataFrame, ctx: TableContext) -> pd.DataFrame:
        return df


# --------------------------------------------------------------------------------------------------
# The providers, in column order
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShuffleBaseline(Provider):
    """``I_TY_shuffled``: I(T;Y) with the labels permuted, averaged over ``n_permutations`` (bits)."""

    n_permutations: int

    keywords: ClassVar[Mapping[str, Any]] = {"shuffle": 0}
    doc: ClassVar[str] = """\
shuffle : int, default 0
    When > 0, also estimate I(T;Y) with the labels randomly permuted, averaged over ``shuffle``
    permutations (`BaseEstimator.shuffle_baseline`), into a column ``I_TY_shuffled`` (bits). The true
    I(T;Y) under permuted labels is 0, so this column is the estimator's value under independence at
    this N and label balance: a floor below which I_TY says nothing. It is not the bias at the
    dependence present, so ``I_TY - I_TY_shuffled`` is not a bias-corrected I(T;Y)."""

    @classmethod
    def from_options(cls, owner: str, options: Mapping[str, Any]) -> ShuffleBaseline | None:
        n = check_int_param(options["shuffle"], "shuffle", owner, minimum=0)
        return cls(n) if n else None

    def columns(self) -> list[str]:
        return ["I_TY_shuffled"]

    def dtypes(self) -> dict[str, str]:
        return {"I_TY_shuffled": "float64"}

    def row_columns(self, ctx: RowContext) -> dict[str, Any]:
        # The same permutations for every task (seed 0): the baseline is comparable across the table.
        base = ctx.estimator.shuffle_baseline(
            ctx.t, ctx.task.y, ctx.x, n_permutations=self.n_permutations, seed=0, **ctx.kwargs)
        return {"I_TY_shuffled": float(base.I_TY)}


@dataclass(frozen=True)
class Resampled(Provider):
    """Bootstrap intervals and subsample estimates over probe rows (`infoplane.analysis` diagnostics)."""

    resampling: _diagnostics.Resampling

    keywords: ClassVar[Mapping[str, Any]] = {"ci": None, "n_boot": 100, "subsample": None}
    doc: ClassVar[str] = """\
ci, n_boot : float, int, optional
    With ``ci`` (e.g. 0.95): a basic (reverse-percentile) bootstrap interval over probe rows, which corrects
    a plug-in estimator's small-sample bias (binning on a discrete layer: coverage 0.92-0.95 at 0.95, where
    the percentile interval covered 0.82-0.83), ``n_boot`` resamples per estimate, in columns ``I_XT_low``, ``I_XT_high``, ``I_TY_low``, ``I_TY_high`` (bits). Costs
    ``n_boot`` extra estimates per row (`infoplane.analysis.resampled_columns`).
subsample : sequence of float, optional
    Fractions of N, e.g. ``(0.25, 0.5)``: the estimate on one random subset of that many rows, in columns
    ``I_XT_at_0.25``, ``I_TY_at_0.25``, ...: values still moving with N have not converged."""

    @classmethod
    def from_options(cls, owner: str, options: Mapping[str, Any]) -> Resampled | None:
        resampling = _diagnostics.Resampling.checked(options["ci"], options["n_boot"], options["subsample"], owner)
        return None if resampling is None else cls(resampling)

    def columns(self) -> list[str]:
        return self.resampling.columns()

    def row_columns(self, ctx: RowContext) -> dict[str, Any]:
        where = (ctx.task.run, ctx.task.epoch, ctx.task.layer)
        return _diagnostics.resampled_columns(
            ctx.estimator, ctx.t, ctx.task.y, ctx.x, dict(ctx.kwargs), self.resampling, where,
            point=(float(ctx.result.I_XT), float(ctx.result.I_TY)))


@dataclass(frozen=True)
class Geometry(Provider):
    """``geo_compression``: tr(Σ_W Σ_B⁺)/C of the layer (dimensionless), once per (epoch, layer)."""

    keywords: ClassVar[Mapping[str, Any]] = {"geometry": False}
    doc: ClassVar[str] = """\
geometry : bool, default False
    Also compute the layer's geometric compression tr(Σ_W Σ_B⁺)/C (`infoplane.analysis.
    geometric_compression`: within- over between-class scatter, dimensionless, not bits) into a column
    ``geo_compression``, the same on every estimator's row of an (epoch, layer). It is what a
    deterministic network's "compression" measures (Goldfeld et al. 2019); it never enters I_XT/I_TY."""

    @classmethod
    def from_options(cls, owner: str, options: Mapping[str, Any]) -> Geometry | None:
        return cls() if check_bool_param(options["geometry"], "geometry", owner) else None

    def columns(self) -> list[str]:
        return ["geo_compression"]

    def dtypes(self) -> dict[str, str]:
        return {"geo_compression": "float64"}

    def task_columns(self, task: Task, t: TensorLike, log_var: TensorLike) -> dict[str, Any]:
        return {"geo_compression": geometric_compression(t, task.y, layer=task.layer, epoch=task.epoch)}


@dataclass(frozen=True)
class Flags(Provider):
    """``saturated`` and ``dpi_violation`` (`infoplane.analysis.add_flags`), computed on the whole table."""

    keywords: ClassVar[Mapping[str, Any]] = {"diagnostics": True}
    doc: ClassVar[str] = """\
diagnostics : bool, default True
    Add the boolean columns ``saturated`` (I_XT >= log2 N − 0.1 bits, N distinct probe inputs: every
    input in its own bin or kernel, the number says nothing about the layer) and ``dpi_violation`` (a
    deeper layer's I_XT or I_TY above the minimum of the shallower layers, same run, epoch and
    estimator, by more than the estimator's ``dpi_tolerance`` bits; layers in recording order, assumed to
    form one chain). Cheap: computed on the table (`infoplane.analysis.add_flags`)."""

    @classmethod
    def from_options(cls, owner: str, options: Mapping[str, Any]) -> Flags | None:
        return cls() if check_bool_param(options["diagnostics"], "diagnostics", owner) else None

    def columns(self) -> list[str]:
        return ["saturated", "dpi_violation"]

    def table(self, df: pd.DataFrame, ctx: TableContext) -> pd.DataFrame:
        # N distinct inputs: the rows, or the distinct ids of x (x was checked against the stores before).
        n_inputs = None if ctx.x is None else int(np.unique(as_numpy(ctx.x), axis=0).shape[0])
        tolerances = {label: _diagnostics.dpi_tolerance(est) for label, est in ctx.estimators.items()}
        return _diagnostics.add_flags(df, tolerances=tolerances, n_inputs=n_inputs)


@dataclass(frozen=True)
class Reliability(Provider):
    """``I_XT_se``, ``I_TY_se``, ``I_XT_reliable``, ``I_TY_reliable``, ``reliability_note``: every estimate run
    through `infoplane.estimators.SampleSizeCheck` (disjoint splits, I(N) ≈ I∞ + a/N)."""

    keywords: ClassVar[Mapping[str, Any]] = {"reliability": False}
    doc: ClassVar[str] = """\
reliability : bool, default False
    Run every estimate through `infoplane.estimators.SampleSizeCheck` (Abdelaleem, Martini & Nemenman 2025:
    estimates on γ = 1…5 disjoint splits of the rows, without replacement; I(N) ≈ I∞ + a/N fitted by weighted
    least squares) and add ``I_XT_se``, ``I_TY_se`` (bits: standard errors of the extrapolated values),
    ``I_XT_reliable`` (nullable boolean, NA where the estimator gives no I(T;X)), ``I_TY_reliable`` and
    ``reliability_note`` (why not). I_XT, I_TY stay the estimates on all rows (the check reuses them as its
    γ = 1). Costs about 1.3 more estimates' time for an O(N²) estimator; plots draw unreliable points grey."""

    @classmethod
    def from_options(cls, owner: str, options: Mapping[str, Any]) -> Reliability | None:
        value = options["reliability"]
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"The 'reliability' parameter of {owner} must be a bool. Got {value!r}.")
        return cls() if value else None

    def columns(self) -> list[str]:
        return ["I_XT_se", "I_TY_se", "I_XT_reliable", "I_TY_reliable", "reliability_note"]

    def dtypes(self) -> dict[str, str]:
        return {"I_XT_se": "float64", "I_TY_se": "float64", "I_XT_reliable": "boolean", "I_TY_reliable": "bool"}

    def row_columns(self, ctx: RowContext) -> dict[str, Any]:
        # Too few rows for the splits, or an estimator the check cannot serve: not reliable, with the reason
        # (never an error that would lose the table).
        from ..estimators import SampleSizeCheck

        try:
            chk = SampleSizeCheck(ctx.estimator).estimate(ctx.t, ctx.task.y, ctx.x, full=ctx.result, **ctx.kwargs)
        except (ValueError, TypeError) as exc:
            return {"I_XT_se": np.nan, "I_TY_se": np.nan, "I_XT_reliable": None, "I_TY_reliable": False,
                    "reliability_note": f"not checked: {exc}"}
        return {"I_XT_se": chk.I_XT_se, "I_TY_se": chk.I_TY_se, "I_XT_reliable": chk.I_XT_reliable,
                "I_TY_reliable": chk.I_TY_reliable, "reliability_note": chk.reliability_note}


class SelfCheck(Provider):
    """``self_check`` and ``self_check_note``: the estimator's own verdict on its number (its
    ``conventions["reliable"]`` and ``["reliability_note"]``), on every row by default."""

    keywords: ClassVar[Mapping[str, Any]] = {"self_checks": True}
    doc: ClassVar[str] = """\
self_checks : bool, default True
    Add ``self_check`` (nullable boolean: False where the estimator's own check says its number may be off by
    more than its ``reliability_tol`` — over-fitting learned bounds, unfinished training, a k-NN resolution
    bias, a binning count that coverage adjustment moves, a KDE resubstitution gap, too many dimensions for N
    —; NA where the estimator has no self-check) and ``self_check_note`` (why; empty when none). Free: read from each
    result's conventions; the checks themselves run inside the estimators (see the estimators guide,
    "Self-checks"). Plots draw a point grey where it is False."""

    @classmethod
    def from_options(cls, owner: str, options: Mapping[str, Any]) -> SelfCheck | None:
        return cls() if check_bool_param(options["self_checks"], "self_checks", owner) else None

    def columns(self) -> list[str]:
        return ["self_check", "self_check_note"]

    def dtypes(self) -> dict[str, str]:
        return {"self_check": "boolean"}

    def row_columns(self, ctx: RowContext) -> dict[str, Any]:
        conv = ctx.result.conventions or {}
        verdict = conv.get("reliable")
        return {"self_check": None if verdict is None else bool(verdict),
                "self_check_note": conv.get("reliability_note") or ""}  # "" (not None): survives a CSV


#: The providers `information_plane`'s keywords switch on, in column order. A new one is appended here.
PROVIDERS: list[type[Provider]] = [ShuffleBaseline, Resampled, Geometry, Flags, Reliability, SelfCheck]


def from_options(options: Mapping[str, Any], owner: str) -> list[Provider]:
    """The providers the keyword ``options`` switch on (defaults for those not given), in `PROVIDERS` order.

    A keyword no provider declares raises `TypeError`, as Python does for an unknown keyword.
    """
    known = {k for cls in PROVIDERS for k in cls.keywords}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"{owner}() got an unexpected keyword argument {unknown[0]!r}; its column options are "
            f"{sorted(known)}."
        )
    out = []
    for cls in PROVIDERS:
        provider = cls.from_options(owner, {k: options.get(k, d) for k, d in cls.keywords.items()})
        if provider is not None:
            out.append(provider)
    return out


def options_doc() -> str:
    """The numpydoc entries of every provider keyword, indented for `information_plane`'s docstring."""
    text = "\n".join(cls.doc for cls in PROVIDERS if cls.doc)
    return "\n".join(("    " + line) if line else line for line in text.splitlines())
