"""Benchmark mixture_mi_bounds (chunked torch, float64) against a dense numpy reference, side by side.

For N = 4,096 and 10,000 probe inputs (d = 16, M = 8 by default) it times the chunked estimator and its peak
extra memory (tracemalloc cannot see torch's allocator, so peak RSS growth of a fresh subprocess is used for
both), and — where the (N·M, N) float64 matrix fits in the given budget — a dense numpy/scipy reference
computed in the same run, reporting the speed ratio and the agreement in bits.

    python benchmarks/bench_mixture.py            # N = 4,096 and 10,000
    python benchmarks/bench_mixture.py --quick    # N = 1,024 and 2,048 with M = 4 (< 1 min)
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import numpy as np
from _machine import describe


def _problem(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(n, d))
    log_var = np.log(rng.uniform(0.05, 0.5, size=(n, d)))
    return mu, log_var


def _dense(mu, log_var, n_samples, seed):
    """Whole (N·M, N) log-density matrix at once (numpy + scipy logsumexp), same samples as the estimator."""
    import torch
    from scipy.special import logsumexp

    n, d = mu.shape
    eps = torch.randn((n, n_samples, d), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    eps = eps.numpy()
    z = (mu[:, None, :] + np.exp(0.5 * log_var)[:, None, :] * eps).reshape(-1, d)
    prec = np.exp(-log_var)
    const = -0.5 * (d * math.log(2 * math.pi) + log_var.sum(1) + (mu * mu * prec).sum(1))
    L = const[None, :] + z @ (mu * prec).T - 0.5 * (z * z) @ prec.T
    own = -0.5 * (d * math.log(2 * math.pi) + log_var.sum(1)[:, None] + (eps**2).sum(2)).reshape(-1)
    rows = np.arange(n * n_samples)
    cols = np.repeat(np.arange(n), n_samples)
    L[rows, cols] = own
    lower = (own - logsumexp(L, axis=1) + math.log(n)).mean() / math.log(2)
    L[rows, cols] = -np.inf
    upper = (own - logsumexp(L, axis=1) + math.log(n - 1)).mean() / math.log(2)
    return lower, upper


def _child(kind: str, n: int, d: int, m: int) -> None:
    """Run one measurement in this (fresh) process and print JSON: seconds, peak RSS growth, bounds."""
    import torch
    from scipy.special import logsumexp  # noqa: F401  (imports outside the timed region)

    from infoplane.estimators.variational import mixture_mi_bounds

    mu, log_var = _problem(n, d)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if kind == "chunked":
        res = mixture_mi_bounds(torch.as_tensor(mu), torch.as_tensor(log_var), n_samples=m, seed=0)
        lower, upper = res.lower, res.upper
    else:
        lower, upper = _dense(mu, log_var, m, 0)
    seconds = time.perf_counter() - t0
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "lower": lower, "upper": upper}))


def _run(kind: str, n: int, d: int, m: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(n), str(d), str(m)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 1,024 and 2,048, M = 4 (< 1 minute)")
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--M", type=int, default=None)
    parser.add_argument("--dense-limit-gb", type=float, default=4.0,
                        help="run the dense reference only when its (N·M, N) float64 matrix is below this")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many chunked runs")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, d, m = args.child
        _child(kind, int(n), int(d), int(m))
        return

    sizes = (1024, 2048) if args.quick else (4096, 10_000)
    m = args.M or (4 if args.quick else 8)
    print(f"machine: {describe()}")
    print(f"d = {args.d}, M = {m}; times in s, memory = peak RSS growth in MB (fresh process each)")
    print(f"{'N':>7} {'chunked s':>10} {'MB':>7} {'dense s':>9} {'MB':>8} {'speed-up':>9} {'|diff| bits':>12}"
          f"  lower / upper bits")
    for n in sizes:
        c = min((_run("chunked", n, args.d, m) for _ in range(args.repeat)), key=lambda r: r["seconds"])
        dense_gb = n * m * n * 8 / 2**30
        if dense_gb <= args.dense_limit_gb:
            r = _run("dense", n, args.d, m)
            diff = max(abs(c["lower"] - r["lower"]), abs(c["upper"] - r["upper"]))
            dense = f"{r['seconds']:9.2f} {r['peak_mb']:8.0f} {r['seconds'] / c['seconds']:8.1f}x {diff:12.1e}"
        else:
            dense = f"{'(skipped: ' + format(dense_gb, '.1f') + ' GB matrix)':>41}"
        print(f"{n:>7} {c['seconds']:10.2f} {c['peak_mb']:7.0f} {dense}  {c['lower']:.4f} / {c['upper']:.4f}")


if __name__ == "__main__":
    main()
