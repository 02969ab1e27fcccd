"""Benchmark the k-NN estimators (chunked torch, float64): time and peak extra memory, and a scipy reference.

For N in (4,000, 20,000) and d in (10, 100, 1,000) it runs, each in a fresh subprocess (peak RSS growth
is the memory measure: tracemalloc cannot see torch's allocator):

- ``ross-max`` / ``ross-euclid``: `KNNEstimator` (Ross 2014) on a 10-class layer, max / Euclidean norm;
- ``ksg-max``: `ksg_mi` between the layer and a 1-D continuous target;
- ``ref-ross-max``: a straightforward scipy reference (cKDTree per class for the k-th neighbour, then
  ``query_ball_point(..., return_length=True)`` for the counts), where it is affordable (N·d <= 400,000),
  with the speed ratio and the agreement in bits measured in the same run.

    python benchmarks/bench_knn.py            # the full grid (several minutes on 2 cores)
    python benchmarks/bench_knn.py --quick    # N = 4,000 and d = 10, 100 only (< 1 min)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from _machine import describe


def _problem(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    t = rng.normal(size=(n, d)) + 0.5 * np.eye(10)[y] @ rng.normal(size=(10, d))
    target = t[:, 0] + rng.normal(size=n)
    return t, y, target


def _ref_ross(t, y, k=3):
    from scipy.spatial import cKDTree
    from scipy.special import digamma

    n = len(t)
    r = np.empty(n)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        r[idx] = cKDTree(t[idx]).query(t[idx], k=k + 1, p=np.inf)[0][:, -1]
    m = cKDTree(t).query_ball_point(t, np.nextafter(r, 0), p=np.inf, return_length=True)
    return (digamma(n) - digamma(np.bincount(y)[y]).mean() + digamma(k) - digamma(m).mean()) / np.log(2)


def _child(kind: str, n: int, d: int) -> None:
    import torch

    from infoplane.estimators import KNNEstimator
    from infoplane.estimators.knn import ksg_mi

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    t, y, target = _problem(n, d)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if kind == "ross-max":
        value = KNNEstimator(metric="max").estimate(t, y).conventions["I_TY_raw"]
    elif kind == "ross-euclid":
        value = KNNEstimator(metric="euclidean").estimate(t, y).conventions["I_TY_raw"]
    elif kind == "ksg-max":
        value = ksg_mi(t, target)
    else:
        value = _ref_ross(t, y)
    seconds = time.perf_counter() - t0
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "bits": float(value)}))


def _run(kind: str, n: int, d: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(n), str(d)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 4,000 and d = 10, 100 only")
    parser.add_argument("--sizes", type=int, nargs="+", help="N values (default 4000 20000)")
    parser.add_argument("--dims", type=int, nargs="+", help="d values (default 10 100 1000)")
    parser.add_argument("--max-work", type=float, default=float("inf"),
                        help="skip the max-norm runs with N*N*d above this (they cost ~N*N*d, no BLAS)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return

    threads = os.environ.get("BENCH_THREADS", "2")
    print(f"machine: {describe()}; children use {threads} torch threads")
    sizes = args.sizes or ([4000] if args.quick else [4000, 20000])
    dims = args.dims or ([10, 100] if args.quick else [10, 100, 1000])
    grid = [(n, d) for n in sizes for d in dims]
    print(f"{'N':>6} {'d':>5} {'method':<12} {'seconds':>9} {'peak MB':>8} {'bits':>9}  note")
    for n, d in grid:
        ours = None
        for kind in ("ross-max", "ross-euclid", "ksg-max", "ref-ross-max"):
            if kind == "ref-ross-max" and n * d > 400_000:
                continue
            if kind in ("ross-max", "ksg-max") and float(n) * n * d > args.max_work:
                print(f"{n:>6} {d:>5} {kind:<12} skipped (N*N*d above --max-work)", flush=True)
                continue
            r = _run(kind, n, d)
            note = ""
            if kind == "ross-max":
                ours = r
            if kind == "ref-ross-max" and ours is not None:
                note = (f"ours {r['seconds'] / ours['seconds']:.1f}x faster; |diff| = "
                        f"{abs(r['bits'] - ours['bits']):.1e} bits")
            print(f"{n:>6} {d:>5} {kind:<12} {r['seconds']:>9.2f} {r['peak_mb']:>8.0f} {r['bits']:>9.4f}  {note}",
                  flush=True)
    print(f"load (1 min) at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
