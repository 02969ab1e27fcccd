"""Ground-truth tasks: every true value against an independent computation; evaluate's table; bad input."""
from __future__ import annotations

import collections
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import infoplane.groundtruth as gt
from infoplane._core.types import MIResult
from infoplane.estimators import BinningEstimator, KDEEstimator
from infoplane.groundtruth import _samplers, _tasks
from infoplane.groundtruth._class_mi import CLASS_MI
from infoplane.groundtruth._closed_forms import class_mi_monte_carlo, student_t_correction_bits

TASKS = {t.name: t for t in gt.tasks()}


def test_tasks_cover_the_issue_and_sample_reproducibly():
    families = collections.Counter(t.family for t in TASKS.values())
    assert set(families) == {"gaussian", "transform", "student-t", "wide", "classes", "network", "embedded", "digits",
                             "symmetric"}
    assert {"gauss-1x1", "gauss-dense-50x50", "gauss-sparse-50x50"} <= set(TASKS)
    assert {t.name.split("-")[0] for t in TASKS.values() if t.family == "transform"} == {
        "normal", "half", "asinh", "spiral"}
    assert {_tasks.CLASS_SPECS[n][0] for n in _tasks.CLASS_SPECS} == {2, 4, 10}
    assert max(t.dims for t in TASKS.values() if t.family == "wide") >= 300
    for task in TASKS.values():
        t, y = task.sample(50, 3)
        assert t.shape == (50, task.dims) and t.dtype == np.float64 and np.isfinite(t).all()
        if task.kind == "labels":
            assert y.shape == (50,) and y.dtype == np.int64
        else:
            assert y.ndim == 2 and y.shape[0] == 50 and y.dtype == np.float64
        t2, y2 = task.sample(50, 3)
        np.testing.assert_array_equal(t, t2)
        np.testing.assert_array_equal(y, y2)
        assert not np.array_equal(t, task.sample(50, 4)[0])
        assert task.true_bits > 0


def _pair_bits(rho):
    return -0.5 * math.log2(1 - rho**2)


def _equicorrelated_logdet(d, rho):
    return (d - 1) * math.log(1 - rho) + math.log(1 + (d - 1) * rho)


@pytest.mark.parametrize("name, expected", [
    ("gauss-1x1", _pair_bits(0.8)),
    ("gauss-sparse-5x5", 2 * _pair_bits(0.8)),
    ("gauss-sparse-50x50", 3 * _pair_bits(0.8)),
    ("wide-gauss-2x2+200", 2 * _pair_bits(0.8)),
    ("wide-gauss-5x5+500", 5 * _pair_bits(0.8)),
    *[(f"{tr}-3x3", 3 * _pair_bits(0.6)) for tr in ("normal-cdf", "half-cube", "asinh", "spiral")],
    *[(f"gauss-dense-{d}x{d}", (2 * _equicorrelated_logdet(d, r) - _equicorrelated_logdet(2 * d, r)) / 2 / math.log(2))
      for d, r in ((2, 0.5), (5, 0.3), (25, 0.1), (50, 0.1))],
])
def test_gaussian_true_bits_match_the_textbook_formulas(name, expected):
    # Sparse: independent pairs add, each -1/2 log2(1 - rho^2). Dense: det of an equicorrelated d x d matrix is
    # (1 - rho)^(d-1) (1 + (d-1) rho). Tolerance: float64 rounding of a log-determinant.
    assert TASKS[name].true_bits == pytest.approx(expected, abs=1e-10)


def test_gaussian_samples_have_the_stated_correlation():
    t, y = TASKS["gauss-1x1"].sample(200_000, 0)
    r = np.corrcoef(t[:, 0], y[:, 0])[0, 1]
    # Standard error of a correlation estimate: (1 - rho^2) / sqrt(n) = 8e-4; allow 5 of them.
    assert r == pytest.approx(0.8, abs=5 * 0.36 / math.sqrt(200_000))
    t, _ = TASKS["wide-gauss-2x2+200"].sample(20_000, 0)
    c = np.corrcoef(t[:, 2:12].T)  # the padding columns: unit variance, uncorrelated
    assert np.abs(c - np.eye(10)).max() < 5 / math.sqrt(20_000)


