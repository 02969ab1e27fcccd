"""KDE bound speed and memory, measured side by side in one run.

1. Speed: infoplane's chunked torch KDEEstimator against a dense N x N float64 numpy reference (the
   formulas of Saxe et al. 2018 with the full distance matrix and scipy's logsumexp), at sizes where the
   dense matrix fits, on the same activations; the two must agree to 1e-5 bits.
2. Memory: peak resident memory of one estimate at N = 10,000 and 60,000 (MNIST size). tracemalloc does
   not see torch's CPU allocations, so each N runs in a fresh subprocess that records its resident memory
   (VmRSS) just before the estimate, resets the kernel's peak counter (/proc/self/clear_refs, so the
   import-time peak of torch cannot hide the estimate's), and reads the peak (VmHWM, the same number
   resource.getrusage reports as ru_maxrss) afterwards; the difference is what the estimate needed. A dense float64 N x N matrix would need 8 N^2 bytes
   (0.8 GB at 10,000; 28.8 GB at 60,000, more than this machine has).

Usage: python benchmarks/bench_kde.py [--quick]      (--quick: smaller dense sizes, N = 10,000 only)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from scipy.special import logsumexp

from infoplane.estimators import KDEEstimator

D, VAR = 10, 1e-1


def layer(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20))
    h = np.tanh(x @ rng.normal(size=(20, D)) / 3)
    y = (x[:, :4].argmax(1)).astype(np.int64)  # 4 classes
    return h, y


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


def machine() -> str:
    return (f"{platform.platform()} | {platform.processor() or platform.machine()} | {os.cpu_count()} CPUs | "
            f"python {platform.python_version()} | numpy {np.__version__} | torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    print(f"machine: {machine()}")
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
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
