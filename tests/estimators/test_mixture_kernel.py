"""The noisy estimator's mixture kernel against a direct float64 log-sum-exp of the densities.

The kernel raises exponents below −EXP_FLOOR before the exponential (out of slow subnormal arithmetic) and
recomputes any class sum small enough to be made of raised terms: neither may change a single log-sum.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from infoplane.estimators._kernels.fast_exp import EXP_FLOOR, logsumexp_rows
from infoplane.estimators._kernels.mixture import grouped_mixture_log_sums


def _reference(centres, scales, points, owner, classes):
    """ln Σ_j φ_j(z_p) over all rows and over the owner's class, from the differences (float64)."""
    s = np.broadcast_to(scales, centres.shape) if np.ndim(scales) else np.full(centres.shape, float(scales))
    diff = points[:, None, :] - centres[None, :, :]
    log_phi = (-0.5 * (diff / s[None]) ** 2 - np.log(s)[None] - 0.5 * math.log(2 * math.pi)).sum(axis=2)
    same = classes[owner][:, None] == classes[None, :]
    return logsumexp(log_phi, axis=1), logsumexp(np.where(same, log_phi, -np.inf), axis=1), log_phi


def _run(centres, scales, points, owner, classes):
    t = torch.as_tensor
    s = t(scales) if np.ndim(scales) else torch.tensor(float(scales), dtype=torch.float64)
    ref_all, ref_class, log_phi = _reference(centres, scales, points, owner, classes)
    own_log = t(log_phi[np.arange(len(points)), owner])
    out = grouped_mixture_log_sums(t(centres), s, t(points), t(owner), own_log, t(classes), memory_mb=0.05)
    return out, ref_all, ref_class


@pytest.mark.parametrize("spread", [0.3, 30.0, 3000.0])
def test_log_sums_match_direct_computation_at_every_separation(spread):
    # spread 3000 with s = 0.5: exponents down to about -1e8, far below -EXP_FLOOR, for almost every pair
    rng = np.random.default_rng(0)
    classes = np.repeat(np.arange(3), 40)
    centres = rng.normal(size=(120, 5)) * spread + classes[:, None] * spread
    owner = rng.integers(0, 120, size=200)
    points = centres[owner] + 0.5 * rng.normal(size=(200, 5))
    out, ref_all, ref_class = _run(centres, 0.5, points, owner, classes)
    np.testing.assert_allclose(out["all"].numpy(), ref_all, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(out["class"].numpy(), ref_class, rtol=1e-12, atol=1e-9)


def test_class_sum_made_only_of_floored_terms_is_exact():
    # The point's own row sits in class 1, but a row of class 0 lies on the point: relative to that row
    # every class-1 term (its own included) is about e^-800, below the floor. The class sum must still be
    # its exact value (about -800 nats below the total), not one inflated by raised terms.
    centres = np.array([[0.0], [40.0], [40.5], [41.0]])
    classes = np.array([0, 1, 1, 1])
    points = np.array([[0.0], [40.0]])
    owner = np.array([1, 1])
    scales = np.array([[1.0], [1.0], [1.0], [1.0]])
    out, ref_all, ref_class = _run(centres, scales, points, owner, classes)
    gap = ref_all[0] - ref_class[0]
    assert gap > EXP_FLOOR  # the case the floor must not touch
    np.testing.assert_allclose(out["class"].numpy(), ref_class, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["all"].numpy(), ref_all, rtol=1e-12, atol=1e-12)


def test_small_class_sum_with_many_floored_terms_is_exact():
    # The owner's class sum is about e^-690 relative to the point's nearest row (of another class): one
    # normal term, plus 3,000 terms near e^-800 that the floor raises to e^-708. Taken from the product, those
    # raised terms would move the sum by 4e-5 of itself; it must be recomputed and exact.
    far = math.sqrt(2 * 800.0)
    centres = np.concatenate([[[0.0], [math.sqrt(2 * 690.0)]], np.full((3000, 1), far)])
    classes = np.concatenate([[0, 1], np.ones(3000, dtype=np.int64)])
    points, owner = np.array([[0.0]]), np.array([1])
    out, ref_all, ref_class = _run(centres, 1.0, points, owner, classes)
    assert 680 < ref_all[0] - ref_class[0] < EXP_FLOOR
    np.testing.assert_allclose(out["class"].numpy(), ref_class, rtol=1e-13)
    np.testing.assert_allclose(out["all"].numpy(), ref_all, rtol=1e-13)


def test_per_unit_scales_of_gaussian_dropout_match():
    rng = np.random.default_rng(1)
    classes = np.repeat(np.arange(2), 30)
    centres = rng.normal(size=(60, 4)) * 20.0
    scales = 0.2 * np.abs(centres) + 1e-3
    owner = rng.integers(0, 60, size=90)
    points = centres[owner] + scales[owner] * rng.normal(size=(90, 4))
    out, ref_all, ref_class = _run(centres, scales, points, owner, classes)
    np.testing.assert_allclose(out["all"].numpy(), ref_all, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(out["class"].numpy(), ref_class, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("spread", [1.0, 1e3, 1e6])
def test_fast_logsumexp_rows_matches_scipy(spread):
    rng = np.random.default_rng(2)
    x = -spread * rng.random((50, 300))
    x[np.arange(50), rng.integers(0, 300, 50)] += rng.normal(size=50) * spread  # the maximum anywhere
    got = logsumexp_rows(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, logsumexp(x, axis=1), rtol=1e-14, atol=1e-14)