@pytest.mark.parametrize("transform", sorted(_samplers.TRANSFORMS))
def test_transforms_are_invertible_so_mi_is_unchanged(transform):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1000, 3))
    fa = _samplers.TRANSFORMS[transform](a)
    inverse = {"normal-cdf": stats.norm.ppf, "half-cube": lambda v: np.sign(v) * np.abs(v) ** (2 / 3),
               "asinh": np.sinh, "spiral": _samplers.spiral_inverse}[transform]
    np.testing.assert_allclose(inverse(fa), a, atol=1e-9)
    # The task draws the same Gaussian as its base and maps it: undo the map and the base sample comes back.
    t, y = TASKS[f"{transform}-3x3"].sample(100, 1)
    assert np.isfinite(inverse(t)).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["student-t-1x1-dof1", "student-t-2x2-dof3", "student-t-5x5-dof5"])
def test_student_t_closed_form_against_monte_carlo_of_scipy_densities(name):
    # I = E log p(a,b) / (p(a) p(b)) with scipy's multivariate_t densities on 200,000 draws of scipy's own sampler:
    # independent of the closed form and of the task's sampler. Within 4 standard errors.
    task = TASKS[name]
    d, dof = task.params["dim_a"], task.params["dof"]
    scale = task.params["chol"] @ task.params["chol"].T
    z = stats.multivariate_t(shape=scale, df=dof).rvs(size=200_000, random_state=np.random.default_rng(7))
    z = z.reshape(len(z), -1)
    log_ratio = (stats.multivariate_t(shape=scale, df=dof).logpdf(z)
                 - stats.multivariate_t(shape=scale[:d, :d], df=dof).logpdf(z[:, :d])
                 - stats.multivariate_t(shape=scale[d:, d:], df=dof).logpdf(z[:, d:])) / math.log(2)
    se = log_ratio.std(ddof=1) / math.sqrt(len(log_ratio))
    assert abs(log_ratio.mean() - task.true_bits) < 4 * se
    # And the task's own sampler gives the same expectation.
    a, b = task.sample(200_000, 0)
    own = (stats.multivariate_t(shape=scale, df=dof).logpdf(np.hstack([a, b]))
           - stats.multivariate_t(shape=scale[:d, :d], df=dof).logpdf(a)
           - stats.multivariate_t(shape=scale[d:, d:], df=dof).logpdf(b)) / math.log(2)
    assert abs(own.mean() - task.true_bits) < 4 * own.std(ddof=1) / math.sqrt(len(own))


def test_student_t_correction_is_positive_and_vanishes_in_the_gaussian_limit():
    assert student_t_correction_bits(1.0, 1, 1) > student_t_correction_bits(3.0, 1, 1) > 0
    assert student_t_correction_bits(1e6, 5, 5) == pytest.approx(0.0, abs=1e-4)


def _two_class_bits_by_quadrature(distance):
    # Two equiprobable classes N(+-distance/2, 1) on the line (only the direction joining the means matters):
    # I = 1 - integral p(t) H(Y | t) dt, with H(Y | t) the binary entropy of the exact posterior.
    def integrand(t):
        a, b = stats.norm.pdf(t, -distance / 2), stats.norm.pdf(t, distance / 2)
        p = a / (a + b)
        h = -sum(q * math.log2(q) for q in (p, 1 - p) if q > 0)
        return 0.5 * (a + b) * h

    value, _ = integrate.quad(integrand, -12, 12, limit=200, epsabs=1e-12)
    return 1.0 - value


@pytest.mark.parametrize("name", ["classes-K2-d2", "classes-K2-d100-s2"])
def test_two_class_tasks_against_quadrature(name):
    means = _tasks.class_task_means(name)
    exact = _two_class_bits_by_quadrature(float(np.linalg.norm(means[0] - means[1])))
    assert abs(TASKS[name].true_bits - exact) < 4 * TASKS[name].stderr_bits


