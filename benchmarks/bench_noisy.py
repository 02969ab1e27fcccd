"""Benchmark the noisy-layer estimator per (epoch, layer): N = 10,000 probe inputs, m = 8 draws, d = 32/128/512.

What `information_plane` does for one deeper noisy layer at one epoch: `NoisyEstimator` on the N·m = 80,000
propagated centres (additive noise and Gaussian dropout), with the default 4,096 Monte Carlo points and the
64 MB block budget, in a fresh subprocess each (peak RSS growth of that process = the estimate's memory
beyond its input; the input itself, N·m·d float32, is printed beside it). Target (issue 18): <= 30 s and
bounded memory at d = 128 on 2 cores. Also one ``memory_mb`` ratio measured side by side (8 vs 64 MB) to
show that the budget bounds memory, not the answer.

    python benchmarks/bench_noisy.py            # d = 32, 128, 512
    python benchmarks/bench_noisy.py --quick    # N = 2,000 (< 1 min)
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from _machine import describe


def _problem(n: int, m: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres of a deeper noisy layer: 10 class clusters, each input its own point, m scattered draws per input."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    means = rng.normal(size=(10, d)) * (3.0 / np.sqrt(d))  # classes ~3 noise units apart, inputs ~1
    inputs = 5.0 + means[y] + rng.normal(size=(n, d)) / np.sqrt(d)
    draws = inputs[:, None, :] + 0.3 * rng.normal(size=(n, m, d)) / np.sqrt(d)
    return draws.reshape(n * m, d).astype(np.float32), np.repeat(y, m), np.repeat(np.arange(n), m)


def _child(kind: str, n: int, m: int, d: int, memory_mb: float) -> None:
    import torch

    from infoplane.estimators import NoisyEstimator
    from infoplane.noise import GaussianDropout, GaussianNoise

    torch.set_num_threads(2)
    t, y, x = _problem(n, m, d)
    spec = GaussianNoise(0.5) if kind == "additive" else GaussianDropout(0.01)  # dropout σ·5 = 0.5 too
    est = NoisyEstimator(noise=spec, memory_mb=memory_mb)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    r = est.estimate(t, y, x)
    seconds = time.perf_counter() - t0
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "I_XT": r.I_XT, "se": r.conventions["stderr_XT_bits"],
                      "input_mb": t.nbytes / 2**20}))


def _run(kind: str, n: int, m: int, d: int, memory_mb: float = 64.0) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(n), str(m), str(d), str(memory_mb)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 2,000")
    parser.add_argument("--dims", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, m, d, mb = args.child
        _child(kind, int(n), int(m), int(d), float(mb))
        return
    n, m = (2000 if args.quick else 10_000), 8
    print(f"machine: {describe()}")
    print(f"N = {n:,}, m = {m}, rows N*m = {n * m:,}; 4,096 Monte Carlo points; fresh process per line")
    print(f"{'noise':>9} {'d':>5} {'seconds':>8} {'peak MB':>8} {'input MB':>9} {'I_XT bits':>10} {'SE':>6}")
    for d in args.dims:
        for kind in ("additive", "dropout"):
            r = _run(kind, n, m, d)
            print(f"{kind:>9} {d:>5} {r['seconds']:8.1f} {r['peak_mb']:8.0f} {r['input_mb']:9.0f} "
                  f"{r['I_XT']:10.3f} {r['se']:6.3f}")
    d = 128 if 128 in args.dims else args.dims[0]
    small, big = _run("additive", n, m, d, 8.0), _run("additive", n, m, d, 64.0)
    print(f"memory_mb 8 vs 64 at d = {d}: {small['seconds']:.1f} s / {big['seconds']:.1f} s, peak "
          f"{small['peak_mb']:.0f} / {big['peak_mb']:.0f} MB, I_XT {small['I_XT']:.4f} / {big['I_XT']:.4f} bits")


if __name__ == "__main__":
    main()
