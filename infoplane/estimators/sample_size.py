"""A sample-size reliability check for any estimator (Abdelaleem, Martini & Nemenman 2025), in bits.

The estimator runs on γ = 1 … ``max_splits`` disjoint splits of the rows (γ parts of N/γ rows each, drawn
without replacement: never the row bootstrap, whose repeated rows are ties that k-NN estimators read as
structure; it covered the truth in 0 of 50 seeds for KSG). The mean estimate at each sample size n = N/γ is
fitted by weighted least squares to I(n) ≈ I∞ + a/n; the extrapolated I∞ is returned with its standard
error. The estimate is not trusted (``reliable=False``, with the reason) when a quadratic term b/n², fitted
beside, exceeds 10% of the linear term a/n at the smallest n (and is larger than twice its own standard error,
so that noise alone does not reject an unbiased estimator), when fewer than ``min_splits`` sample sizes
could be estimated, or when the wrapped estimator itself says ``reliable=False`` of its estimate on all the
rows (its verdicts on the smaller splits are only counted, ``conventions["flagged_splits"]``).

References
----------
Abdelaleem, Martini & Nemenman (2025), Accurate estimation of mutual information in high dimensional data,
arXiv:2506.00330; Holmes & Nemenman (2019), Estimation of mutual information for real-valued data with error
bars and controlled bias, Phys. Rev. E 100:022404.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core.types import ArrayLike, MIResult, TensorLike, json_safe
from .._core.validation import as_numpy, check_float_param, check_int_param, param_error
from ._base import BaseEstimator

__all__ = ["SampleSizeCheck", "ReliabilityResult", "extrapolate", "knn_dimension_rule"]


def knn_dimension_rule(n: int, dims: int, k: int = 3) -> str | None:
    """The reason a k-NN estimate (KSG, Ross) on ``n`` rows of a ``dims``-dimensional space is not trusted, or None.

    A k-NN estimator assumes the density is nearly constant within each row's k-neighbour ball. With n rows
    in D dimensions, there are n/k such balls, i.e. (n/k)^(1/D) per axis; below two per axis (2^D > n/k) the
    balls span the whole distribution and the estimate is biased toward 0 (Kraskov et al. 2004, Gao et al.
    2015, the ground-truth suite in docs/notes/accuracy.md). A heuristic, documented as such: it flags, it
    never changes a value.
    """
    if dims >= 1 and dims * math.log(2.0) > math.log(max(n, 1) / k):
        return (f"k-NN in {dims} dimensions on {n:,} rows: fewer than two k-neighbourhoods per axis "
                f"(2^{dims} > N/k = {n / k:,.0f}); the estimate is biased toward 0")
    return None


@dataclass(frozen=True)
class ReliabilityResult(MIResult):
    """An `MIResult` with the sample-size check's verdict: I_XT, I_TY are the extrapolated values (bits).

    ``I_XT_se``, ``I_TY_se``: their standard errors (bits; NaN where the estimator gives no such number);
    ``I_XT_reliable`` (None without an I(T;X)), ``I_TY_reliable``: the verdict on each; ``reliable``: every
    verdict passed; ``reliability_note``: the reasons when not (None when reliable). The same keys are in
    ``conventions``.
    """

    I_XT_se: float = math.nan
    I_TY_se: float = math.nan
    reliable: bool = True
    reliability_note: str | None = None
    I_XT_reliable: bool | None = None
    I_TY_reliable: bool = True


def _wls(x: np.ndarray, m: np.ndarray, var: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (c0, c1, ...) of m ≈ Σ c_j x^j weighted by 1/var, and their standard errors (inflated by
    the reduced chi-square when the points scatter more than their variances say)."""
    design = np.vander(x, degree + 1, increasing=True)
    w = 1.0 / var
    xtwx = design.T @ (design * w[:, None])
    cov = np.linalg.pinv(xtwx)
    coef = cov @ (design.T @ (w * m))
    dof = x.size - degree - 1
    if dof > 0:
        chi2 = float(np.sum(w * (m - design @ coef) ** 2)) / dof
        cov = cov * max(1.0, chi2)
    return coef, np.sqrt(np.maximum(np.diag(cov), 0.0))


