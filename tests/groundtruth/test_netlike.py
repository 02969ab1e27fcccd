"""Network-like ground truth (embedded wide layers, digits, symmetric dependence): each true value checked
against an independent computation, and each sampler against the structure its value relies on."""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from scipy import stats

import infoplane.groundtruth as gt
from infoplane.groundtruth import _netlike as NL
from infoplane.groundtruth import _tasks

ALL = {t.name: t for t in gt.tasks("all")}
NEW_FAMILIES = {"embedded", "digits", "symmetric"}


def _pair_bits(rho):
    return -0.5 * math.log2(1 - rho**2)


def test_groups_partition_the_tasks_and_evaluate_runs_the_default_group():
    default, wide = gt.tasks(), gt.tasks("wide")
    assert {t.name for t in default} | {t.name for t in wide} == set(ALL)
    assert not {t.name for t in default} & {t.name for t in wide}
    assert all(t.dims >= 1024 for t in wide) and max(t.dims for t in wide) == 4096
    assert {t.dims for t in ALL.values() if t.family == "embedded"} == {512, 1024, 4096}
    assert NEW_FAMILIES <= {t.family for t in default}
    assert {"continuous", "labels"} == {t.kind for t in ALL.values() if t.family == "embedded"}
    assert gt.get_task("embed-tanh-gauss-5x5-in4096").group == "wide"
    with pytest.raises(ValueError, match="group"):
        gt.tasks("everything")
    est = gt.default_estimators()["binning"]
    df = gt.evaluate({"b": est}, tasks=None, n_samples=50, seeds=[0], progress=False)
    assert set(df.attrs["tasks"]) == {t.name for t in default}


def _rng(task, seed):
    return np.random.default_rng([seed, zlib.crc32(task.name.encode())])


@pytest.mark.parametrize("name", [n for n, t in ALL.items() if t.family == "embedded"])
def test_embedding_is_injective_and_keeps_the_signal_mi(name):
    task = ALL[name]
    p = task.params
    s, y0 = p["signal"](300, _rng(task, 5), **p["signal_params"])
    t, y = task.sample(300, 5)
    np.testing.assert_array_equal(y, y0)
    assert t.shape == (300, task.dims)
    w, b = p["weights"], p["bias"]
    z = np.arctanh(t) if p["kind"] == "tanh" else t
    recovered = np.linalg.lstsq(w.T, (z - b).T, rcond=None)[0].T  # W has full row rank: s is read back
    np.testing.assert_allclose(recovered, s, atol=1e-6)
    if p["kind"] == "linear":  # an isometry: distances are kept
        np.testing.assert_allclose(np.linalg.norm(t[:50, None] - t[None, :50], axis=-1),
                                   np.linalg.norm(s[:50, None] - s[None, :50], axis=-1), atol=1e-9)
    signal_truth = 5 * _pair_bits(0.8) if task.kind == "continuous" else gt.get_task("classes-K10-d10").true_bits
    assert task.true_bits == pytest.approx(signal_truth, abs=1e-12)


def test_sign_pair_value_against_a_monte_carlo_of_the_exact_densities():
    # Independent of the |U|,|V| reduction: I(X;V) = E log2 p(x|v)/p(x), p(x|v) the two-component mixture.
    rho, n = 0.9, 400_000
    t, y = ALL["symmetric-sign-3x3"].sample(n, 0)
    x, v = t[:, 0], y[:, 0]
    sd = math.sqrt(1 - rho * rho)
    cond = 0.5 * (stats.norm.pdf(x, rho * v, sd) + stats.norm.pdf(x, -rho * v, sd))
    values = np.log2(cond / stats.norm.pdf(x))
    se = values.std() / math.sqrt(n)
    assert abs(values.mean() - NL.sign_pair_bits(rho)) < 4 * se
    assert ALL["symmetric-sign-3x3"].true_bits == pytest.approx(3 * NL.sign_pair_bits(rho), abs=1e-12)
    # the dependence is invisible to the conditional mean: E[t | y] = 0 (slope of t on y is zero)
    assert abs(np.corrcoef(x, v)[0, 1]) < 5 / math.sqrt(n)
    assert 0 < NL.sign_pair_bits(rho) < _pair_bits(rho)


