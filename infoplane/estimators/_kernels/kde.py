"""Pure, chunked kernels behind the KDE estimator (Kolchinsky & Tracey 2017 pairwise-distance bounds).

`kde_log_sums` / `kde_log_sums_multi` compute, in bounded-memory chunks and with float64 accumulation, the
per-row log-sums ``ln Σ_j exp(-D_ij / (2 s²))`` over all rows, over rows of the same class and over rows of
the same input; `kde_information_bits` forms the bounds from them, in bits.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._core.units import LN2, entropy_bits
from .reliability import loo_parzen_bits

__all__ = ["kde_chunk_rows", "kde_log_sums", "kde_log_sums_multi", "kde_information_bits"]

def kde_chunk_rows(n: int, memory_mb: float, n_temporaries: int = 4) -> int:
    """Rows per chunk so that ``n_temporaries`` float64 (chunk, n) matrices fit in ``memory_mb``."""
    rows = int(memory_mb * 2**20 // (8 * max(n, 1) * n_temporaries))
    return max(1, min(n, rows))


#: exp(-x) for x > this is below float32's smallest normal number: such terms are dropped (< 1e-38 each,
#: relative to a sum >= 1), which keeps the kernel out of slow subnormal arithmetic.
_EXP_CUTOFF = 87.0
#: Columns per float32 partial sum (a matrix product with the one-hot labels); partial sums add in float64.
_SUM_BLOCK = 64


def _kde_prepare(h: Any, s_min: float) -> tuple[Any, float]:
    """Centred rows scaled to a largest norm of 1 (float64, torch), and the factor turning their squared
    distances into exponents ``D_ij / s_min`` (capped at 1e300: rows that far apart contribute exp(-inf) = 0).

    Centring and scaling change no distance ratio, only the conditioning: values of 1e6 or 1e300 give the
    same exponents as values of 1, and the squares cannot overflow.
    """
    import torch

    if isinstance(h, np.ndarray) and not h.flags.writeable:
        h = np.array(h)  # store arrays are read-only; torch warns on those (the float64 copy follows anyway)
    h = torch.as_tensor(h).to(torch.float64)
    h = h - h.mean(dim=0, keepdim=True)
    big = float(h.abs().max()) if h.numel() else 0.0
    if big == 0.0:
        return h, 0.0
    h = h / big
    norm = float(torch.linalg.vector_norm(h, dim=1).max())
    h = h / norm
    with np.errstate(over="ignore"):
        factor = float(np.minimum((np.float64(big) * np.float64(norm)) ** 2 / s_min, 1e300))
    return h, factor


def _powers(scales: Sequence[float]) -> tuple[float, list[int | None]]:
    """The largest scale, and per scale the integer power m (<= 8) with exp(-D/s) = exp(-D/s_max)**m, or None."""
    s_max = max(scales)
    out: list[int | None] = []
    for s in scales:
        m = s_max / s
        out.append(int(round(m)) if abs(m - round(m)) < 1e-12 and 1 <= round(m) <= 8 else None)
    return s_max, out


def kde_log_sums_multi(
    h: Any,
    scales: Sequence[float],
    y_ids: Any = None,
    x_ids: Any = None,
    *,
    memory_mb: float = 256.0,
) -> list[dict[str, Any]]:
    """`kde_log_sums` for several scales in one pass over the pairs: one distance matrix, shared.

    For each scale s in ``scales`` a dict with ``"all"`` (and ``"class"``, ``"input"`` when ``y_ids``/``x_ids``
    are given) of per-row ``L_i = ln Σ_j exp(−D_ij / s)``, float64 tensors on h's device. Scales that are
    the largest one divided by an integer m <= 8 (the pairwise-KL scale 2σ² is the Bhattacharyya 8σ² over 4)
    cost no exponential: exp(−D/s) = exp(−D/s_max)^m by repeated multiplication.

    Precision, chosen so that every value stays within 1e-6 nats (observed ~1e-7) of a float64 evaluation:

    - distances ``‖a‖² + ‖b‖² − 2ab`` in float64 on centred rows scaled to unit largest norm (float32 Gram
      products are not accurate enough: on clustered rows away from the centre they were off by 1e-4 bits
      at d = 1,000), the diagonal forced to exactly 0; when the rows span so many noise widths that float64
      rounding matters, the close pairs (or, where they are many, whole blocks) are recomputed by exact
      differences (`_refine_close_pairs`);
    - exponents rounded to float32 and exponentiated in float32 (relative error of each term a few ulps times
      its exponent: < 1e-6 for the terms that matter), exponents capped at 87
      (terms below e^-87 ≈ 1.6e-38 count as 1.6e-38: against a sum >= 1 that is nothing, and it keeps the
      arithmetic out of slow subnormal numbers);
    - sums as float32 matrix products with the one-hot labels over blocks of at most 64 columns,
      accumulated in float64; ``"all"`` is the float64 sum of the per-class sums.

    Memory is O(n · chunk): one float64 and two float32 (chunk, n) buffers, reused, within ``memory_mb``.
    """
    import torch

    scales = [float(s) for s in scales]
    s_max, powers = _powers(scales)
    s_min = min(scales)
    h, factor = _kde_prepare(h, s_min)
    n, dev = h.shape[0], h.device
    to_base = factor * s_min / s_max  # D' -> exponent at the largest scale
    y_t = torch.zeros(n, dtype=torch.int64, device=dev) if y_ids is None else (
        torch.as_tensor(np.asarray(y_ids), device=dev).to(torch.int64))
    x_t = None if x_ids is None else torch.as_tensor(np.asarray(x_ids), device=dev).to(torch.int64)
    # A canonical row order (a seeded random projection, ties by label and input): float32 partial sums
    # depend on the order of terms, so this makes the results bitwise invariant to permuting the rows.
    key = h @ torch.as_tensor(np.random.default_rng(0).normal(size=h.shape[1]), dtype=h.dtype, device=dev)
    lex = [key.cpu().numpy(), y_t.cpu().numpy()] + ([] if x_t is None else [x_t.cpu().numpy()])
    order = torch.as_tensor(np.lexsort(lex[::-1]), device=dev)
    h, y_t, sq_order = h[order], y_t[order], order
    x_t = None if x_t is None else x_t[order]
    onehot = torch.nn.functional.one_hot(y_t).to(torch.float32)
    full = n - n % _SUM_BLOCK
    blocked = (onehot[:full].reshape(full // _SUM_BLOCK, _SUM_BLOCK, onehot.shape[1]), onehot[full:])
    sq = (h * h).sum(dim=1)
    outs = [{k: torch.empty(n, dtype=torch.float64, device=dev) for k in ("all", "class", "input")}
            for _ in scales]
    chunk = kde_chunk_rows(n, memory_mb, n_temporaries=3 if x_ids is None else 4)
    # One product gives minus the exponents: [h_i, ‖h_i‖², 1] · to_base [2 h_j, −1, −‖h_j‖²] = −D'_ij to_base.
    # Its float64 error on unit-norm rows is at most (d + 2) u64 times the sum of the terms' sizes (<= 4):
    # (For wide rows, d > 256, the two augmented copies would cost 2 N d floats: there the norms are added
    # to the product instead, one more pass over the (chunk, n) block.)
    narrow = h.shape[1] <= 256
    if narrow:
        rows_a = torch.cat([h, sq[:, None], torch.ones_like(sq)[:, None]], dim=1)
        rows_b = torch.cat([2.0 * h, -torch.ones_like(sq)[:, None], -sq[:, None]], dim=1).mul_(to_base).T
    slack = to_base * 4 * (h.shape[1] + 2) * 2.0**-53
    buf64 = torch.empty((chunk, n), dtype=torch.float64, device=dev)
    bufs32 = [torch.empty((chunk, n), dtype=torch.float32, device=dev) for _ in range(2)]
    for start in range(0, n, chunk):  # loop over chunks of rows, each a vectorised (chunk, n) block
        stop = min(start + chunk, n)
        e = buf64[: stop - start]
        if narrow:
            torch.mm(rows_a[start:stop], rows_b, out=e)  # minus the exponent at the largest scale
        else:
            torch.add(sq[start:stop, None], sq[None, :], alpha=1.0, out=e)
            e.addmm_(h[start:stop], h.T, beta=-to_base, alpha=2.0 * to_base)
        idx = torch.arange(start, stop, device=dev)
        e[idx - start, idx] = 0.0  # exactly 0 in exact arithmetic; every row's sum holds exp(0) = 1
        if slack > 1e-9:
            _refine_close_pairs(e, h, start, to_base, slack)
        e.clamp_(min=-_EXP_CUTOFF, max=0.0)
        base = bufs32[0][: stop - start]
        base.copy_(e).exp_()
        for out, k in zip(outs, _kde_kernels(base, e, powers, s_max, scales, bufs32[1][: stop - start])):
            per_class = _block_class_sums(k, onehot, blocked)
            out["all"][start:stop] = torch.log(per_class.sum(dim=1))
            out["class"][start:stop] = torch.log(per_class.gather(1, y_t[start:stop, None]).squeeze(1))
            if x_t is not None:
                same = x_t[start:stop, None] == x_t[None, :]
                out["input"][start:stop] = torch.log((k * same).sum(dim=1, dtype=torch.float64))
    keep = {"all"} | ({"class"} if y_ids is not None else set()) | ({"input"} if x_ids is not None else set())
    inverse = torch.empty_like(sq_order)
    inverse[sq_order] = torch.arange(n, device=dev)
    return [{k: v[inverse] for k, v in out.items() if k in keep} for out in outs]


#: At most this many close pairs per row (on average over a chunk) are recomputed by exact differences.
_MAX_REFINED_PER_ROW = 64


def _block_class_sums(k: Any, onehot: Any, blocked: tuple[Any, Any]) -> Any:
    """(rows, classes) float64 sums of ``k`` over each class's columns: float32 partial sums of 64 columns
    (one batched matrix product with the one-hot labels), added up in float64."""
    import torch

    blocks, rest = blocked
    full = blocks.shape[0] * blocks.shape[1]
    out = torch.einsum("inb,nbk->ink", k[:, :full].reshape(k.shape[0], blocks.shape[0], blocks.shape[1]), blocks)
    out = out.sum(dim=1, dtype=torch.float64)
    if rest.shape[0]:
        out += k[:, full:] @ rest
    return out


def _refine_close_pairs(neg_exp: Any, h: Any, start: int, to_exponent: float, slack: float) -> None:
    """Recompute, by exact differences, the exponents of the pairs the Gram formula cannot resolve.

    When the rows span many noise widths (activations of 1e6 against σ² = 1e-3, 1e300-scale values, or a
    small σ² on saturated layers) the float64 rounding of ‖a‖² + ‖b‖² − 2ab, times the huge exponent
    factor, exceeds 1e-9: then every off-diagonal pair whose exponent might be below the cut-off gets
    ``Σ_k (a_k − b_k)²``, accurate to relative 1e-16 of the (small) distance itself. Far pairs keep their
    (harmlessly inexact) capped exponents. Where more than 64 pairs per row are close, the whole block is
    recomputed by exact differences instead (``torch.cdist`` without the Gram shortcut:
    slower, and one more (chunk, n) float64 block of memory).
    """
    import torch

    rows, cols = torch.nonzero(neg_exp >= -(_EXP_CUTOFF + slack), as_tuple=True)
    keep = rows + start != cols
    rows, cols = rows[keep], cols[keep]
    if rows.numel() == 0:
        return
    if rows.numel() > _MAX_REFINED_PER_ROW * neg_exp.shape[0]:
        d = torch.cdist(h[start:start + neg_exp.shape[0]], h, compute_mode="donot_use_mm_for_euclid_dist")
        torch.mul(d.square_(), -to_exponent, out=neg_exp)
        return
    diff = h[rows + start] - h[cols]
    neg_exp[rows, cols] = (diff * diff).sum(dim=1) * -to_exponent


def _kde_kernels(base: Any, neg_exp: Any, powers: list[int | None], s_max: float, scales: list[float],
                 spare: Any) -> list[Any]:
    """exp(−D/s) per scale, float32, from ``base`` = exp(−D/s_max): integer powers of it (in ``spare``),
    or, for another ratio, its own exponential. At most one power per call reuses ``spare``."""
    import torch

    out = []
    spare_used = False
    for m, s in zip(powers, scales):
        if m == 1:
            out.append(base)
            continue
        k = spare if not spare_used else torch.empty_like(spare)
        spare_used = True
        if m is None:
            k.copy_(neg_exp.mul(s_max / s).clamp_(min=-_EXP_CUTOFF)).exp_()
        else:
            # Clamped so that k**m stays a normal float32 (>= e^-87): the tiny terms are < 1.6e-38 each.
            torch.clamp(base, min=math.exp(-_EXP_CUTOFF / m), out=k)
            _int_power_(k, m)
        out.append(k)
    return out


def _int_power_(k: Any, m: int) -> None:
    """k ← k**m in place by repeated squaring and multiplication (m >= 2)."""
    if m & (m - 1) == 0:  # a power of two: square log2(m) times
        while m > 1:
            k.square_()
            m //= 2
        return
    k.pow_(m)


def kde_log_sums(
    h: Any,
    scale: float,
    y_ids: Any = None,
    x_ids: Any = None,
    *,
    memory_mb: float = 256.0,
) -> dict[str, Any]:
    """Per-row Gaussian log-sums, chunked: ``L_i = ln Σ_j exp(−‖h_i − h_j‖² / scale)``.

    ``scale`` is 2σ² for the pairwise-KL bound and 8σ² for the Bhattacharyya bound. Returned (float64,
    on h's device): ``"all"`` sums over every j; ``"class"`` over j with ``y_j == y_i``; ``"input"``
    over j with ``x_j == x_i`` (only when given). Each sum contains its own j = i term exp(0) = 1, so the
    log-sums are >= 0 and need no max-shift: the terms are in (0, 1], the sum in [1, n]. Precision and
    memory as in `kde_log_sums_multi` (this is its one-scale case): within 1e-6 nats of float64.
    """
    return kde_log_sums_multi(h, [scale], y_ids, x_ids, memory_mb=memory_mb)[0]


def kde_information_bits(
    h: Any,
    y_ids: Any,
    noise_variance: float,
    bound: str = "upper",
    x_ids: Any = None,
    *,
    memory_mb: float = 256.0,
) -> dict[str, Any]:
    """Kolchinsky & Tracey (2017) mixture bounds for T = h(X) + ε, ε ~ N(0, σ² I); results in bits.

    With n points, D_ij = ‖h_i − h_j‖², s = 2σ² (``bound="upper"``, pairwise KL) or s = 8σ²
    (``bound="lower"``, Bhattacharyya) and L_i = ln Σ_j exp(−D_ij / s):

    - H(T) = d/2·ln(2πeσ²) + ln n − mean_i L_i  (nats; the bound of the requested kind),
    - H(T|X) = d/2·ln(2πeσ²) exactly for distinct inputs, so I(T;X) = ln n − mean_i L_i,
    - H(T|Y=c) is the same formula over class c's rows, so
      I(T;Y) = H(Y) − mean_i (L_i − L_i^{class}),
    - with input ids x, H(T|X=x) is the same formula over the rows of input x (exact when those rows are
      equal), so I(T;X) = H(X) − mean_i (L_i − L_i^{input}).

    I(T;Y) is H(Y) + mean_i ln p̂(y_i | t_i) for the Parzen classifier p̂(c | t_i) = Σ_{j in c} K_ij / Σ_j K_ij,
    whose sums include row i's own kernel; ``"I_TY_loo"`` is the same with row i left out
    (`reliability.loo_parzen_bits`), a held-out value, for the estimator's self-check.

    Returns ``{"I_XT", "I_TY", "I_TY_loo", "H_T", "H_T_given_Y"}`` in bits (entropies are differential); with
    ``bound="both"``, ``{"upper": {...}, "lower": {...}}`` from one shared pass over the pairs.
    """
    kinds = ["upper", "lower"] if bound == "both" else [bound]
    scales = [(2.0 if kind == "upper" else 8.0) * noise_variance for kind in kinds]
    all_sums = kde_log_sums_multi(h, scales, y_ids, x_ids, memory_mb=memory_mb)
    n, d = int(all_sums[0]["all"].shape[0]), int(h.shape[1])
    y_np = np.asarray(y_ids.cpu() if hasattr(y_ids, "cpu") else y_ids)
    counts_y = np.bincount(y_np)
    h_y = entropy_bits(counts_y) * LN2  # nats
    # Mean over classes of ln n_c, weighted by p(c): the ln n_c of each class's own mixture.
    mean_log_nc = float((counts_y[counts_y > 0] * np.log(counts_y[counts_y > 0])).sum() / n)
    const = 0.5 * d * math.log(2 * math.pi * math.e * noise_variance)
    h_x = None
    if x_ids is not None:
        x_np = np.asarray(x_ids.cpu() if hasattr(x_ids, "cpu") else x_ids)
        h_x = entropy_bits(np.bincount(x_np)) * LN2
    results = {}
    for kind, sums in zip(kinds, all_sums):
        mean_all = float(sums["all"].mean())
        mean_class = float(sums["class"].mean())
        i_xt = math.log(n) - mean_all if h_x is None else h_x - (mean_all - float(sums["input"].mean()))
        results[kind] = {
            "I_XT": i_xt / LN2,
            "I_TY": (h_y - (mean_all - mean_class)) / LN2,
            "I_TY_loo": loo_parzen_bits(sums["all"], sums["class"], y_np),
            "H_T": (const + math.log(n) - mean_all) / LN2,
            "H_T_given_Y": (const + mean_log_nc - mean_class) / LN2,
        }
    return results if bound == "both" else results[bound]
