"""k-nearest-neighbour estimators, in bits: KSG for continuous pairs, Ross for class labels, Kozachenko–Leonenko.

All run in torch on the device of their input (CPU for numpy), in float64, in blocks of rows: memory
O(N · block), never an N × N matrix; time O(N² d) (one pass over the distances). See `._kernels.knn` for the
counting conventions (strict "<", a row is never its own neighbour).

References
----------
Kraskov, Stögbauer & Grassberger (2004), Estimating mutual information, Phys. Rev. E 69:066138.
Ross (2014), Mutual information between discrete and continuous data sets, PLoS ONE 9:e87357.
Kozachenko & Leonenko (1987), Sample estimate of the entropy of a random vector, Probl. Inf. Transm. 23:95.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from .._core.types import ArrayLike, MIResult, TensorLike, json_safe
from .._core.units import LN2, entropy_bits
from .._core.validation import (
    check_activations,
    check_choice,
    check_class_sizes,
    check_continuous,
    check_float_param,
    check_input_ids,
    check_int_param,
    check_k_neighbours,
    check_labels,
)
from ._base import BaseEstimator
from ._kernels import knn as K
from ._kernels import reliability as R
from ._kernels.rows import NO_I_XT, as_tensor64

__all__ = ["KNNEstimator", "ksg_mi", "ross_mi", "kl_entropy"]

_METRICS = ("max", "euclidean")
_TARGETS = ("labels", "continuous")


_TIES = ("jitter", "raise", "keep")
JITTER_SCALE = 1e-10  # scikit-learn's mutual_info_* noise: 1e-10 · max(1, mean |column|) · N(0, 1)


def _duplicated_rows(z: torch.Tensor) -> int:
    """Number of rows equal to some other row (exact float64 equality), by a hash then an exact check."""
    n = z.shape[0]
    if n < 2:
        return 0
    zn = z.detach().cpu().numpy()
    h = zn @ np.random.default_rng(12345).normal(size=zn.shape[1])
    _, inv, cnt = np.unique(h, return_inverse=True, return_counts=True)
    cand = cnt[inv.reshape(-1)] > 1
    if not cand.any():
        return 0
    _, inv2, cnt2 = np.unique(zn[cand], axis=0, return_inverse=True, return_counts=True)
    return int((cnt2[inv2.reshape(-1)] > 1).sum())


def _untie(z: torch.Tensor, name: str, owner: str, ties: str, seed: int) -> tuple[torch.Tensor, int]:
    """``z`` itself when no row is repeated; else ``ties="jitter"``: z + 1e-10 · max(1, mean|z_col|) · N(0, 1)
    (scikit-learn's tie-breaking noise, seeded), ``ties="raise"``: a ValueError. Returns (z, #tied rows)."""
    n_tied = 0 if ties == "keep" else _duplicated_rows(z)
    if not n_tied:
        return z, 0
    if ties == "raise":
        raise ValueError(
            f"{owner}: {n_tied:,} of {z.shape[0]:,} rows of {name} repeat another row exactly (ties); k-NN "
            "estimates assume a continuous distribution and read -1 to -5 bits on tied rows. Pass "
            "ties='jitter' (tiny seeded noise, as scikit-learn) or add noise yourself.")
    scale = torch.clamp(z.abs().mean(dim=0), min=1.0) * JITTER_SCALE
    g = torch.Generator().manual_seed(int(seed))
    noise = torch.randn(z.shape, generator=g, dtype=torch.float64).to(z.device)
    warnings.warn(
        f"{owner}: {n_tied:,} of {z.shape[0]:,} rows of {name} repeat another row exactly; added tie-breaking "
        f"noise of {JITTER_SCALE:g} x max(1, mean |column|) (seed {seed}, as scikit-learn) so that the k-NN "
        "counts are defined (recorded as conventions['tied_rows']).", RuntimeWarning, stacklevel=4)
    return z + noise * scale, n_tied


def _warn_zero_radius(eps: torch.Tensor, what: str) -> int:
    n_zero = int((eps == 0).sum())
    if n_zero:
        warnings.warn(
            f"{what}: {n_zero:,} of {eps.numel():,} rows have k or more identical neighbours (radius 0); "
            "k-NN estimates assume a continuous distribution and are biased on repeated rows.",
            RuntimeWarning,
            stacklevel=3,
        )
    return n_zero


def _ksg_nats(a: torch.Tensor, b: torch.Tensor, k: int, metric: str, memory_mb: float,
              ties: str = "jitter", seed: int = 0, owner: str = "ksg_mi", check: bool = False,
              ) -> tuple[float, dict[str, Any]]:
    n = a.shape[0]
    a, tied_a = _untie(a, "a (the activations)", owner, ties, seed)
    b, tied_b = _untie(b, "b (the target)", owner, ties, seed + 1)
    backend = K.choose_backend(metric, a.shape[1] + b.shape[1], a.device)
    eps, n_a, n_b = K.ksg_counts(a, b, k, metric, memory_mb=memory_mb, backend=backend)
    zero = _warn_zero_radius(eps, owner)
    value = _psi(float(k)) + _psi(float(n)) - K.digamma_mean(n_a + 1) - K.digamma_mean(n_b + 1)
    info: dict[str, Any] = {"zero_radius_rows": zero, "tied_rows": tied_a + tied_b, "backend": backend}
    if check and 2 * k < n:  # the resolution check: the same counts at 2k neighbours (one more pass)
        eps2, n_a2, n_b2 = K.ksg_counts(a, b, 2 * k, metric, memory_mb=memory_mb, backend=backend)
        info["resolution"] = R.knn_resolution(_ksg_rows(k, n_a, n_b), eps, _ksg_rows(2 * k, n_a2, n_b2), eps2)
    return value, info


def _ksg_rows(k: int, n_a: torch.Tensor, n_b: torch.Tensor) -> torch.Tensor:
    """KSG's per-row terms ψ(k) − ψ(n_a + 1) − ψ(n_b + 1) in bits (their mean + ψ(N) is the estimate)."""
    dg = torch.special.digamma
    return (_psi(float(k)) - dg(n_a.to(torch.float64) + 1.0) - dg(n_b.to(torch.float64) + 1.0)) / LN2


def _psi(v: float) -> float:
    return float(torch.special.digamma(torch.tensor(v, dtype=torch.float64)))


def ksg_mi(
    a: Any, b: Any, k: int = 3, *, metric: str = "max", memory_mb: float = 128.0, ties: str = "jitter",
    seed: int = 0,
) -> float:
    """Kraskov–Stögbauer–Grassberger estimate (algorithm 1) of I(A;B) in bits, for any two continuous arrays.

    With eps_i the distance from row i to its k-th neighbour in the joint space under
    max(‖a_i − a_j‖, ‖b_i − b_j‖), n_a(i) = #{j ≠ i : ‖a_i − a_j‖ < eps_i} and n_b(i) likewise,
    I ≈ [ψ(k) + ψ(N) − (1/N) Σ_i (ψ(n_a(i) + 1) + ψ(n_b(i) + 1))] / ln 2.
    The marginal norm is the max norm (as in the paper; ``metric="max"``) or Euclidean (``"euclidean"``,
    bmi's default; standardise columns yourself if their scales differ). Not clipped: it can be slightly
    negative for independent arrays (its bias).

    Cost O(N² (d_a + d_b)) time, O(N · block) memory (``memory_mb``), torch on ``a``'s device.

    Parameters
    ----------
    a, b : array-like or tensor, shape (N,) or (N, d)
        Samples of A and B, row i of each from the same draw.
    k : int, 1 <= k < N
    metric : {"max", "euclidean"}
    memory_mb : float
        Budget of the distance blocks (speed and memory only, never the answer).
    ties : {"jitter", "raise", "keep"}
        Rows of ``a`` (or of ``b``) that repeat another row exactly make the counts ill-defined (the estimate
        reads −1 to −5 bits on tied layers): ``"jitter"`` adds scikit-learn's tie-breaking noise,
        ``1e-10 · max(1, mean |column|) · N(0, 1)``, seeded by ``seed``, with a RuntimeWarning; ``"raise"``
        refuses; ``"keep"`` counts the ties as they are (strict "<"; at radius 0 the duplicates, as
        scikit-learn's radius query; biased, warned about radius-0 rows). Data without repeated rows is
        never touched, whatever the choice.
    seed : int
        Seed of that noise.

    Returns
    -------
    float, bits.
    """
    owner = "ksg_mi"
    ties = check_choice(ties, "ties", owner, _TIES)
    seed = check_int_param(seed, "seed", owner)
    metric = check_choice(metric, "metric", owner, _METRICS)
    memory_mb = check_float_param(memory_mb, "memory_mb", owner, positive=True)
    a_t = _as_2d(a, "a")
    b_np = check_continuous(b, int(a_t.shape[0]), name="b")
    k = check_k_neighbours(k, int(a_t.shape[0]), owner)
    a64 = as_tensor64(a_t)
    value, _ = _ksg_nats(a64, as_tensor64(b_np, a64.device), k, metric, memory_mb, ties, seed)
    return value / LN2


def _as_2d(a: Any, name: str) -> Any:
    if hasattr(a, "ndim") and a.ndim == 1:
        a = a[:, None]
    elif not hasattr(a, "ndim"):
        a = np.asarray(a)
        a = a[:, None] if a.ndim == 1 else a
    return check_activations(a, name=name)


def _ross_nats(t: torch.Tensor, y: np.ndarray, k: int, metric: str, memory_mb: float,
               ties: str = "jitter", seed: int = 0, owner: str = "ross_mi", check: bool = False,
               ) -> tuple[float, dict[str, Any]]:
    n = t.shape[0]
    _, y_ids, counts = np.unique(y, return_inverse=True, return_counts=True)
    labels = torch.as_tensor(y_ids.reshape(-1), device=t.device)
    t, tied = _untie(t, "t", owner, ties, seed)
    backend = K.choose_backend(metric, t.shape[1], t.device)
    checked = check and int(counts.min()) > 2 * k  # the resolution check at 2k neighbours, same distance pass
    found = K.ross_counts_multi(t, labels, [k, 2 * k] if checked else [k], metric, memory_mb=memory_mb,
                                backend=backend)
    radius, m = found[0]
    zero = _warn_zero_radius(radius, owner)
    n_c = torch.as_tensor(counts[y_ids.reshape(-1)], dtype=torch.float64)
    value = _psi(float(n)) - K.digamma_mean(n_c) + _psi(float(k)) - K.digamma_mean(m)
    h_y = entropy_bits(counts)
    if value / LN2 > h_y:
        warnings.warn(
            f"{owner}: the Ross estimate {value / LN2:.4f} bits exceeds H(Y) = {h_y:.4f} bits, which bounds "
            "I(T;Y) for discrete Y (k-NN bias: too few rows per class for this dimension); KNNEstimator "
            "reports H(Y) with conventions['I_TY_capped'] = True.", RuntimeWarning, stacklevel=3)
    info: dict[str, Any] = {"zero_radius_rows": zero, "tied_rows": tied, "backend": backend, "H_Y_bits": h_y}
    if checked:
        radius2, m2 = found[1]
        dg = torch.special.digamma
        info["resolution"] = R.knn_resolution((_psi(float(k)) - dg(m.to(torch.float64))) / LN2, radius,
                                              (_psi(2.0 * k) - dg(m2.to(torch.float64))) / LN2, radius2)
    return value, info


def ross_mi(t: TensorLike, y: ArrayLike, k: int = 3, *, metric: str = "max", memory_mb: float = 128.0,
            ties: str = "jitter", seed: int = 0) -> float:
    """Ross (2014) estimate of I(T;Y) in bits for continuous T and class labels Y.

    For row i of class c (N_c rows): d_i = distance to its k-th neighbour among the other rows of class c;
    m_i = number of rows of the whole set at distance < d_i, the row itself included (scikit-learn's
    convention, which makes m_i = k when no other class is nearer). Then
    I ≈ [ψ(N) − ⟨ψ(N_{y_i})⟩ + ψ(k) − ⟨ψ(m_i)⟩] / ln 2. Not clipped (its bias can make it negative), not
    capped: a value above H(Y) (impossible for the truth) is returned with a RuntimeWarning
    (`KNNEstimator` caps it). Repeated rows: see ``ties`` in `ksg_mi`.
    Every class needs at least k + 1 rows. For a 1-D ``t`` it equals scikit-learn's
    ``mutual_info_classif`` before that adds its small noise, scales and clips.

    Cost O(N² d) time, O(N · block) memory; torch on ``t``'s device.

    Parameters
    ----------
    t : array-like or tensor (N, d) or (N,)
    y : array-like (N,) of integer class labels
    k : int, 1 <= k < N, and below every class size
    metric : {"max", "euclidean"}
    memory_mb : float
    ties : {"jitter", "raise", "keep"}
    seed : int

    Returns
    -------
    float, bits.
    """
    owner = "ross_mi"
    ties = check_choice(ties, "ties", owner, _TIES)
    seed = check_int_param(seed, "seed", owner)
    metric = check_choice(metric, "metric", owner, _METRICS)
    memory_mb = check_float_param(memory_mb, "memory_mb", owner, positive=True)
    t = _as_2d(t, "t")
    n = int(t.shape[0])
    y_np = check_labels(y, n)
    k = check_k_neighbours(k, n, owner)
    check_class_sizes(y_np, k + 1, owner, "the k-th neighbour is sought within the class")
    value, _ = _ross_nats(as_tensor64(t), y_np, k, metric, memory_mb, ties, seed)
    return value / LN2


def kl_entropy(t: TensorLike, k: int = 3, *, metric: str = "euclidean", memory_mb: float = 128.0) -> float:
    """Kozachenko–Leonenko estimate of the differential entropy h(T) in bits.

    With r_i the distance from row i to its k-th neighbour and V_d the volume of the unit ball of the norm
    (Euclidean: ln V_d = (d/2) ln π − ln Γ(d/2 + 1); max norm: V_d = 2^d),
    h ≈ [ψ(N) − ψ(k) + ln V_d + (d/N) Σ_i ln r_i] / ln 2. Repeated rows (some r_i = 0) make it −∞: that
    raises a ValueError. Cost O(N² d), memory O(N · block).
    """
    owner = "kl_entropy"
    metric = check_choice(metric, "metric", owner, _METRICS)
    memory_mb = check_float_param(memory_mb, "memory_mb", owner, positive=True)
    t = _as_2d(t, "t")
    n, d = int(t.shape[0]), int(t.shape[1])
    k = check_k_neighbours(k, n, owner)
    r = K.kth_radius(as_tensor64(t), k, metric, memory_mb=memory_mb)
    n_zero = int((r == 0).sum())
    if n_zero:
        raise ValueError(
            f"t has {n_zero:,} of {n:,} rows with k={k} or more identical rows (k-th neighbour at distance 0): "
            "its differential entropy estimate is -inf. Remove duplicates, add noise, or raise k."
        )
    return K.kl_entropy_nats(r, d, k, metric) / LN2


class KNNEstimator(BaseEstimator):
    """k-nearest-neighbour estimate of I(T;Y) for one layer, in bits; I(T;X) is not reported (NaN).

    - ``target="labels"`` (default): Ross (2014) for integer class labels (`ross_mi`); continuous ``y`` is
      refused (use ``target="continuous"``).
    - ``target="continuous"``: KSG algorithm 1 (`ksg_mi`) between the activations and a real-valued ``y``
      of shape (N,) or (N, k).

    ``I_TY`` is the estimate clipped at 0 (the raw value, which the estimator's bias can make negative, is
    ``conventions["I_TY_raw"]``) and, for labels, capped at H(Y) (``conventions["I_TY_capped"]``, warned:
    no I(T;Y) exceeds the label entropy; the k-NN bias can); ``bound_TY="estimate"``. Rows repeated
    exactly are tie-broken by tiny seeded noise (``ties="jitter"``, counted in ``conventions["tied_rows"]``)
    or refused (``ties="raise"``). The search backend, chosen automatically, is ``conventions["backend"]``:
    ``"kd-tree"`` (scipy's cKDTree) for the max norm on the CPU in at most 5 (joint) dimensions, where it is
    faster, else ``"blocked"`` (float32 distance blocks, numba's row scans when numba is installed, exact
    float64 recomputation in the error band of each radius; KSG with a 1-D side counts that side by sorted
    searches); all give identical bits. ``I_XT`` is NaN with the reason in
    ``conventions["I_XT_note"]``: for a deterministic layer on distinct inputs it is log2 N, not a property of
    the layer. Rows with k or more identical neighbours (saturated units) make k-NN estimates biased: they
    are counted in ``conventions["zero_radius_rows"]`` and warned about.

    Self-check (``resolution_check=True``, `infoplane.estimators._kernels.reliability.knn_resolution`): the
    estimate is recomputed with 2k neighbours on the same rows; a k-NN estimate's leading bias grows with the
    squared neighbourhood radius, so extrapolating the two linearly in it to radius 0 estimates the bias of
    the reported value, ``conventions["resolution_bias_bits"]`` (negative: an underestimate; with its
    standard error ``resolution_bias_se``). ``conventions["reliable"]`` is False, with the reasons in
    ``reliability_note``, when that bias exceeds ``reliability_tol`` (0.25 bits) and the change from k to 2k
    exceeds twice its standard error, or when the dimension rule `knn_dimension_rule` says the rows are too
    few for the dimension. The check is skipped (``resolution_bias_bits`` NaN) when a class has no more than
    2k rows (labels) or 2k >= N.

    Cost O(N² d) time and O(N · block) memory per call (``memory_mb``), torch on the device of ``t``; the
    resolution check adds one more neighbour search (1.9–3.4 times the time; ``resolution_check=False``
    skips it). Measured against the matrix-multiply floor (benchmarks/bench_knn.py):
    docs/notes/performance.md.

    Parameters
    ----------
    k : int >= 1
        Neighbours (Kraskov et al.'s default 3); must be below N (and, for labels, below every class size).
    metric : {"max", "euclidean"}
        The norm of the activations' space (and of y's for KSG).
    target : {"labels", "continuous"}
    memory_mb : float
        Budget of the distance blocks; changes speed and memory, never the answer.
    ties : {"jitter", "raise", "keep"}
        What to do with rows that repeat another row exactly (see `ksg_mi`).
    seed : int
        Seed of the tie-breaking noise.
    resolution_check : bool
        Recompute at 2k neighbours to estimate the estimate's bias and flag it (default True).
    """

    name = "knn"

    def __init__(self, k: int = 3, *, metric: str = "max", target: str = "labels", memory_mb: float = 128.0,
                 ties: str = "jitter", seed: int = 0, resolution_check: bool = True) -> None:
        owner = "KNNEstimator"
        if not isinstance(resolution_check, bool):
            raise TypeError(f"The 'resolution_check' parameter of {owner} must be a bool. Got {resolution_check!r}.")
        self.resolution_check = resolution_check
        self.ties = check_choice(ties, "ties", owner, _TIES)
        self.seed = check_int_param(seed, "seed", owner)
        self.k = check_int_param(k, "k", owner, minimum=1)
        self.metric = check_choice(metric, "metric", owner, _METRICS)
        self.target = check_choice(target, "target", owner, _TARGETS)
        self.memory_mb = check_float_param(memory_mb, "memory_mb", owner, positive=True)

    @property
    def y_kinds(self) -> tuple[str, ...]:
        """What ``y`` it takes (the ground-truth suite skips other tasks): class labels or continuous."""
        return (self.target,)

    def conventions(self) -> dict[str, Any]:
        """k, norm, form (Ross or KSG) and counting convention; ``memory_mb`` is left out (no effect on values)."""
        return {
            "estimator": self.name,
            "k": self.k,
            "metric": self.metric,
            "target": self.target,
            "form": "Ross 2014" if self.target == "labels" else "KSG algorithm 1",
            "counting": "strict <, a row is never its own neighbour",
            "ties": self.ties,
            "resolution_check": self.resolution_check,
            "I_XT_note": NO_I_XT,
        }

    def estimate(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None,
                 epoch: int | None = None) -> MIResult:
        """I(T;Y) in bits for activations ``t`` (N, d) and ``y``; ``x`` is accepted and unused (I_XT is NaN)."""
        owner = "KNNEstimator"
        t = check_activations(t, name="t", layer=layer, epoch=epoch)
        n, d = int(t.shape[0]), int(t.shape[1])
        t64 = as_tensor64(t)
        check_input_ids(x, n)  # unused, but a malformed x is still an error
        if self.target == "labels":
            y_np = check_labels(y, n)
            k = check_k_neighbours(self.k, n, owner)
            check_class_sizes(y_np, k + 1, owner, "the k-th neighbour is sought within the class")
            value, info = _ross_nats(t64, y_np, k, self.metric, self.memory_mb, self.ties, self.seed, owner,
                                     self.resolution_check)
        else:
            y_np = check_continuous(y, n)
            k = check_k_neighbours(self.k, n, owner)
            value, info = _ksg_nats(t64, as_tensor64(y_np, t64.device), k, self.metric, self.memory_mb,
                                    self.ties, self.seed, owner, self.resolution_check)
        raw = value / LN2
        cap = info.get("H_Y_bits", math.inf)
        conv = self.conventions()
        conv.update(self._check(info.pop("resolution", None), n, d, k, y_np))
        conv.update(n_samples=n, n_units=d, units="bits", I_TY_raw=raw, I_TY_capped=bool(raw > cap),
                    device=str(t64.device), **info)
        return MIResult(I_XT=math.nan, I_TY=min(max(raw, 0.0), cap), bound_XT="estimate", bound_TY="estimate",
                        estimator=self.name, n_samples=n, conventions=json_safe(conv))

    def _check(self, res: dict | None, n: int, d: int, k: int, y: np.ndarray) -> dict[str, Any]:
        """The self-check's conventions: the resolution bias (NaN when not checked) and the verdict."""
        from .sample_size import knn_dimension_rule

        dims = d + (0 if self.target == "labels" else (int(np.prod(y.shape[1:])) if y.ndim > 1 else 1))
        rule = knn_dimension_rule(n, dims, k)
        notes = ([] if res is None else R.resolution_notes(res, k, self.reliability_tol)) + ([rule] if rule else [])
        bias, se = (math.nan, math.nan) if res is None else (res["bias"], res["bias_se"])
        return {"resolution_bias_bits": bias, "resolution_bias_se": se, **R.verdict(notes)}
