"""Reductions of a recorded layer, applied inside the forward hook before anything is copied or stored.

A conv feature map of tens of thousands of values per input makes one (epoch, layer) of a 10,000-input
probe set gigabytes. The hook therefore reduces each batch's output on the model's device, in this order,
and copies only the result to the CPU (never more than one batch's full output exists):

1. ``pool``: spatial average pooling of an (N, C, *spatial) output (1-3 spatial dims). ``"global"`` averages
   each channel to one value (N, C); an int k averages k x k windows (``adaptive_avg_pool`` to
   ``ceil(size / k)`` per spatial dim, so no border row is dropped).
2. flatten to (N, d);
3. ``units``: a fixed subset of the (pooled, flattened) units, by index;
4. ``project=k``: a seeded Gaussian random projection to k dimensions, z = t R with R (d x k) of entries
   N(0, 1/k) drawn from ``torch.Generator().manual_seed(seed)``. Johnson-Lindenstrauss (Dasgupta & Gupta
   2003): with probability >= 1 - 1/N every pairwise squared distance of N rows stays within a factor
   1 ± ε when k >= 4 ln N / (ε²/2 − ε³/3). KDE and k-NN see only distances, so the exponents
   D_ij / s of the KDE bounds move by at most a factor 1 ± ε (the bracket of `projection_kde_bracket`);
5. ``dtype="float16"``: stored as float16 (values beyond ±65,504 raise).

The reduction is stored with the recording (store metadata ``"reductions"`` and each layer spec).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core.validation import check_int_param, param_error

__all__ = ["Reduction", "Reducer", "DTYPES", "jl_epsilon", "projection_kde_bracket"]

#: Storage dtypes a layer may ask for.
DTYPES = ("float32", "float16")
_FLOAT16_MAX = 65504.0


@dataclass(frozen=True)
class Reduction:
    """Validated reduction settings; ``None`` fields mean "not set" (a recorder default may fill them)."""

    pool: int | str | None = None
    units: tuple[int, ...] | None = None
    project: int | None = None
    dtype: str | None = None
    seed: int | None = None

    @classmethod
    def create(cls, pool: Any = None, units: Any = None, project: Any = None, dtype: Any = None,
               seed: Any = None, *, owner: str = "Layer") -> Reduction:
        """Check every setting (errors name the argument, what was expected and what came)."""
        if pool is not None and pool != "global":
            if isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or pool < 1:
                raise param_error(owner, "pool", "'global' or an int k >= 1 (k x k average windows)", pool)
            pool = int(pool)
        if units is not None:
            arr = np.asarray(units)
            if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer) or (arr < 0).any():
                raise param_error(owner, "units", "a non-empty 1-D sequence of unit indices >= 0", units)
            if np.unique(arr).size != arr.size:
                raise param_error(owner, "units", "distinct unit indices", units)
            units = tuple(int(u) for u in arr)
        if project is not None:
            project = check_int_param(project, "project", owner, minimum=1)
        if dtype is not None:
            dtype = str(np.dtype(dtype)) if _is_dtype_like(dtype) else dtype
            if dtype not in DTYPES:
                raise param_error(owner, "dtype", f"one of {', '.join(map(repr, DTYPES))}", dtype)
        if seed is not None:
            seed = check_int_param(seed, "seed", owner, minimum=0)
        return cls(pool, units, project, dtype, seed)

    def with_defaults(self, default: Reduction) -> Reduction:
        """This reduction, each unset field taken from ``default``."""
        return Reduction(*(mine if mine is not None else theirs for mine, theirs in zip(
            (self.pool, self.units, self.project, self.dtype, self.seed),
            (default.pool, default.units, default.project, default.dtype, default.seed))))

    @property
    def is_identity(self) -> bool:
        return self.pool is None and self.units is None and self.project is None and self.dtype in (None, "float32")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description, stored with the recording."""
        return {
            "pool": None if self.pool is None else (
                "global average per channel" if self.pool == "global" else f"average over {self.pool}x{self.pool} windows"),
            "units": None if self.units is None else list(self.units),
            "project": self.project,
            "projection": None if self.project is None else
            f"Gaussian N(0, 1/{self.project}) matrix, torch.Generator seed {self.seed or 0}",
            "seed": self.seed or 0,
            "dtype": self.dtype or "float32",
        }


def _is_dtype_like(value: Any) -> bool:
    try:
        np.dtype(value)
    except TypeError:
        return False
    return not isinstance(value, str) or value in ("float16", "float32", "half", "single", "f2", "f4")


