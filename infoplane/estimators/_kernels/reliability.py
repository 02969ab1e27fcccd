"""Self-checks that let an estimate say when it may be off by more than a tolerance, in bits (private).

Each family of estimators has its own measurable sign of error; none uses the truth, and each costs little
beside the estimate:

- learned bounds (critics, probe): the **over-fitting gap**, the same decoder's value on the rows it was
  trained on minus its value on held-out rows. The held-out value is an honest lower bound, the in-sample one
  an optimistic estimate; a gap above the tolerance says the held-out number may be that far below what
  the model family can reach. Also the **standard error** of the held-out mean, a bound **indistinguishable
  from 0** (within 2 SE: the decoder found no dependence it can represent, which a lower bound cannot tell
  from independence), and **training stopped while still improving** (critics); SMILE also a critic that is
  **not self-normalised** (`smile_notes`);
- plug-in binning: the plug-in I(T̂;Y) against the **coverage-adjusted** (Chao & Shen 2003) estimate from
  the same counts; their difference estimates the plug-in's small-sample bias, which grows as rows spread
  over bins seen once;
- KDE: its I(T;Y) equals H(Y) + mean_i ln p̂(y_i | t_i) for the Parzen classifier whose kernel sums include
  row i's own kernel (a resubstitution estimate); the same classifier **leaving row i out**
  (`loo_parzen_bits`) is a held-out value, and the difference is the optimism of the reported number;
- k-NN (KSG, Ross): the **resolution extrapolation**. A k-NN estimate's leading bias for a smooth density
  grows with the squared radius of the k-neighbourhoods; estimating at k and 2k on the same rows and
  extrapolating linearly in the squared radius to radius 0 estimates that bias (`knn_resolution`).

A check flags (``reliable=False`` with the reason in ``reliability_note``); it never changes the value.
The tolerance is the estimator's ``reliability_tol`` (default `TOL_BITS`).

References
----------
Chao & Shen (2003), Nonparametric estimation of Shannon's index of diversity when there are unseen species in
sample, Environ. Ecol. Stat. 10:429. Richardson extrapolation in the smoothing scale of a k-NN estimate: the
bias of order (k/N)^(2/D) of Kraskov et al. (2004) and Gao, Oh & Viswanath (2018).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._core.units import LN2

__all__ = ["TOL_BITS", "verdict", "learned_bound_notes", "smile_notes", "chao_shen_mi_bits", "plugin_notes", "loo_parzen_bits",
           "knn_resolution", "resolution_notes"]

#: Default tolerance (bits): an estimate that may be off by more than this says so.
TOL_BITS = 0.25


def verdict(notes: Sequence[str]) -> dict[str, Any]:
    """``{"reliable": no notes, "reliability_note": the notes joined by "; " or None}``."""
    return {"reliable": not notes, "reliability_note": "; ".join(notes) if notes else None}


def learned_bound_notes(raw: float, train_value: float, se: float, tol: float, *, converged: bool = True,
                        rise: float = 0.0) -> list[str]:
    """The reasons not to trust a learned held-out bound ``raw`` (bits), or [] (see the module docstring).

    ``train_value``: the same bound on the training rows; ``se``: the standard error of the held-out mean;
    ``converged``: whether early stopping ended training (False: the epoch budget ran out), and ``rise``: how
    much the held-out value rose over the last epochs of the patience window (bits).
    """
    notes = []
    gap = train_value - raw
    if math.isfinite(gap) and gap > tol:
        notes.append(f"over-fitting: the in-sample value ({train_value:.3f} bits) exceeds the held-out one by "
                     f"{gap:.3f} bits (> {tol:g}); the held-out bound may be that far below what the model reaches")
    if math.isfinite(se) and 2.0 * se > tol:
        notes.append(f"imprecise: standard error {se:.3f} bits (2 SE > {tol:g})")
    if math.isfinite(se) and raw <= 2.0 * se:
        notes.append(f"no dependence found: the held-out value {raw:.3f} bits is within 2 SE ({2.0 * se:.3f}) of 0; "
                     "a lower bound near 0 cannot tell independence from a dependence the model cannot represent")
    if not converged and math.isfinite(se) and rise > 2.0 * se:
        notes.append(f"not converged: the held-out value still rose by {rise:.3f} bits (> 2 SE) in the last "
                     "epochs when the epoch budget ran out")
    return notes


def smile_notes(log_partition: float, tol: float) -> list[str]:
    """The reason not to trust a SMILE estimate E_p[f] − ln Z (bits): its critic is not self-normalised.

    SMILE trains the critic on the Jensen–Shannon bound, whose optimum is the log density ratio
    f = ln p(a, b) / (p(a) p(b)), for which Z = E_{p(a)p(b)}[e^f] = 1. E_p[f] and E_p[f] − ln Z are then the
    same number; |ln Z| (``log_partition``, bits) above ``tol`` says the critic is not that ratio, and the two
    readings of it differ by more than the tolerance.
    """
    if math.isfinite(log_partition) and abs(log_partition) > tol:
        return [f"critic not self-normalised: its log-partition over the product of the marginals is "
                f"{log_partition:+.3f} bits (0 at the optimum of its JS training; > {tol:g}), so E_p[f] and the "
                "reported E_p[f] - ln Z differ by that much"]
    return []


def _chao_shen_entropy_nats(counts: np.ndarray) -> float:
    """Chao & Shen's coverage-adjusted entropy (nats) of a table of counts (zeros ignored).

    Coverage C = 1 − f1/n (f1: symbols seen once; f1 = n is taken as n − 1), p = C n_i / n, and
    H = −Σ p ln p / (1 − (1 − p)^n) (Horvitz–Thompson weighting of the symbols seen).
    """
    counts = np.sort(counts[counts > 0]).astype(np.float64)  # sorted: the sum does not depend on symbol order
    n = float(counts.sum())
    if n <= 1:
        return 0.0
    f1 = float((counts == 1).sum())
    coverage = 1.0 - min(f1, n - 1.0) / n
    p = coverage * counts / n
    with np.errstate(divide="ignore"):  # p = 1 (one symbol): (1 − p)^n = 0
        return float(-(p * np.log(p) / -np.expm1(n * np.log1p(-p))).sum())


def chao_shen_mi_bits(counts_t: np.ndarray, counts_y: np.ndarray, counts_ty: np.ndarray) -> float:
    """Coverage-adjusted I(T;Y) = H(T) + H(Y) − H(T,Y), each by `_chao_shen_entropy_nats`, in bits, from the
    counts of the symbols of T, of Y and of the pairs (zeros ignored)."""
    h = (_chao_shen_entropy_nats(np.asarray(counts_t)) + _chao_shen_entropy_nats(np.asarray(counts_y))
         - _chao_shen_entropy_nats(np.asarray(counts_ty)))
    return h / LN2


def plugin_notes(i_ty: float, i_ty_cs: float, h_t: float, n: int, tol: float) -> list[str]:
    """Reasons not to trust a plug-in I(T̂;Y) (bits): its coverage-adjusted estimate ``i_ty_cs`` differs by
    more than ``tol``, or H(T̂) >= log2 N − 0.1 (nearly every row its own symbol, where the coverage
    adjustment cannot see the bias: then the plug-in I(T̂;Y) is about H(Y) whatever the dependence)."""
    notes = []
    if abs(i_ty - i_ty_cs) > tol:
        notes.append(f"small-sample bias: the coverage-adjusted (Chao-Shen) estimate is {i_ty_cs:.3f} bits, "
                     f"{i_ty - i_ty_cs:+.3f} from the plug-in (> {tol:g}); too few rows per occupied bin")
    if n > 1 and h_t >= math.log2(n) - 0.1:
        notes.append(f"saturated: H(T) = {h_t:.2f} bits >= log2 N - 0.1; nearly every row is its own symbol, so "
                     "the plug-in I(T;Y) is about H(Y) whatever the dependence")
    return notes


def loo_parzen_bits(log_all: Any, log_class: Any, y_ids: np.ndarray) -> float:
    """The KDE's I(T;Y) with row i's own kernel left out, H(Y) + mean_i log2 q_i, in bits.

    ``log_all[i]`` = ln Σ_j K_ij and ``log_class[i]`` = ln Σ_{j in y_i} K_ij (torch or numpy, row i's own
    kernel K_ii = 1 included), as `kde_log_sums_multi` returns them. The leave-one-out Parzen classifier with
    class counts N_c and priors p_c = N_c / N:

    q_i = [p_y (S_y − 1) / (N_y − 1) + p_y / N] / [(S − S_y) / N + p_y (S_y − 1) / (N_y − 1) + 1 / N],

    S = Σ_j K_ij, S_y its own-class part: each class density without row i (a class of one row has none), plus
    one kernel's weight (1/N) spread over the classes by their priors, so that a row with no other row
    within reach is predicted by the priors (it contributes 0 bits) rather than by its own label. The
    in-sample version, q_i = S_y / S, is what the KDE reports.
    """
    s_all = np.exp(np.asarray(_np(log_all), dtype=np.float64))
    s_cls_minus = np.expm1(np.asarray(_np(log_class), dtype=np.float64))  # S_y − 1, exact near 0
    y_ids = np.asarray(y_ids, dtype=np.int64).reshape(-1)
    n = y_ids.size
    counts = np.bincount(y_ids)
    n_y = counts[y_ids].astype(np.float64)
    p_y = n_y / n
    own = np.where(n_y > 1, p_y * np.maximum(s_cls_minus, 0.0) / np.maximum(n_y - 1.0, 1.0), 0.0)
    others = np.maximum(s_all - (s_cls_minus + 1.0), 0.0) / n
    q = (own + p_y / n) / (others + own + 1.0 / n)
    h_y = float(-(counts[counts > 0] / n * np.log2(counts[counts > 0] / n)).sum())
    return h_y + float(np.log2(q).mean())


def _np(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def knn_resolution(rows_k: Any, radius_k: Any, rows_2k: Any, radius_2k: Any) -> dict[str, float]:
    """The bias of a k-NN estimate extrapolated from k and 2k neighbours on the same rows, in bits.

    ``rows_k``, ``rows_2k``: per-row terms (bits) whose means are the estimates at k and 2k; ``radius_k``,
    ``radius_2k``: each row's neighbourhood radius at k and 2k. With the bias linear in the squared radius,
    I(k) ≈ I(0) + c r_k², the bias of I(k) is Δ / (ρ² − 1), Δ = I(k) − I(2k) and ρ the median over rows of
    r_2k / r_k (2^(1/D) for a D-dimensional density, measured so that the local, not the ambient, dimension
    counts; the median is robust to heavy tails). Returns ``bias`` (I(k) − I(0), bits; negative: an
    underestimate), ``bias_se`` (its standard error from the per-row differences), ``delta``, ``delta_se``
    and ``radius_ratio``. NaN where ρ <= 1 (no neighbourhood grew: ties).
    """
    diff = np.asarray(_np(rows_k), dtype=np.float64) - np.asarray(_np(rows_2k), dtype=np.float64)
    r1 = np.asarray(_np(radius_k), dtype=np.float64)
    r2 = np.asarray(_np(radius_2k), dtype=np.float64)
    ok = r1 > 0
    rho = float(np.median(r2[ok] / r1[ok])) if ok.any() else math.nan
    delta = float(diff.mean())
    delta_se = float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else math.nan
    factor = 1.0 / (rho * rho - 1.0) if math.isfinite(rho) and rho > 1.0 else math.nan
    return {"bias": -delta * factor, "bias_se": delta_se * factor, "delta": delta, "delta_se": delta_se,
            "radius_ratio": rho}


def resolution_notes(res: dict[str, float], k: int, tol: float, *, margin_se: float = 0.0) -> list[str]:
    """The reason not to trust a k-NN estimate from `knn_resolution`: the extrapolated bias, widened by
    ``margin_se`` of its standard errors, exceeds ``tol``, and the change from k to 2k is more than twice its
    standard error (so noise alone does not flag)."""
    bias, delta, delta_se = res["bias"], res["delta"], res["delta_se"]
    reach = abs(bias) + margin_se * (res["bias_se"] if math.isfinite(res["bias_se"]) else 0.0)
    if math.isfinite(bias) and reach > tol and abs(delta) > 2.0 * delta_se:
        spread = f" ± {res['bias_se']:.3f}" if margin_se else ""
        return [f"resolution bias: the estimate moves by {-delta:+.3f} bits from k = {k} to {2 * k} neighbours; "
                f"extrapolated to radius 0 (linear in the squared radius) the value moves by {-bias:+.3f}{spread} "
                f"bits (> {tol:g}); too few rows for the local shape of the density"]
    return []
