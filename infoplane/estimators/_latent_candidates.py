"""Latent MI's candidate estimates on the held-out rows, the choice between them and its convergence curve.

Internal to `infoplane.estimators.latent`: codes and labels come checked. Every estimate is in bits.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ._kernels.residual_bound import residual_bound
from .knn import _ksg_nats, _ross_nats, ksg_mi, ross_mi

__all__ = ["Choice", "knn_bits", "parts", "pick", "convergence_curve"]


@dataclass(frozen=True)
class Choice:
    """One candidate estimate on the held-out rows, in bits: ``kind="knn"`` (KSG or Ross between ``codes``),
    ``"residual"`` (`residual_bound` of ``codes[0]`` given the features ``codes[1]``, ``detail`` its parts) or
    ``"bound"`` (a held-out Barber-Agakov bound H(Y) - CE of a classifier on the code)."""

    name: str
    bits: float
    codes: tuple[np.ndarray, np.ndarray]
    kind: str = "knn"
    detail: dict | None = None


def parts(n: int, labels: np.ndarray | None, seed: int, m: int) -> list[np.ndarray]:
    """``m`` disjoint parts of n rows of (nearly) equal size, at random with ``seed`` (within each class for
    labels)."""
    rng = np.random.default_rng([seed, 11])
    if labels is None:
        return np.array_split(rng.permutation(n), m)
    split = [np.array_split(rng.permutation(np.flatnonzero(labels == c)), m) for c in np.unique(labels)]
    return [np.concatenate([rows[i] for rows in split]) for i in range(m)]


def knn_bits(z_a: np.ndarray, z_b: np.ndarray, labels: bool, k: int) -> float:
    """KSG between the codes, or Ross between A's code and the labels, in bits."""
    return ross_mi(z_a, z_b, k) if labels else ksg_mi(z_a, z_b, k)


def _resolution(z_a: np.ndarray, z_b: np.ndarray, labels: bool, k: int) -> dict | None:
    """`reliability.knn_resolution` of the final k-NN step on the codes (the estimate at k and 2k
    neighbours, extrapolated to radius 0), as `KNNEstimator`'s own check; None where too few rows."""
    a = torch.as_tensor(np.ascontiguousarray(z_a, dtype=np.float64))
    with warnings.catch_warnings():  # ties and radius-0 rows were already reported by the estimate itself
        warnings.simplefilter("ignore", RuntimeWarning)
        if labels:
            info = _ross_nats(a, np.asarray(z_b), k, "max", 128.0, owner="LatentMIEstimator", check=True)[1]
        else:
            b = torch.as_tensor(np.ascontiguousarray(np.asarray(z_b, dtype=np.float64).reshape(len(z_b), -1)))
            info = _ksg_nats(a, b, k, "max", 128.0, owner="LatentMIEstimator", check=True)[1]
    return info.get("resolution")


def pick(candidates: list[Choice], record: dict) -> Choice:
    """The candidate with the most bits; every candidate's bits, the choice and its parts go into ``record``."""
    best = max(candidates, key=lambda c: c.bits)
    record["candidates"] = {c.name: c.bits for c in candidates}
    record["chosen"] = best.name
    if best.detail is not None:
        record["residual"] = best.detail
    return best


def convergence_curve(choice: Choice, labels: bool, k: int, seed: int) -> dict:
    """`_knn_curve` of a k-NN choice, or the same gain per doubling of the rows for a residual bound (no
    resolution check: no neighbour radius is involved)."""
    if choice.kind == "knn":
        return _knn_curve(*choice.codes, labels, k, seed, choice.bits)
    if choice.kind == "bound":  # a mean over the held-out rows of a fixed classifier's log-loss: nothing to extrapolate
        return {"I_TY_half": None, "I_TY_quarter": None, "knn_gain": None, "knn_from_rows": None, "resolution": None}
    target, features = choice.codes

    def bits(rows: np.ndarray) -> float:
        bound = residual_bound(target[rows], features[rows], k, seed)
        return math.nan if bound is None else bound["bits"]

    return _gain(bits, target.shape[0], None, k, seed, choice.bits) | {"resolution": None}


def _gain(estimate: Callable[[np.ndarray], float], n: int, labels: np.ndarray | None, k: int, seed: int, full: float) -> dict:
    """``estimate(rows)`` on halves and quarters of the n rows (means over the disjoint `parts`, bits; None
    where a part is too small or the estimate undefined), and its mean gain per doubling up to all rows:
    (I(n) − I(n/4)) / 2 when the quarters can be estimated, else I(n) − I(n/2)."""
    out: dict = {"I_TY_half": None, "I_TY_quarter": None, "knn_gain": None, "knn_from_rows": None}
    for key, m in (("I_TY_half", 2), ("I_TY_quarter", 4)):
        split = parts(n, labels, seed, m)
        small = min(p.size for p in split) < 2 * (k + 1) or (
            labels is not None and min(int(np.bincount(labels[p], minlength=int(labels.max()) + 1).min())
                                       for p in split) < k + 1)
        value = math.nan if small else float(np.mean([estimate(p) for p in split]))
        if not math.isfinite(value):
            break
        out[key] = value
    if out["I_TY_quarter"] is not None:
        out.update(knn_gain=(full - out["I_TY_quarter"]) / 2.0, knn_from_rows=n // 4)
    elif out["I_TY_half"] is not None:
        out.update(knn_gain=full - out["I_TY_half"], knn_from_rows=n // 2)
    return out


def _knn_curve(z_a: np.ndarray, z_b: np.ndarray, labels: bool, k: int, seed: int, full: float) -> dict:
    """The k-NN estimate on halves and quarters of the rows (means over the disjoint parts, bits; None where a
    part is too small), its mean gain per doubling of the rows up to all of them (``knn_gain``) and the
    resolution check of the estimate on all rows (``resolution``, `_resolution`).

    The gain is (I(n) − I(n/4)) / 2 when the quarters can be estimated, else I(n) − I(n/2); ``I(n)`` is the
    estimate on all rows (``full``, already computed). Cost: about 3/4 of one estimate on all rows (O(n²)).
    """
    out = _gain(lambda rows: knn_bits(z_a[rows], z_b[rows], labels, k), z_a.shape[0], z_b if labels else None, k, seed,
                full)
    return out | {"resolution": _resolution(z_a, z_b, labels, k)}