def test_variance_classes_value_against_a_monte_carlo_of_the_exact_posterior():
    task = ALL["symmetric-variance-K2-d9"]
    t, y = task.sample(200_000, 1)
    lp0 = stats.multivariate_normal(np.zeros(9), np.eye(9)).logpdf(t)
    lp1 = stats.multivariate_normal(np.zeros(9), 4.0 * np.eye(9)).logpdf(t)
    log_post = np.where(y == 1, lp1, lp0) - np.logaddexp(lp0, lp1)
    values = 1.0 + log_post / math.log(2)  # log2 K + log2 p(y|t)
    se = values.std() / math.sqrt(len(values))
    assert abs(values.mean() - task.true_bits) < 4 * se
    assert np.abs(t[y == 0].mean(0)).max() < 0.05 and np.abs(t[y == 1].mean(0)).max() < 0.05


def _decode(t: np.ndarray) -> np.ndarray:
    """The digits class of each dequantised image (floor(17 t) is an image of the data set)."""
    images, labels = NL.digits_data()
    lookup = {row.tobytes(): lab for row, lab in zip(images, labels)}
    pixels = np.floor(t * 17.0).astype(np.uint8)
    return np.array([lookup[row.tobytes()] for row in pixels])


def _plugin_mi_bits(a: np.ndarray, b: np.ndarray) -> float:
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1)
    joint /= joint.sum()
    outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    nz = joint > 0
    return float((joint[nz] * np.log2(joint[nz] / outer[nz])).sum())


@pytest.mark.parametrize("name", [n for n, t in ALL.items() if t.family == "digits"])
def test_digits_classes_are_read_from_the_images_and_give_the_stated_mi(name):
    # The value relies on: each t (and y) is an image of the data set up to the dequantising noise, so its class
    # is a function of it; the classes' joint law is as stated. Check both, then the plug-in MI of the decoded
    # classes (bias < (K-1)^2 / (2 n ln 2) = 4e-4 bits for K = 10 at n = 20,000) against true_bits.
    task = ALL[name]
    n = 20_000
    t, y = task.sample(n, 2)
    assert t.min() >= 0 and t.max() < 1
    wide = t.shape[1] == 128
    left = t.reshape(n, 8, 16)[:, :, :8].reshape(n, 64) if wide else t
    c_t = _decode(left)
    if task.kind == "labels":
        c_y = y
    else:
        c_y = _decode(y.reshape(n, 8, 16)[:, :, :8].reshape(n, 64) if wide else y)
    if "bsc" in name:
        c_t = c_t % 2
        c_y = c_y if task.kind == "labels" else c_y % 2
        flips = (c_t != c_y).mean()
        assert abs(flips - 0.1) < 4 * math.sqrt(0.09 / n)
    else:
        np.testing.assert_array_equal(c_t, c_y)
    counts = np.bincount(c_t)
    assert stats.chisquare(counts).pvalue > 1e-3  # classes uniform
    per_side = _plugin_mi_bits(c_t, c_y)
    if name == "digits-side-by-side-continuous":
        right_t = _decode(t.reshape(n, 8, 16)[:, :, 8:].reshape(n, 64))
        right_y = _decode(y.reshape(n, 8, 16)[:, :, 8:].reshape(n, 64))
        np.testing.assert_array_equal(right_t, right_y)
        per_side += _plugin_mi_bits(right_t, right_y)
    assert abs(per_side - task.true_bits) < 0.01


def test_digits_true_values_are_the_closed_forms():
    assert ALL["digits-same-class-labels"].true_bits == pytest.approx(math.log2(10), abs=1e-12)
    h = -(0.1 * math.log2(0.1) + 0.9 * math.log2(0.9))
    assert ALL["digits-bsc0.1-continuous"].true_bits == pytest.approx(1 - h, abs=1e-12)
    assert ALL["digits-side-by-side-continuous"].true_bits == pytest.approx(2 * math.log2(10), abs=1e-12)
    assert NL.binary_entropy_bits(0.5) == 1.0 and NL.binary_entropy_bits(0.0) == 0.0


def test_class_tasks_reuse_a_stored_value_with_its_stderr():
    k10 = _tasks.CLASS_MI["classes-K10-d10"]
    for task in ALL.values():
        if task.family == "embedded" and task.kind == "labels":
            assert task.stderr_bits == k10["stderr"]
