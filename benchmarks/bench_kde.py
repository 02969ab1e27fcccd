"""KDE bound speed and memory, measured side by side in one run.

0. Both bounds (pairwise-KL upper and Bhattacharyya lower, I(T;X) and I(T;Y)) at N = 4,096 and 20,000,
   d = 10 (the SZT workload): infoplane's ``KDEEstimator(bound="both")`` (one pass) and the two separate
   estimators, against a plain one-pass float32 chunked numpy implementation (float32 Gram products,
   float32 exponentials of both scales, float32 one-hot class sums) -- the fastest simple thing numpy does.
   Best of a few repeats each, interleaved; both agree with each other and with float64.
1. Speed: infoplane's chunked torch KDEEstimator against a dense N x N float64 numpy reference (the
   formulas of Saxe et al. 2018 with the full distance matrix and scipy's logsumexp), at sizes where the
   dense matrix fits, on the same activations; the two must agree to 1e-5 bits.
2. Memory: peak resident memory of one estimate at N = 10,000 and 60,000 (MNIST size). tracemalloc does
   not see torch's CPU allocations, so each N runs in a fresh subprocess that records its resident memory
   (VmRSS) just before the estimate, resets the kernel's peak counter (/proc/self/clear_refs, so the
   import-time peak of torch cannot hide the estimate's), and reads the peak (VmHWM, the same number
   resource.getrusage reports as ru_maxrss) afterwards; the difference is what the estimate needed. A dense float64 N x N matrix would need 8 N^2 bytes
   (0.8 GB at 10,000; 28.8 GB at 60,000, more than this machine has).

Usage: python benchmarks/bench_kde.py [--quick] [--both-only]
(--quick: N = 4,096 only, smaller dense sizes, N = 10,000 only; --both-only: section 0 only)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np
from _machine import describe
from scipy.special import logsumexp

from infoplane.estimators import KDEEstimator

D, VAR = 10, 1e-1


def layer(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20))
    h = np.tanh(x @ rng.normal(size=(20, D)) / 3)
    y = (x[:, :4].argmax(1)).astype(np.int64)  # 4 classes
    return h, y


def numpy_float32_both(h: np.ndarray, y: np.ndarray, var: float, memory_mb: float = 256.0) -> dict[str, tuple]:
    """Both bounds' (I(T;X), I(T;Y)) in bits, one pass, float32 products, chunked (the speed reference)."""
    n = len(h)
    a = (h - h.mean(0)).astype(np.float32)
    sq = (a * a).sum(1)
    onehot = np.eye(int(y.max()) + 1, dtype=np.float32)[y]
    rows = max(1, int(memory_mb * 2**20 // (4 * n * 4)))
    sums = {s: (np.empty(n), np.empty(n)) for s in (2 * var, 8 * var)}
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        d2 = sq[start:stop, None] + sq[None, :] - 2 * (a[start:stop] @ a.T)
        np.maximum(d2, 0, out=d2)
        for s, (all_, cls) in sums.items():
            per_class = np.exp(d2 * np.float32(-1 / s)) @ onehot
            all_[start:stop] = np.log(per_class.sum(1, dtype=np.float64))
            cls[start:stop] = np.log(per_class[np.arange(stop - start), y[start:stop]].astype(np.float64))
    p = np.bincount(y) / n
    h_y = -(p[p > 0] * np.log(p[p > 0])).sum()
    out = {}
    for kind, s in (("upper", 2 * var), ("lower", 8 * var)):
        all_, cls = sums[s]
        out[kind] = ((math.log(n) - all_.mean()) / math.log(2), (h_y - (all_ - cls).mean()) / math.log(2))
    return out


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def both_bounds_section(sizes: tuple[int, ...], var: float = 1e-1) -> bool:
    """Section 0: returns whether infoplane's one pass is no slower than the float32 numpy reference."""
    ok = True
    print(f"-- both bounds, d = {D}, noise variance {var}, best of repeats (interleaved)")
    for n in sizes:
        h, y = layer(n)
        h = h.astype(np.float32)  # what a store holds
        repeats = 7 if n <= 5000 else 3  # many short runs: a busy machine steals some of them
        both = KDEEstimator(var, "both")
        both.estimate(h[:100], y[:100])  # warm-up
        t_ref, ref = best_of(lambda h=h, y=y: numpy_float32_both(h, y, var), repeats)
        t_both, res = best_of(lambda h=h, y=y, both=both: both.estimate_bounds(h, y), repeats)
        t_two, _ = best_of(lambda h=h, y=y: [KDEEstimator(var, k).estimate(h, y) for k in ("upper", "lower")], 1)
        t_ref2, _ = best_of(lambda h=h, y=y: numpy_float32_both(h, y, var), 1)
        t_ref = min(t_ref, t_ref2)
        diff = max(max(abs(res[k].I_XT - ref[k][0]), abs(res[k].I_TY - ref[k][1])) for k in ref)
        ok &= t_ref / t_both >= 1
        print(f"N = {n:>6,}: numpy float32 one pass {t_ref:7.3f} s | infoplane bound='both' {t_both:7.3f} s | "
              f"upper + lower separately {t_two:7.3f} s | RATIO numpy/infoplane = {t_ref / t_both:5.2f}x | "
              f"max |diff| vs numpy float32 {diff:.1e} bits (upper I_XT {res['upper'].I_XT:.4f}, "
              f"lower I_XT {res['lower'].I_XT:.4f})")
    return ok


def dense_reference(h: np.ndarray, y: np.ndarray, var: float) -> tuple[float, float]:
    """Upper-bound I(T;X), I(T;Y) in bits with full N x N matrices (numpy float64)."""
    def mean_lse(pts):
        sq = (pts * pts).sum(1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * pts @ pts.T, 0.0)
        return logsumexp(-d2 / (2 * var), axis=1).mean()

    n = len(h)
    hc = h - h.mean(0)
    i_xt = math.log(n) - mean_lse(hc)
    h_t_y = sum(np.mean(y == c) * (math.log(np.sum(y == c)) - mean_lse(hc[y == c])) for c in np.unique(y))
    i_ty = (math.log(n) - mean_lse(hc)) - h_t_y
    return i_xt / math.log(2), i_ty / math.log(2)


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(n: int) -> None:
    h, y = layer(n)
    KDEEstimator(VAR, "upper").estimate(h[:50], y[:50])  # load torch's kernels before measuring
    before = _proc_status_kib("VmRSS")
    # Reset the peak to the current RSS (Linux clear_refs "5"), so importing torch does not mask the estimate.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # pragma: no cover - not Linux: fall back to getrusage (peak since start)
        pass
    start = time.perf_counter()
    r = KDEEstimator(VAR, "upper").estimate(h, y)
    elapsed = time.perf_counter() - start
    try:
        peak = _proc_status_kib("VmHWM")
    except (OSError, RuntimeError):  # pragma: no cover
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n": n, "before_kib": before, "peak_kib": peak, "seconds": elapsed,
                      "I_XT": r.I_XT, "I_TY": r.I_TY}))



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--both-only", action="store_true", help="only section 0 (both bounds vs numpy float32)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    print(f"machine: {describe()}")
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f}")
    ok_both = both_bounds_section((4096,) if args.quick else (4096, 20_000))
    if args.both_only:
        print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}")
        return 0 if ok_both else 1
    print(f"layer: d = {D} units, 4 classes, noise variance {VAR}, bound 'upper' (I(T;X) and I(T;Y))")
    ok = True
    for n in ((1000, 2000) if args.quick else (1000, 2000, 4000, 8000)):
        h, y = layer(n)
        est = KDEEstimator(VAR, "upper")
        est.estimate(h[:100], y[:100])  # warm-up (torch kernels)
        t0 = time.perf_counter()
        ref = dense_reference(h, y, VAR)
        t_dense = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = est.estimate(h, y)
        t_ours = time.perf_counter() - t0
        err = max(abs(r.I_XT - ref[0]), abs(r.I_TY - ref[1]))
        ok &= err < 1e-5 and t_dense / t_ours >= 1
        print(f"N = {n:>6,}: dense numpy {t_dense:7.3f} s | infoplane {t_ours:7.3f} s | "
              f"RATIO dense/infoplane = {t_dense / t_ours:5.2f}x | max |diff| = {err:.1e} bits "
              f"(I_XT {r.I_XT:.4f}, I_TY {r.I_TY:.4f})")
    for n in ((10_000,) if args.quick else (10_000, 60_000)):
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True,
                             check=True)
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        extra_mb = (rec["peak_kib"] - rec["before_kib"]) / 1024
        dense_gb = 8 * n * n / 1e9
        print(f"N = {n:>6,}: peak RSS {rec['peak_kib'] / 1024:7.1f} MiB, of which the estimate added "
              f"{extra_mb:6.1f} MiB (a dense float64 N x N matrix alone: {dense_gb:5.1f} GB); "
              f"{rec['seconds']:.1f} s; I_XT {rec['I_XT']:.4f}, I_TY {rec['I_TY']:.4f} bits")
        ok &= extra_mb < 1024
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}")
    print(f"both bounds no slower than numpy float32: {'yes' if ok_both else 'NO'}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
