"""Ground truth that looks like a network: embedded wide layers, digits with real-data structure, symmetry.

Three families of tasks of exactly known I(T;Y), in bits (issue 19, item 4):

- ``embedded``: a low-dimensional signal mapped injectively into D = 512, 1,024 or 4,096 columns, either by a
  linear isometry (D x d with orthonormal columns) or by tanh of a random linear map (full column rank; tanh is
  strictly increasing), so I(T;Y) equals the signal's (MI is unchanged by an injective map). The signal is a
  Gaussian pair (continuous y) or Gaussian classes (class labels y).
- ``digits``: scikit-learn's 8x8 digits (1,797 distinct images, no image in two classes), after Lee & Rhee
  (NeurIPS 2024). Each pixel is dequantised, x = (pixel + U[0, 1)) / 17, so the image (and hence its class) is
  floor(17 x): the class C is a function of t and of y, t and y are independent given the classes, and
  I(T;Y) = I(C_T; C_Y) exactly: same-class pairs, I = H(C) = log2 10; a binary symmetric channel of flip rate
  beta on the parity of the digit, I = H(C)(1 - H(beta)) with H(C) = 1; two digits side by side.
- ``symmetric``: dependence with E[T|Y] = E[T] (what a latent-MI autoencoder, which predicts one side from the
  other, cannot see): T_i = S_i U_i with a random sign S_i, Y_i = V_i, (U_i, V_i) a Gaussian pair; and two
  classes that differ only in variance. Exact values by quadrature (`sign_pair_bits`, `variance_classes_bits`).
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy import integrate, stats

from .._core.units import LN2 as _LN2

__all__ = ["EMBED_WIDTHS", "WIDE_GROUP_MIN_WIDTH", "sign_pair_bits", "variance_classes_bits", "binary_entropy_bits",
           "embed_matrix", "digits_data", "embedded", "digits_pairs", "digits_bsc", "digits_side_by_side",
           "sign_pairs", "variance_classes", "check_digits_are_distinct"]

#: Widths D of the embedded tasks; those >= WIDE_GROUP_MIN_WIDTH are in the opt-in "wide" group.
EMBED_WIDTHS = (512, 1024, 4096)
WIDE_GROUP_MIN_WIDTH = 1024
_DEQUANT = 17.0  # pixels are integers 0..16: (pixel + U[0,1)) / 17 lies in [0, 1) and floor(17 x) = pixel


# --------------------------------------------------------------------------------------------------
# Exact values
# --------------------------------------------------------------------------------------------------
def binary_entropy_bits(p: float) -> float:
    """H(p) = −p log2 p − (1 − p) log2(1 − p), bits."""
    return float(-sum(q * math.log2(q) for q in (p, 1.0 - p) if q > 0))


@functools.cache
def sign_pair_bits(rho: float) -> float:
    """I(S U; V) in bits, (U, V) standard normal with correlation ``rho``, S = ±1 a fair coin independent of both.

    sign(SU) is a fair coin independent of (|U|, V), and the law of (U, V) is invariant under (U, V) -> (−U, −V),
    so I(SU; V) = I(|U|; |V|) = ∫∫ p(a, b) log2 [p(a, b) / (p(a) p(b))] over a, b > 0, with
    p(a, b) = 2 [φ_ρ(a, b) + φ_ρ(a, −b)] and half-normal marginals 2 φ(a). Computed by adaptive 2-D quadrature
    (absolute error below 1e-9 bits). E[SU | V] = 0: the dependence is invisible to the conditional mean.
    """
    r = float(rho)
    c = 1.0 / (2 * math.pi * math.sqrt(1 - r * r))

    def integrand(b: float, a: float) -> float:
        q = -(a * a + b * b) / (2 * (1 - r * r))
        cross = a * b * r / (1 - r * r)
        joint = 2 * c * (math.exp(q + cross) + math.exp(q - cross))
        marg = 2.0 / math.pi * math.exp(-(a * a + b * b) / 2)
        return joint * math.log(joint / marg) if joint > 0 else 0.0

    value, _ = integrate.dblquad(integrand, 0, 12, 0, 12, epsabs=1e-12, epsrel=1e-10)
    return float(value / _LN2)


@functools.cache
def variance_classes_bits(dim: int, scale: float) -> float:
    """I(T;Y) in bits, Y a fair coin, T | Y=0 ~ N(0, I_dim), T | Y=1 ~ N(0, scale² I_dim) (equal means).

    The posterior depends on t only through r = ‖t‖², which is σ² χ²_dim under each class, so
    I = 1 − E_r H(P(Y=1 | r)), one adaptive 1-D quadrature over r (absolute error below 1e-9 bits).
    """
    s2 = float(scale) ** 2

    def integrand(r: float) -> float:
        f0, f1 = stats.chi2.pdf(r, dim), stats.chi2.pdf(r / s2, dim) / s2
        total = f0 + f1
        return 0.5 * total * binary_entropy_bits(f1 / total) if total > 0 else 0.0

    upper = stats.chi2.ppf(1 - 1e-16, dim) * s2
    value, _ = integrate.quad(integrand, 0, upper, limit=400, epsabs=1e-12, points=[dim * s2 ** 0.5])
    return 1.0 - float(value)


# --------------------------------------------------------------------------------------------------
# Fixed ingredients: embedding matrices and the digits
# --------------------------------------------------------------------------------------------------
def embed_matrix(kind: str, width: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) of an injective embedding of ``dim`` coordinates into ``width`` columns.

    ``"linear"``: W (dim, width) with orthonormal rows (t = s W, an isometry: ‖t − t'‖ = ‖s − s'‖), b = 0.
    ``"tanh"``: W ~ N(0, 1/dim) entries (full row rank with probability one), b ~ N(0, 0.25); t = tanh(s W + b).
    """
    rng = np.random.default_rng([seed, width, dim])
    if kind == "linear":
        q, _ = np.linalg.qr(rng.standard_normal((width, dim)))
        return np.ascontiguousarray(q.T), np.zeros(width)
    return rng.standard_normal((dim, width)) / math.sqrt(dim), 0.5 * rng.standard_normal(width)