def test_four_classes_in_the_plane_against_a_grid_integral():
    means = _tasks.class_task_means("classes-K4-d2")
    g = np.linspace(-10, 10, 1201)
    tt = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    dens = np.exp(-0.5 * ((tt[:, None, :] - means[None]) ** 2).sum(-1)) / (2 * math.pi)  # (grid, K)
    p_t = dens.mean(1)
    post = dens / dens.sum(1, keepdims=True)
    h = -(post * np.log2(np.where(post > 0, post, 1))).sum(1)
    exact = 2.0 - (p_t * h).sum() * (g[1] - g[0]) ** 2  # the trapezoid error on this grid is ~1e-10 bits
    assert abs(TASKS["classes-K4-d2"].true_bits - exact) < 4 * TASKS["classes-K4-d2"].stderr_bits


def test_stored_class_values_state_their_precision():
    assert set(CLASS_MI) == set(_tasks.CLASS_SPECS)
    for name, rec in CLASS_MI.items():
        assert rec["stderr"] < 1e-3 and rec["n"] >= 1_000_000 and isinstance(rec["seed"], int)
        assert TASKS[name].stderr_bits == rec["stderr"] and TASKS[name].true_bits == rec["bits"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CLASS_MI))
def test_stored_class_values_against_a_second_monte_carlo(name):
    # Another seed and the other estimator form (E log2 p(y|t) with y drawn, not integrated out).
    rec = CLASS_MI[name]
    value, se = class_mi_monte_carlo(_tasks.class_task_means(name), 400_000, rec["seed"] + 1, rao_blackwell=False)
    assert abs(value - rec["bits"]) < 4 * math.hypot(se, rec["stderr"])