class Reducer:
    """Applies a `Reduction` to one layer's batch outputs; caches the projection matrix per device."""

    def __init__(self, reduction: Reduction, layer: str) -> None:
        self.reduction = reduction
        self.layer = layer
        self._matrix: dict[Any, Any] = {}

    def __call__(self, t: Any, n_rows: int) -> Any:
        """(n_rows, ...) tensor on any device -> reduced (n_rows, d') CPU tensor (float32 or float16), a copy."""
        import torch

        r = self.reduction
        t = t.detach()
        if r.pool is not None:
            t = self._pool(t)
        t = t.reshape(n_rows, -1)
        if r.units is not None:
            if max(r.units) >= t.shape[1]:
                raise ValueError(
                    f"The 'units' parameter of Layer {self.layer!r} must index the layer's {t.shape[1]:,} units "
                    f"(0 to {t.shape[1] - 1:,}). Got index {max(r.units):,}."
                )
            t = t[:, torch.as_tensor(r.units, device=t.device)]
        if r.project is not None:
            t = t.float() @ self.matrix(t.shape[1], t.device)
        out = t.to(torch.float16 if r.dtype == "float16" else torch.float32).cpu()
        if r.dtype == "float16" and bool((t.abs() > _FLOAT16_MAX).any()):
            raise ValueError(
                f"layer {self.layer!r}: dtype='float16' cannot hold its values (largest magnitude "
                f"{float(t.abs().max()):.4g} > 65,504); record it as float32."
            )
        return out if out.data_ptr() != t.data_ptr() else out.clone()

    def _pool(self, t: Any) -> Any:
        import torch.nn.functional as F

        spatial = t.shape[2:]
        if t.ndim < 3 or t.ndim > 5:
            raise ValueError(
                f"The 'pool' parameter of Layer {self.layer!r} needs a spatial output (N, C, H[, W[, D]]); the "
                f"layer's output has shape {tuple(t.shape)}, with no spatial dimensions to pool."
            )
        if self.reduction.pool != "global" and self.reduction.pool > min(spatial):
            raise ValueError(
                f"The 'pool' parameter of Layer {self.layer!r} must be at most the output's spatial size "
                f"{'x'.join(map(str, spatial))} (k x k windows). Got {self.reduction.pool!r} instead, which would "
                "pool each channel to one value; say pool='global' for that."
            )
        size = [1] * len(spatial) if self.reduction.pool == "global" else [
            math.ceil(s / self.reduction.pool) for s in spatial]
        pool = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[len(spatial) - 1]
        return pool(t.float(), size if len(size) > 1 else size[0])

    def matrix(self, d: int, device: Any) -> Any:
        """The (d, k) projection matrix, N(0, 1/k) entries from the seed, built once per device."""
        import torch

        k = self.reduction.project
        if k > d:
            raise ValueError(
                f"The 'project' parameter of Layer {self.layer!r} must be at most the layer's width {d:,} "
                f"(a projection to more dimensions adds nothing). Got {k:,}."
            )
        key = (d, str(device))
        if key not in self._matrix:
            gen = torch.Generator().manual_seed(self.reduction.seed or 0)
            mat = torch.randn(d, k, generator=gen, dtype=torch.float32) / math.sqrt(k)
            self._matrix[key] = mat.to(device)
        return self._matrix[key]


def jl_epsilon(n: int, k: int) -> float:
    """The distortion ε guaranteed (probability >= 1 − 1/n) by a Gaussian projection of n rows to k dims.

    Dasgupta & Gupta (2003): k >= 4 ln n / (ε²/2 − ε³/3) suffices; returns the smallest such ε in (0, 1),
    or ``inf`` when k is too small for any ε < 1.
    """
    need = 4 * math.log(n) / k  # ε²/2 − ε³/3 must reach this
    if need >= 1 / 6:  # the left side is at most 1/6 on (0, 1]
        return math.inf
    lo, hi = 0.0, 1.0
    for _ in range(100):  # bisection on a monotone function of ε
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid**2 / 2 - mid**3 / 3 < need else (lo, mid)
    return hi


def projection_kde_bracket(noise_variance: float, eps: float) -> tuple[float, float]:
    """Noise variances whose unprojected KDE bounds bracket the projected one, given distortion ε < 1.

    If every squared distance is kept within a factor [1 − ε, 1 + ε], each exponent D_ij / s is too, so each
    kernel term lies between exp(−D/s · (1 + ε)) and exp(−D/s · (1 − ε)): the projected rows' log-sums lie
    between the unprojected rows' log-sums at noise variances σ²/(1 + ε) and σ²/(1 − ε). As I(T;X) =
    ln N − mean_i L_i decreases with the noise variance,

        I_XT(unprojected, σ²/(1 − ε)) <= I_XT(projected, σ²) <= I_XT(unprojected, σ²/(1 + ε)),

    for either bound (pairwise KL or Bhattacharyya), in bits. Returns ``(σ²/(1 + ε), σ²/(1 − ε))``.
    """
    if not 0 <= eps < 1:
        raise ValueError(f"eps must be in [0, 1). Got {eps!r}.")
    return noise_variance / (1 + eps), noise_variance / (1 - eps)
