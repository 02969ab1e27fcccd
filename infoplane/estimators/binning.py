"""Binning (plug-in) estimator of I(T;X) and I(T;Y), in bits.

Discretise each unit, treat each distinct row of bin codes as one symbol T̂, and count
(Shwartz-Ziv & Tishby 2017; Saxe et al. 2018; Chelombiev et al. 2019). See ../shared/THEORY.md.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._core.types import ArrayLike, MIResult, TensorLike, json_safe
from .._core.validation import (
    _is_torch,
    as_numpy,
    check_activations,
    check_choice,
    check_estimate_inputs,
    check_float_param,
    check_int_param,
    param_error,
)
from ._base import BaseEstimator
from ._kernels import binning as K
from ._kernels import reliability as R

__all__ = ["BinningEstimator"]

_OWNER = "BinningEstimator"


class BinningEstimator(BaseEstimator):
    """Plug-in binning estimate of I(T;X) and I(T;Y) in bits for one layer's activations.

    Exactly one of ``edges``, ``bin_width`` and ``n_bins`` chooses the scheme:

    - ``edges`` (sorted, >= 2 values): SZT's ``np.digitize(t, edges)``; ``np.linspace(-1, 1, 30)`` reproduces
      Shwartz-Ziv & Tishby (2017) for activations inside ``[edges[0], edges[-1]]`` (the last edge value
      itself is its own symbol, as in the original). Outside the range values join the end bins
      (``out_of_range="clip"``) or raise (``"raise"``); they never wrap to the top bin as the original code
      does for values below −1.
    - ``bin_width`` (> 0): code = floor(t / bin_width), bins anchored at 0 over the whole real line
      (Saxe et al. 2018: 0.07 for the SZT net, 0.5 for MNIST). No range, so nothing is out of range.
    - ``n_bins`` (>= 2) with ``strategy="uniform"`` (default): equal-width bins on ``range=(lo, hi)``, or,
      with ``range=None``, on [min, max] of this call's activations (all units pooled) — a range per
      layer and epoch. For one range fixed across epochs call `fit` on the layer's activations from every
      epoch: it returns a new estimator whose ``range`` is their global [min, max] (conventions then say
      ``range_source="fit"``).
    - ``n_bins`` with ``strategy="adaptive"``: Chelombiev et al.'s (2019) rule exactly, per call (per layer and
      epoch): n_bins bins holding an equal number of *distinct* values of the layer's activations pooled over
      units, plus a bin of its own for the lowest value (ReLU's zeros; bottom edge 0 for a layer >= 0,
      −1.000001 for one inside tanh's range, as their code sets it per activation) and a symbol of its own for
      the maximum (`_kernels.binning.adaptive_edges`). A tied value (the zeros of a sparse ReLU layer,
      saturated units) is one value, so the layer keeps its bins however many rows share it. Up to n_bins + 2
      occupied bins per unit (n_bins + 1 for tanh). ``strategy="quantile"``: equal-mass bins, edges at the quantiles of all
      values; tied quantiles merge, so a sparse layer loses bins as it gets sparser (50% zeros: about half
      of them). The edges used are recorded either way.

    Information, for rows equally likely (the empirical distribution of the N probe rows):
    I(T;X) = H(T̂) when every row is a distinct input (``x=None``), else H(T̂) − H(T̂|X);
    I(T;Y) = H(T̂) − Σ_y p(y) H(T̂|Y=y). Both are plug-in *estimates* (biased upward at small N per
    occupied bin; see `shuffle_baseline`).

    Self-check of I(T;Y) (`infoplane.estimators._kernels.reliability`): the coverage-adjusted estimate of
    Chao & Shen (2003) from the same counts (``conventions["I_TY_chao_shen"]``) estimates the plug-in's
    small-sample bias; ``conventions["reliable"]`` is False, with the reason in ``reliability_note``, when it
    differs from the plug-in by more than ``reliability_tol`` (0.25 bits), or when H(T̂) >= log2 N − 0.1
    (nearly every row its own bin: the plug-in I(T;Y) is then about H(Y) whatever the dependence). It costs
    two more counts of the symbols.

    Parameters
    ----------
    edges : array-like of float, optional
        Strictly increasing bin edges.
    bin_width : float, optional
        Fixed bin width (> 0), in activation units.
    n_bins : int, optional
        Number of equal-width or equal-mass bins (>= 2).
    range : (float, float), optional
        ``(lo, hi)`` with lo < hi for ``n_bins`` uniform bins; None takes it from each call's data.
    strategy : {"uniform", "adaptive", "quantile"}
        Only with ``n_bins``.
    out_of_range : {"clip", "raise"}
        Values outside a fixed range (``edges`` or a given ``range``): end bins, or an error.

    Notes
    -----
    Rows of codes become one symbol each by packing them into one int64 key (mixed radix) when it fits,
    block by block otherwise; CUDA tensors are binned and counted on the GPU with ``torch.unique``. Near-uniform
    ``edges`` (linspace) with numpy activations take a fast path that bins by arithmetic plus one exact
    comparison per value (equal to np.digitize bit for bit, float32 data compared in float32) and packs
    rows by one matrix-vector product; it gives the same bits as the general path.
    """

    name = "binning"
    input_kind = "deterministic"

    def __init__(
        self,
        edges: Any = None,
        *,
        bin_width: float | None = None,
        n_bins: int | None = None,
        range: tuple[float, float] | None = None,
        strategy: str = "uniform",
        out_of_range: str = "clip",
    ) -> None:
        given = [k for k, v in (("edges", edges), ("bin_width", bin_width), ("n_bins", n_bins)) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "BinningEstimator needs exactly one of 'edges', 'bin_width' or 'n_bins' to choose the binning "
                f"scheme. Got {'none' if not given else ' and '.join(repr(g) for g in given)}."
            )
        self.strategy = check_choice(strategy, "strategy", _OWNER, ("uniform", "adaptive", "quantile"))
        self.out_of_range = check_choice(out_of_range, "out_of_range", _OWNER, ("clip", "raise"))
        self.edges = None
        self.bin_width = None
        self.n_bins = None
        self.range = None
        self._range_source = None
        if strategy != "uniform" and n_bins is None:
            raise param_error(_OWNER, "strategy", f"'uniform' unless 'n_bins' is given ({strategy!r} needs n_bins)",
                              strategy)
        if range is not None and n_bins is None:
            raise param_error(_OWNER, "range", "None unless 'n_bins' is given (edges and bin_width fix it)", range)
        # Per activation dtype, the edges for `K.digitize_table` (None where it does not apply).
        self._edge_tables: dict[np.dtype, tuple[np.ndarray, Any] | None] = {}
        if edges is not None:
            self.edges = _check_edges(edges)
            self._edge_tables = {np.dtype(dt): K.edge_table(self.edges, dt) for dt in (np.float32, np.float64)}
        elif bin_width is not None:
            self.bin_width = check_float_param(bin_width, "bin_width", _OWNER, positive=True)
        else:
            self.n_bins = check_int_param(n_bins, "n_bins", _OWNER, minimum=2)
            if range is not None:
                if strategy != "uniform":
                    raise param_error(_OWNER, "range", f"None with strategy={strategy!r} (edges come from the data)",
                                      range)
                self.range = _check_range(range)
                self._range_source = "given"
            else:
                self._range_source = "per_call" if strategy == "uniform" else None

    # ------------------------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        """Which scheme the parameters chose: "edges", "width", "uniform", "adaptive" or "quantile"."""
        if self.edges is not None:
            return "edges"
        if self.bin_width is not None:
            return "width"
        return self.strategy

    @property
    def _uniform_range(self) -> tuple[float, float] | None:
        """The range of uniform bins: the given ``range``, else the fitted ``range_`` (None: per call)."""
        return self.range if self.range is not None else getattr(self, "range_", None)

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters that are in effect (enough to rebuild an equal estimator)."""
        params: dict[str, Any] = {"edges": self.edges, "bin_width": self.bin_width, "n_bins": self.n_bins,
                                  "range": self.range}
        if self.n_bins is not None:
            params["strategy"] = self.strategy
        if self.bin_width is None:
            params["out_of_range"] = self.out_of_range
        return {k: v for k, v in params.items() if v is not None}

    def __repr__(self) -> str:
        params = dict(self.get_params())
        if self.edges is not None:
            e = self.edges
            params["edges"] = f"<{e.size} edges {e[0]:g}..{e[-1]:g}>"
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"

    def conventions(self) -> dict[str, Any]:
        """The scheme and everything it depends on, JSON-serialisable (per-call values added by estimate)."""
        conv: dict[str, Any] = {"estimator": self.name, "scheme": self.scheme}
        if self.edges is not None:
            conv.update(edges=self.edges.tolist(), range=[float(self.edges[0]), float(self.edges[-1])],
                        out_of_range=self.out_of_range)
        elif self.bin_width is not None:
            conv.update(bin_width=self.bin_width, range=None, out_of_range=None)
        else:
            conv.update(n_bins=self.n_bins, strategy=self.strategy)
            if self.strategy == "uniform":
                conv.update(range=list(self._uniform_range) if self._uniform_range is not None else None,
                            range_source=self._range_source,
                            out_of_range=self.out_of_range if self._uniform_range is not None else None)
        return conv  # plain Python values already: json_safe's generic walk costs more than the binning

    def fit(self, activations: Iterable[Any]) -> BinningEstimator:
        """Learn one range for every later `estimate`: ``range_`` = the global [min, max] of ``activations``.

        scikit-learn style: sets the fitted attribute ``range_`` (with the trailing underscore; the
        constructor's ``range`` stays None) and returns ``self``. Pass one layer's activations from every
        recorded epoch to bin all epochs on the same fixed range (as a fixed-range study needs), instead of a
        range per layer and epoch; conventions then say ``range_source="fit"``. Only for ``n_bins`` with
        ``strategy="uniform"`` and no given ``range``.
        """
        if self.scheme != "uniform" or self._range_source == "given":
            what = f"scheme is {self.scheme!r}" if self.scheme != "uniform" else f"range is given ({self.range})"
            raise ValueError(f"fit sets a global range for n_bins uniform bins with range=None; this estimator's {what}.")
        arrays = list(activations) if not _is_array_like(activations) else [activations]
        if not arrays:
            raise ValueError("activations must hold at least one (n_samples, n_units) array. Got none.")
        lo, hi = np.inf, -np.inf
        for i, a in enumerate(arrays):  # loop over epochs, not samples
            a = check_activations(a, name=f"activations[{i}]")
            lo = min(lo, float(a.min()))
            hi = max(hi, float(a.max()))
        if hi <= lo:
            hi = lo + 1.0  # a constant layer: any non-empty range puts it in one bin
        self.range_ = (lo, hi)
        self._range_source = "fit"
        return self

    # ------------------------------------------------------------------------------------------
    def estimate(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None,
                 epoch: int | None = None) -> MIResult:
        """I(T;X) and I(T;Y) in bits for activations ``t`` (N, d), labels ``y`` (N,), optional input ids ``x``.

        ``x``: (N,) ids or (N, k) input rows, equal ids/rows meaning a repeated input; None means every row is
        a distinct input. ``layer``/``epoch`` only name the data in error messages.
        """
        t, y_np, x_ids, n = check_estimate_inputs(t, y, x, layer=layer, epoch=epoch)
        conv = self.conventions()
        t_ids, extra = self._symbols(t, layer, epoch)
        conv.update(json_safe(extra) if extra else {})
        y_ids, _ = K.factorize_int64(y_np)
        i_xt, i_ty, h_t = K.discrete_information_bits(t_ids, y_ids, x_ids)
        conv.update(n_samples=n, n_units=int(t.shape[1]), n_symbols=int(t_ids.max()) + 1,
                    inputs="distinct" if x_ids is None else "given", units="bits")
        conv.update(self._check(t_ids, y_ids, i_ty, h_t, n))
        return MIResult(I_XT=i_xt, I_TY=i_ty, bound_XT="estimate", bound_TY="estimate", estimator=self.name,
                        n_samples=n, conventions=conv)

    def _check(self, t_ids: np.ndarray, y_ids: np.ndarray, i_ty: float, h_t: float, n: int) -> dict[str, Any]:
        """The self-check of I(T;Y) (`_kernels.reliability.plugin_notes`): its coverage-adjusted (Chao-Shen)
        value ``I_TY_chao_shen`` from the same counts, ``reliable`` and ``reliability_note``."""
        n_y = int(y_ids.max()) + 1
        pairs = K.factorize_int64(t_ids.astype(np.int64) * n_y + y_ids)[0]
        i_cs = R.chao_shen_mi_bits(np.bincount(t_ids), np.bincount(y_ids), np.bincount(pairs))
        return {"I_TY_chao_shen": i_cs, **R.verdict(R.plugin_notes(i_ty, i_cs, h_t, n, self.reliability_tol))}

    def _symbols(self, t: Any, layer: str | None, epoch: int | None) -> tuple[np.ndarray, dict[str, Any]]:
        """One symbol id per row of checked activations ``t``, and the per-call conventions (ranges, edges)."""
        if _is_torch(t):  # stays on its device: CUDA tensors are binned and counted on the GPU
            codes, extra = self._codes_torch(t, layer, epoch)
            return K.row_ids_torch(codes)[0].cpu().numpy(), extra
        fast = self._edge_table_symbols(t)
        if fast is not None:
            return fast, {}
        codes, extra = self._codes(t, layer, epoch)
        # The edges scheme knows its code range (1…len(edges)): skip two reductions per call.
        bounds = (1, self.edges.size) if self.edges is not None else (None, None)
        return K.row_ids(codes, *bounds)[0], extra

    def _edge_table_symbols(self, t: np.ndarray) -> np.ndarray | None:
        """Symbol ids by `K.digitize_table` (exactly np.digitize's codes) and one int64 key per row, or None
        where that does not apply: ``edges`` not near-uniform (no table for this dtype), rows too wide for
        one key, or values outside the range with ``out_of_range="raise"`` (the general path raises)."""
        table = self._edge_tables.get(t.dtype) if self.edges is not None else None
        radix = self.edges.size + 1 if self.edges is not None else 0  # codes 1…len(edges)
        if table is None or radix ** int(t.shape[1]) > K.ROW_KEY_LIMIT:
            return None
        if self.out_of_range == "raise" and (float(t.min()) < self.edges[0] or float(t.max()) > self.edges[-1]):
            return None
        return K.factorize_int64(K.row_keys(K.digitize_table(t, *table), radix))[0]

    def _codes(self, t: np.ndarray, layer: str | None, epoch: int | None) -> tuple[np.ndarray, dict[str, Any]]:
        label = _where_t(layer, epoch)
        scheme = self.scheme
        if scheme == "edges":
            return K.digitize_edges(t, self.edges, self.out_of_range, name=label), {}
        if scheme == "width":
            return K.digitize_width(t, self.bin_width), {}
        if scheme == "uniform":
            if self._uniform_range is None:
                lo, hi = float(t.min()), float(t.max())
                return K.digitize_uniform(t, self.n_bins, lo, hi), {"range": [lo, hi]}
            lo, hi = self._uniform_range
            return K.digitize_uniform(t, self.n_bins, lo, hi, self.out_of_range, name=label), {}
        interior = K.adaptive_edges(t, self.n_bins, distinct=scheme == "adaptive")
        return K.adaptive_codes(t, interior), _adaptive_record(interior, float(t.min()), float(t.max()))

    def _codes_torch(self, t: Any, layer: str | None, epoch: int | None) -> tuple[Any, dict[str, Any]]:
        """The same codes as `_codes`, computed in float64 on the tensor's device (`_binning_torch`)."""
        import torch

        from ._kernels import binning_torch as KT

        t64 = t.to(torch.float64)
        label = _where_t(layer, epoch)
        scheme = self.scheme
        if scheme == "edges":
            if self.out_of_range == "raise":
                KT.raise_if_out_of_range(t64, float(self.edges[0]), float(self.edges[-1]), label)
            return KT.codes_edges(t64, self.edges), {}
        if scheme == "width":
            return KT.codes_width(t64, self.bin_width), {}
        if scheme == "uniform":
            if self._uniform_range is None:
                lo, hi = float(t64.min()), float(t64.max())
                return KT.codes_uniform(t64, self.n_bins, lo, hi), {"range": [lo, hi]}
            lo, hi = self._uniform_range
            if self.out_of_range == "raise":
                KT.raise_if_out_of_range(t64, lo, hi, label)
            return KT.codes_uniform(t64, self.n_bins, lo, hi), {}
        interior = KT.adaptive_interior(t64, self.n_bins, distinct=scheme == "adaptive")
        record = _adaptive_record(interior.cpu().numpy(), float(t64.min()), float(t64.max()))
        return KT.adaptive_codes(t64, interior), record


def _adaptive_record(interior: np.ndarray, lo: float, hi: float) -> dict[str, Any]:
    """Conventions of one adaptive binning: the interior edges, the range, and how many bins can be occupied.

    Bin k is [edge_{k-1}, edge_k); an interior edge equal to the minimum leaves the bottom bin empty.
    """
    n_eff = interior.size + 1 - int(interior.size > 0 and interior[0] <= lo)
    return {"edges": interior, "n_bins_effective": int(n_eff), "range": [lo, hi]}


def _where_t(layer: str | None, epoch: int | None) -> str:
    from .._core.validation import where

    return where("t", layer, epoch)


def _is_array_like(a: Any) -> bool:
    return isinstance(a, np.ndarray) or (hasattr(a, "detach") and hasattr(a, "shape"))


def _check_edges(edges: Any) -> np.ndarray:
    e = as_numpy(edges)
    if e.dtype == object or not np.issubdtype(e.dtype, np.number):
        raise param_error(_OWNER, "edges", "a 1-D array of numbers", edges)
    e = e.astype(np.float64)
    if e.ndim != 1 or e.size < 2:
        raise param_error(_OWNER, "edges", "a 1-D array of at least 2 values", f"shape {e.shape}")
    if not np.all(np.isfinite(e)):
        raise param_error(_OWNER, "edges", "finite values", f"{int((~np.isfinite(e)).sum())} non-finite edges")
    if np.any(np.diff(e) <= 0):
        bad = int(np.argmax(np.diff(e) <= 0))
        raise param_error(_OWNER, "edges", "strictly increasing",
                          f"edges[{bad}] = {e[bad]:g} >= edges[{bad + 1}] = {e[bad + 1]:g}")
    return e


def _check_range(range_: Any) -> tuple[float, float]:
    ok = isinstance(range_, (tuple, list, np.ndarray)) and len(range_) == 2 and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v) for v in range_
    )
    if not ok or not range_[0] < range_[1]:
        raise param_error(_OWNER, "range", "a pair (lo, hi) of finite floats with lo < hi, or None", range_)
    return float(range_[0]), float(range_[1])