def extrapolate(sizes: np.ndarray, values: list[np.ndarray], *, curvature_tol: float = 0.1,
                min_splits: int = 3) -> dict[str, Any]:
    """Fit I(n) ≈ I∞ + a/n to the estimates ``values[i]`` (one per part) at sample sizes ``sizes[i]`` (bits).

    The variance of one estimate on n rows is taken as c/n, with c pooled over the sizes with two or more
    parts (c = mean of n · sample variance); the mean of γ parts then has variance c/(n γ). Returns I∞, its
    standard error, a, the curvature b (from a quadratic fit) with its standard error, the ratio
    ``|b| / (n_min |a|)`` of the quadratic to the linear term at the smallest size, ``reliable`` and the reason.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    means = np.array([v.mean() for v in values])
    gammas = np.array([v.size for v in values], dtype=np.float64)
    spread = [float(n * v.var(ddof=1)) for n, v in zip(sizes, values) if v.size >= 2]
    c = float(np.mean(spread)) if spread else 0.0
    c = max(c, 1e-12 * max(1.0, float(np.max(np.abs(means))) ** 2) * float(sizes.max()))
    var = c / (sizes * gammas)
    x = 1.0 / sizes
    out: dict[str, Any] = {"sizes": sizes.astype(int).tolist(), "means": means.tolist(), "variance_constant": c}
    if sizes.size < max(min_splits, 2):
        coef, se = (np.array([means[0], 0.0]), np.array([math.sqrt(var[0]), math.nan]))
        out.update(value=float(coef[0]), se=float(se[0]), slope=0.0, curvature=math.nan, curvature_se=math.nan,
                   curvature_ratio=math.nan, reliable=False,
                   note=f"too few splits remain: {sizes.size} sample sizes estimated, {min_splits} needed")
        return out
    coef, se = _wls(x, means, var, 1)
    q_coef, q_se = _wls(x, means, var, 2)
    linear, quad = abs(coef[1]) * x.max(), abs(q_coef[2]) * x.max() ** 2
    ratio = quad / linear if linear > 0 else (math.inf if quad > 0 else 0.0)
    curved = ratio > curvature_tol and abs(q_coef[2]) > 2.0 * q_se[2]
    note = None if not curved else (
        f"the estimate is not in its 1/N regime: the curvature term b/n^2 is {ratio:.0%} of the linear term a/n "
        f"at n = {int(sizes.min()):,} (over {curvature_tol:.0%}, {abs(q_coef[2]) / max(q_se[2], 1e-300):.1f} "
        "standard errors); more rows are needed")
    out.update(value=float(coef[0]), se=float(se[0]), slope=float(coef[1]), curvature=float(q_coef[2]),
               curvature_se=float(q_se[2]), curvature_ratio=float(ratio), reliable=not curved, note=note)
    return out


def _knn_rule(res: MIResult, n: int, y_dims: int) -> str | None:
    """`knn_dimension_rule` for a `KNNEstimator` result: its ``n_units`` (+ ``y_dims`` for KSG)."""
    conv = res.conventions
    form = str(conv.get("form", ""))
    if conv.get("estimator") != "knn" or "n_units" not in conv:
        return None
    dims = int(conv["n_units"]) + (y_dims if form.startswith("KSG") else 0)
    return knn_dimension_rule(n, dims, int(conv.get("k", 3)))


def _inner_notes(full: MIResult) -> list[str]:
    """What the wrapped estimator says against its full-data estimate (its ``reliability_note``), or []. Its
    verdicts on the splits are counted in ``conventions["flagged_splits"]`` but do not count against the
    result: an estimate on N/γ rows is expected to be worse, and the fit over the sizes is what the check
    is about."""
    if full.conventions.get("reliable") is False:
        return [f"the estimator says: {full.conventions.get('reliability_note') or 'no reason given'}"]
    return []


class SampleSizeCheck(BaseEstimator):
    """Any estimator, checked and extrapolated over disjoint splits of the rows (Abdelaleem et al. 2025), bits.

    For γ = 1 … ``max_splits`` (sizes n = N/γ of at least ``min_rows`` rows), the rows are permuted (seeded) and
    cut into γ disjoint parts; the wrapped estimator runs on each. I(n) ≈ I∞ + a/n is fitted by weighted least
    squares (see `extrapolate`) to I(T;Y), and to I(T;X) where the estimator reports it. The result is a
    `ReliabilityResult`: ``I_TY`` (``I_XT``) the extrapolated value, clipped at 0 (raw in conventions),
    ``I_TY_se`` (``I_XT_se``) its standard error, ``reliable`` and ``reliability_note``; the same keys, the
    per-size means and the fits are in ``conventions`` (the wrapped estimator's under ``inner``).

    Cost: Σ_γ γ estimates on N/γ rows, i.e. ``max_splits`` (``max_splits`` + 1) / 2 calls; for an O(N²)
    estimator about (1 + 1/2 + … + 1/``max_splits``) = 2.3 times one estimate on all rows (``max_splits=5``).

    Parameters
    ----------
    estimator : estimator
        Anything with ``estimate(t, y, x)`` returning an `MIResult` whose value is a function of the rows it is
        given. Refused: another `SampleSizeCheck`, and estimators that declare ``sample_size_check = False``.
    max_splits : int >= 2
        The largest γ.
    min_splits : int >= 2
        Sample sizes needed for a verdict (fewer: ``reliable=False``, "too few splits remain").
    min_rows : int >= 2
        Smallest part; sizes below it are not used. ``N`` must allow ``min_splits`` sizes (else ValueError).
    curvature_tol : float > 0
        The 10% of the rule.
    seed : int
        Seed of the permutations.
    """

    name = "sample-size"

    def __init__(self, estimator: Any, *, max_splits: int = 5, min_splits: int = 3, min_rows: int = 50,
                 curvature_tol: float = 0.1, seed: int = 0) -> None:
        owner = "SampleSizeCheck"
        if isinstance(estimator, SampleSizeCheck):
            raise TypeError(f"{owner} cannot wrap another SampleSizeCheck; wrap the estimator itself.")
        if not callable(getattr(estimator, "estimate", None)):
            raise TypeError(f"The 'estimator' parameter of {owner} must be an estimator with estimate(t, y, x) "
                            f"returning an MIResult. Got {type(estimator).__name__}.")
        if getattr(estimator, "sample_size_check", True) is False:
            raise TypeError(
                f"{owner} cannot serve {type(estimator).__name__}: it declares sample_size_check = False (its "
                "value is not a function of the rows alone, so estimates on disjoint parts do not extrapolate).")
        self.estimator = estimator
        self.max_splits = check_int_param(max_splits, "max_splits", owner, minimum=2)
        self.min_splits = check_int_param(min_splits, "min_splits", owner, minimum=2)
        if self.min_splits > self.max_splits:
            raise param_error(owner, "min_splits", f"at most max_splits ({self.max_splits})", min_splits)
        self.min_rows = check_int_param(min_rows, "min_rows", owner, minimum=2)
        self.curvature_tol = check_float_param(curvature_tol, "curvature_tol", owner, positive=True)
        self.seed = check_int_param(seed, "seed", owner, minimum=0)
        self.input_kind = getattr(estimator, "input_kind", "deterministic")

    @property
    def y_kinds(self) -> tuple[str, ...] | None:
        return getattr(self.estimator, "y_kinds", None)

    def conventions(self) -> dict[str, Any]:
        inner = self.estimator.conventions() if callable(getattr(self.estimator, "conventions", None)) else {}
        return json_safe({"estimator": f"{getattr(self.estimator, 'name', 'estimator')}+sample-size",
                          "max_splits": self.max_splits, "min_splits": self.min_splits, "min_rows": self.min_rows,
                          "curvature_tol": self.curvature_tol, "seed": self.seed,
                          "method": "Abdelaleem et al. 2025: disjoint splits, WLS fit I(n) = I_inf + a/n",
                          "inner": inner, **({"bound": inner["bound"]} if "bound" in inner else {})})

    def _gammas(self, n: int) -> list[int]:
        gammas = [g for g in range(1, self.max_splits + 1) if n // g >= self.min_rows]
        if len(gammas) < self.min_splits:
            raise ValueError(
                f"t has {n:,} rows: too few rows for the splits of SampleSizeCheck(min_splits={self.min_splits}, "
                f"min_rows={self.min_rows}), which needs at least {self.min_splits * self.min_rows:,} rows "
                f"({self.min_splits} sample sizes N/γ of at least {self.min_rows} rows).")
        return gammas

    def estimate(self, t: TensorLike, y: ArrayLike, x: ArrayLike | None = None, *, layer: str | None = None, epoch: int | None = None,
                 full: MIResult | None = None, **kwargs: Any) -> ReliabilityResult:
        """The extrapolated I(T;X), I(T;Y) in bits with standard errors and the reliability verdict.

        ``full``: the wrapped estimator's result on all rows, if already computed (it is γ = 1); ``kwargs``
        (e.g. ``log_var=`` for a Gaussian layer) are split with the rows and passed on.
        """
        n = int(np.shape(t)[0])
        gammas = self._gammas(n)
        rng = np.random.default_rng(self.seed)
        runs: dict[int, list[MIResult]] = {}
        failures: list[str] = []
        for g in gammas:
            if g == 1:
                res = [full if full is not None else self.estimator.estimate(t, y, x, layer=layer, epoch=epoch,
                                                                             **kwargs)]
            else:
                try:
                    res = [self._on_rows(rows, t, y, x, layer, epoch, kwargs)
                           for rows in np.array_split(rng.permutation(n), g)]
                except ValueError as exc:  # the estimator refuses parts this small (e.g. a class too small)
                    failures.append(f"N/{g}: {exc}")
                    continue
            runs[g] = res
        y_dims = int(np.prod(np.shape(y)[1:])) if np.ndim(y) > 1 else 1
        return self._verdict(runs, n, failures, y_dims)

    def _on_rows(self, rows: np.ndarray, t: Any, y: Any, x: Any, layer: Any, epoch: Any, kwargs: dict) -> MIResult:
        rows = np.sort(rows)
        sub_kwargs = {k: (v[rows] if hasattr(v, "shape") and np.shape(v)[:1] == (np.shape(t)[0],) else v)
                      for k, v in kwargs.items()}
        x_sub = None if x is None else as_numpy(x)[rows]
        return self.estimator.estimate(t[rows], as_numpy(y)[rows], x_sub, layer=layer, epoch=epoch, **sub_kwargs)

    def _verdict(self, runs: dict[int, list[MIResult]], n: int, failures: list[str],
                 y_dims: int = 1) -> ReliabilityResult:
        gs = sorted(runs)
        sizes = np.array([n / g for g in gs])
        fit_ty = extrapolate(sizes, [np.array([r.I_TY for r in runs[g]], dtype=float) for g in gs],
                             curvature_tol=self.curvature_tol, min_splits=self.min_splits)
        xt_values = [np.array([r.I_XT for r in runs[g]], dtype=float) for g in gs]
        has_xt = all(np.isfinite(v).all() for v in xt_values)
        fit_xt = extrapolate(sizes, xt_values, curvature_tol=self.curvature_tol,
                             min_splits=self.min_splits) if has_xt else None
        notes = [f"I(T;Y): {fit_ty['note']}"] if fit_ty["note"] else []
        full = runs[gs[0]][0]
        notes += _inner_notes(full)
        rule = _knn_rule(full, n, y_dims)
        notes += [rule] if rule and rule not in str(full.conventions.get("reliability_note")) else []
        ty_reliable = not notes
        xt_reliable = None if fit_xt is None else bool(fit_xt["reliable"])
        if fit_xt is not None and fit_xt["note"]:
            notes.append(f"I(T;X): {fit_xt['note']}")
        notes += [f"not estimated at {f}" for f in failures] if notes and failures else []
        reliable = not notes
        i_ty = max(fit_ty["value"], 0.0)
        i_xt = max(fit_xt["value"], 0.0) if fit_xt is not None else math.nan
        se_ty, se_xt = fit_ty["se"], (fit_xt["se"] if fit_xt is not None else math.nan)
        note = "; ".join(notes) if notes else None
        conv = self.conventions()
        conv.update(n_samples=n, units="bits", I_TY_se=se_ty, I_XT_se=se_xt, reliable=reliable,
                    I_TY_reliable=ty_reliable, I_XT_reliable=xt_reliable,
                    reliability_note=note, I_TY_raw=fit_ty["value"], I_TY_full=float(full.I_TY),
                    flagged_splits=sum(r.conventions.get("reliable") is False for g in gs[1:] for r in runs[g]),
                    I_XT_full=float(full.I_XT), fit_TY=fit_ty, fit_XT=fit_xt, splits=gs, failed_splits=failures)
        for key in ("I_XT_note", "H_Y_bits"):
            if key in full.conventions:
                conv[key] = full.conventions[key]
        return ReliabilityResult(
            I_XT=i_xt, I_TY=i_ty, bound_XT="estimate", bound_TY="estimate", estimator=self.name, n_samples=n,
            conventions=json_safe(conv), I_XT_se=float(se_xt), I_TY_se=float(se_ty), reliable=reliable,
            reliability_note=note, I_XT_reliable=xt_reliable, I_TY_reliable=ty_reliable)
