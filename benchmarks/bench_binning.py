"""Binning speed on the SZT workload, as ratios measured side by side in one run.

Workload: the 4,096 12-bit SZT inputs, the six hidden layers of the 12-10-7-5-4-3-2 tanh network
(widths 10, 7, 5, 4, 3, 2) and 50 recorded epochs: 300 (epoch, layer) activation matrices. They are
synthesised (tanh of random projections whose scale grows over "epochs", so later epochs saturate), float32
as a trained network would give; no training is needed for a speed comparison.

Compared, on the same activations and the SZT edges np.linspace(-1, 1, 30):
  1. reference: the original IDNNs algorithm (ravidziv/IDNNs, idnns/information/information_process.py),
     re-implemented here: symbols bins[np.digitize(t) - 1], distinct rows by a void view, and H(T|X),
     H(T|Y) by a loop over the distinct inputs / labels that masks the rows of each and counts them
     (the original farms the per-input loop out to joblib workers; we run it serially, which only flatters
     the reference on this 2-core machine). It is timed on a subset of pairs and extrapolated.
  2. numpy: a straightforward vectorised version, np.unique(codes, axis=0) over rows plus bincounts.
  3. infoplane: BinningEstimator(edges=...).estimate per pair (full validation included), and the other
     binning schemes for comparison.

Usage: python benchmarks/bench_binning.py [--quick]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _machine import describe

from infoplane.estimators import BinningEstimator

WIDTHS = (10, 7, 5, 4, 3, 2)


def szt_inputs() -> np.ndarray:
    rows = np.arange(4096)
    return ((rows[:, None] >> np.arange(11, -1, -1)) & 1).astype(np.float32)


def synthetic_activations(n_epochs: int, seed: int = 0) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """acts[epoch][layer] of shape (4096, width), and labels: a fixed random tanh net with growing weights."""
    rng = np.random.default_rng(seed)
    x = szt_inputs()
    y = (x.sum(1) + rng.normal(scale=1.0, size=4096) > 6).astype(np.int64)
    weights, fan_in = [], 12
    for w in WIDTHS:
        weights.append(rng.normal(size=(fan_in, w)) / np.sqrt(fan_in))
        fan_in = w
    acts = []
    for scale in np.geomspace(0.5, 8.0, n_epochs):
        h, layers = (x - 0.5) * 2, []
        for w in weights:
            h = np.tanh(scale * h @ w).astype(np.float32)
            layers.append(h)
        acts.append(layers)
    return acts, y


def reference_original(t: np.ndarray, y: np.ndarray, bins: np.ndarray) -> tuple[float, float]:
    """The original per-input-loop algorithm (our own re-implementation of its steps)."""
    bins = bins.astype(np.float32)
    symbols = bins[np.digitize(t.reshape(-1), bins) - 1].reshape(len(t), -1)

    def entropy_of_rows(rows: np.ndarray) -> float:
        view = np.ascontiguousarray(rows).view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))
        _, counts = np.unique(view, return_counts=True)
        p = counts / float(counts.sum())
        return float(-np.sum(p * np.log2(p)))

    inputs = np.arange(len(t))  # every SZT input is distinct: input i is row i
    n_inputs = len(inputs)
    h_t = entropy_of_rows(symbols)
    h_t_given_x = sum(entropy_of_rows(symbols[inputs == i]) / n_inputs for i in range(n_inputs))
    labels = np.unique(y)
    h_t_given_y = sum(np.mean(y == c) * entropy_of_rows(symbols[y == c]) for c in labels)
    return h_t - h_t_given_x, h_t - h_t_given_y


def numpy_vectorised(t: np.ndarray, y: np.ndarray, bins: np.ndarray) -> tuple[float, float]:
    """Straightforward vectorised numpy: clip, digitize, np.unique over rows, bincount the joint with y."""
    codes = np.digitize(np.clip(t, bins[0], bins[-1]), bins)
    _, inv = np.unique(codes, axis=0, return_inverse=True)
    inv = inv.reshape(-1)

    def h(counts):
        p = counts[counts > 0] / len(t)
        return float(-(p * np.log2(p)).sum())

    h_t = h(np.bincount(inv))
    joint = np.bincount(inv * 2 + y)
    return h_t, h_t + h(np.bincount(y)) - h(joint)


def time_pairs(fn, pairs, y, *args, repeat: int = 1) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        for t in pairs:
            fn(t, y, *args)
        best = min(best, time.perf_counter() - start)
    return best



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 epochs, 6 reference pairs (< 1 minute)")
    args = ap.parse_args(argv)
    n_epochs = 10 if args.quick else 50
    n_ref = 6 if args.quick else 30
    acts, y = synthetic_activations(n_epochs)
    pairs = [t for layers in acts for t in layers]
    bins = np.linspace(-1, 1, 30)
    est = BinningEstimator(edges=bins.astype(np.float32))
    print(f"machine: {describe()}")
    print(f"workload: {len(pairs)} (epoch, layer) pairs = {n_epochs} epochs x 6 layers "
          f"(widths {WIDTHS}), 4,096 inputs, SZT edges linspace(-1, 1, 30)")

    # Same numbers first: the comparison is only meaningful if all three agree.
    rng = np.random.default_rng(1)
    check = [pairs[i] for i in rng.choice(len(pairs), size=min(n_ref, len(pairs)), replace=False)]
    for t in check:
        a = reference_original(t, y, bins)
        b = numpy_vectorised(t, y, bins.astype(np.float32))
        r = est.estimate(t, y)
        if not (np.allclose(a, (r.I_XT, r.I_TY), atol=1e-10) and np.allclose(b, a, atol=1e-10)):
            print(f"MISMATCH: reference {a}, numpy {b}, infoplane {(r.I_XT, r.I_TY)}")
            return 1
    print(f"agreement: reference, numpy and infoplane give identical I(T;X), I(T;Y) on {len(check)} pairs")

    t_ref_subset = time_pairs(reference_original, check, y, bins)
    t_ref = t_ref_subset / len(check) * len(pairs)
    t_np = time_pairs(numpy_vectorised, pairs, y, bins.astype(np.float32), repeat=3)
    t_ours = time_pairs(lambda t, y: est.estimate(t, y), pairs, y, repeat=3)
    print(f"reference (original per-input loop): {t_ref_subset:.2f} s on {len(check)} pairs, "
          f"extrapolated to {t_ref:.1f} s for all {len(pairs)} pairs ({1e3 * t_ref / len(pairs):.1f} ms/pair)")
    print(f"numpy np.unique(axis=0):             {t_np:.3f} s ({1e3 * t_np / len(pairs):.2f} ms/pair)")
    print(f"infoplane BinningEstimator(edges):   {t_ours:.3f} s ({1e3 * t_ours / len(pairs):.2f} ms/pair)")
    print(f"RATIO reference / infoplane = {t_ref / t_ours:,.0f}x   (required >= 300x)")
    print(f"RATIO numpy / infoplane     = {t_np / t_ours:.2f}x   (required >= 2x)")
    for name, other in [
        ("width 0.07", BinningEstimator(bin_width=0.07)),
        ("n_bins 30, range (-1, 1)", BinningEstimator(n_bins=30, range=(-1, 1))),
        ("n_bins 30, data range", BinningEstimator(n_bins=30)),
        ("adaptive, 30 bins", BinningEstimator(n_bins=30, strategy="adaptive")),
    ]:
        t_other = time_pairs(lambda t, y, e=other: e.estimate(t, y), pairs, y, repeat=3)
        print(f"  other scheme {name:<26} {t_other:.3f} s  (reference / it = {t_ref / t_other:,.0f}x)")
    ok = t_ref / t_ours >= 300 and t_np / t_ours >= 2
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
