"""Torch twins of the binning kernels of ``_kernels`` (codes from float64 activations on any device).

Pure math, no validation beyond what it needs: the same codes as the numpy kernels (`digitize_edges`,
`digitize_width`, `digitize_uniform`, `adaptive_edges` + `adaptive_codes`), computed where the tensor lives,
so CUDA activations are binned on the GPU. `infoplane.estimators.binning` calls them for tensor input.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import binning as K

__all__ = ["raise_if_out_of_range", "codes_edges", "codes_width", "codes_uniform", "adaptive_interior"]


def raise_if_out_of_range(t64: torch.Tensor, lo: float, hi: float, name: str) -> None:
    """Raise the numpy kernels' out-of-range error when any value lies outside [lo, hi]."""
    if bool(((t64 < lo) | (t64 > hi)).any()):
        raise K._out_of_range_error(t64.cpu().numpy(), lo, hi, name)


def codes_edges(t64: torch.Tensor, edges: np.ndarray) -> torch.Tensor:
    """``np.digitize(clip(t, edges[0], edges[-1]), edges)``: searchsorted(side="right") = bucketize(right=True)."""
    e = torch.as_tensor(edges, dtype=torch.float64, device=t64.device)
    return torch.bucketize(t64.clamp(float(edges[0]), float(edges[-1])), e, right=True)


def codes_width(t64: torch.Tensor, width: float) -> torch.Tensor:
    """``floor(t / width)`` as int64, after the same int64 check as `K.digitize_width`."""
    codes = torch.floor(t64 / width)
    K.check_width_codes(float(codes.min()), float(codes.max()), width)
    return codes.to(torch.int64)


def codes_uniform(t64: torch.Tensor, n_bins: int, lo: float, hi: float) -> torch.Tensor:
    """Equal-width bins on [lo, hi] (values outside join the end bins); one bin when hi <= lo."""
    if hi <= lo:
        return torch.zeros_like(t64, dtype=torch.int64)
    codes = torch.floor((t64 - lo) * (n_bins / (hi - lo)))
    return codes.clamp(0, n_bins - 1).to(torch.int64)


def adaptive_interior(t64: torch.Tensor, n_bins: int, *, distinct: bool) -> torch.Tensor:
    """`K.adaptive_edges` on the tensor's device: the same order statistics (the same ranks), sorted, unique."""
    flat = t64.reshape(-1)
    if not distinct:
        values = torch.sort(flat).values
        ranks = torch.as_tensor(K.adaptive_edge_ranks(values.numel(), n_bins), device=t64.device)
        return torch.unique(values[ranks])
    values = torch.unique(flat)  # sorted
    values = values[values != K.adaptive_low(float(values[0]))]
    if values.numel() == 0:
        return values
    ranks = torch.as_tensor(K.adaptive_ranks(values.numel(), n_bins), device=t64.device)
    return torch.unique(torch.cat([values[ranks], values[-1:]]))


def adaptive_codes(t64: torch.Tensor, interior: torch.Tensor) -> Any:
    """Codes against interior edges, bin k = [edge_{k-1}, edge_k), as `K.adaptive_codes`."""
    return torch.searchsorted(interior.contiguous(), t64.contiguous(), right=True)