@functools.lru_cache(maxsize=1)
def digits_data() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: images (1797, 64) uint8 in 0..16 and labels (1797,) int64 (shipped, no download)."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    return images.astype(np.uint8), labels.astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Samplers (module-level: tasks pickle to parallel workers)
# --------------------------------------------------------------------------------------------------
def embedded(n: int, rng: np.random.Generator, *, signal, signal_params: dict, kind: str, weights: np.ndarray,
             bias: np.ndarray):
    """The rows of a low-dimensional task ``signal`` with t mapped by `embed_matrix` (y unchanged)."""
    s, y = signal(n, rng, **signal_params)
    z = s @ weights + bias
    return np.ascontiguousarray(np.tanh(z) if kind == "tanh" else z), y


def _pick(rng: np.random.Generator, pools: list[np.ndarray], which: np.ndarray) -> np.ndarray:
    """One image index drawn uniformly from pool ``which[i]`` for every i (vectorised)."""
    sizes = np.array([len(p) for p in pools])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(pools)
    return flat[starts[which] + (rng.random(which.shape[0]) * sizes[which]).astype(np.int64)]


def _dequantised(images: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (images[idx].astype(np.float64) + rng.random((idx.shape[0], images.shape[1]))) / _DEQUANT


def _class_pools(groups: tuple[tuple[int, ...], ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    images, labels = digits_data()
    return images, [np.flatnonzero(np.isin(labels, g)) for g in groups]


_DIGIT_CLASSES = tuple((d,) for d in range(10))
_PARITY = ((0, 2, 4, 6, 8), (1, 3, 5, 7, 9))


def digits_pairs(n: int, rng: np.random.Generator, *, target: str):
    """C uniform on the 10 digits; t an image of class C; y another image of class C (drawn independently) or C."""
    images, pools = _class_pools(_DIGIT_CLASSES)
    c = rng.integers(0, 10, size=n)
    t = _dequantised(images, _pick(rng, pools, c), rng)
    if target == "labels":
        return t, c.astype(np.int64)
    return t, _dequantised(images, _pick(rng, pools, c), rng)


def digits_bsc(n: int, rng: np.random.Generator, *, beta: float, target: str):
    """C a fair coin (the digit's parity); t an image of parity C; C' = C flipped with probability ``beta``;
    y an image of parity C' or C' itself."""
    images, pools = _class_pools(_PARITY)
    c = rng.integers(0, 2, size=n)
    c_out = c ^ (rng.random(n) < beta).astype(c.dtype)
    t = _dequantised(images, _pick(rng, pools, c), rng)
    if target == "labels":
        return t, c_out.astype(np.int64)
    return t, _dequantised(images, _pick(rng, pools, c_out), rng)


def digits_side_by_side(n: int, rng: np.random.Generator, *, target: str):
    """Two digits side by side (t: 8 x 16 pixels, 128 columns), classes C1, C2 uniform and independent.

    ``target="continuous"``: y = two other images of classes C1, C2 side by side (I = 2 log2 10);
    ``target="labels"``: y = C1, the right digit a distractor (I = log2 10).
    """
    images, pools = _class_pools(_DIGIT_CLASSES)
    c = rng.integers(0, 10, size=(n, 2))

    def side_by_side() -> np.ndarray:
        left, right = (_dequantised(images, _pick(rng, pools, c[:, i]), rng).reshape(n, 8, 8) for i in (0, 1))
        return np.concatenate([left, right], axis=2).reshape(n, 128)

    t = side_by_side()
    return (t, c[:, 0].astype(np.int64)) if target == "labels" else (t, side_by_side())


def sign_pairs(n: int, rng: np.random.Generator, *, dim: int, rho: float):
    """(U_i, V_i) standard normal pairs of correlation ``rho`` (i < dim, independent); t_i = S_i U_i, y_i = V_i."""
    u = rng.standard_normal((n, dim))
    v = rho * u + math.sqrt(1 - rho * rho) * rng.standard_normal((n, dim))
    signs = np.where(rng.random((n, dim)) < 0.5, -1.0, 1.0)
    return np.ascontiguousarray(signs * u), v


def variance_classes(n: int, rng: np.random.Generator, *, dim: int, scale: float):
    """Y a fair coin; t ~ N(0, I) for Y = 0 and N(0, scale² I) for Y = 1 (the class means are equal)."""
    y = rng.integers(0, 2, size=n)
    t = rng.standard_normal((n, dim)) * np.where(y == 1, scale, 1.0)[:, None]
    return t, y.astype(np.int64)


def check_digits_are_distinct() -> None:
    """Raise if two digits images are equal (the class would then not be a function of the image)."""
    images, labels = digits_data()
    _, inverse = np.unique(images, axis=0, return_inverse=True)
    if len(np.unique(inverse.ravel())) != len(labels):
        raise RuntimeError("scikit-learn's digits hold a repeated image: the digits tasks' MI would not be exact.")