@pytest.mark.parametrize("name", list(_tasks.NETWORK_SPECS))
def test_network_tasks_entropy_by_enumeration_and_binning_kde_exact(name):
    codes = _tasks.network_codes_table(name)
    counts = collections.Counter(map(tuple, codes.tolist()))
    h = -sum(c / 1000 * math.log2(c / 1000) for c in counts.values())
    task = TASKS[name]
    assert task.true_bits == pytest.approx(h, abs=1e-12) and len(counts) > 4
    estimators = [BinningEstimator(np.linspace(-1, 1, 30)), BinningEstimator(bin_width=0.5),
                  KDEEstimator(1e-3, "upper"), KDEEstimator(1e-3, "lower")]
    for n in (1000, 4000):  # multiples of the 1,000 inputs: the sample's input distribution is exactly uniform
        t, y = task.sample(n, 0)
        assert np.all(np.bincount(y) == n // 1000)
        for est in estimators if n == 1000 else estimators[:2]:  # KDE at 4,000 rows costs seconds
            # KDE: codes are >= 1 apart and sigma^2 = 1e-3, so cross-kernel terms are below exp(-125).
            assert est.estimate(t, y).I_TY == pytest.approx(task.true_bits, abs=1e-9), est


class GaussianPlugin:
    """A test estimator: Gaussian MI of the sample covariance (exact in the limit on Gaussian tasks)."""

    name = "gaussian-plugin"
    y_kinds = ("continuous",)

    def conventions(self):
        return {"estimator": self.name}

    def estimate(self, t, y, x=None, *, layer=None, epoch=None):
        cov = np.cov(np.hstack([t, y]).T)
        bits = gt.gaussian_mi_bits(cov, t.shape[1])
        return MIResult(float("nan"), bits, "estimate", "estimate", self.name, len(t))


def test_evaluate_table_columns_skips_and_accuracy():
    names = ["gauss-1x1", "gauss-sparse-5x5", "classes-K2-d2", "network-step-4"]
    df = gt.evaluate({"bin": BinningEstimator(np.linspace(-1, 1, 30)), "plugin": GaussianPlugin()},
                     tasks=names, n_samples=(1000, 2000), seeds=range(2), progress=False)
    assert list(df.columns) == gt.COLUMNS
    assert df.dtypes["estimate_bits"] == np.float64 and df.dtypes["dims"] == np.int64
    assert len(df) == 4 * 4  # bin: the two label tasks; plugin: the two Gaussian tasks; 2 sizes x 2 seeds
    assert set(df.loc[df.estimator == "bin", "task"]) == {"classes-K2-d2", "network-step-4"}
    assert "y must be 1-D" in df.attrs["skipped"]["bin"]["gauss-1x1"]
    assert "y_kinds" in df.attrs["skipped"]["plugin"]["classes-K2-d2"]
    np.testing.assert_allclose(df.error_bits, df.estimate_bits - df.true_bits)
    plugin = df[df.estimator == "plugin"]
    # Gaussian plug-in at n >= 1000 in <= 10 dims: bias ~ d_t d_y / (2 n ln 2) <= 0.02 bits, spread ~0.05 bits.
    assert plugin.error_bits.abs().max() < 0.2
    net = df[(df.estimator == "bin") & (df.task == "network-step-4")]
    np.testing.assert_allclose(net.estimate_bits, TASKS["network-step-4"].true_bits, atol=1e-9)
    assert list(df.task.unique()) == [n for n in names if n in set(df.task)]
    assert df.attrs["units"] == "bits" and df.attrs["conventions"]["plugin"] == {"estimator": "gaussian-plugin"}
    assert df.attrs["tasks"]["classes-K2-d2"]["stderr_bits"] > 0
    assert (df.seconds >= 0).all()


def test_evaluate_presets_and_parallel_equal_serial():
    kw = dict(tasks=["classes-K2-d2", "network-step-4"], n_samples=1000, seeds=[0, 1], progress=False)
    serial = gt.evaluate(["binning", "kde-upper"], **kw)
    parallel = gt.evaluate(["binning", "kde-upper"], n_jobs=2, backend="threading", **kw)
    cols = [c for c in gt.COLUMNS if c != "seconds"]
    pd.testing.assert_frame_equal(serial[cols], parallel[cols])
    assert set(serial.estimator) == {"binning", "kde-upper"}


def test_bad_input_names_what_is_wrong():
    with pytest.raises(KeyError, match="Unknown ground-truth task 'gauss-7x7'; available tasks: gauss-1x1, "):
        gt.evaluate("binning", tasks=["gauss-7x7"])
    with pytest.raises(KeyError, match="classes-K10-d100"):
        gt.get_task("nope")

    class NoEstimate:
        name = "broken"

    with pytest.raises(TypeError, match=r"estimators\[1\] must be an estimator .* Got NoEstimate .* no callable 'estimate'"):
        gt.evaluate(["binning", NoEstimate()], tasks="gauss-1x1")
    with pytest.raises(TypeError, match=r"estimators\['mine'\] .* Got int"):
        gt.evaluate({"mine": 3}, tasks="gauss-1x1")
    with pytest.raises(ValueError, match="unique labels"):
        gt.evaluate([KDEEstimator(), KDEEstimator(0.1)], tasks="gauss-1x1")
    with pytest.raises(ValueError, match="'n_samples' parameter of evaluate must be an int >= 2. Got 1"):
        gt.evaluate("binning", tasks="gauss-1x1", n_samples=1)
    with pytest.raises(ValueError, match="'n_jobs' parameter of evaluate"):
        gt.evaluate("binning", tasks="gauss-1x1", n_jobs=0)
    with pytest.raises(ValueError, match="'n' parameter of Task 'gauss-1x1'.sample must be an int >= 2"):
        TASKS["gauss-1x1"].sample(1, 0)


def test_default_estimators_cover_every_estimator_family_that_can_take_a_task():
    ests = gt.default_estimators()
    assert {"binning", "kde-upper", "knn-ross", "knn-ksg", "critic-infonce", "probe"} <= set(ests)
    assert all(callable(e.estimate) for e in ests.values())
    assert ests["knn-ksg"].y_kinds == ("continuous",) and ests["knn-ross"].y_kinds == ("labels",)
