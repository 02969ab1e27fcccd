"""The ground-truth tasks: what they are, their true mutual information (bits), and how they sample."""
from __future__ import annotations

import functools
import itertools
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._core.validation import check_choice, check_int_param
from . import _netlike as NL
from . import _samplers as S
from ._class_mi import CLASS_MI
from ._closed_forms import code_entropy_bits, gaussian_mi_bits, student_t_mi_bits

__all__ = ["Task", "tasks", "get_task", "class_task_means", "CLASS_SPECS", "network_codes_table", "TASK_GROUPS"]

#: The groups `tasks` can select: "default" (what `evaluate` runs unless told), "wide" (the embedded tasks of
#: 1,024 and 4,096 columns: opt-in, as they cost minutes per estimator), "all".
TASK_GROUPS = ("default", "wide", "all")

TaskKind = Literal["continuous", "labels"]


@dataclass(frozen=True, eq=False)
class Task:
    """One sampler of known mutual information I(T;Y), in bits.

    Attributes
    ----------
    name : str
        Unique name, e.g. ``"gauss-dense-25x25"``.
    kind : {"continuous", "labels"}
        ``"continuous"``: y is an (n, k) float array; ``"labels"``: y is (n,) int64 class labels.
    true_bits : float
        I(T;Y) in bits (closed form, or a stored Monte Carlo value with standard error ``stderr_bits``).
    dims : int
        Number of columns of t (the "layer width").
    family : str
        "gaussian", "transform", "student-t", "wide", "classes", "network", "embedded", "digits" or "symmetric".
    description : str
        What the task is, in words.
    stderr_bits : float
        Standard error of ``true_bits`` (0 for closed forms and exact quadratures).
    group : {"default", "wide"}
        ``"wide"``: opt-in (``tasks("wide")`` or ``tasks("all")``); every other task is in ``"default"``.
    """

    name: str
    kind: TaskKind
    true_bits: float
    dims: int
    family: str
    description: str
    sampler: Callable[..., tuple[np.ndarray, np.ndarray]] = field(repr=False)
    params: Mapping[str, Any] = field(default_factory=dict, repr=False)
    stderr_bits: float = 0.0
    group: str = "default"

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` rows ``(t, y)`` drawn with ``seed`` (the same n and seed give the same arrays).

        The random stream is seeded by ``(seed, crc32(name))``, so tasks do not share noise.
        """
        n = check_int_param(n, "n", f"Task {self.name!r}.sample", minimum=2)
        seed = check_int_param(seed, "seed", f"Task {self.name!r}.sample", minimum=0)
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        return self.sampler(n, rng, **self.params)


# --------------------------------------------------------------------------------------------------
# Covariances
# --------------------------------------------------------------------------------------------------
def dense_cov(dim_a: int, dim_b: int, rho: float) -> np.ndarray:
    """Equicorrelated joint covariance: unit variances, every off-diagonal entry ``rho`` (within and across)."""
    d = dim_a + dim_b
    return np.full((d, d), rho) + (1.0 - rho) * np.eye(d)


def sparse_cov(dim_a: int, dim_b: int, rho: float, n_pairs: int) -> np.ndarray:
    """Unit variances; A_i and B_i correlated by ``rho`` for i < ``n_pairs``, every other pair independent."""
    cov = np.eye(dim_a + dim_b)
    for i in range(n_pairs):
        cov[i, dim_a + i] = cov[dim_a + i, i] = rho
    return cov


def _gaussian(name: str, cov: np.ndarray, dim_a: int, family: str, description: str,
              transform: str | None = None, pad: int = 0) -> Task:
    return Task(name, "continuous", gaussian_mi_bits(cov, dim_a), dim_a + pad, family, description,
                S.gaussian_pair, {"chol": np.linalg.cholesky(cov), "dim_a": dim_a, "transform": transform,
                                  "pad": pad})


def _gaussian_tasks() -> list[Task]:
    out = [_gaussian("gauss-1x1", sparse_cov(1, 1, 0.8, 1), 1, "gaussian", "bivariate normal, correlation 0.8")]
    for d, rho in ((2, 0.5), (5, 0.3), (25, 0.1), (50, 0.1)):
        out.append(_gaussian(f"gauss-dense-{d}x{d}", dense_cov(d, d, rho), d, "gaussian",
                             f"{d}+{d} normal variables, every pair correlated {rho} (dense)"))
    for d, pairs in ((5, 2), (25, 3), (50, 3)):
        out.append(_gaussian(f"gauss-sparse-{d}x{d}", sparse_cov(d, d, 0.8, pairs), d, "gaussian",
                             f"{d}+{d} normal variables, {pairs} pairs A_i,B_i correlated 0.8 (sparse)"))
    base = sparse_cov(3, 3, 0.6, 3)
    for tr in S.TRANSFORMS:
        out.append(_gaussian(f"{tr}-3x3", base, 3, "transform",
                             f"3+3 normals, pairs correlated 0.6, each side mapped by {tr} (MI unchanged)",
                             transform=tr))
    for d, pad in ((2, 200), (5, 500)):
        out.append(_gaussian(f"wide-gauss-{d}x{d}+{pad}", sparse_cov(d, d, 0.8, d), d, "wide",
                             f"{d}+{d} normals, pairs correlated 0.8, A padded with {pad} independent "
                             "N(0,1) columns (MI unchanged)", pad=pad))
    return out


def _student_tasks() -> list[Task]:
    out = []
    for d, rho, dof in ((1, 0.0, 1), (2, 0.6, 3), (5, 0.3, 5)):
        cov = sparse_cov(d, d, rho, d) if d < 5 else dense_cov(d, d, rho)
        corr = "uncorrelated" if rho == 0 else f"correlation {rho}" + (" (dense)" if d >= 5 else " (pairs)")
        out.append(Task(f"student-t-{d}x{d}-dof{dof}", "continuous", student_t_mi_bits(cov, d, dof), d,
                        "student-t", f"{d}+{d} multivariate Student-t, {dof} dof, {corr}",
                        S.student_t_pair, {"chol": np.linalg.cholesky(cov), "dim_a": d, "dof": float(dof)}))
    return out


# --------------------------------------------------------------------------------------------------
# Class-label tasks: I(T;Y) by Monte Carlo with the exact posterior, stored in _class_mi.py
# --------------------------------------------------------------------------------------------------
#: name -> (K classes, dimension of t, signal dimensions, scale of the means, seed of the means)
CLASS_SPECS: dict[str, tuple[int, int, int, float, int]] = {
    "classes-K2-d2": (2, 2, 2, 2.0, 1),
    "classes-K4-d2": (4, 2, 2, 2.0, 2),
    "classes-K4-d10": (4, 10, 10, 2.5, 3),
    "classes-K10-d10": (10, 10, 10, 2.5, 4),
    "classes-K2-d100-s2": (2, 100, 2, 2.0, 5),
    "classes-K10-d100": (10, 100, 100, 3.0, 6),
    "classes-K10-d100-s5": (10, 100, 5, 3.0, 7),
    "wide-classes-K4-d300-s2": (4, 300, 2, 2.0, 8),
}


def class_task_means(name: str) -> np.ndarray:
    """The (K, s) class means of a class-label task: N(0, scale²/s) entries drawn with the spec's seed."""
    k, _, s, scale, seed = CLASS_SPECS[name]
    return np.random.default_rng(seed).standard_normal((k, s)) * (scale / np.sqrt(s))


def _class_tasks() -> list[Task]:
    out = []
    for name, (k, d, s, _, _) in CLASS_SPECS.items():
        stored = CLASS_MI[name]
        where = "all dimensions" if s == d else f"the first {s} of {d} dimensions (the rest N(0, 1) noise)"
        out.append(Task(name, "labels", stored["bits"], d, "wide" if name.startswith("wide") else "classes",
                        f"{k} equiprobable classes N(mu_k, I) in {d} dimensions, means differing in {where}; "
                        f"I(T;Y) by Monte Carlo (n={stored['n']:,}, stderr {stored['stderr']:.1e} bits)",
                        S.gaussian_classes, {"means": class_task_means(name), "dim": d},
                        stderr_bits=stored["stderr"]))
    return out


# --------------------------------------------------------------------------------------------------
# Deterministic networks on discrete inputs
# --------------------------------------------------------------------------------------------------
#: name -> (layer widths of a step-activation network on the 1,000 inputs {0..9}^3, seed of its weights)
NETWORK_SPECS: dict[str, tuple[tuple[int, ...], int]] = {
    "network-step-4": ((4,), 11),
    "network-step-12-8": ((12, 8), 12),
}


def network_codes_table(name: str) -> np.ndarray:
    """The output codes (M=1000, width) of a network task, one row per input x in {0..9}^3 (scaled to [-1, 1]).

    Each layer is h = 1[W h_prev + b > 0] with W, b ~ N(0, 1) (seeded); a deeper layer sees 2h − 1.
    """
    widths, seed = NETWORK_SPECS[name]
    rng = np.random.default_rng(seed)
    h = np.array(list(itertools.product(range(10), repeat=3)), dtype=np.float64) / 4.5 - 1.0
    for i, w in enumerate(widths):
        weights, bias = rng.standard_normal((h.shape[1], w)), rng.standard_normal(w)
        h = ((2.0 * h - 1.0 if i else h) @ weights + bias > 0).astype(np.float64)
    return h


def _network_tasks() -> list[Task]:
    out = []
    for name, (widths, _) in NETWORK_SPECS.items():
        codes = network_codes_table(name)
        out.append(Task(name, "labels", code_entropy_bits(codes), codes.shape[1], "network",
                        f"step-activation network {'-'.join(map(str, widths))} on the 1,000 inputs {{0..9}}^3; "
                        "y = input index, so I(T;Y) = I(T;X) = H(T) (exact by enumeration)",
                        S.network_codes, {"codes": codes}))
    return out


# --------------------------------------------------------------------------------------------------
# Ground truth that looks like a network (_netlike): embedded wide layers, digits, symmetric dependence
# --------------------------------------------------------------------------------------------------
#: Signals of the embedded tasks: label -> (kind, sampler, params, dimension, true bits, stderr, words)
def _embed_signals() -> dict[str, tuple]:
    cov = sparse_cov(5, 5, 0.8, 5)
    k10 = CLASS_MI["classes-K10-d10"]
    return {
        "gauss-5x5": ("continuous", S.gaussian_pair, {"chol": np.linalg.cholesky(cov), "dim_a": 5}, 5,
                      gaussian_mi_bits(cov, 5), 0.0, "5+5 normals, pairs correlated 0.8 (y: the 5 partners)"),
        "K10-d10": ("labels", S.gaussian_classes, {"means": class_task_means("classes-K10-d10"), "dim": 10}, 10,
                    k10["bits"], k10["stderr"], "the 10 Gaussian classes of classes-K10-d10 (y: the class)"),
    }


def _embedded_tasks() -> list[Task]:
    out = []
    for width in NL.EMBED_WIDTHS:
        for label, (kind, sampler, params, dim, bits, se, words) in _embed_signals().items():
            for how in ("linear", "tanh"):
                weights, bias = NL.embed_matrix(how, width, dim, seed=width + dim)
                mapping = ("a linear isometry (orthonormal rows)" if how == "linear"
                           else "tanh of a random linear map N(0, 1/d) plus bias")
                out.append(Task(f"embed-{how}-{label}-in{width}", kind, bits, width, "embedded",
                                f"{words}, t mapped injectively into {width} columns by {mapping} (MI unchanged)",
                                NL.embedded, {"signal": sampler, "signal_params": params, "kind": how,
                                              "weights": weights, "bias": bias}, stderr_bits=se,
                                group="wide" if width >= NL.WIDE_GROUP_MIN_WIDTH else "default"))
    return out


def _digits_tasks() -> list[Task]:
    NL.check_digits_are_distinct()
    h10, beta = math.log2(10), 0.1
    bsc = 1.0 - NL.binary_entropy_bits(beta)
    pixels = "scikit-learn digits, pixels dequantised (p + U[0,1))/17 so the image (and class) is floor(17 t)"
    out = []
    for target, what in (("continuous", "another image of the same class"), ("labels", "the class")):
        out.append(Task(f"digits-same-class-{target}", target, h10, 64, "digits",
                        f"{pixels}; class C uniform on 10, t an image of C, y {what}; I = H(C) = log2 10",
                        NL.digits_pairs, {"target": target}))
    for target, what in (("continuous", "an image of parity C'"), ("labels", "C'")):
        out.append(Task(f"digits-bsc{beta}-{target}", target, bsc, 64, "digits",
                        f"{pixels}; C = parity (fair coin), t an image of parity C, C' = C flipped with "
                        f"probability {beta}, y {what}; I = H(C)(1 - H({beta}))", NL.digits_bsc,
                        {"beta": beta, "target": target}))
    out.append(Task("digits-side-by-side-continuous", "continuous", 2 * h10, 128, "digits",
                    f"{pixels}; two digits side by side, classes C1, C2 uniform; y = two other images of C1, C2 "
                    "side by side; I = 2 log2 10", NL.digits_side_by_side, {"target": "continuous"}))
    out.append(Task("digits-side-by-side-labels", "labels", h10, 128, "digits",
                    f"{pixels}; two digits side by side, classes C1, C2 uniform; y = C1 (the right digit a "
                    "distractor); I = log2 10", NL.digits_side_by_side, {"target": "labels"}))
    return out


def _symmetric_tasks() -> list[Task]:
    dim, rho, scale = 3, 0.9, 2.0
    return [
        Task(f"symmetric-sign-{dim}x{dim}", "continuous", dim * NL.sign_pair_bits(rho), dim, "symmetric",
             f"{dim} pairs (U, V) correlated {rho}, t = S U with a fair random sign S, y = V: E[t | y] = E[t] "
             "(invisible to a predictor of the mean); I = I(|U|;|V|) per pair by quadrature",
             NL.sign_pairs, {"dim": dim, "rho": rho}),
        Task(f"symmetric-variance-K2-d{dim * 3}", "labels", NL.variance_classes_bits(dim * 3, scale), dim * 3,
             "symmetric", f"two equiprobable classes N(0, I) and N(0, {scale:g}² I) in {dim * 3} dimensions: equal "
             "means, E[t | y] = E[t]; I by quadrature over ‖t‖² (chi-square)", NL.variance_classes,
             {"dim": dim * 3, "scale": scale}),
    ]


@functools.lru_cache(maxsize=1)
def _all_tasks() -> tuple[Task, ...]:
    out = (*_gaussian_tasks(), *_student_tasks(), *_class_tasks(), *_network_tasks(), *_embedded_tasks(),
           *_digits_tasks(), *_symmetric_tasks())
    return out


def tasks(group: str = "default") -> list[Task]:
    """The ground-truth tasks of ``group`` (a new list of the same immutable `Task` objects), in a fixed order.

    Parameters
    ----------
    group : {"default", "wide", "all"}
        ``"default"``: every task but the opt-in wide ones (what `evaluate` runs when ``tasks=None``);
        ``"wide"``: the embedded tasks of 1,024 and 4,096 columns (minutes per estimator); ``"all"``: both.
    """
    group = check_choice(group, "group", "tasks", TASK_GROUPS)
    return [t for t in _all_tasks() if group == "all" or t.group == group]


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name raises `KeyError` listing the available ones."""
    for task in _all_tasks():
        if task.name == name:
            return task
    available = ", ".join(t.name for t in _all_tasks())
    raise KeyError(f"Unknown ground-truth task {name!r}; available tasks: {available}.")


def class_mi_source(n: int = 2_000_000, seed: int = 20261130) -> str:
    """The text of ``_class_mi.py``: every class-label task's I(T;Y) by `class_mi_monte_carlo` (Rao-Blackwell form).

    Regenerate with ``python -c "from infoplane.groundtruth._tasks import class_mi_source as s; print(s())"
    > infoplane/groundtruth/_class_mi.py`` (about a minute on one core).
    """
    from ._closed_forms import class_mi_monte_carlo

    lines = [
        '"""Stored I(T;Y) in bits of the class-label tasks, by Monte Carlo with the exact posterior.',
        "",
        "I = log2 K - E_t H(Y|T=t) (Rao-Blackwell form of `class_mi_monte_carlo`), n draws with",
        "numpy.random.default_rng(seed); stderr = sample standard deviation / sqrt(n), in bits. Generated by",
        "`infoplane.groundtruth._tasks.class_mi_source`; tests recompute each with another seed and the other form.",
        '"""',
        "CLASS_MI = {",
    ]
    for name in CLASS_SPECS:
        bits, stderr = class_mi_monte_carlo(class_task_means(name), n, seed)
        lines.append(f'    "{name}": {{"bits": {bits!r}, "stderr": {stderr:.3e}, "n": {n}, "seed": {seed},')
        lines.append('        "method": "rao-blackwell"},')
    lines.append("}")
    return "\n".join(lines) + "\n"
